# Sourced by the scripts that serve the Lambda functions through the Lambda runtime protocol.
#
# start_lambda_watch LOG [VAR=value ...]: starts `cargo lambda watch` with the variables given
# (the functions' store, model and tools), adds its pid to PIDS and sets WATCH_PORT. It cannot
# bind port 0 and report it: it tries a random port, and another if that one turns out to be
# taken (the emulator then exits). It serves the binaries as built, with no reload: a file
# written meanwhile must not restart a function under a test. The functions hand background runs
# to their own `run-worker` (RUN_WORKER_FUNCTION) at the emulator's port.
start_lambda_watch() {
  local log=$1 port pid
  shift
  WATCH_PORT=
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    env "$@" RUN_WORKER_FUNCTION=run-worker AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" \
      cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 3000); do
      kill -0 "$pid" 2>/dev/null || break
      curl -s -o /dev/null "http://127.0.0.1:$port/ok" && { WATCH_PORT=$port; break; }
      sleep 0.2
    done
    if [ -n "$WATCH_PORT" ]; then PIDS+=("$pid"); return 0; fi
    kill "$pid" 2>/dev/null || true
    tail -5 "$log"
  done
  echo "cargo lambda watch did not start" >&2
  return 1
}

# Stops what `cargo lambda watch` started on WATCH_PORT (its functions outlive the command).
stop_lambda_watch() {
  [ -z "${WATCH_PORT:-}" ] || pkill -f "cargo-lambda lambda watch.*--invoke-port $WATCH_PORT" 2>/dev/null || true
}
