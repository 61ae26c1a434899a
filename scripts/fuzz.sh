#!/usr/bin/env bash
# The fuzz tests with a longer budget than the suite's: new random inputs on every run, 2,000 per
# property unless FIRESIDE_FUZZ_EXAMPLES says otherwise; failures found are kept and tried first
# next time. Usage: bash scripts/fuzz.sh [pytest arguments], e.g. FIRESIDE_FUZZ_EXAMPLES=20000 bash scripts/fuzz.sh -x
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export FIRESIDE_FUZZ=long QT_QPA_PLATFORM=offscreen
exec "$PY" -m pytest -p no:cacheprovider -q --timeout=3600 -o addopts="--strict-markers" \
    --hypothesis-show-statistics tests/fuzz tests/security "$@"
