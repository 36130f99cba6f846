# Sourced: a virtualenv outside the clone with the PyPI tools the tests use (the DynamoDB
# emulator, the Lambda emulator, the CloudFormation linters), installed once and reused.
VENV="${OPENGPTS_VENV:-$HOME/.cache/opengpts-serverless/venv}"
PY_TOOLS=(moto flask flask-cors cargo-lambda cfn-lint aws-sam-cli)
if ! [ -x "$VENV/bin/moto_server" ] || ! [ -x "$VENV/bin/cargo-lambda" ] || ! [ -x "$VENV/bin/sam" ] || ! [ -x "$VENV/bin/cfn-lint" ]; then
  echo "Installing the test tools (${PY_TOOLS[*]}) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
export PATH="$VENV/bin:$PATH"
