#!/usr/bin/env bash
# A development CA and a server certificate it signs, for TLS_CERT_FILE and
# TLS_KEY_FILE (ForwardAuth over TLS and HTTP/2) and for Traefik's
# forwardAuth.tls.ca. Not for production: use your own PKI there.
#
#   scripts/dev-cert.sh <directory> [dns-name ...]
#
# Writes ca.crt, tls.crt and tls.key into <directory> (created if needed),
# valid for 30 days (DEV_CERT_DAYS) for localhost, 127.0.0.1, ::1 and each
# dns-name (docker-compose uses "bff").
set -euo pipefail

directory="${1:?usage: scripts/dev-cert.sh <directory> [dns-name ...]}"
shift
days="${DEV_CERT_DAYS:-30}"
command -v openssl >/dev/null || { echo "dev-cert.sh: openssl is missing (apt-get install -y openssl)" >&2; exit 1; }

names="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do names="${names},DNS:${name}"; done

mkdir -p "$directory"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${ec[@]}" -days "$days" -subj "/CN=bff-gateway development CA" \
  -keyout "$work/ca.key" -out "$directory/ca.crt" 2>/dev/null
openssl req -new "${ec[@]}" -subj "/CN=${1:-localhost}" -keyout "$directory/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$names" > "$work/server.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$directory/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days "$days" -extfile "$work/server.ext" -out "$directory/tls.crt" 2>/dev/null
chmod 0644 "$directory/ca.crt" "$directory/tls.crt"
chmod 0600 "$directory/tls.key"
echo "dev-cert.sh: wrote $directory/ca.crt, $directory/tls.crt, $directory/tls.key for ${names}"
