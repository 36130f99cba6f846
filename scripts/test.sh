#!/usr/bin/env bash
# Every test: unit tests, the API over real HTTP, provider wire formats, store contract suites.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cargo test --workspace --no-fail-fast
