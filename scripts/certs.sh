#!/usr/bin/env bash
# Local certificates for the secured servers (scripts/secured.sh) and their
# clients, made with openssl under .local/certs/ (YADTQ_CERTS_DIR):
#   ca.pem, ca.key          a private certificate authority (the file clients trust)
#   server.pem, server.key  the servers' certificate for 127.0.0.1 and localhost, signed by the CA
#   server.p12              the same key and chain as a PKCS#12 keystore for the Kafka broker
#                           (password: YADTQ_CERTS_P12_PASSWORD, default yadtq-keystore)
#   client.pem, client.key  a client certificate (CN yadtq_cert) for PostgreSQL's `cert` authentication
# Files are kept while they exist and stay valid for another day; `renew`
# makes them again. For local testing only: the CA key sits next to the
# certificates, unencrypted.
# Usage: scripts/certs.sh make|renew|dir
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${YADTQ_CERTS_DIR:-$ROOT/.local/certs}"
P12_PASSWORD="${YADTQ_CERTS_P12_PASSWORD:-yadtq-keystore}"
DAYS=365

log() { echo "[certs] $*" >&2; }

valid() { [[ -f "$1" ]] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

# sign NAME SUBJECT EXTENSIONS: a P-256 key and a certificate signed by the CA.
sign() {
  local name=$1 subject=$2 ext=$3
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$DIR/$name.key"
  openssl req -new -key "$DIR/$name.key" -subj "$subject" -out "$DIR/$name.csr"
  printf '%s\n' "$ext" > "$DIR/$name.ext"
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days "$DAYS" -sha256 -extfile "$DIR/$name.ext" -out "$DIR/$name.pem" 2>/dev/null
  rm -f "$DIR/$name.csr" "$DIR/$name.ext"
  chmod 600 "$DIR/$name.key"
}

make() {
  if ! command -v openssl >/dev/null; then
    log "installing openssl via apt-get"
    local sudo=(); [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  mkdir -p "$DIR"
  if valid "$DIR/ca.pem" && valid "$DIR/server.pem" && valid "$DIR/client.pem" && [[ -f "$DIR/server.p12" ]]; then
    log "certificates in $DIR are valid"
    return 0
  fi
  log "making a CA and certificates in $DIR"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$DIR/ca.key"
  chmod 600 "$DIR/ca.key"
  openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days "$DAYS" -subj "/CN=yadtq local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$DIR/ca.pem"
  sign server "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
  sign client "/CN=yadtq_cert" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  openssl pkcs12 -export -in "$DIR/server.pem" -inkey "$DIR/server.key" -certfile "$DIR/ca.pem" \
    -name server -passout "pass:$P12_PASSWORD" -out "$DIR/server.p12"
  chmod 600 "$DIR/server.p12"
  log "made $DIR/{ca,server,client}.pem (valid $DAYS days)"
}

case "${1:-make}" in
  make) make ;;
  renew) rm -f "$DIR"/*.pem "$DIR"/*.key "$DIR"/*.p12 "$DIR"/*.srl; make ;;
  dir) echo "$DIR" ;;
  *) echo "usage: $0 make|renew|dir" >&2; exit 2 ;;
esac
