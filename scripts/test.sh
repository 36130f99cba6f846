#!/usr/bin/env bash
# Every test: unit tests, the API over real HTTP, provider wire formats, and the store contract
# suite; then the HTTP suites again on each persistent store backend.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
HTTP_SUITES=(--test api --test isolation --test runs_stream --test walkthrough)

cargo test --workspace --no-fail-fast
echo "== HTTP suites on the sqlite store"
TEST_STORE=sqlite cargo test -p integration-tests --no-fail-fast "${HTTP_SUITES[@]}"
