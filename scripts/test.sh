#!/usr/bin/env bash
# Install Fireside with its test tools into .venv, then run the whole test suite, lint and type checks.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh tests/unit -x
set -euo pipefail
source "$(dirname "$0")/setup.sh"
fireside_setup test
"$VENV/bin/ruff" check app tests
"$VENV/bin/mypy"
set +e
QT_QPA_PLATFORM=offscreen "$PY" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that proves nothing, so it counts as a failure." >&2
    exit 1
fi
exit "$status"
