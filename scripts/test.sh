#!/usr/bin/env bash
# Sets up a fresh virtual environment with the runtime, host tools and test tools, then runs the
# whole test suite. This is the README's test command and exactly what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[host,dev]"
# systemd-analyze scores the unit's hardening in tests; install it where we are allowed to.
if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq systemd >/dev/null) || echo "note: could not install systemd; its test will skip"
fi
exec "$VENV/bin/python" -m pytest "$@"
