#!/usr/bin/env bash
# Writes functions/api/hot-code.txt: which functions of the local server run on its common paths
# (workload.py, on the memory store and on SQLite), the most run first. The linker lays them out
# together (functions/api/build.rs), so a server touches a few pages of its code where it touched
# a little of many: see docs/performance.md. Run it again after a change of dependencies or of the
# serving path; a list gone stale only costs memory, never correctness. Needs valgrind.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
# The build users run and bench.sh measures, `-p api` alone: the same features, so the same
# symbol names (they carry a hash of the crate's features).
cargo build --release --quiet -p api
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
for store in memory sqlite; do
  server_port=$(free_port)
  upstream_port=$(free_port)
  PORT=$server_port STORE=$store SQLITE_PATH="$WORK/$store.sqlite3" OPENAI_API_KEY=hot-code \
    OPENAI_BASE_URL="http://127.0.0.1:$upstream_port/v1" \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$store.callgrind" --compress-strings=no \
    --demangle=no --compress-pos=no "$CARGO_TARGET_DIR/release/api" >"$WORK/$store.log" 2>&1 &
  server=$!
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$server_port/ok" && break
    sleep 0.5
  done
  python3 bench/hot_code/workload.py "http://127.0.0.1:$server_port" "$upstream_port"
  kill -TERM $server
  wait $server || true
done
python3 bench/hot_code/order.py api functions/api/hot-code.txt "$WORK"/*.callgrind
