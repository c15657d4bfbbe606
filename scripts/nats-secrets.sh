#!/usr/bin/env bash
# Makes the secrets a locked-down NATS needs (docs/deploy.md, "Security"), with openssl only:
#
#   ca.crt, ca.key            a private CA (keep ca.key offline; it signs the server certificate)
#   tls.crt, tls.key          the NATS servers' certificate, signed by that CA, valid for client
#                             connections and for the cluster routes (server and client use):
#                             nats, nats.<ns>[.svc[.cluster.local]], *.nats-headless[...],
#                             localhost, 127.0.0.1
#   ingress-password, worker-password, admin-password
#                             the NATS users' passwords: a letter, then hex (NATS parses a value
#                             it reads from the environment like a configuration value, so only
#                             letters and digits are safe)
#
# Usage: scripts/nats-secrets.sh DIR [NAMESPACE]
#   DIR must not hold any of these files yet (nothing is overwritten). NAMESPACE (default
#   `yourlogic`) goes into the certificate's names. The kubectl commands that turn the files
#   into the Secrets of deploy/k8s/overlays/production are printed at the end; for the compose
#   stack, use DIR=deploy/compose/tls (git-ignored).
#
# Settings: NATS_CA_DAYS (3650), NATS_CERT_DAYS (825).
set -euo pipefail

die() { echo "nats-secrets: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: scripts/nats-secrets.sh DIR [NAMESPACE]"
DIR="$1"
NS="${2:-yourlogic}"
CA_DAYS="${NATS_CA_DAYS:-3650}"
CERT_DAYS="${NATS_CERT_DAYS:-825}"
command -v openssl >/dev/null || die "openssl is required"
[[ "$NS" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "NAMESPACE '$NS' is not a Kubernetes namespace name"

FILES=(ca.crt ca.key tls.crt tls.key ingress-password worker-password admin-password)
mkdir -p "$DIR"
for file in "${FILES[@]}"; do
    [ ! -e "$DIR/$file" ] || die "$DIR/$file exists; remove it (or pick another DIR) first"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nats-secrets.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
umask 077

# ---- CA -----------------------------------------------------------------------------------------
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
    -days "$CA_DAYS" -subj "/CN=yourlogic NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null

# ---- server certificate (client connections and cluster routes) ---------------------------------
SANS="DNS:nats,DNS:nats.$NS,DNS:nats.$NS.svc,DNS:nats.$NS.svc.cluster.local"
SANS="$SANS,DNS:*.nats-headless,DNS:*.nats-headless.$NS,DNS:*.nats-headless.$NS.svc"
SANS="$SANS,DNS:*.nats-headless.$NS.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
cat >"$WORK/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$SANS
EOF
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
    -subj "/CN=nats.$NS.svc" -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days "$CERT_DAYS" -sha256 -extfile "$WORK/server.ext" \
    -out "$WORK/tls.crt" 2>/dev/null
openssl verify -CAfile "$WORK/ca.crt" "$WORK/tls.crt" >/dev/null || die "the new certificate does not verify"

# ---- passwords ----------------------------------------------------------------------------------
for user in ingress worker admin; do
    printf 'p%s' "$(openssl rand -hex 24)" >"$WORK/$user-password"
done

for file in "${FILES[@]}"; do
    mv "$WORK/$file" "$DIR/$file"
done
# Certificates are public; containers running as another user must read the CA and the
# certificate (compose mounts these files as they are).
chmod 0644 "$DIR/ca.crt" "$DIR/tls.crt"

cat <<EOF
nats-secrets: wrote ${FILES[*]} to $DIR
Kubernetes (deploy/k8s/overlays/production), namespace $NS:
  kubectl -n $NS create secret generic yourlogic-nats-tls \\
    --from-file=tls.crt=$DIR/tls.crt --from-file=tls.key=$DIR/tls.key --from-file=ca.crt=$DIR/ca.crt
  kubectl -n $NS create secret generic yourlogic-nats-ca --from-file=ca.crt=$DIR/ca.crt
  kubectl -n $NS create secret generic yourlogic-nats-ingress --from-file=password=$DIR/ingress-password
  kubectl -n $NS create secret generic yourlogic-nats-worker --from-file=password=$DIR/worker-password
  kubectl -n $NS create secret generic yourlogic-nats-admin --from-file=password=$DIR/admin-password
Keep ca.key out of the cluster (it is only needed to sign the next server certificate).
EOF
