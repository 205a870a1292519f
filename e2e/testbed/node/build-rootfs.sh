#!/usr/bin/env bash
# Builds the real node's root file system once, cached by its package list: Debian bookworm from
# debootstrap with Debian's kernel, nfs-common, nfs-kernel-server, iptables and openssh, as an ext4
# image made with mke2fs -d (no loop mount), plus the kernel and initramfs qemu boots.
#   $NODE_ROOTFS_DIR/{rootfs.img,vmlinuz,initrd.img}
# The node's own binaries and configuration are not in it: build-node.sh adds them to a copy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/versions.sh
source "$here/../versions.sh"

log() { printf '[node-rootfs %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

dir="$NODE_ROOTFS_DIR"
if [[ -s "$dir/rootfs.tar" && -s "$dir/vmlinuz" && -s "$dir/initrd.img" ]]; then
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-rootfs.sh: debootstrap needs root" >&2; exit 1; }
mkdir -p "$dir"
work="$(mktemp -d "$dir/.build.XXXXXX")"
cleanup() {
	umount -R "$work/root/proc" "$work/root/sys" "$work/root/dev" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
root="$work/root"

log "debootstrap $NODE_DEBIAN_SUITE (minbase; about 3 min)"
debootstrap --variant=minbase --components=main "$NODE_DEBIAN_SUITE" "$root" "$NODE_DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
	{ tail -30 "$work/debootstrap.log" >&2; exit 1; }
# No service the packages ship may start here: this chroot shares the machine's network, where
# the test bed's own rpcbind and NFS server run.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
log "installing ${NODE_PACKAGES[*]} (about 3 min)"
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${NODE_PACKAGES[@]}" >"$work/apt.log" 2>&1 ||
	{ tail -30 "$work/apt.log" >&2; exit 1; }
chroot "$root" apt-get clean
umount -R "$root/proc" "$root/sys" "$root/dev"
rm -f "$root/usr/sbin/policy-rc.d"
kernel="$(find "$root/boot" -maxdepth 1 -name "vmlinuz-*" -printf "%f\n" | sort -V | tail -n1)"
cp "$root/boot/$kernel" "$work/vmlinuz"
cp "$root/boot/initrd.img-${kernel#vmlinuz-}" "$work/initrd.img"
log "kernel ${kernel#vmlinuz-}"
# The tree, as a tarball: build-node.sh unpacks it, adds the node's files and makes the image.
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
mv "$work/vmlinuz" "$work/initrd.img" "$dir/"
mv "$work/rootfs.tar" "$dir/rootfs.tar"
log "root file system ready: $dir"
