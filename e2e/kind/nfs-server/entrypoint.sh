#!/bin/sh
# A portmapper first (Ganesha exits without one; rpcbind -h crashes), then Ganesha in the foreground.
set -eu
mkdir -p /exports/rw /exports/squash /run/rpcbind /var/run/ganesha
chmod 0777 /exports/rw
chown "${SQUASH_UID:-1000}:${SQUASH_GID:-1000}" /exports/squash
# The node may run a portmapper of its own (nfs-common starts one); Ganesha registers with it.
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
	rpcbind -f -w &
	sleep 1
fi
exec ganesha.nfsd -F -f /etc/ganesha/ganesha.conf -L /dev/stdout -N NIV_EVENT
