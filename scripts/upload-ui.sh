#!/usr/bin/env bash
# Uploads a built OpenGPTs UI to a stack deployed with UiHosting=cloudfront (see scripts/upload_ui.py).
#   scripts/upload-ui.sh BUILD_DIR --stack STACK_NAME
here=$PWD
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. scripts/python-tools.sh
script="$PWD/scripts/upload_ui.py"
# The build folder is named from where the command was typed.
cd "$here"
exec python "$script" "$@"
