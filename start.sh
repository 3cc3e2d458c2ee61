#!/usr/bin/env bash
# First command of README.md: install, create the SQLite database, load examples/.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv
tg=.venv/bin/telegestion
$tg db upgrade
for kind in companies numbers clients carers planning punches; do
  $tg import "$kind" "examples/$kind.csv"
done
echo
echo "Loaded the example data into ${TELEGESTION_DATABASE_URL:-sqlite:///telegestion.db}."
echo "Try: .venv/bin/telegestion --help"
