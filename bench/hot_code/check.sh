#!/usr/bin/env bash
# workload.py answered by the server, as trace.sh drives it: so the paths whose code the release
# binary keeps together stay paths the API serves. Called by scripts/test.sh with a work folder.
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
WORK=$1
. tests/start-api.sh
upstream_port=$(free_port)
start_api "$WORK/hot-code.log" STORE=memory OPENAI_API_KEY=hot-code OPENAI_BASE_URL="http://127.0.0.1:$upstream_port/v1"
python3 bench/hot_code/workload.py "$BASE" "$upstream_port"
