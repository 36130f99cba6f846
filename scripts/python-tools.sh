# Sourced: a virtualenv outside the clone with the PyPI tools the tests use (the DynamoDB
# emulator, the Lambda emulator, the CloudFormation linters, the OpenAPI fuzzer, the LangGraph
# client, the MCP and A2A SDKs), installed once and reused; a tool added here is installed on
# the next run. The SDKs are held to the major versions the tests are written for.
VENV="${OPENGPTS_VENV:-$HOME/.cache/opengpts-serverless/venv}"
PY_TOOLS=(moto flask flask-cors cargo-lambda cfn-lint aws-sam-cli schemathesis langgraph-sdk "mcp>=2,<3" "a2a-sdk>=1,<2")
PY_COMMANDS=(moto_server cargo-lambda cfn-lint sam schemathesis)
missing=0
for command in "${PY_COMMANDS[@]}"; do
  [ -x "$VENV/bin/$command" ] || missing=1
done
[ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import langgraph_sdk, mcp, a2a.client" 2>/dev/null || missing=1
if [ "$missing" = 1 ]; then
  echo "Installing the test tools (${PY_TOOLS[*]}) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
export PATH="$VENV/bin:$PATH"
