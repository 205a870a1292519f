#!/bin/sh
# rpcbind first (Ganesha exits without it; -h crashes it), then Ganesha in the foreground.
set -eu
mkdir -p /exports/rw /exports/squash /run/rpcbind /var/run/ganesha
chmod 0777 /exports/rw
chown "${SQUASH_UID:-1000}:${SQUASH_GID:-1000}" /exports/squash
rpcbind -f -w &
sleep 1
exec ganesha.nfsd -F -f /etc/ganesha/ganesha.conf -L /dev/stdout -N NIV_EVENT
