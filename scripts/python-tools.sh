# Sourced: a virtualenv outside the clone with the PyPI tools the tests use, installed once and
# reused. Puts its bin/ first on PATH.
VENV="${OPENGPTS_VENV:-$HOME/.cache/opengpts-serverless/venv}"
PY_TOOLS=(moto flask flask-cors)
if [ ! -x "$VENV/bin/moto_server" ]; then
  echo "Installing the test tools (${PY_TOOLS[*]}) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
export PATH="$VENV/bin:$PATH"
