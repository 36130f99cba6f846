#!/usr/bin/env bash
# The playground page in headless Chromium (playground.test.cjs, node's test runner). Installs
# what it needs once: Debian's chromium, and playwright-core from npm outside the clone.
# Called by scripts/test.sh with a work folder.
set -euo pipefail
WORK=$1
HERE="$(dirname "${BASH_SOURCE[0]}")"
PLAYWRIGHT_VERSION=1.65.1
NODE_DIR="${OPENGPTS_NODE_DIR:-$HOME/.cache/opengpts-serverless/node}"
# Only what is missing: a machine whose node comes with its own npm cannot take Debian's npm.
MISSING=()
command -v chromium >/dev/null 2>&1 || MISSING+=(chromium)
command -v npm >/dev/null 2>&1 || MISSING+=(nodejs npm)
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "Installing ${MISSING[*]} (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${MISSING[@]}" >/dev/null
fi
if ! [ -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
  ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$NODE_DIR/node_modules/playwright-core/package.json"; then
  echo "Installing playwright-core $PLAYWRIGHT_VERSION into $NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION"
fi
. "$HERE/../start-api.sh"
# The MCP server an agent made in the page takes its tools from, on a port of its own.
python "$HERE/../mcp/tool_server.py" >"$WORK/playground-mcp.port" 2>"$WORK/playground-mcp.log" &
MCP_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/playground-mcp.port" && break; sleep 0.1; done
MCP_URL="http://127.0.0.1:$(awk '{print $3}' "$WORK/playground-mcp.port")/mcp"
# Pauses between the offline model's tokens, so the page can be seen streaming; a small limit on
# /ingest, so the page's way for large files is taken too; loopback allowed for the MCP server.
start_api "$WORK/playground-server.log" STORE=memory OFFLINE_TOKEN_DELAY_MS=50 MAX_INGEST_BYTES=65536 \
  TOOL_URL_ALLOWLIST=127.0.0.1
trap 'kill $API_PID $MCP_PID 2>/dev/null || true' EXIT
BASE_URL="$BASE" MCP_URL="$MCP_URL" CHROMIUM="$(command -v chromium)" NODE_PATH="$NODE_DIR/node_modules" node --test "$HERE/"
