#!/usr/bin/env bash
# The whole suite: lint, types, then every test on SQLite and PostgreSQL.
# Extra arguments go to pytest (e.g. scripts/test.sh -k history).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy --strict"
"$VENV/bin/mypy"
echo "== pytest"
exec "$VENV/bin/pytest" -n 2 "$@"
