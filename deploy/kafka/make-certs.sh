#!/bin/sh
# Throwaway TLS material for the SASL_SSL compose overlay (deploy/compose.sasl-ssl.yml): a CA, a
# broker certificate for the host name the broker advertises, and the broker's PKCS12 keystore.
# Idempotent: does nothing when the keystore exists. For a real cluster use your own PKI; the
# workers only need the CA certificate (SLAPROC_KAFKA_SSL_CA_FILE).
#
# Environment:
#   CERTS_DIR          output directory (default /certs)
#   BROKER_HOST        name in the certificate = the advertised host (default kafka)
#   KEYSTORE_PASSWORD  password of kafka.p12 (required); also written to keystore-password, the
#                      credentials file the apache/kafka image reads it from
#   BROKER_UID         owner of keystore-password when run as root (default 1000: the image's appuser)
set -eu
dir=${CERTS_DIR:-/certs}
host=${BROKER_HOST:-kafka}
: "${KEYSTORE_PASSWORD:?set KEYSTORE_PASSWORD}"
mkdir -p "$dir"
cd "$dir"
own() {
  # The broker runs as the image's appuser: it must read the password file (mode 600).
  if [ "$(id -u)" = 0 ]; then chown "${BROKER_UID:-1000}" keystore-password; fi
}
if [ -s kafka.p12 ] && [ -s ca.pem ] && [ -s keystore-password ]; then
  own
  echo "certificates exist in $dir"
  exit 0
fi
printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host" > server.ext
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 825 -subj "/CN=slaproc compose CA"
openssl req -newkey rsa:2048 -nodes -keyout kafka.key -out kafka.csr -subj "/CN=$host"
openssl x509 -req -in kafka.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out kafka.pem -days 825 -extfile server.ext
openssl pkcs12 -export -in kafka.pem -inkey kafka.key -certfile ca.pem -name kafka \
  -out kafka.p12 -passout env:KEYSTORE_PASSWORD
printf '%s' "$KEYSTORE_PASSWORD" > keystore-password
rm -f kafka.csr server.ext ca.srl ca.key   # the CA key is not needed again: a new CA is made when the volume is new
chmod 644 ca.pem kafka.pem kafka.p12
chmod 600 kafka.key keystore-password
own
echo "wrote $dir/ca.pem and the keystore for $host"
