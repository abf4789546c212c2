#!/bin/sh
# Checks the Kubernetes manifests offline:
#  - against the API schemas, strictly (unknown fields are errors), with
#    kubernetes-validate from PyPI in a virtualenv under target/ (made on first
#    use);
#  - the NATS configuration in nats.yaml's ConfigMap with `nats-server -t`,
#    its certificate paths pointed at throwaway certificates.
# Needs python3 with venv, nats-server and openssl. Usage: deploy/k8s/validate.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../target/k8s-validate"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate>=1.31'
fi
"$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version 1.31.0 \
    "$here/namespace.yaml" "$here/nats.yaml" "$here/lotline.yaml"
echo "ok    Kubernetes manifests (schemas, strict)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$here/../tls/make-dev-certs.sh" "$tmp/tls" >/dev/null
python3 - "$here/nats.yaml" "$tmp" <<'PY'
import sys
manifest, tmp = sys.argv[1], sys.argv[2]
text = open(manifest).read()
conf = text.split("  nats.conf: |\n", 1)[1].split("\n---", 1)[0]
conf = "\n".join(line[4:] for line in conf.splitlines())
for name, dev in [("tls.crt", "server.crt"), ("tls.key", "server.key"), ("ca.crt", "ca.crt")]:
    conf = conf.replace("/etc/nats/tls/" + name, tmp + "/tls/" + dev)
conf = conf.replace("/data/jetstream", tmp + "/js")
open(tmp + "/nats.conf", "w").write(conf)
PY
out=$(POD_NAME=nats-0 NODE_PASSWORD=check nats-server -c "$tmp/nats.conf" -t 2>&1) || { echo "$out" >&2; exit 1; }
echo "ok    nats.yaml's nats.conf (nats-server -t)"
