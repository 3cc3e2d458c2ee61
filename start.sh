#!/usr/bin/env bash
# First command of README.md: install, build the demo database (a morning of calls, reconciled),
# start the server, and say where the pages are and how to log in.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv
tg=.venv/bin/telegestion
# The demo never writes into a database holding other data: it says so and the server starts
# on that database as it is. Run again, it only prints a new demo password.
if ! $tg demo; then
  echo
  echo "(The database above was left as it is; 'telegestion demo --database demo.db' builds the"
  echo " demo elsewhere, then start with TELEGESTION_DATABASE_URL=sqlite:///demo.db $0)"
fi
agi_port=${TELEGESTION_AGI_PORT:-4573}
http_port=${TELEGESTION_HTTP_PORT:-8080}
cat <<EOT

Starting the server: pages at http://localhost:${http_port}/ (log in as shown above),
FastAGI on port ${agi_port}; Ctrl-C stops it. In another terminal, place a call as Asterisk
would, from Mme Dubois' landline to the shared toll-free number, keying company 042 and carer
12345:

  .venv/bin/telegestion call --from "01 45 67 89 12" --to "0800 123 456" --keys "042 12345"

then trace it as support would:

  .venv/bin/telegestion trace --caller "01 45 67 89 12" --at "$(TZ=Europe/Paris date "+%Y-%m-%d %H:%M")"

EOT
# A person reads this terminal: plain log lines rather than the JSON meant for log shippers.
export TELEGESTION_LOG_FORMAT=${TELEGESTION_LOG_FORMAT:-text}
exec $tg serve
