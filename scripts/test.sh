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
# Tools some tests talk to for real: systemd-analyze scores the unit's hardening, mosquitto is
# the MQTT broker on loopback, chromium + chromedriver open the web page (tests/test_web_page.py).
# Installed where we may (root with apt); else those tests skip.
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # (under a lock that scripts/check-arm64.sh takes too: .ci/run runs both at once)
  (flock 9 && apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null) 9>/tmp/edgedetect-apt.lock \
    || echo "note: could not install ${missing[*]}; the tests that need them will skip"
fi
# The type hints of the runtime, the host tools, the tests and the benchmarks are checked
# (pyproject.toml [tool.mypy]); a type error fails the run.
"$VENV/bin/python" -m mypy
# Style is checked, not argued: ruff's lint rules and its formatter, 100 columns (pyproject.toml).
"$VENV/bin/python" -m ruff check --quiet .
"$VENV/bin/python" -m ruff format --check --quiet .
# Two worker processes, each test module whole on one of them (its module fixtures, like a
# trained smoke run, are built once); `-n 0` after the command runs in one process. The 15
# slowest tests are listed at the end: CI has a 25-minute budget.
exec "$VENV/bin/python" -m pytest -n 2 --dist loadscope --durations=15 "$@"
