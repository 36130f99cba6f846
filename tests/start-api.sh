# Sourced by the checks that drive a running server: `start_api LOG VAR=VALUE...` starts the
# debug `api` binary with those variables on a port of its choosing (PORT=0), reads the address
# it logs into BASE, and stops it when the sourcing script exits.
start_api() {
  local log=$1
  shift
  env "$@" PORT=0 RUST_LOG=info "$CARGO_TARGET_DIR/debug/api" >"$log" 2>&1 &
  API_PID=$!
  trap 'kill $API_PID 2>/dev/null || true' EXIT
  BASE=
  for _ in $(seq 1 100); do
    BASE=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$BASE" ] && return 0
    sleep 0.1
  done
  cat "$log"
  echo "the server did not start" >&2
  return 1
}
