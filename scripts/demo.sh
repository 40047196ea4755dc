#!/usr/bin/env bash
# The main job: a five-phase workflow killed with SIGKILL mid-run and resumed, on SQLite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$VENV/bin/python" "$ROOT/scripts/demo.py" "$@"
