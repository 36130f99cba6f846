#!/usr/bin/env bash
# Every test. Starts what the tests need and stops it afterwards:
# - the template linted (cfn-lint, sam validate --lint), and core/'s layout checked;
# - the DynamoDB emulator: moto served one request at a time, so each request is atomic as on
#   DynamoDB (tests/dynamodb-emulator.py says why), its transactions checked all-or-nothing and
#   idempotent by their token, as DynamoDB's are;
# - `cargo lambda watch`, serving the Lambda functions through the Lambda runtime protocol;
# - the unit tests and the one integration-test binary: the API over real HTTP, provider wire
#   formats, the store contract on every backend, the Lambda functions;
# - the HTTP suites again on each persistent store;
# - schemathesis over /openapi.json against the running server;
# - the UI upload script against the emulator's S3 and CloudFront;
# - the playground page (GET /) in headless Chromium;
# - the LangGraph API through its JS client (@langchain/langgraph-sdk) under node;
# - bench/hot_code's workload (the paths whose code the release binary keeps together) answered.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. scripts/python-tools.sh
. scripts/lambda-watch.sh
HTTP_SUITES=(agent_protocols:: agents:: api:: bot_forms:: frontends:: isolation:: langgraph:: langgraph_events:: mcp_tools:: retrieval:: runs_stream:: walkthrough::)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_lambda_watch
  rm -rf "$WORK"
}
trap cleanup EXIT
# Waits for a file that a starting service writes once it listens.
wait_for_file() { for _ in $(seq 1 "${2:-300}"); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; return 1; }
status=0
started=$SECONDS

echo "== template.yaml: cfn-lint and sam validate --lint"
cfn-lint template.yaml || status=1
AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0 sam validate --lint --template-file template.yaml || status=1

echo "== core/'s layout: no file over 500 lines, no import cycle between its modules"
python3 tests/layout/check.py || status=1

echo "== build"
cargo build --workspace --quiet
# `make run` as the README's walkthrough test starts it: `api` alone, with its own features.
cargo build --quiet -p api
cargo test --workspace --no-run --quiet 2>&1 | grep -v "^  Executable" || true
echo "== each Lambda function alone, as SAM builds it, with only the parts its features name"
# Built together (above), Cargo gives every function the features of all; alone, a function
# whose routes use a part it lacks does not compile.
for function in assistants threads runs runs-stream run-worker ingest ingest-worker; do
  (cd "functions/$function" && cargo check --quiet) || status=1
done

echo "== the DynamoDB emulator"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
python tests/dynamodb-emulator.py "$WORK/dynamodb.address" >"$WORK/dynamodb.log" 2>&1 &
PIDS+=($!)
wait_for_file "$WORK/dynamodb.address" || { cat "$WORK/dynamodb.log"; exit 1; }
export DYNAMODB_TEST_ENDPOINT=$(cat "$WORK/dynamodb.address")
python tests/dynamodb-emulator-check.py "$DYNAMODB_TEST_ENDPOINT" || status=1

echo "== the Lambda functions behind cargo lambda watch"
# Wikipedia at a closed port: agents' tool calls there fail, which the functions must survive.
# Large uploads go to a bucket of the moto emulator, which serves S3 too.
# MCP servers the tests start listen on loopback, which tool URLs may not reach unless allowed.
start_lambda_watch "$WORK/watch.log" STORE=sqlite SQLITE_PATH="$WORK/lambda.sqlite3" OFFLINE_TOKEN_DELAY_MS=30 \
  WIKIPEDIA_API_URL=http://127.0.0.1:9/w/api.php TOOL_URL_ALLOWLIST=127.0.0.1 \
  UPLOAD_BUCKET=lambda-uploads AWS_ENDPOINT_URL_S3="$DYNAMODB_TEST_ENDPOINT"
export LAMBDA_EMULATOR_URL="http://127.0.0.1:$WATCH_PORT"
# The functions' store, which a server in front of their run-worker shares (tests/faults.rs).
export LAMBDA_SQLITE_PATH="$WORK/lambda.sqlite3"

echo "== every test (the HTTP suites on the memory store)"
# The LangGraph suite through the functions runs on its own afterwards: it keeps the functions
# (one instance each) busy, and the other Lambda suites should not wait behind it.
LAMBDA_LANGGRAPH=lambda_emulator::the_langgraph_python_sdk_drives_the_lambda_functions
cargo test --workspace --no-fail-fast -- --skip "$LAMBDA_LANGGRAPH" || status=1
echo "== the LangGraph API through the Lambda functions"
cargo test -p integration-tests --test integration -- --exact "$LAMBDA_LANGGRAPH" || status=1
for store in sqlite dynamodb; do
  echo "== HTTP suites on the $store store"
  TEST_STORE=$store cargo test -p integration-tests --test integration --no-fail-fast -- "${HTTP_SUITES[@]}" || status=1
done

echo "== the shell blocks of the README and docs/, as a user runs them"
python tests/docs/commands.py "$WORK" || status=1

echo "== schemathesis over /openapi.json"
bash tests/openapi/check.sh "$WORK" || status=1

echo "== scripts/upload-ui.sh against the emulator's S3 and CloudFront"
python tests/ui_upload/check.py "$DYNAMODB_TEST_ENDPOINT" || status=1

echo "== the playground page in headless Chromium"
bash tests/playground/check.sh "$WORK" || status=1

echo "== the LangGraph API through its JS client"
bash tests/langgraph/js/check.sh "$WORK" || status=1

echo "== bench/hot_code's workload, as bench/hot_code/trace.sh drives it"
bash bench/hot_code/check.sh "$WORK" || status=1

if [ "$status" != 0 ]; then
  echo "== what cargo lambda watch logged as errors (for a failure through the functions)"
  grep -E "ERROR|panicked" "$WORK/watch.log" | tail -20 || true
fi
echo "make test: $((SECONDS - started)) s, exit $status"
exit $status
