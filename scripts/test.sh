#!/usr/bin/env bash
# Every test: unit tests, the API over real HTTP, provider wire formats, and the store contract
# suite on every backend (DynamoDB through the moto emulator, started here); then the HTTP suites
# again on each persistent store.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. scripts/python-tools.sh
HTTP_SUITES=(--test api --test isolation --test runs_stream --test walkthrough)

# The DynamoDB emulator, on a free port, for the length of this run.
MOTO_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"${TMPDIR:-/tmp}/opengpts-moto-$MOTO_PORT.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
export DYNAMODB_TEST_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
for _ in $(seq 1 100); do
  curl -s -o /dev/null "$DYNAMODB_TEST_ENDPOINT/moto-api/" && break
  sleep 0.1
done

status=0
cargo test --workspace --no-fail-fast || status=1
for store in sqlite dynamodb; do
  echo "== HTTP suites on the $store store"
  TEST_STORE=$store cargo test -p integration-tests --no-fail-fast "${HTTP_SUITES[@]}" || status=1
done
exit $status
