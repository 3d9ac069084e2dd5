#!/bin/sh
# Make the Mosquitto password file for a fleet, with mosquitto_passwd.
#
#   gen-passwords.sh DEVICES_FILE OUT_DIR [--collector NAME]
#
# DEVICES_FILE lists device ids, one per line (# comments and blank lines are
# skipped); ids are 1-64 characters of a-z, 0-9, '-' and '_'. OUT_DIR gets:
#   passwd             the hashed password file for the broker (password_file)
#   passwd-collector   the collector's account alone: the collectors' listeners
#   secrets/ID         each account's password in clear text, mode 600: copy it
#                      to the device (mqtt.password_file) and nowhere else
# An account that already has OUT_DIR/secrets/ID keeps its password, so adding
# a device does not change the others'. Re-run it after editing DEVICES_FILE,
# then reload the broker (systemctl reload mosquitto, or kill -HUP).
set -eu

usage() { echo "usage: $0 DEVICES_FILE OUT_DIR [--collector NAME]" >&2; exit 2; }
[ $# -ge 2 ] || usage
devices=$1
out=$2
shift 2
collector=collector
if [ $# -gt 0 ]; then
    [ "$1" = "--collector" ] && [ $# -eq 2 ] || usage
    collector=$2
fi
command -v mosquitto_passwd >/dev/null 2>&1 || { echo "$0: mosquitto_passwd not found: apt-get install -y mosquitto" >&2; exit 1; }
[ -r "$devices" ] || { echo "$0: cannot read $devices" >&2; exit 1; }

umask 077
mkdir -p "$out/secrets"
tmp="$out/passwd.tmp.$$"
trap 'rm -f "$tmp"' EXIT
: > "$tmp"

secret_for() {
    f="$out/secrets/$1"
    if [ ! -s "$f" ]; then
        # 32 random bytes, base64 without the characters shells and URLs trip on
        head -c 32 /dev/urandom | base64 | tr -d '\n/+=' | cut -c1-40 > "$f"
    fi
    cat "$f"
}

add() {
    mosquitto_passwd -b "$tmp" "$1" "$(secret_for "$1")" >/dev/null
}

n=0
seen=" "
for id in $(sed -e 's/#.*//' "$devices"); do
    if ! printf '%s\n' "$id" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,63}$'; then
        echo "$0: bad device id '$id' in $devices: use 1-64 characters of a-z, 0-9, '-' or '_'" >&2
        exit 1
    fi
    case "$id" in edgebench-*)
        echo "$0: bad device id '$id': ids starting with 'edgebench-' are the collectors' and commanders' client ids" >&2
        exit 1;;
    esac
    if [ "$id" = "$collector" ]; then
        echo "$0: '$id' is the collector's account name; give the device another id" >&2
        exit 1
    fi
    case "$seen" in *" $id "*) echo "$0: device id '$id' is listed twice" >&2; exit 1;; esac
    seen="$seen$id "
    add "$id"
    n=$((n + 1))
done
add "$collector"
grep "^$collector:" "$tmp" > "$out/passwd-collector.tmp.$$"
mv "$out/passwd-collector.tmp.$$" "$out/passwd-collector"
mv "$tmp" "$out/passwd"
trap - EXIT
echo "$out/passwd: $n device account(s) and the collector account '$collector'; passwords in $out/secrets/"
