#!/bin/sh
# Fill a first-boot user-data template for one board:
#
#   deploy/cloud-init/make-user-data.sh --board rpi|jetson --device-dir DIR \
#       --broker mqtts://HOST:8883 [--bundle-url URL] > user-data
#
# DIR is a board's folder from deploy/central/setup.sh (devices/ID: mqtt-password,
# ca.crt); its name is the device id. The output holds the board's MQTT password:
# treat it as a secret (the board deletes its copy after enrolling).
set -eu
die() { echo "make-user-data.sh: error: $*" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
BOARD="" DIR="" BROKER="" URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --board) BOARD=${2:-}; shift 2 ;;
        --device-dir) DIR=${2:-}; shift 2 ;;
        --broker) BROKER=${2:-}; shift 2 ;;
        --bundle-url) URL=${2:-}; shift 2 ;;
        *) die "unknown option '$1'" ;;
    esac
done
case "$BOARD" in
    rpi|raspberrypi) T=$HERE/raspberrypi.user-data.yaml ;;
    jetson) T=$HERE/jetson.user-data.yaml ;;
    *) die "--board: rpi or jetson" ;;
esac
[ -d "$DIR" ] || die "--device-dir: give a board's folder from deploy/central/setup.sh (devices/ID)"
[ -s "$DIR/mqtt-password" ] || die "$DIR/mqtt-password is missing"
[ -s "$DIR/ca.crt" ] || die "$DIR/ca.crt is missing"
ID=$(basename "$(cd "$DIR" && pwd)")
printf '%s' "$ID" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,63}$' || die "folder name '$ID' is not a device id"
printf '%s' "$BROKER" | grep -Eq '^mqtts?://[^[:space:]/@"]+(:[0-9]+)?/?$' || die "--broker: use mqtts://HOST:PORT"
case "$URL" in ''|https://*|http://*) ;; *) die "--bundle-url: an http(s) URL" ;; esac
case "$URL" in *[[:space:]\"\'\\]*) die "--bundle-url: no spaces or quotes" ;; esac
PASSWORD=$(head -n 1 "$DIR/mqtt-password")
case "$PASSWORD" in *[!A-Za-z0-9._~-]*) die "$DIR/mqtt-password has characters user-data would need escaped" ;; esac
awk -v id="$ID" -v broker="$BROKER" -v url="$URL" -v pw="$PASSWORD" -v ca="$DIR/ca.crt" '
    /__CA_CERT__/ {
        indent = $0; sub(/__CA_CERT__.*/, "", indent)
        while ((getline line < ca) > 0) print indent line
        next
    }
    { gsub(/__DEVICE_ID__/, id); gsub(/__BROKER__/, broker); gsub(/__BUNDLE_URL__/, url); gsub(/__MQTT_PASSWORD__/, pw); print }
' "$T"
