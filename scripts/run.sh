#!/usr/bin/env bash
# The whole API on http://127.0.0.1:8100 (HOST/PORT override): offline model, no keys, no cloud.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec cargo run --quiet -p api
