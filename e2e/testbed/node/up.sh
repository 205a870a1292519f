#!/usr/bin/env bash
# Joins one real node to the running test bed (make node-up): a qemu VM with Debian's kernel (its
# NFS client and server), a debootstrap root file system, and kubelet, kube-proxy, containerd, runc,
# the CNI plugins and crictl built from Go modules, and the chart installed on it with helm (class
# nfs-client). Idempotent; a node already Ready is left alone.
#
# Network: qemu's user network only. In the VM 10.0.2.2 is this machine's loopback (apiserver,
# Ganesha, rpcbind); the VM has no default route, so it reaches no other address. ssh to the node
# goes through a port forward on 127.0.0.1 (ssh.sh). Writes E2E_NODE_* to $TESTBED_DIR/env.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/testbed/lib.sh
source "$here/../lib.sh"
# shellcheck source=e2e/testbed/pki.sh
source "$here/../pki.sh"

REPO_ROOT="$(cd "$here/../../.." && pwd)"
NODE_NAME="${NODE_NAME:-nfsp-node}"
NODE_IP=10.0.2.15
HOST_FROM_NODE=10.0.2.2
NODE_SSH_PORT="${NODE_SSH_PORT:-2222}"
NODE_MEMORY="${NODE_MEMORY:-4096}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
SQUASH_EXPORT_UID="${SQUASH_EXPORT_UID:-2000}"
SQUASH_EXPORT_GID="${SQUASH_EXPORT_GID:-2000}"
NODE_DIR="$TESTBED_DIR/node"
KUBECTL="$KUBE_DIR/kubectl"
ADMIN_KUBECONFIG="$TESTBED_DIR/admin.kubeconfig"
IMAGE_PREFIX=nfsp.local
# Linux's own NFS server in the VM: its defaults (secure, root_squash) and the permissive pair.
KNFSD_EXPORTS="/srv/nfs/default *(rw,sync,no_subtree_check)
/srv/nfs/insecure *(rw,sync,no_subtree_check,insecure,no_root_squash)
/srv/nfs/squash *(rw,sync,no_subtree_check,insecure,root_squash)"

kubectl_admin() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

node_ready() {
	[ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# show_tails: what a failed start needs, the console and the node's own logs.
show_tails() { LOG_LINES=40 "$here/logs.sh" >&2; }

# build: every cached part (each script returns at once when its cache is there).
build() {
	"$here/../build.sh"
	"$here/build-rootfs.sh"
	"$here/build-node.sh"
}

# base_image: the root file system with the node's binaries and configuration, as an ext4 image
# (mke2fs -d: no loop mount), cached by everything it is made of.
base_image() {
	local key
	key="$(
		{
			echo "$NODE_ROOTFS_DIR $NODE_BIN_DIR $KUBE_DIR"
			find "$here/guest" -type f -print0 | sort -z | xargs -0 sha256sum
		} | sha256sum | cut -c1-12
	)"
	BASE_IMAGE="$CACHE_DIR/node-image-$key/root.img"
	[ -s "$BASE_IMAGE" ] && return 0
	log "making the node's root image (about 1 min)"
	local dir work
	dir="$(dirname "$BASE_IMAGE")"
	mkdir -p "$dir"
	work="$(mktemp -d "$dir/.build.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: the trap runs after work is out of scope
	trap "rm -rf '$work'" RETURN
	mkdir "$work/root"
	tar -C "$work/root" --numeric-owner -xf "$NODE_ROOTFS_DIR/rootfs.tar"
	cp -a "$here/guest/." "$work/root/"
	install -m 0755 "$KUBE_DIR/kubelet" "$KUBE_DIR/kube-proxy" "$NODE_BIN_DIR/containerd" \
		"$NODE_BIN_DIR/containerd-shim-runc-v2" "$NODE_BIN_DIR/ctr" "$NODE_BIN_DIR/runc" \
		"$NODE_BIN_DIR/crictl" "$work/root/usr/local/bin/"
	mkdir -p "$work/root/opt/cni/bin"
	install -m 0755 "$NODE_BIN_DIR"/cni/* "$work/root/opt/cni/bin/"
	printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 60\n' \
		>"$work/root/etc/crictl.yaml"
	# The guest makes no keys at boot (slow under emulation): its host key is made here.
	rm -f "$work/root/etc/ssh/ssh_host_"*
	ssh-keygen -q -t ed25519 -N '' -f "$work/root/etc/ssh/ssh_host_ed25519_key"
	printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
		>"$work/root/etc/ssh/sshd_config.d/nfsp.conf"
	mke2fs -q -t ext4 -L nfsp-root -E root_owner=0:0 -d "$work/root" "$work/root.img" 8G
	mv "$work/root.img" "$BASE_IMAGE"
}

# images: the OCI layouts the node imports, from this machine's own files (tools/ocibuild) and the
# provisioner's from make image. Written to $NODE_DIR/config/images.
images() {
	local out="$NODE_DIR/config/images" ocibuild="$CACHE_DIR/bin/ocibuild"
	mkdir -p "$out" "$CACHE_DIR/bin"
	(cd "$REPO_ROOT/tools/ocibuild" && go build -o "$ocibuild" .)
	"$ocibuild" files -out "$out/pause.tar" -name "$IMAGE_PREFIX/pause:1" -user 65535:65535 \
		-file "$NODE_BIN_DIR/pause" -entrypoint "$NODE_BIN_DIR/pause" >/dev/null
	local redis_version
	redis_version="$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
	REDIS_IMAGE="$IMAGE_PREFIX/redis:$redis_version"
	"$ocibuild" files -out "$out/redis.tar" -name "$REDIS_IMAGE" -user 999:999 \
		-file /usr/bin/redis-server -file /usr/bin/redis-cli -dir /data -dir /tmp \
		-entrypoint /usr/bin/redis-server >/dev/null
	local busybox_version
	busybox_version="$(dpkg-query -W -f='${Version}' busybox-static | sed 's/^[0-9]*://; s/[-+].*//')"
	SHELL_IMAGE="$IMAGE_PREFIX/busybox:$busybox_version"
	"$ocibuild" files -out "$out/busybox.tar" -name "$SHELL_IMAGE" -file /bin/busybox \
		-link /bin/sh=busybox -dir /tmp -entrypoint /bin/sh >/dev/null
	# The provisioner: the very tarball make image writes (users get it), under its own name.
	local tarball
	# The newest make image wrote.
	tarball="$(find "$REPO_ROOT/bin" -maxdepth 1 -name 'nfs-subdir-provisioner-*.oci.tar' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -n1 | cut -d' ' -f2-)"
	[ -n "$tarball" ] || die "no provisioner image: run make image first"
	cp "$tarball" "$out/provisioner.tar"
	PROVISIONER_IMAGE="$(tar -xOf "$out/provisioner.tar" index.json | jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]')"
	if [ -z "$PROVISIONER_IMAGE" ] || [ "$PROVISIONER_IMAGE" = null ]; then die "$tarball names no image"; fi
	LOCAL_PROVISIONER_IMAGE="$IMAGE_PREFIX/nfs-subdir-provisioner:${PROVISIONER_IMAGE##*:}"
}

# config_disk: this bed's part of the node (its certificates, kubeconfigs, the images), as a
# second, read-only disk.
config_disk() {
	local cfg="$NODE_DIR/config"
	mkdir -p "$cfg"
	make_client_cert node "system:node:$NODE_NAME" system:nodes
	make_client_cert kube-proxy system:kube-proxy
	cp "$PKI_DIR/ca.crt" "$cfg/ca.crt"
	local name
	for name in node kube-proxy; do
		"$KUBECTL" config set-cluster bed --server "https://$HOST_FROM_NODE:$APISERVER_PORT" \
			--certificate-authority "$PKI_DIR/ca.crt" --embed-certs --kubeconfig "$cfg/$name.kubeconfig.tmp" >/dev/null
		"$KUBECTL" config set-credentials "$name" --client-certificate "$PKI_DIR/$name.crt" \
			--client-key "$PKI_DIR/$name.key" --embed-certs --kubeconfig "$cfg/$name.kubeconfig.tmp" >/dev/null
		"$KUBECTL" config set-context bed --cluster bed --user "$name" --kubeconfig "$cfg/$name.kubeconfig.tmp" >/dev/null
		"$KUBECTL" config use-context bed --kubeconfig "$cfg/$name.kubeconfig.tmp" >/dev/null
		mv "$cfg/$name.kubeconfig.tmp" "$cfg/$name.kubeconfig"
	done
	mv "$cfg/node.kubeconfig" "$cfg/kubelet.kubeconfig"
	[ -f "$NODE_DIR/ssh_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$NODE_DIR/ssh_key"
	cp "$NODE_DIR/ssh_key.pub" "$cfg/authorized_keys"
	cat >"$cfg/node.env" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_LABELS=nfsp.dev/real-node=true
NODE_KNFSD_EXPORTS='$KNFSD_EXPORTS'
NODE_KNFSD_SQUASH_OWNER=$SQUASH_EXPORT_UID:$SQUASH_EXPORT_GID
NODE_IMAGE_TAGS='$PROVISIONER_IMAGE=$LOCAL_PROVISIONER_IMAGE'
EOF
	local size_mb
	size_mb=$(($(du -sm "$cfg" | cut -f1) + 32))
	rm -f "$NODE_DIR/config.img"
	mke2fs -q -t ext4 -L nfsp-config -d "$cfg" "$NODE_DIR/config.img" "${size_mb}M"
}

# cluster_objects: what the node needs on the bed: the kubelet's permissions (the bed's authorizer
# is RBAC alone, without the Node authorizer), and the kubernetes Service's endpoint, the
# apiserver as the VM reaches it.
cluster_objects() {
	kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: nfsp-testbed-node
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:$NODE_NAME"}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-testbed
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: nfsp-testbed
addressType: IPv4
endpoints:
  - addresses: ["$HOST_FROM_NODE"]
    conditions: {ready: true}
ports:
  - {name: https, port: $APISERVER_PORT, protocol: TCP}
EOF
}

# accel: KVM when a guest boots with it here (probed once per kernel and cached), else TCG.
accel() {
	local probe
	probe="$CACHE_DIR/node-accel-$(basename "$NODE_ROOTFS_DIR")"
	if [ -n "${NODE_ACCEL:-}" ]; then
		echo "$NODE_ACCEL"
	elif [ -s "$probe" ]; then
		cat "$probe"
	elif [ ! -w /dev/kvm ]; then
		echo tcg
	else
		local out
		out="$(timeout 40 qemu-system-x86_64 -accel kvm -cpu host -m 512 -nographic -no-reboot \
			-kernel "$NODE_ROOTFS_DIR/vmlinuz" -append "console=ttyS0 panic=-1 rdinit=/bin/false" \
			-initrd "$NODE_ROOTFS_DIR/initrd.img" 2>&1 | head -c 200000 || true)"
		if grep -q 'Run /bin/false as init process' <<<"$out"; then echo kvm >"$probe"; else echo tcg >"$probe"; fi
		cat "$probe"
	fi
}

start_vm() {
	local accel_name accel_args
	accel_name="$(accel)"
	if [ "$accel_name" = kvm ]; then
		accel_args=(-accel kvm -cpu host)
	else
		accel_args=(-accel "tcg,thread=multi" -cpu max)
	fi
	rm -f "$NODE_DIR/root.qcow2" "$NODE_DIR/console.log"
	qemu-img create -q -f qcow2 -F raw -b "$BASE_IMAGE" "$NODE_DIR/root.qcow2"
	log "booting the node VM ($accel_name, ${NODE_MEMORY} MiB; console $NODE_DIR/console.log)"
	PROCESS_MATCH=qemu-system-x86_64 start_process node-vm qemu-system-x86_64 \
		"${accel_args[@]}" -machine q35 -smp 2 -m "$NODE_MEMORY" \
		-nographic -no-reboot -monitor none -serial "file:$NODE_DIR/console.log" \
		-kernel "$NODE_ROOTFS_DIR/vmlinuz" -initrd "$NODE_ROOTFS_DIR/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 init=/usr/local/sbin/nfsp-init panic=-1 net.ifnames=0 quiet" \
		-drive "file=$NODE_DIR/root.qcow2,if=virtio,format=qcow2,cache=unsafe" \
		-drive "file=$NODE_DIR/config.img,if=virtio,format=raw,readonly=on" \
		-netdev "user,id=net0,net=10.0.2.0/24,host=$HOST_FROM_NODE,ipv6=off,hostfwd=tcp:127.0.0.1:$NODE_SSH_PORT-$NODE_IP:22" \
		-device virtio-net-pci,netdev=net0
}

# import_new_images: a running node gets the images it lacks, by digest (a provisioner rebuilt
# since it booted keeps its name when the commit did not change); a changed provisioner image
# restarts the release's pod.
import_new_images() {
	local have tarball name digest changed=0
	have="$("$here/ssh.sh" ctr -n k8s.io images ls)"
	for tarball in "$NODE_DIR/config/images/"*.tar; do
		name="$(tar -xOf "$tarball" index.json | jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]')"
		digest="$(tar -xOf "$tarball" index.json | jq -r '.manifests[0].digest')"
		awk -v n="$name" -v d="$digest" '$1 == n && $3 == d { found = 1 } END { exit !found }' <<<"$have" && continue
		log "importing $name ($digest) into the running node"
		"$here/ssh.sh" ctr -n k8s.io images import --local - <"$tarball" >/dev/null
		[ "$name" = "$PROVISIONER_IMAGE" ] && changed=1
	done
	if [ "$changed" = 1 ]; then
		"$here/ssh.sh" ctr -n k8s.io images tag --force "$PROVISIONER_IMAGE" "$LOCAL_PROVISIONER_IMAGE" >/dev/null
		kubectl_admin -n nfsp-node-system rollout restart deployment >/dev/null 2>&1 || true
	fi
}

# install_chart: the chart from charts/, installed with helm as a user installs it, into a namespace
# at the restricted Pod Security level, with the imported image, on this node: class nfs-client on
# the bed's no_root_squash export, for the node suite and for anyone's own StatefulSets.
install_chart() {
	local helm ns=nfsp-node-system export_path
	helm="$("$here/../build-helm.sh")"
	export_path="$(sed -n 's/^E2E_NFS_PATH=//p' "$TESTBED_DIR/env")"
	kubectl_admin create namespace "$ns" --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
	kubectl_admin label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
	log "helm upgrade --install nfsp (class nfs-client) into $ns"
	"$helm" upgrade --install nfsp "$REPO_ROOT/charts/nfs-subdir-provisioner" --namespace "$ns" --kubeconfig "$ADMIN_KUBECONFIG" \
		--set image.repository="${LOCAL_PROVISIONER_IMAGE%:*}" --set image.tag="${LOCAL_PROVISIONER_IMAGE##*:}" --set image.pullPolicy=Never \
		--set nfs.server="$HOST_FROM_NODE" --set nfs.path="$export_path" \
		--set storageClass.name=nfs-client --set storageClass.provisionerName=nfsp.node/chart \
		--set-json 'nfs.mountOptions=["nfsvers=3","noatime","nolock"]' \
		--set-json "nodeSelector={\"kubernetes.io/hostname\":\"$NODE_NAME\"}" \
		--set-json 'tolerations=[{"key":"nfsp.dev/real-node","operator":"Exists","effect":"NoSchedule"}]' \
		--wait --timeout 5m >/dev/null
}

write_env() {
	local file="$TESTBED_DIR/env"
	grep -v '^E2E_NODE_' "$file" >"$file.tmp" || true
	cat >>"$file.tmp" <<EOF
E2E_NODE_NAME=$NODE_NAME
E2E_NODE_NFS_SERVER=$HOST_FROM_NODE
E2E_NODE_SSH=$here/ssh.sh
E2E_NODE_IMAGE_PROVISIONER=$LOCAL_PROVISIONER_IMAGE
E2E_NODE_IMAGE_REDIS=$REDIS_IMAGE
E2E_NODE_IMAGE_SHELL=$SHELL_IMAGE
E2E_NODE_IMAGE_PAUSE=$IMAGE_PREFIX/pause:1
E2E_NODE_KNFSD_SERVER=$NODE_IP
EOF
	mv "$file.tmp" "$file"
}

main() {
	if [ ! -s "$TESTBED_DIR/env" ] || ! is_running kube-apiserver; then die "the test bed is not up: run make testbed-up first"; fi
	openssl x509 -in "$PKI_DIR/apiserver.crt" -noout -text | grep -q "IP Address:$HOST_FROM_NODE" ||
		die "the apiserver's certificate does not name $HOST_FROM_NODE: restart the bed (make testbed-clean testbed-up)"
	mkdir -p "$NODE_DIR"
	local started=$SECONDS
	build
	base_image
	images
	if is_running node-vm && node_ready; then
		log "node $NODE_NAME already Ready"
		import_new_images
		write_env
		install_chart
		return 0
	fi
	stop_process node-vm
	config_disk
	cluster_objects
	start_vm
	# shellcheck disable=SC2154 # rc is the trap's own
	trap 'rc=$?; [ $rc -eq 0 ] || show_tails; exit $rc' EXIT
	WAIT_PROCESS=node-vm wait_until "the node VM's init" 300 grep -q 'nfsp-init: node started' "$NODE_DIR/console.log"
	log "VM booted in $((SECONDS - started)) s"
	WAIT_PROCESS=node-vm wait_until "node $NODE_NAME Ready" 400 node_ready
	write_env
	log "node $NODE_NAME Ready after $((SECONDS - started)) s: $(kubectl_admin get node "$NODE_NAME" \
		-o jsonpath='kubelet {.status.nodeInfo.kubeletVersion}, {.status.nodeInfo.containerRuntimeVersion}, kernel {.status.nodeInfo.kernelVersion}')"
	install_chart
	log "provisioner Running on $NODE_NAME after $((SECONDS - started)) s: class nfs-client is ready for claims"
}

main "$@"
