#!/usr/bin/env bash
# Smoke test of the standalone `netcode` binary: build it with
# `deno task compile`, run `netcode --help`, then a short server + client
# exchange on loopback. Every step is bounded with `timeout`.
#
# `deno compile` needs its runtime, denort, which it downloads from
# dl.deno.land unless DENORT_BIN names a local copy. Where that download is
# impossible (no network but the package registries), the script says so
# loudly and smoke-tests the same program through `deno run cli/main.ts` instead;
# set NETCODE_SMOKE_REQUIRE_BINARY=1 to make that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "cli-smoke: $*"; }

netcode=(dist/netcode)
compile_log=$(mktemp)
server_log=$(mktemp)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
  fi
  rm -f "$compile_log" "$server_log"
}
trap cleanup EXIT

log "deno task compile"
if timeout 300 deno task compile >"$compile_log" 2>&1; then
  tail -n 3 "$compile_log"
else
  cat "$compile_log"
  if grep -q "denort" "$compile_log" &&
    [ "${NETCODE_SMOKE_REQUIRE_BINARY:-}" != "1" ]; then
    log "SKIPPED the compiled binary: deno compile could not get its runtime"
    log "(denort) from dl.deno.land; point DENORT_BIN at a local denort to build it."
    log "Smoke-testing the same program with 'deno run cli/main.ts' instead."
    netcode=(deno run -A --unstable-net cli/main.ts)
  else
    log "FAILED: deno task compile"
    exit 1
  fi
fi

log "${netcode[*]} --help"
timeout 30 "${netcode[@]}" --help >/dev/null

# A free UDP port on loopback, from the system.
port=$(timeout 30 deno eval --unstable-net \
  'const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }); console.log((s.addr as Deno.NetAddr).port); s.close();')
log "server on 127.0.0.1:$port"
timeout 30 "${netcode[@]}" server --address "127.0.0.1:$port" --duration 8 \
  >"$server_log" 2>&1 &
server_pid=$!

# Wait until it listens (the first line it prints).
for _ in $(seq 1 100); do
  grep -q "^listening on" "$server_log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "^listening on" "$server_log"; then
  cat "$server_log"
  log "FAILED: the server did not start"
  exit 1
fi

log "client --server 127.0.0.1:$port --packets 50"
client_status=0
timeout 30 "${netcode[@]}" client --server "127.0.0.1:$port" --packets 50 ||
  client_status=$?

server_status=0
wait "$server_pid" || server_status=$?
server_pid=
cat "$server_log"

if [ "$client_status" -ne 0 ]; then
  log "FAILED: the client exited with $client_status"
  exit 1
fi
if [ "$server_status" -ne 0 ]; then
  log "FAILED: the server exited with $server_status"
  exit 1
fi
log "ok"
