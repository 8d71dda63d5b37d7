#!/usr/bin/env bash
# Runs a command with a fresh moto server on a free loopback port, exported to it as
# AUTOHEAL_TEST_MOTO; stops the server afterwards whatever happens.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
moto=("$here/.venv/bin/python" "$here/tools/moto_server.py")
port=$("$here/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
"${moto[@]}" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "moto_server did not start" >&2; exit 1; }
  sleep 0.1
done
export AUTOHEAL_TEST_MOTO="http://127.0.0.1:$port"
"$@"
