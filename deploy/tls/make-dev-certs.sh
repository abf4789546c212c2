#!/bin/sh
# Throwaway TLS material for trying lotline with TLS and mutual TLS: on one
# machine, or with deploy/compose.yaml. For development only: the CA key sits
# unprotected beside the certificates it signs, and anyone holding it can mint
# a client certificate for any org. In production use your own CA (or an ACME
# one for the server names) and keep its key off the servers.
#
# Usage: make-dev-certs.sh OUT_DIR [ORG[:ROLE] ...]
#
# Writes into OUT_DIR (created if missing):
#   ca.crt, ca.key          a development CA (10 years) that signs the rest.
#                           Clients trust ca.crt (lotline --ca, --nats-tls-ca;
#                           the nats CLI --tlsca); servers check client
#                           certificates against it (--client-ca, ca_file).
#   server.crt, server.key  one certificate for lotline's gRPC and for
#                           nats-server (clients and cluster routes), so it
#                           allows both serverAuth and clientAuth. Names:
#                           localhost, 127.0.0.1, nats, lotline-1, lotline-2,
#                           plus EXTRA_SANS if set (for example
#                           EXTRA_SANS=DNS:n1.nats.internal,IP:10.0.0.5).
#   client-ORG-ROLE.crt/.key
#                           a client certificate per ORG (default: the example
#                           org vn-coop-eahleo), subject CN=ORG, OU=ROLE (role
#                           default member). With --auth and --client-ca,
#                           lotline takes CN as the caller's org and OU as its
#                           role.
#
# Idempotent: what exists and is still good is kept, so running it again (with
# more orgs, say) changes nothing else. A certificate is made again when its
# file or key is missing, or when it no longer verifies against ca.crt
# (expired, or the CA was made anew). Delete server.crt to have it made again
# with other names.
#
# Keys are P-256 ECDSA (PKCS#8 PEM, mode 0600), accepted by rustls (lotline)
# and Go (nats-server). Needs only the openssl command-line tool (OpenSSL 1.1.1
# or later, or LibreSSL).
set -eu

usage() {
    echo "usage: $0 OUT_DIR [ORG[:ROLE] ...]" >&2
    exit 2
}

[ "$#" -ge 1 ] || usage
out=$1
shift
[ "$#" -ge 1 ] || set -- vn-coop-eahleo

command -v openssl >/dev/null 2>&1 || {
    echo "$0: the openssl command is needed" >&2
    exit 1
}

# Keys and everything else are created readable by their owner only; the
# certificates are made world-readable below (they are public).
umask 077
mkdir -p "$out"

# Scratch OpenSSL configs, removed however the script ends.
tmp="$out/.make-dev-certs.$$"
trap 'rm -f "$tmp".*' EXIT
trap 'exit 1' HUP INT TERM

# A random positive 128-bit serial: no serial file to keep in step.
serial() {
    echo "0x$(openssl rand -hex 16)"
}

# new_key FILE: a fresh P-256 key.
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

# good CERT KEY: the certificate and its key exist and the certificate
# verifies against the CA now (signature and validity period).
good() {
    [ -s "$1" ] && [ -s "$2" ] &&
        openssl verify -CAfile "$out/ca.crt" "$1" >/dev/null 2>&1
}

# sign NAME SUBJECT EXTENSIONS: key NAME.key (kept if it exists), a CSR, and
# NAME.crt signed by the CA for 825 days with the given v3 extension lines.
sign() {
    name=$1
    subject=$2
    [ -s "$out/$name.key" ] || new_key "$out/$name.key"
    {
        echo "[leaf]"
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
        printf '%s\n' "$3"
    } >"$tmp.ext"
    openssl req -new -key "$out/$name.key" -subj "$subject" -out "$tmp.csr"
    openssl x509 -req -in "$tmp.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
        -set_serial "$(serial)" -days 825 -sha256 \
        -extfile "$tmp.ext" -extensions leaf -out "$out/$name.crt" 2>/dev/null
    chmod 644 "$out/$name.crt"
    echo "made $out/$name.crt ($subject)"
}

# 1. The CA. A CA certificate without its key cannot sign anything new, and a
# new key would not match it: refuse rather than guess.
if [ -s "$out/ca.crt" ] && [ ! -s "$out/ca.key" ]; then
    echo "$0: $out/ca.crt exists without ca.key: remove ca.crt to start a new CA" >&2
    exit 1
fi
if [ ! -s "$out/ca.crt" ] || ! openssl x509 -in "$out/ca.crt" -noout -checkend 86400 >/dev/null 2>&1; then
    new_key "$out/ca.key"
    cat >"$tmp.ca" <<'CONF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = lotline development
CN = lotline dev CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CONF
    openssl req -x509 -new -key "$out/ca.key" -config "$tmp.ca" -extensions ca \
        -set_serial "$(serial)" -days 3650 -sha256 -out "$out/ca.crt"
    chmod 644 "$out/ca.crt"
    echo "made $out/ca.crt (a new CA: certificates it did not sign are made again)"
fi

# 2. The server certificate (lotline and nats-server). clientAuth too: a
# nats-server presents it when it dials a cluster route.
sans="DNS:localhost, IP:127.0.0.1, DNS:nats, DNS:lotline-1, DNS:lotline-2"
[ -z "${EXTRA_SANS:-}" ] || sans="$sans, $EXTRA_SANS"
if ! good "$out/server.crt" "$out/server.key"; then
    sign server "/O=lotline development/CN=lotline dev server" \
        "extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $sans"
fi

# 3. One client certificate per ORG[:ROLE]. The org and role must be subject
# tokens (lotline uses the org in NATS subjects): letters, digits, '-', '_'.
for spec in "$@"; do
    org=${spec%%:*}
    role=member
    [ "$org" = "$spec" ] || role=${spec#*:}
    for token in "$org" "$role"; do
        case $token in
        '' | *[!A-Za-z0-9_-]*)
            echo "$0: '$spec': org and role take letters, digits, '-' and '_' only" >&2
            exit 2
            ;;
        esac
    done
    name="client-$org-$role"
    if ! good "$out/$name.crt" "$out/$name.key"; then
        sign "$name" "/OU=$role/CN=$org" "extendedKeyUsage = clientAuth"
    fi
done

# What is there now. A client certificate of an org not named this time is
# left alone, and flagged if it does not verify (the CA was made anew): name
# its org again, or delete it.
echo "certificates in $out:"
for crt in "$out"/*.crt; do
    note=$(openssl x509 -in "$crt" -noout -subject -enddate | tr '\n' ' ')
    openssl verify -CAfile "$out/ca.crt" "$crt" >/dev/null 2>&1 ||
        note="$note(DOES NOT VERIFY against ca.crt)"
    printf '  %s: %s\n' "${crt##*/}" "$note"
done
