#!/usr/bin/env bash
# The server against its own description: schemathesis sends generated requests to every
# operation of /openapi.json (bounded in examples and time) and fails on a 5xx or on an answer
# the description does not allow; stream_events.py validates every event of real run streams
# against the description's `StreamEvent` schema. Called by scripts/test.sh with a work folder.
# One worker: CPython 3.11 can fail parsing in several threads at once ("AST constructor recursion
# depth mismatch"), which schemathesis reports as a runtime error.
set -euo pipefail
WORK=$1
. "$(dirname "${BASH_SOURCE[0]}")/../start-api.sh"
# OpenAI is configured at a closed port, so runs naming its models fail and streams with `error`
# events are checked too; so are the agents' tools, whose failures become tool messages.
start_api "$WORK/openapi-server.log" STORE=memory OFFLINE_TOKEN_DELAY_MS=0 \
  OPENAI_API_KEY=unused OPENAI_BASE_URL=http://127.0.0.1:9/v1 \
  WIKIPEDIA_API_URL=http://127.0.0.1:9/w/api.php ARXIV_API_URL=http://127.0.0.1:9/arxiv \
  AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:9

status=0
python "$(dirname "${BASH_SOURCE[0]}")/stream_events.py" "$BASE" || status=1
schemathesis --config-file "$(dirname "${BASH_SOURCE[0]}")/schemathesis.toml" run "$BASE/openapi.json" \
  --header "Cookie: opengpts_user_id=schemathesis" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples 20 --max-time 40 --workers 1 --request-timeout 10 \
  --suppress-health-check all --warnings off --no-color || status=1
exit $status
