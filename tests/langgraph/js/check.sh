#!/usr/bin/env bash
# The LangGraph API through its JS client (@langchain/langgraph-sdk from npm, installed once
# outside the clone, beside the playground's playwright-core), under node's test runner.
# Called by scripts/test.sh with a work folder.
set -euo pipefail
WORK=$1
HERE="$(dirname "${BASH_SOURCE[0]}")"
SDK_VERSION=1.15.0
NODE_DIR="${OPENGPTS_NODE_DIR:-$HOME/.cache/opengpts-serverless/node}"
if ! [ -f "$NODE_DIR/node_modules/@langchain/langgraph-sdk/package.json" ] ||
  ! grep -q "\"version\": \"$SDK_VERSION\"" "$NODE_DIR/node_modules/@langchain/langgraph-sdk/package.json"; then
  echo "Installing @langchain/langgraph-sdk $SDK_VERSION into $NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "@langchain/langgraph-sdk@$SDK_VERSION"
fi
. "$HERE/../../start-api.sh"
start_api "$WORK/langgraph-js-server.log" STORE=memory OFFLINE_TOKEN_DELAY_MS=5
BASE_URL="$BASE" NODE_PATH="$NODE_DIR/node_modules" node --test "$HERE/"
