#!/bin/sh
# The broker container's entrypoint: install the secrets mounted at
# /run/edgebench (passwd, passwd-collector, acl, ca.crt, server.crt, server.key, from setup.sh)
# where edgebench.conf expects them, readable by the mosquitto user only, then
# run mosquitto in the foreground. `docker compose restart broker` after
# setup.sh added devices picks up the new password file.
set -eu
src=/run/edgebench
dst=/etc/mosquitto/edgebench
for f in passwd passwd-collector acl ca.crt server.crt server.key; do
    [ -s "$src/$f" ] || { echo "broker: $src/$f is missing: run deploy/central/setup.sh first" >&2; exit 1; }
done
install -d -o mosquitto -g mosquitto -m 0750 "$dst"
for f in passwd passwd-collector acl ca.crt server.crt server.key; do
    install -o mosquitto -g mosquitto -m 0600 "$src/$f" "$dst/$f"
done
install -d -o mosquitto -g mosquitto -m 0750 /run/mosquitto /var/lib/mosquitto
exec mosquitto -c /etc/mosquitto/mosquitto.conf
