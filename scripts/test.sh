#!/usr/bin/env bash
# Every test. Starts what the tests need and stops it afterwards:
# - the template linted (cfn-lint, sam validate --lint);
# - unit tests, the API over real HTTP, provider wire formats, the store contract on every
#   backend (DynamoDB through the moto emulator);
# - the HTTP suites again on each persistent store;
# - the Lambda functions behind `cargo lambda watch`, through the Lambda runtime protocol.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. scripts/python-tools.sh
HTTP_SUITES=(--test api --test isolation --test runs_stream --test walkthrough)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  pkill -f "cargo-lambda lambda watch.*$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 "${2:-300}"); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done; echo "$1 did not answer" >&2; return 1; }
status=0

echo "== template.yaml: cfn-lint and sam validate --lint"
cfn-lint template.yaml || status=1
AWS_REGION=us-east-1 SAM_CLI_TELEMETRY=0 sam validate --lint --template-file template.yaml || status=1

# The DynamoDB emulator.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
export DYNAMODB_TEST_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
wait_for "$DYNAMODB_TEST_ENDPOINT/moto-api/"

echo "== all tests (memory store for the HTTP suites)"
cargo build --workspace --quiet
cargo test --workspace --no-fail-fast || status=1
for store in sqlite dynamodb; do
  echo "== HTTP suites on the $store store"
  TEST_STORE=$store cargo test -p integration-tests --no-fail-fast "${HTTP_SUITES[@]}" || status=1
done

echo "== the Lambda functions behind cargo lambda watch"
WATCH_PORT=$(free_port)
STORE=sqlite SQLITE_PATH="$WORK/lambda.sqlite3" OFFLINE_TOKEN_DELAY_MS=30 \
  RUN_WORKER_FUNCTION=run-worker AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$WATCH_PORT" \
  cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" >"$WORK/watch.log" 2>&1 &
PIDS+=($!)
if wait_for "http://127.0.0.1:$WATCH_PORT/ok" 600; then
  LAMBDA_EMULATOR_URL="http://127.0.0.1:$WATCH_PORT" cargo test -p integration-tests --features lambda-emulator --test lambda_emulator || status=1
else
  tail -20 "$WORK/watch.log"
  status=1
fi
exit $status
