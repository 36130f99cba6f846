#!/usr/bin/env bash
# The benchmark: release build of the server, measured from outside. Loopback only, bounded loops.
# Pass --lambda to also build every Lambda function's release zip and list the sizes.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cargo build --release --quiet -p api -p bench
"$CARGO_TARGET_DIR/release/bench" "$@"
if [[ " $* " == *" --lambda "* ]]; then
  . scripts/python-tools.sh
  # The deployable build: the `lambda` profile (size-optimised, fat LTO), as infra/deploy.sh uses.
  cargo lambda build --profile lambda --output-format zip --quiet 2>&1 | tail -3
  echo "| function | zip | bootstrap |"
  echo "|---|---|---|"
  for zip in "$CARGO_TARGET_DIR"/lambda/*/bootstrap.zip; do
    function=$(basename "$(dirname "$zip")")
    [ "$function" = api ] && continue
    unzipped=$(python3 -c "import zipfile,sys; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))" "$zip")
    echo "| $function | $(( $(stat -c %s "$zip") / 1024 )) KiB | $(( unzipped / 1024 )) KiB |"
  done
fi
