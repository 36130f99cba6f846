#!/usr/bin/env bash
# The LangGraph API through its JS client (@langchain/langgraph-sdk from npm, installed once
# outside the clone, beside the playground's playwright-core), under node's test runner, and
# React's useStream in headless Chromium.
# Called by scripts/test.sh with a work folder.
set -euo pipefail
WORK=$1
HERE="$(dirname "${BASH_SOURCE[0]}")"
NODE_DIR="${OPENGPTS_NODE_DIR:-$HOME/.cache/opengpts-serverless/node}"
# The SDK; React, @langchain/react (useStream on the event protocol, with the @langchain/core it
# needs) and esbuild for the useStream pages (Chromium and playwright-core come with the
# playground's check, which runs before this one).
PACKAGES=("@langchain/langgraph-sdk@1.15.0" "@langchain/react@1.1.0" "@langchain/core@1.4.0" "react@19.1.0"
  "react-dom@19.1.0" "esbuild@0.25.0")
for package in "${PACKAGES[@]}"; do
  name=${package%@*}
  if ! grep -qs "\"version\": \"${package##*@}\"" "$NODE_DIR/node_modules/$name/package.json"; then
    echo "Installing ${PACKAGES[*]} into $NODE_DIR"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "${PACKAGES[@]}"
    break
  fi
done
for app in usestream usestream-v1; do
  NODE_PATH="$NODE_DIR/node_modules" "$NODE_DIR/node_modules/.bin/esbuild" "$HERE/$app-app.jsx" --bundle \
    --format=iife --jsx=automatic --minify --log-level=warning --outfile="$WORK/$app.js"
done
. "$HERE/../../start-api.sh"
# Tokens 20 ms apart: the page sees an answer grow.
start_api "$WORK/langgraph-js-server.log" STORE=memory OFFLINE_TOKEN_DELAY_MS=20
# The event protocol's WebSocket transport needs a global WebSocket: node 22 has one, node 20 behind a flag.
NODE_FLAGS=()
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || NODE_FLAGS+=(--experimental-websocket)
BASE_URL="$BASE" USESTREAM_BUNDLE="$WORK/usestream.js" USESTREAM_V1_BUNDLE="$WORK/usestream-v1.js" CHROMIUM="$(command -v chromium || true)" \
  NODE_PATH="$NODE_DIR/node_modules" node "${NODE_FLAGS[@]}" --test "$HERE/"
