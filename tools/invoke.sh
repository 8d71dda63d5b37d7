#!/usr/bin/env bash
# make invoke: one sample alarm through the function on this machine, the way Lambda would run
# it (cargo lambda watch serves the Runtime API; cargo lambda invoke sends the event), about
# an instance of yours (INSTANCE=i-...), always in dry run: it reads EC2 and Auto Scaling and
# calls no mutating API. It does write to the ledger table it is given (AUTOHEAL_TABLE) what
# a dry-run alarm writes there: the incident, its audit record. See the README's
# "Deploy from zero", step 6. AWS is whatever the environment points at.
set -euo pipefail
event=${1:?usage: INSTANCE=i-... AUTOHEAL_TABLE=<table> tools/invoke.sh events/<alarm>.json}
[ -f "$event" ] || { echo "no such event file: $event" >&2; exit 2; }
: "${AUTOHEAL_TABLE:?set AUTOHEAL_TABLE to the ledger table (LedgerTable, an output of the stack, or a table of your own)}"
case "${AUTOHEAL_DRY_RUN:-true}" in
  true) ;;
  *) echo "make invoke runs in dry run only (AUTOHEAL_DRY_RUN=${AUTOHEAL_DRY_RUN}): repairs are the deployed function's" >&2; exit 2 ;;
esac
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [ -z "$region" ]; then
  region=$(python3 -c 'import botocore.session as s; print(s.Session().get_config_variable("region") or "")' 2>/dev/null || true)
fi
here=$(dirname "$0")
body=$(mktemp -t invoke-event.XXXXXX.json)
log=$(mktemp -t invoke.XXXXXX.log)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -f "$body" "$log"
}
trap cleanup EXIT
# Refuses (exit 2) without INSTANCE, without a region, or for anything but an alarm sample.
python3 "$here/invoke_event.py" "$event" "$region" >"$body"
vars="AUTOHEAL_TABLE=$AUTOHEAL_TABLE,AUTOHEAL_DRY_RUN=true,AWS_REGION=$region"
for v in SLACK_WEBHOOK_ENCRYPTED AUTOHEAL_VERIFY_TIMEOUT AUTOHEAL_TERMINATE_REPLACED \
         AUTOHEAL_BACKUP_MAX_AGE AWS_ENDPOINT_URL AWS_PROFILE; do
  [ -n "${!v:-}" ] && vars="$vars,$v=${!v}"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --invoke-port "$port" --env-vars "$vars" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "cargo lambda watch did not start" >&2; exit 1; }
  sleep 0.2
done
echo "make invoke: $event about $INSTANCE in $region, dry run, ledger table $AUTOHEAL_TABLE" >&2
cargo lambda invoke autoheal --invoke-port "$port" --data-file "$body" || { cat "$log" >&2; exit 1; }
echo
