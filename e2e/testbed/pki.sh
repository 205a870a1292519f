# Certificates and kubeconfigs for the test bed (sourced by up.sh).
# Everything is created once under $PKI_DIR and reused by later runs.
# shellcheck shell=bash

# make_ca: the one CA that signs the apiserver's serving certificate and every client certificate.
make_ca() {
	[ -f "$PKI_DIR/ca.crt" ] && return 0
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
		-keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt" -subj "/CN=nfsp-testbed-ca" 2>/dev/null
}

# make_serving_cert: the apiserver's certificate, valid for loopback and the in-cluster names.
make_serving_cert() {
	[ -f "$PKI_DIR/apiserver.crt" ] && return 0
	local ext="$PKI_DIR/apiserver.ext"
	cat >"$ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,IP:10.0.2.2,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
	openssl req -newkey rsa:2048 -nodes -keyout "$PKI_DIR/apiserver.key" \
		-out "$PKI_DIR/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
	openssl x509 -req -in "$PKI_DIR/apiserver.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI_DIR/apiserver.crt" 2>/dev/null
}

# make_client_cert NAME CN [ORG]: a client certificate; RBAC sees CN as the user, ORG as the group.
make_client_cert() {
	local name="$1" cn="$2" org="${3:-}"
	[ -f "$PKI_DIR/$name.crt" ] && return 0
	local subj="/CN=$cn"
	[ -n "$org" ] && subj="/O=$org/CN=$cn"
	local ext="$PKI_DIR/client.ext"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
	openssl req -newkey rsa:2048 -nodes -keyout "$PKI_DIR/$name.key" \
		-out "$PKI_DIR/$name.csr" -subj "$subj" 2>/dev/null
	openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
}

# make_service_account_keys: the key pair the apiserver signs and verifies ServiceAccount tokens with.
make_service_account_keys() {
	[ -f "$PKI_DIR/sa.key" ] && return 0
	openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
}

# write_kubeconfig NAME: $TESTBED_DIR/NAME.kubeconfig authenticating with the NAME client certificate.
write_kubeconfig() {
	local name="$1"
	local file="$TESTBED_DIR/$name.kubeconfig"
	cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: nfsp-testbed
  cluster:
    server: $APISERVER_URL
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: $name
  user:
    client-certificate: $PKI_DIR/$name.crt
    client-key: $PKI_DIR/$name.key
contexts:
- name: nfsp-testbed
  context:
    cluster: nfsp-testbed
    user: $name
    namespace: default
current-context: nfsp-testbed
EOF
	chmod 600 "$file"
}

make_pki() {
	mkdir -p "$PKI_DIR"
	chmod 700 "$PKI_DIR"
	make_ca
	make_serving_cert
	make_service_account_keys
	make_client_cert admin admin system:masters
	make_client_cert controller-manager system:kube-controller-manager
	make_client_cert scheduler system:kube-scheduler
	# kwok plays every kubelet of the fake nodes; it gets the admin identity (it is not under test).
	local name
	for name in admin controller-manager scheduler; do write_kubeconfig "$name"; done
}
