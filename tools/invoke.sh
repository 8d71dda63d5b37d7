#!/usr/bin/env bash
# make invoke: one event through the function on this machine, the way Lambda would run it
# (cargo lambda watch serves the Runtime API; cargo lambda invoke sends the event).
# AWS is whatever the environment points at; dry run unless AUTOHEAL_DRY_RUN=false.
set -euo pipefail
event=${1:?usage: tools/invoke.sh events/<file>.json}
[ -f "$event" ] || { echo "no such event file: $event" >&2; exit 2; }
: "${AUTOHEAL_TABLE:?set AUTOHEAL_TABLE to the ledger table (LedgerTable, an output of the stack)}"
vars="AUTOHEAL_TABLE=$AUTOHEAL_TABLE,AUTOHEAL_DRY_RUN=${AUTOHEAL_DRY_RUN:-true}"
for v in SLACK_WEBHOOK_ENCRYPTED AUTOHEAL_VERIFY_TIMEOUT AUTOHEAL_TERMINATE_REPLACED \
         AUTOHEAL_BACKUP_MAX_AGE AWS_ENDPOINT_URL AWS_REGION AWS_PROFILE; do
  [ -n "${!v:-}" ] && vars="$vars,$v=${!v}"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t invoke.XXXXXX.log)
cargo lambda watch --invoke-port "$port" --env-vars "$vars" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "cargo lambda watch did not start" >&2; exit 1; }
  sleep 0.2
done
cargo lambda invoke autoheal --invoke-port "$port" --data-file "$event" || { cat "$log" >&2; exit 1; }
echo
