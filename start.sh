#!/usr/bin/env bash
# First command of README.md: install, create the SQLite database, load examples/, start the server.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv
tg=.venv/bin/telegestion
$tg db upgrade
for kind in companies numbers clients carers planning punches; do
  $tg import "$kind" "examples/$kind.csv"
done
agi_port=${TELEGESTION_AGI_PORT:-4573}
cat <<EOT

Loaded the example data into ${TELEGESTION_DATABASE_URL:-sqlite:///telegestion.db}.
Starting the server (FastAGI port ${agi_port}; Ctrl-C stops it). In another terminal, place a call
as Asterisk would, from Mme Dubois' landline to the shared toll-free number, keying company 042
and carer 12345:

  .venv/bin/telegestion call --from "01 45 67 89 12" --to "0800 123 456" --keys "042 12345"

Call again for the departure; try a wrong code, or the dedicated number of company 117:

  .venv/bin/telegestion call --from "01 39 52 44 10" --to "0800 117 117" --keys "54321"

EOT
exec $tg serve
