#!/bin/sh
# Make (or update) everything the central stack and the boards need to trust
# each other, for a list of device ids:
#
#   deploy/central/setup.sh DEVICES_FILE BROKER_HOST [--out DIR] [--port 8883]
#
# DEVICES_FILE: one device id per line (# comments allowed). BROKER_HOST: the
# name (or IP address) boards use to reach the broker; it goes into the
# broker's TLS certificate. Writes, under DIR (default deploy/central/secrets,
# mode 700, never commit it):
#   ca/ca.key, ca/ca.crt         the fleet CA (made once, kept)
#   broker/                      passwd, passwd-collector, acl, ca.crt, server.crt, server.key
#                                (mounted into the broker container)
#   collector/                   ca.crt, web-token (mounted into the collector)
#   devices/ID/                  mqtt-password and ca.crt for each board, and
#                                install.txt: the install-agent.sh line to run there
# and deploy/central/.env (database, dashboard and collector passwords; kept on
# later runs). Idempotent: existing passwords, keys and the CA are kept; rerun
# after adding devices, then `docker compose restart broker`.
#
# Passwords are hashed by deploy/mosquitto/gen-passwords.sh with mosquitto_passwd
# (apt-get install -y mosquitto; without it, the edgebench-broker image's copy is
# used through `docker compose run`).
set -eu

PROG=setup.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
DEPLOY=$(cd "$HERE/.." && pwd)

[ $# -ge 2 ] || die "usage: $0 DEVICES_FILE BROKER_HOST [--out DIR] [--port 8883] [--env FILE]"
DEVICES=$1
HOST=$2
shift 2
OUT=$HERE/secrets
ENVFILE=$HERE/.env
PORT=8883
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT=$2; shift 2 ;;
        --env) [ $# -ge 2 ] || die "--env needs a file"; ENVFILE=$2; shift 2 ;;
        --port) [ $# -ge 2 ] || die "--port needs a number"; PORT=$2; shift 2 ;;
        *) die "unknown option '$1'" ;;
    esac
done
[ -r "$DEVICES" ] || die "cannot read the device list $DEVICES"
printf '%s' "$HOST" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$' ||
    die "BROKER_HOST '$HOST': give a host name or an IPv4 address"
case "$PORT" in ''|*[!0-9]*) die "--port '$PORT': give a port number" ;; esac
command -v openssl >/dev/null || die "openssl not found: apt-get install -y openssl"

umask 077
mkdir -p "$OUT/ca" "$OUT/broker" "$OUT/collector" "$OUT/devices"
chmod 700 "$OUT"

# 1. the fleet CA, once
if [ ! -s "$OUT/ca/ca.key" ] || [ ! -s "$OUT/ca/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=edgebench fleet CA" -keyout "$OUT/ca/ca.key" -out "$OUT/ca/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >/dev/null 2>&1 || die "openssl could not make the CA"
    echo "$PROG: made the fleet CA $OUT/ca/ca.crt"
fi

# 2. the broker's certificate: remade when missing or when BROKER_HOST changed
if printf '%s' "$HOST" | grep -Eq '^[0-9]+(\.[0-9]+){3}$'; then
    SAN="IP:$HOST,DNS:broker,DNS:localhost,IP:127.0.0.1"
else
    SAN="DNS:$HOST,DNS:broker,DNS:localhost,IP:127.0.0.1"
fi
if [ ! -s "$OUT/broker/server.crt" ] || [ "$(cat "$OUT/broker/server.san" 2>/dev/null)" != "$SAN" ]; then
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$HOST" \
        -keyout "$OUT/broker/server.key" -out "$OUT/broker/server.csr" >/dev/null 2>&1 ||
        die "openssl could not make the broker's key"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$SAN" >"$OUT/broker/server.ext"
    openssl x509 -req -in "$OUT/broker/server.csr" -CA "$OUT/ca/ca.crt" -CAkey "$OUT/ca/ca.key" \
        -CAcreateserial -days 825 -extfile "$OUT/broker/server.ext" -out "$OUT/broker/server.crt" >/dev/null 2>&1 ||
        die "openssl could not sign the broker's certificate"
    rm -f "$OUT/broker/server.csr" "$OUT/broker/server.ext"
    printf '%s' "$SAN" >"$OUT/broker/server.san"
    echo "$PROG: made the broker certificate for $SAN"
fi
cp "$OUT/ca/ca.crt" "$OUT/broker/ca.crt"
cp "$OUT/ca/ca.crt" "$OUT/collector/ca.crt"
cp "$DEPLOY/mosquitto/acl" "$OUT/broker/acl"

# 3. the accounts: hashed password file plus one clear-text secret per account
if command -v mosquitto_passwd >/dev/null 2>&1; then
    sh "$DEPLOY/mosquitto/gen-passwords.sh" "$DEVICES" "$OUT/auth" >/dev/null ||
        die "gen-passwords.sh failed (its message is above)"
elif command -v docker >/dev/null 2>&1; then
    abs_dev=$(cd "$(dirname "$DEVICES")" && pwd)/$(basename "$DEVICES")
    docker compose -f "$HERE/compose.yaml" --env-file /dev/null run --rm --no-deps -T \
        -v "$abs_dev:/in/devices.txt:ro" -v "$OUT:/out" --entrypoint /usr/local/bin/gen-passwords.sh \
        broker /in/devices.txt /out/auth >/dev/null || die "gen-passwords.sh in the broker image failed"
else
    die "mosquitto_passwd not found: apt-get install -y mosquitto (or install Docker to use the broker image's)"
fi
cp "$OUT/auth/passwd" "$OUT/broker/passwd"
cp "$OUT/auth/passwd-collector" "$OUT/broker/passwd-collector"

# 4. each board's bundle
n=0
for id in $(sed -e 's/#.*//' "$DEVICES"); do
    d=$OUT/devices/$id
    mkdir -p "$d"
    cp "$OUT/auth/secrets/$id" "$d/mqtt-password"
    cp "$OUT/ca/ca.crt" "$d/ca.crt"
    cat >"$d/install.txt" <<EOF
# on $id, with this folder copied to it (mqtt-password is a secret: remove it afterwards)
sudo deploy/install-agent.sh --broker mqtts://$HOST:$PORT --device-id $id --password-file mqtt-password --ca ca.crt
EOF
    n=$((n + 1))
done

# 5. the stack's own passwords (kept across runs)
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
getenv() { if [ -f "$ENVFILE" ]; then sed -n "s/^$1=//p" "$ENVFILE" | tail -n 1; fi; }
POSTGRES_PASSWORD=$(getenv POSTGRES_PASSWORD); POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-$(rand)}
GRAFANA_DB_PASSWORD=$(getenv GRAFANA_DB_PASSWORD); GRAFANA_DB_PASSWORD=${GRAFANA_DB_PASSWORD:-$(rand)}
GRAFANA_ADMIN_PASSWORD=$(getenv GRAFANA_ADMIN_PASSWORD); GRAFANA_ADMIN_PASSWORD=${GRAFANA_ADMIN_PASSWORD:-$(rand)}
WEB_TOKEN=$(getenv WEB_TOKEN); WEB_TOKEN=${WEB_TOKEN:-$(rand)}
BROKER_PORT=$(getenv BROKER_PORT); BROKER_PORT=${BROKER_PORT:-$PORT}
COLLECTOR_MQTT_PASSWORD=$(cat "$OUT/auth/secrets/collector")
tmp=$ENVFILE.tmp.$$
{
    echo "# made by deploy/central/setup.sh; keep it secret (docker compose reads it)"
    echo "BROKER_PORT=$BROKER_PORT"
    echo "POSTGRES_PASSWORD=$POSTGRES_PASSWORD"
    echo "GRAFANA_DB_PASSWORD=$GRAFANA_DB_PASSWORD"
    echo "GRAFANA_ADMIN_PASSWORD=$GRAFANA_ADMIN_PASSWORD"
    echo "WEB_TOKEN=$WEB_TOKEN"
    echo "COLLECTOR_MQTT_PASSWORD=$COLLECTOR_MQTT_PASSWORD"
} >"$tmp"
mv "$tmp" "$ENVFILE"
printf '%s\n' "$WEB_TOKEN" >"$OUT/collector/web-token"
# the containers' users read these through read-only mounts
chmod 0644 "$OUT/collector/web-token" "$OUT/collector/ca.crt"
chmod 0755 "$OUT/collector"

echo "$PROG: $n device(s) and the collector account in $OUT/broker/passwd; per-board bundles in $OUT/devices/"
echo "$PROG: stack settings in $ENVFILE; next: docker compose -f $HERE/compose.yaml up -d"
