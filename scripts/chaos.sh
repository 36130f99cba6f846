#!/usr/bin/env bash
# The long fault workload (`make chaos`): for each fault rate, the server (release build, on
# DynamoDB) with the fault injector between it and the emulator, and 1,000 streamed and
# background runs of a chatbot and an agent on 50 threads at concurrency 32. The agent's tool,
# Wikipedia, is at a closed port: its calls fail at once, and the agent answers with that. Prints, per rate,
# what tests/faults/workload.py checks and measures; exits non-zero if a check fails.
# Arguments go to the workload (`make chaos ARGS="--runs 200"`); RATES="0.05 0.2" by default.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# Built as `make bench` builds it (with the bench's crate): one build serves both.
cargo build --release --quiet -p api -p bench
. scripts/python-tools.sh
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for_file() { for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; return 1; }
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
python tests/dynamodb-emulator.py "$WORK/emulator" >"$WORK/emulator.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/emulator"
# Starts the server with the variables given, and sets `address` and `api` (its pid).
start_api() {
  : >"$WORK/api.log"
  # It logs its heap each second, counted without glibc's per-thread caches (tests/faults.rs).
  env PORT=0 RUN_LEASE_SECONDS=20 OFFLINE_TOKEN_DELAY_MS=1 RUST_LOG=info RUNTIME_STATS_SECONDS=1 \
    GLIBC_TUNABLES=glibc.malloc.tcache_count=0 \
    WIKIPEDIA_API_URL=http://127.0.0.1:9/w/api.php "$@" "$CARGO_TARGET_DIR/release/api" >"$WORK/api.log" 2>&1 &
  api=$!
  PIDS+=($api)
  for _ in $(seq 1 200); do grep -q "listening on" "$WORK/api.log" && break; sleep 0.1; done
  address=$(grep -o "listening on [^ ]*" "$WORK/api.log" | head -1 | cut -d' ' -f3)
}
# Starts the injector in front of $1 (flavor $2, more options after) and sets `proxy`.
start_proxy() {
  rm -f "$WORK/proxy"
  python tests/faults/proxy.py --upstream "$1" --flavor "$2" --address-file "$WORK/proxy" --rate 0 "${@:3}" &
  proxy=$!
  PIDS+=($proxy)
  wait_for_file "$WORK/proxy"
}
# Runs the workload against the server just started; `label` names the row, `runs` its size.
workload() {
  echo "== $label"
  python tests/faults/workload.py --server "$address" --faults "$(cat "$WORK/proxy")" --pid "$api" \
    --runs "$runs" --threads 50 --concurrency 32 --rate "$rate" --lease-seconds 20 --label "$label" \
    --server-log "$WORK/api.log" \
    --show 1 "$@" || status=1
  echo "panics in the server log: $(grep -c panicked "$WORK/api.log" || true)"
  kill "$api" "$proxy"
}
python tests/faults/openai_mock.py --address-file "$WORK/openai" &
PIDS+=($!)
wait_for_file "$WORK/openai"
status=0
for rate in ${RATES:-0.05 0.2}; do
  # Held answers come after the client's attempt timeout, so it tries again. The emulator serves
  # one request at a time, slowly (tens a second once the table holds this load's items): at
  # this load the default 5 s times out requests that are only queued.
  start_proxy "$(cat "$WORK/emulator")" dynamodb --late-seconds 11
  start_api STORE=dynamodb AWS_ENDPOINT_URL_DYNAMODB="$(cat "$WORK/proxy")" TABLE_NAME="chaos-$rate-$RANDOM" \
    DYNAMODB_ATTEMPT_TIMEOUT_MS=10000
  runs=${DYNAMODB_RUNS:-1000} label="DynamoDB, its requests broken at $rate" workload "$@"
  # A stalled stream outlasts the model timeout.
  start_proxy "$(cat "$WORK/openai")" openai --stall-seconds 3
  start_api STORE=sqlite SQLITE_PATH="$WORK/chaos-$rate.sqlite3" OPENAI_API_KEY=sk-chaos \
    OPENAI_BASE_URL="$(cat "$WORK/proxy")/v1" LLM_TIMEOUT_SECONDS=2
  runs=1000 label="SQLite, the model's requests broken at $rate" workload --model openai "$@"
done
exit $status
