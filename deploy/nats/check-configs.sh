#!/bin/sh
# Checks nats-server.conf and cluster/n*.conf with `nats-server -t`, which
# parses a configuration and loads its certificate files. The files name
# /etc/nats/tls/... and /data/jetstream, so each is checked as a copy whose
# paths point at throwaway certificates (made by ../tls/make-dev-certs.sh) in
# a temporary directory, removed afterwards. Needs nats-server and openssl.
# Usage: deploy/nats/check-configs.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

sh "$here/../tls/make-dev-certs.sh" "$tmp/tls" >/dev/null
mkdir -p "$tmp/conf/cluster"
rewrite() {
    sed -e "s|/etc/nats/tls/|$tmp/tls/|g" -e "s|/data/jetstream|$tmp/js|g" "$1" >"$2"
}
rewrite "$here/nats-server.conf" "$tmp/conf/nats-server.conf"
for f in "$here"/cluster/n*.conf; do
    rewrite "$f" "$tmp/conf/cluster/${f##*/}"
done

status=0
for f in "$tmp/conf/nats-server.conf" "$tmp"/conf/cluster/n*.conf; do
    name=${f#"$tmp/conf/"}
    if out=$(nats-server -c "$f" -t 2>&1); then
        echo "ok    $name"
    else
        echo "FAIL  $name: $out"
        status=1
    fi
done
exit $status
