#!/usr/bin/env bash
# Measures how a new node is made, on one machine: a node fed N harvests over NATS, then
# `lotline backup` of it, `lotline restore` into a new data dir and that node catching up, and
# a node replaying the whole stream from an empty data dir. Prints each time and each node's
# size and root (they must agree). Everything on 127.0.0.1, in a temp dir removed at the end.
# Usage: scripts/restore-vs-replay.sh [N=100000] [LOTLINE=target/release/lotline]
set -euo pipefail
n=${1:-100000}
lotline=$(realpath "${2:-target/release/lotline}")
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nats_port=$(port)
nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$work/js" >nats.log 2>&1 &
pids+=($!)
url=nats://127.0.0.1:$nats_port
python3 - "$n" <<'PY'
import json, sys
n, t = int(sys.argv[1]), "2026-03-01T10:00:00Z"
with open("events.jsonl", "w") as f:
    for c in range(20):
        f.write(json.dumps({"eventId": f"r{c}", "eventTime": t, "org": f"coop{c}", "registerOrg": {"name": f"Coop {c}", "role": "ORG_ROLE_COOPERATIVE", "country": "CI"}}) + "\n")
    for i in range(n):
        f.write(json.dumps({"eventId": f"h{i}", "eventTime": t, "org": f"coop{i % 20}", "chain": "cocoa", "harvest": {"lot": f"LOT-{i}", "plot": f"plot-{i % 500}", "product": "wet cocoa beans", "quantity": {"amount": "10", "unit": "kg"}}}) + "\n")
PY
total=$((n + 20))
size() { "$lotline" checkpoint --server "http://127.0.0.1:$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree_size"])' 2>/dev/null || echo 0; }
wait_size() { while [ "$(size "$1")" != "$total" ]; do sleep 0.2; done; }
node() { # id port
    "$lotline" serve --data-dir "$1" --listen "127.0.0.1:$2" --nats-url "$url" --node-id "$1" >"$1.log" 2>&1 &
    pids+=($!)
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$1" "$(now)"; }
pa=$(port); pb=$(port); pc=$(port)
node a "$pa"
sleep 2
t=$(now); "$lotline" publish events.jsonl --nats-url "$url" | tail -1; wait_size "$pa"
echo "node a: $total events published and applied in $(since "$t")"
t=$(now); "$lotline" backup --server "http://127.0.0.1:$pa" --out a.backup >/dev/null
echo "backup: $(since "$t") ($(stat -c %s a.backup) bytes)"
t=$(now); "$lotline" restore a.backup --data-dir b >/dev/null
echo "restore: $(since "$t")"
t=$(now); node b "$pb"; wait_size "$pb"
echo "restored node started and caught up: $(since "$t")"
t=$(now); node c "$pc"; wait_size "$pc"
echo "node on an empty data dir, whole stream replayed: $(since "$t")"
for p in "$pa" "$pb" "$pc"; do
    "$lotline" checkpoint --server "http://127.0.0.1:$p" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("size", d["tree_size"], "root", d["root_hash"])'
done
