#!/usr/bin/env bash
# The long fault workload (`make chaos`): for each fault rate, the server (release build, on
# DynamoDB) with the fault injector between it and the emulator, and 1,000 streamed and
# background runs of a chatbot and an agent on 50 threads at concurrency 32; the same with the
# model's requests broken. Then three rows about time rather than errors: `run-worker`'s invokes
# broken under load (the functions under `cargo lambda watch`), the server stopped past its runs'
# lease again and again, and a model that pauses mid-answer past the lease. The agent's tool,
# Wikipedia, is at a closed port: its calls fail at once, and the agent answers with that.
# Prints, per row, what tests/faults/workload.py checks and measures; exits non-zero if a check
# fails. Arguments go to the workload (`make chaos ARGS="--runs 200"`); RATES="0.05 0.2" by
# default; ROWS="errors lambda starved paused" by default.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# Built as `make bench` builds it (with the bench's crate): one build serves both.
cargo build --release --quiet -p api -p bench
. scripts/python-tools.sh
. scripts/lambda-watch.sh
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_lambda_watch
  rm -rf "$WORK"
}
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
# Starts the injector in front of $1 (flavor $2, more options after); sets `proxy` (its pid)
# and `faults` (its URL).
start_proxy() {
  rm -f "$WORK/proxy"
  python tests/faults/proxy.py --upstream "$1" --flavor "$2" --address-file "$WORK/proxy" --rate 0 "${@:3}" &
  proxy=$!
  PIDS+=($proxy)
  wait_for_file "$WORK/proxy"
  faults=$(cat "$WORK/proxy")
}
# Runs the workload against the server just started, through the injector just started if any;
# `label` names the row, `runs` its size.
workload() {
  echo "== $label"
  python tests/faults/workload.py --server "$address" ${faults:+--faults "$faults"} --pid "$api" \
    --runs "$runs" --threads 50 --concurrency 32 --rate "$rate" --lease-seconds 20 --label "$label" \
    --server-log "$WORK/api.log" \
    --show 1 "$@" || status=1
  echo "panics in the server log: $(grep -c panicked "$WORK/api.log" || true)"
  kill "$api" ${proxy:-} 2>/dev/null || true
  proxy= faults=
}
rows=" ${ROWS:-errors lambda starved paused} "
python tests/faults/openai_mock.py --address-file "$WORK/openai" &
PIDS+=($!)
wait_for_file "$WORK/openai"
status=0
[[ $rows == *" errors "* ]] && for rate in ${RATES:-0.05 0.2}; do
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
if [[ $rows == *" lambda "* ]]; then
  # The server hands its background runs to `run-worker` under `cargo lambda watch`, whose
  # invokes the injector breaks: throttled, failing, lost before or after they land, twice.
  start_lambda_watch "$WORK/watch.log" STORE=sqlite SQLITE_PATH="$WORK/chaos-lambda.sqlite3" OFFLINE_TOKEN_DELAY_MS=1 \
    WIKIPEDIA_API_URL=http://127.0.0.1:9/w/api.php RUN_LEASE_SECONDS=20
  start_proxy "http://127.0.0.1:$WATCH_PORT" lambda
  start_api STORE=sqlite SQLITE_PATH="$WORK/chaos-lambda.sqlite3" RUN_WORKER_FUNCTION=run-worker \
    AWS_ENDPOINT_URL_LAMBDA="$faults" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  runs=1000 rate=0.2 label="Lambda, run-worker's invokes broken at 0.2" workload "$@"
  stop_lambda_watch
fi
if [[ $rows == *" starved "* ]]; then
  # The server stopped (SIGSTOP) for 5 s after each 2 s it runs while the load runs, past its
  # runs' 3 s lease, on 10 threads so that runs queue on each; the offline model's answers take
  # half a second, so that stops fall mid-answer. When the process goes on, the runs queued in it
  # wait for the one holding their thread there, however late its lease is renewed.
  start_api STORE=sqlite SQLITE_PATH="$WORK/chaos-starved.sqlite3" RUN_LEASE_SECONDS=3 OFFLINE_TOKEN_DELAY_MS=30
  # Its ten threads take every answer, and each run reads and sends its whole thread: the second
  # load's threads are twice as long as the first's, and so are its largest allocations, which
  # resident memory keeps. The heap in use, bounded as in every row, tells a leak.
  runs=1000 rate=0 label="SQLite, the server stopped 5 s after each 2 s it runs (lease 3 s)" \
    workload --threads 10 --lease-seconds 3 --starve-every 2 --starve-for 5 --max-leak-mib 12 "$@"
fi
if [[ $rows == *" paused "* ]]; then
  # A fifth of the model's answers pause half-way for 5 s, past the 3 s lease: the run's
  # heartbeat keeps its thread, and the runs queued behind it wait.
  start_proxy "$(cat "$WORK/openai")" openai --kinds paused --pause-seconds 5
  start_api STORE=sqlite SQLITE_PATH="$WORK/chaos-paused.sqlite3" OPENAI_API_KEY=sk-chaos \
    OPENAI_BASE_URL="$faults/v1" LLM_TIMEOUT_SECONDS=30 RUN_LEASE_SECONDS=3
  runs=1000 rate=0.2 label="SQLite, the model pausing 5 s mid-answer (lease 3 s)" \
    workload --model openai --lease-seconds 3 "$@"
fi
exit $status
