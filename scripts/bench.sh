#!/usr/bin/env bash
# The benchmark: release build of the server, measured from outside. Loopback only, bounded loops.
# Pass --lambda to also build every Lambda function's release zip and list the sizes, --reference
# to also measure the reference LangGraph server (langgraph-cli[inmem], installed once) side by side,
# and with it --reference-only for that comparison alone. The commit before (BENCH_BASELINE, a git
# revision; `none` to skip it) is built too and measured beside this one.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
FUNCTIONS="assistants threads runs runs-stream run-worker ingest ingest-worker"
# Every binary as users build it: `cargo build --release -p api`, and each function alone, as they
# are deployed. Built together, Cargo gives every package the features of all of them, and symbol
# names carry a hash of those features (the hot-code list would miss most of its names).
build_binaries() {
  cargo build --release --quiet -p api
  if [[ " $* " != *" --reference-only "* ]]; then
    for function in $FUNCTIONS; do cargo build --release --quiet -p "$function"; done
  fi
}
BASELINE="${BENCH_BASELINE:-HEAD~1}"
if [ "$BASELINE" != none ] && [[ " $* " != *" --reference-only "* ]]; then
  # Built first, in a worktree of its own, and its binaries set aside: the build of this commit
  # then writes its own over them. Both share the target directory's dependencies.
  BASE="$CARGO_TARGET_DIR/bench-baseline"
  rm -rf "$BASE"
  mkdir -p "$BASE/bin"
  git worktree add --quiet --detach "$BASE/src" "$BASELINE"
  (cd "$BASE/src" && build_binaries "$@")
  # Moved, not copied: where this commit's build is fresh already, Cargo would not put its
  # binaries back over the baseline's, and both columns would measure the commit before.
  for binary in api $FUNCTIONS; do mv "$CARGO_TARGET_DIR/release/$binary" "$BASE/bin/"; done
  git worktree remove --force "$BASE/src"
  export BENCH_BASELINE_BINARIES="$BASE/bin"
  echo "The commit before: $(git log -1 --format='%h %s' "$BASELINE" | cut -c1-100)"
fi
build_binaries "$@"
cargo build --release --quiet -p bench
# The DynamoDB emulator, for the cold-start measurement (the store a function connects to at init).
. scripts/python-tools.sh
WORK=$(mktemp -d)
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
python tests/dynamodb-emulator.py "$WORK/address" >"$WORK/emulator.log" 2>&1 &
EMULATOR=$!
trap 'kill $EMULATOR 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do [ -s "$WORK/address" ] && break; sleep 0.1; done
if [[ " $* " == *" --reference "* ]]; then
  # The reference LangGraph server, for the side-by-side rows: its own virtualenv, installed once.
  export LANGGRAPH_REFERENCE_VENV="${LANGGRAPH_REFERENCE_VENV:-$HOME/.cache/opengpts-serverless/langgraph-reference}"
  if ! [ -x "$LANGGRAPH_REFERENCE_VENV/bin/langgraph" ]; then
    python3 -m venv "$LANGGRAPH_REFERENCE_VENV"
    "$LANGGRAPH_REFERENCE_VENV/bin/pip" install --quiet --disable-pip-version-check "langgraph-cli[inmem]" langchain-openai
  fi
fi
DYNAMODB_BENCH_ENDPOINT=$(cat "$WORK/address") "$CARGO_TARGET_DIR/release/bench" "$@"
if [[ " $* " == *" --lambda "* ]]; then
  # The deployable build: the `lambda` profile (size-optimised, fat LTO, panics abort) and the
  # flags of infra/lambda-build-env.sh, as infra/deploy.sh builds,
  # each function in its own folder as SAM builds it (template.yaml's CodeUri).
  ZIPS="$CARGO_TARGET_DIR/lambda-zips"
  for function in $FUNCTIONS api; do
    # `--bin`, as SAM passes it (the template's `Binary`): cargo lambda reads the package's
    # `[package.metadata.lambda.build]` (api's leaves SQLite out) only for a named binary.
    (. infra/lambda-build-env.sh && cd "functions/$function" \
      && cargo lambda build --profile lambda --output-format zip --quiet --bin "$function" --lambda-dir "$ZIPS" 2>&1 | tail -3)
  done
  echo "| function | zip | bootstrap | zip ≤ 5 MB |"
  echo "|---|---|---|---|"
  for function in $FUNCTIONS api; do
    zip="$ZIPS/$function/bootstrap.zip"
    unzipped=$(python3 -c "import zipfile,sys; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))" "$zip")
    bytes=$(stat -c %s "$zip")
    echo "| $function | $(( bytes / 1024 )) KiB | $(( unzipped / 1024 )) KiB | $([ "$bytes" -le 5000000 ] && echo yes || echo no) |"
  done
fi
