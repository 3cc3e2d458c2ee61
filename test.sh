#!/usr/bin/env bash
# Second command of README.md: install with the test extras and run the whole suite.
# PostgreSQL runs too when TELEGESTION_TEST_POSTGRES_URL is set (.ci/run sets it).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
