#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq filters are single-quoted on purpose
# Chart and deploy/ checks against a running cluster (the local test bed, or any cluster):
#   - helm lint
#   - helm template with the default values (only nfs.server and nfs.path set, as with
#     nfs-subdir-external-provisioner's chart) and with every value set in values/*.yaml, each
#     checked for what that set must produce
#   - every rendered object, and `kubectl apply -k deploy/`, accepted by the real apiserver
#     (server-side dry run, strict field validation: an unknown or misspelt field fails)
#   - the chart's RBAC rules identical to deploy/rbac.yaml, no wildcard anywhere
#   - values.schema.json (and the chart's own checks) refusing bad values, each case separately
#
# Needs: KUBECONFIG of a cluster (else $TESTBED_DIR/env of the test bed is sourced), jq and yq
# (Debian packages), helm (built and cached by e2e/testbed/build-helm.sh), kubectl (the test
# bed's cached one, else the one on PATH).
# Creates for real only the namespace nfsp-chart-check and, when the cluster has no
# ServiceMonitor CRD, a stub of it (values/../servicemonitor-crd.yaml); removes both at the end.
# Ends with "chart-check: N passed, N failed"; exits non-zero if any case failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chart="$root/charts/nfs-subdir-provisioner"
# shellcheck source=e2e/testbed/versions.sh
source "$root/e2e/testbed/versions.sh"
ns=nfsp-chart-check           # Pod Security "restricted" (warn): the secure defaults must pass it
ns_baseline=nfsp-chart-check-baseline # "baseline": the mounted backend running as root must pass it
# Server and export used for rendering; nothing connects to them (dry runs only).
server=192.0.2.1
export_path=/srv/nfs

die() { echo "chart-check: $*" >&2; exit 2; }

if [[ -z "${KUBECONFIG:-}" && -f "$TESTBED_DIR/env" ]]; then
	set -a
	# shellcheck disable=SC1091
	source "$TESTBED_DIR/env"
	set +a
fi
[[ -n "${KUBECONFIG:-}" ]] || die "KUBECONFIG is not set and $TESTBED_DIR/env does not exist (make testbed-up)"

kubectl=""
for k in "$CACHE_DIR/kubernetes-$KUBE_VERSION/kubectl" "$CACHE_DIR/kube-$KUBE_VERSION/kubectl"; do
	[[ -x "$k" ]] && { kubectl="$k"; break; }
done
[[ -n "$kubectl" ]] || kubectl="$(command -v kubectl)" || die "no kubectl (test bed cache or PATH)"
for tool in jq yq; do
	command -v "$tool" >/dev/null || die "$tool is missing (apt-get install $tool)"
done
# CHART_CHECK_HELM_VERSION: another helm release than the bed's (make chart-check runs Helm 3 too).
helm="$("$root/e2e/testbed/build-helm.sh" "${CHART_CHECK_HELM_VERSION:-}")" || die "could not build helm"

work="$(mktemp -d "${TMPDIR:-/tmp}/nfsp-chart-check.XXXXXX")"
created_crd=""
cleanup() {
	[[ -n "$created_crd" ]] && "$kubectl" delete crd servicemonitors.monitoring.coreos.com --wait=false >/dev/null 2>&1
	"$kubectl" delete namespace "$ns" "$ns_baseline" --wait=false >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() {
	failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %s\n' "$1"
	[[ -n "${2:-}" ]] && while IFS= read -r line; do printf '      %s\n' "$line"; done <<<"$2"
	return 0
}

# --- cluster ready ----------------------------------------------------------------------------
for _ in $(seq 60); do
	"$kubectl" get --raw /readyz >/dev/null 2>&1 && break
	sleep 1
done
"$kubectl" get --raw /readyz >/dev/null 2>&1 || die "apiserver at $KUBECONFIG is not ready"
for n in "$ns:restricted" "$ns_baseline:baseline"; do
	# A previous run's namespace may still be terminating: wait for it to go, then make a new one.
	if [[ "$("$kubectl" get namespace "${n%:*}" -o jsonpath='{.status.phase}' 2>/dev/null)" == Terminating ]]; then
		"$kubectl" wait --for=delete "namespace/${n%:*}" --timeout=180s >/dev/null 2>&1 ||
			die "namespace ${n%:*} is stuck terminating"
	fi
	"$kubectl" get namespace "${n%:*}" >/dev/null 2>&1 || "$kubectl" create namespace "${n%:*}" >/dev/null ||
		die "cannot create namespace ${n%:*}"
	"$kubectl" label --overwrite namespace "${n%:*}" "pod-security.kubernetes.io/warn=${n#*:}" >/dev/null ||
		die "cannot label namespace ${n%:*}"
done
echo "chart-check: helm $("$helm" version --template '{{.Version}}'), kubectl $kubectl, server $("$kubectl" get --raw /version | jq -r .gitVersion)"

# ServiceMonitor: the test bed has no prometheus-operator. A stub CRD with a structural schema of
# the ServiceMonitor fields the chart uses (same names and types as prometheus-operator's v1)
# makes the apiserver check them with strict field validation. A real CRD, if present, is used
# as it is and left alone.
if ! "$kubectl" get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
	if "$kubectl" create -f "$here/servicemonitor-crd.yaml" >/dev/null &&
		"$kubectl" wait --for=condition=Established --timeout=30s crd/servicemonitors.monitoring.coreos.com >/dev/null; then
		created_crd=1
	else
		die "could not create the ServiceMonitor stub CRD"
	fi
fi

# server_dry_run FILE: every object in FILE accepted by the apiserver. `create`, not `apply`, so
# that an object already on the cluster (the test bed's own nfs-client class, say) is still
# validated: the apiserver validates before it finds the name taken (AlreadyExists), so that
# error alone is accepted.
# The output (with any Pod Security warning) is left in $dry_out.
dry_out=""
server_dry_run() {
	local rc
	dry_out="$("$kubectl" create --dry-run=server --validate=strict -f "$1" -o name 2>&1)"
	rc=$?
	if [[ $rc -ne 0 ]]; then
		local bad
		bad="$(grep -v -e '^[a-z0-9.-]*/[^ ]*$' -e '^Warning:' -e '(AlreadyExists)' <<<"$dry_out" || true)"
		if [[ -n "$bad" ]]; then
			echo "$dry_out"
			return 1
		fi
	fi
	return 0
}

# pod_security NAME LEVEL: the last dry run drew no Pod Security warning for LEVEL.
pod_security() {
	if grep -q 'would violate PodSecurity' <<<"$dry_out"; then
		fail "$1: pod meets Pod Security \"$2\"" "$(grep 'PodSecurity' <<<"$dry_out")"
	else
		pass "$1: pod meets Pod Security \"$2\""
	fi
}

# q FILE JQ: run a jq filter over the rendered objects of FILE as one array.
q() { yq -s -c "[.[] | select(. != null)] | $2" "$1"; }

# expect NAME FILE JQ: the filter must print true.
expect() {
	local got
	got="$(q "$2" "$3" 2>&1)"
	if [[ "$got" == "true" ]]; then pass "$1"; else fail "$1" "filter: $3"$'\n'"got: $got"; fi
}

render() { # render NAME OUTFILE helm-args...
	local name="$1" out="$2"
	shift 2
	local err
	if err="$("$helm" template "$name" "$chart" --namespace "$ns" "$@" 2>&1 >"$out")"; then
		return 0
	fi
	echo "$err"
	return 1
}

# --- lint ---------------------------------------------------------------------------------------
# The cluster reports a release version (the bed's binaries are stamped with it), as a user's
# does: Helm's .Capabilities.KubeVersion and any kubeVersion constraint see it in the installs below.
server_version="$("$kubectl" version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion')"
if [[ "$server_version" =~ ^v1\.[0-9]+\.[0-9]+ ]]; then
	pass "API server reports a release version ($server_version)"
else
	fail "API server version" "reports $server_version; want v1.x.y (build the bed's binaries with e2e/testbed/build.sh)"
fi
if out="$("$helm" lint --strict "$chart" --set nfs.server=$server --set nfs.path=$export_path 2>&1)"; then
	pass "helm lint --strict"
else
	fail "helm lint --strict" "$out"
fi
for f in "$here"/values/*.yaml; do
	if out="$("$helm" lint --strict "$chart" --set nfs.server=$server -f "$f" 2>&1)"; then
		pass "helm lint --strict -f values/$(basename "$f")"
	else
		fail "helm lint --strict -f values/$(basename "$f")" "$out"
	fi
done

# --- default values: only server and path, like the other chart ---------------------------------
d="$work/default.yaml"
if out="$(render nfs-subdir-provisioner "$d" --set nfs.server=$server --set nfs.path=$export_path)"; then
	pass "template: defaults + nfs.server + nfs.path"
	if server_dry_run "$d" >"$work/dry.txt"; then pass "apiserver accepts: defaults"; else fail "apiserver accepts: defaults" "$(cat "$work/dry.txt")"; fi
	pod_security defaults restricted
	dep='(.[] | select(.kind=="Deployment"))'
	pod="$dep.spec.template.spec"
	ctr="$pod.containers[0]"
	# Controls: the same checks must be able to fail.
	sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' "$d" >"$work/typo.yaml"
	if server_dry_run "$work/typo.yaml" >/dev/null; then fail "control: apiserver refuses a misspelt field" "accepted"; else pass "control: apiserver refuses a misspelt field"; fi
	if render ctl "$work/root.yaml" --set nfs.server=$server --set backend.type=mounted >/dev/null &&
		server_dry_run "$work/root.yaml" >/dev/null && grep -q 'would violate PodSecurity "restricted' <<<"$dry_out"; then
		pass "control: Pod Security warns about the root mounted-backend pod in the restricted namespace"
	else
		fail "control: Pod Security warns about the root mounted-backend pod in the restricted namespace" "$dry_out"
	fi
	expect "defaults: kinds" "$d" '[.[].kind] | sort == ["ClusterRole","ClusterRoleBinding","Deployment","Role","Role","RoleBinding","RoleBinding","Service","ServiceAccount","StorageClass"]'
	expect "defaults: class nfs-client, anchor's provisioner name and parameters" "$d" \
		'.[] | select(.kind=="StorageClass") | .metadata.name=="nfs-client" and .provisioner=="cluster.local/nfs-subdir-provisioner-nfs-subdir-external-provisioner" and .parameters=={"archiveOnDelete":"true"} and .reclaimPolicy=="Delete" and .volumeBindingMode=="Immediate" and .allowVolumeExpansion==true and (has("mountOptions")|not)'
	expect "defaults: env NFS_SERVER/NFS_PATH/PROVISIONER_NAME/ENABLE_LEADER_ELECTION/POD_NAMESPACE" "$d" \
		"$ctr.env | map({(.name): (.value // .valueFrom.fieldRef.fieldPath)}) | add == {\"PROVISIONER_NAME\":\"cluster.local/nfs-subdir-provisioner-nfs-subdir-external-provisioner\",\"NFS_SERVER\":\"$server\",\"NFS_PATH\":\"$export_path\",\"ENABLE_LEADER_ELECTION\":\"true\",\"POD_NAMESPACE\":\"metadata.namespace\"}"
	expect "defaults: wire backend, no volume, no mount" "$d" \
		"($ctr.args | index(\"--backend=wire\") != null) and ($pod | has(\"volumes\") | not) and ($ctr | has(\"volumeMounts\") | not)"
	expect "defaults: secure pod (non-root, read-only root, no escalation, drop ALL, nothing added, RuntimeDefault seccomp)" "$d" \
		"($pod.securityContext | .runAsNonRoot==true and .runAsUser==65532 and .seccompProfile.type==\"RuntimeDefault\" and (has(\"sysctls\")|not)) and ($ctr.securityContext | .runAsNonRoot==true and .readOnlyRootFilesystem==true and .allowPrivilegeEscalation==false and .privileged==false and .capabilities.drop==[\"ALL\"] and (.capabilities|has(\"add\")|not) and .seccompProfile.type==\"RuntimeDefault\")"
	expect "defaults: probes on /healthz and /readyz via the metrics port" "$d" \
		"$ctr | .livenessProbe.httpGet.path==\"/healthz\" and .readinessProbe.httpGet.path==\"/readyz\" and .livenessProbe.httpGet.port==\"metrics\" and (.ports[0] | .name==\"metrics\" and .containerPort==8080) and (.args | index(\"--metrics-address=:8080\") != null)"
	expect "defaults: metrics Service selects the pod" "$d" \
		"(.[] | select(.kind==\"Service\") | .spec.selector) as \$s | ($dep.spec.template.metadata.labels | to_entries | map(select(.key as \$k | \$s | has(\$k))) | from_entries) == \$s and (.[] | select(.kind==\"Service\") | .spec.ports[0].targetPort==\"metrics\")"
	expect "defaults: Lease Role and archive-records Role in the release namespace, both bound to the ServiceAccount" "$d" \
		"([.[] | select(.kind==\"Role\") | select(.metadata.namespace==\"$ns\") | .rules] | sort == ([[{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":[\"get\",\"list\",\"create\",\"update\",\"delete\"]}], [{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],\"verbs\":[\"get\",\"create\",\"update\"]}]] | sort)) and ([.[] | select(.kind==\"RoleBinding\") | .subjects[0].name] | unique) == [.[] | select(.kind==\"ServiceAccount\") | .metadata.name] and ($pod.serviceAccountName == (.[] | select(.kind==\"ServiceAccount\") | .metadata.name))"
else
	fail "template: defaults + nfs.server + nfs.path" "$out"
fi

# The chart's RBAC equals deploy/rbac.yaml's, rule for rule, and has no wildcard.
r="$work/rbac.yaml"
if out="$(render nfs-subdir-provisioner "$r" --set nfs.server=$server -s templates/rbac.yaml)"; then
	chart_rules="$(q "$r" '[.[] | select(.kind=="ClusterRole" or .kind=="Role") | {kind, rules}] | sort_by(.kind)')"
	deploy_rules="$(q "$root/deploy/rbac.yaml" '[.[] | select(.kind=="ClusterRole" or .kind=="Role") | {kind, rules}] | sort_by(.kind)')"
	if [[ "$chart_rules" == "$deploy_rules" ]]; then pass "RBAC: chart rules == deploy/rbac.yaml rules"; else
		fail "RBAC: chart rules == deploy/rbac.yaml rules" "chart:  $chart_rules"$'\n'"deploy: $deploy_rules"
	fi
	if grep -n '\*' "$r" "$root/deploy/rbac.yaml" | grep -v '^\S*:[0-9]*:\s*#' | grep -q .; then
		fail "RBAC: no wildcard" "$(grep -n '\*' "$r" "$root/deploy/rbac.yaml")"
	else
		pass "RBAC: no wildcard"
	fi
else
	fail "template -s templates/rbac.yaml" "$out"
fi

# --- value sets ----------------------------------------------------------------------------------
for f in "$here"/values/*.yaml; do
	set_name="$(basename "$f" .yaml)"
	o="$work/$set_name.yaml"
	args=(-f "$f")
	[[ "$set_name" == anchor-values ]] || args=(--set "nfs.server=$server" --set "nfs.path=$export_path" -f "$f")
	if ! out="$(render "chk-$set_name" "$o" "${args[@]}")"; then
		fail "template: $set_name" "$out"
		continue
	fi
	pass "template: $set_name"
	if server_dry_run "$o" >"$work/dry.txt"; then pass "apiserver accepts: $set_name"; else fail "apiserver accepts: $set_name" "$(cat "$work/dry.txt")"; fi
	if [[ "$set_name" == mounted ]]; then
		# Root with three capabilities and an inline NFS volume: baseline, not restricted.
		b="$work/$set_name-baseline.yaml"
		if out="$(render "chk-$set_name" "$b" --namespace "$ns_baseline" "${args[@]}")" && server_dry_run "$b" >/dev/null; then
			pod_security "$set_name" baseline
		else
			fail "$set_name: render and dry run in $ns_baseline" "$out$dry_out"
		fi
	else
		pod_security "$set_name" restricted
	fi
	dep='(.[] | select(.kind=="Deployment"))'
	pod="$dep.spec.template.spec"
	ctr="$pod.containers[0]"
	case "$set_name" in
	mounted)
		expect "mounted: NFS volume at the mount root, root with CHOWN/DAC_OVERRIDE/FOWNER only" "$o" \
			"($pod.volumes == [{\"name\":\"nfs-subdir-external-provisioner-root\",\"nfs\":{\"server\":\"$server\",\"path\":\"$export_path\"}}]) and ($ctr.volumeMounts == [{\"name\":\"nfs-subdir-external-provisioner-root\",\"mountPath\":\"/persistentvolumes\"}]) and ($ctr.args | index(\"--backend=mounted\") != null and index(\"--mount-root=/persistentvolumes\") != null) and ($ctr.securityContext | .runAsUser==0 and .capabilities.add==[\"CHOWN\",\"DAC_OVERRIDE\",\"FOWNER\"] and .capabilities.drop==[\"ALL\"] and .readOnlyRootFilesystem==true and .allowPrivilegeEscalation==false)"
		;;
	mounted-mountoptions)
		expect "mounted+mountOptions: static PV/PVC carry the options, pod mounts the PVC, stays non-root" "$o" \
			"(.[] | select(.kind==\"PersistentVolume\") | .spec.mountOptions==[\"nfsvers=4.1\",\"hard\"] and .spec.persistentVolumeReclaimPolicy==\"Retain\" and .spec.accessModes==[\"ReadWriteMany\"]) and ((.[] | select(.kind==\"PersistentVolumeClaim\") | .metadata.name) == ($pod.volumes[0].persistentVolumeClaim.claimName)) and ($pod.volumes[0].name==\"export-root\") and ($ctr.volumeMounts[0].mountPath==\"/srv/export\") and ($ctr.securityContext | .runAsNonRoot==true and (.capabilities|has(\"add\")|not)) and (.[] | select(.kind==\"StorageClass\") | .mountOptions==[\"nfsvers=4.1\",\"hard\"])"
		;;
	extra-classes)
		expect "extra classes: three classes, one provisioner, own server/share/parameters" "$o" \
			'[.[] | select(.kind=="StorageClass")] | length==3 and (map(.provisioner) | unique | length==1) and (map({(.metadata.name): .parameters}) | add) == {"nfsp-check-main":{"archiveOnDelete":"true","onDelete":"delete","mode":"0770","uid":"1000","gid":"1000"},"nfsp-check-fast":{"server":"10.0.0.20","share":"/exports/fast","onDelete":"retain","pathPattern":"${.PVC.namespace}/${.PVC.name}","mode":"0700"},"nfsp-check-archive":{"server":"nfs.example.internal","share":"/exports/archive"}} and (map(select(.metadata.name=="nfsp-check-archive"))[0] | .reclaimPolicy=="Retain" and .volumeBindingMode=="WaitForFirstConsumer" and .allowVolumeExpansion==false and .mountOptions==["nfsvers=3","nolock"] and .metadata.labels.tier=="archive")'
		;;
	servicemonitor)
		expect "ServiceMonitor: selects the metrics Service, scrapes its metrics port" "$o" \
			'(.[] | select(.kind=="ServiceMonitor")) as $m | (.[] | select(.kind=="Service")) as $s | ($m.spec.selector.matchLabels | to_entries | all(. as $e | $s.metadata.labels[$e.key] == $e.value)) and ($m.spec.endpoints[0].port == $s.spec.ports[0].name) and ($m.spec.endpoints[0] | .path=="/metrics" and .interval=="15s" and .scrapeTimeout=="10s") and ($m.spec.namespaceSelector.matchNames == [$s.metadata.namespace]) and $m.metadata.labels.release=="prometheus"'
		;;
	no-leader-election)
		expect "leader election off: no Lease Role (the archive-records Role stays), ENABLE_LEADER_ELECTION=false, no lease flags" "$o" \
			"([.[] | select(.kind==\"Role\") | .rules[0].resources[0]] == [\"configmaps\"]) and ([.[] | select(.kind==\"RoleBinding\")] | length==1) and ($ctr.env | map(select(.name==\"ENABLE_LEADER_ELECTION\"))[0].value==\"false\") and ($ctr.args | map(select(startswith(\"--leader-election\"))) | length==0)"
		;;
	hardened-tuned)
		expect "privileged port: NET_BIND_SERVICE added, port sysctl, flags, PDB, defaults env" "$o" \
			"($ctr.securityContext.capabilities | .add==[\"NET_BIND_SERVICE\"] and .drop==[\"ALL\"]) and ($pod.securityContext.sysctls==[{\"name\":\"net.ipv4.ip_unprivileged_port_start\",\"value\":\"0\"}]) and ($ctr.securityContext.runAsNonRoot==true) and ($ctr.args | contains([\"--privileged-port=true\",\"--nfs-port=2049\",\"--mount-port=20048\",\"--nfs-timeout=20s\",\"--kube-api-qps=300\",\"--kube-api-burst=600\",\"--worker-threads=8\",\"--leader-election-lease-duration=30s\",\"--leader-election-renew-deadline=20s\",\"--leader-election-retry-period=5s\",\"--archive-sweep-interval=1h\",\"--archive-sweep-dry-run\"])) and ($ctr.env | map(select(.name|startswith(\"NFS_DEFAULT_\"))) | map({(.name): .value}) | add == {\"NFS_DEFAULT_MODE\":\"0775\",\"NFS_DEFAULT_UID\":\"2000\",\"NFS_DEFAULT_GID\":\"2000\"}) and ([.[] | select(.kind==\"PodDisruptionBudget\")] | length==1) and ($dep.spec.replicas==2)"
		;;
	anchor-values)
		expect "anchor values: honoured as the other chart did" "$o" \
			"(.[] | select(.kind==\"StorageClass\") | .metadata.name==\"nfsp-check-anchor\" and .provisioner==\"k8s-sigs.io/nfs-subdir-external-provisioner\" and .parameters=={\"archiveOnDelete\":\"false\",\"onDelete\":\"retain\",\"pathPattern\":\"\${.PVC.namespace}-\${.PVC.annotations.nfs.io/storage-path}\"} and .metadata.annotations==({\"example.com/team\":\"storage\",\"storageclass.kubernetes.io/is-default-class\":\"true\"}) and .mountOptions==[\"nfsvers=4.1\"]) and ($pod | .serviceAccountName==\"nfsp-check-anchor-sa\" and .imagePullSecrets==[{\"name\":\"regcred\"}] and .nodeSelector==({\"kubernetes.io/os\":\"linux\"}) and (.tolerations|length==1) and (.affinity.nodeAffinity|type==\"object\")) and ($ctr.image==\"registry.example/nfs-subdir-provisioner:v0.1.0\") and ($ctr.resources.limits.cpu==\"100m\") and ($dep.spec.template.metadata.annotations[\"example.com/scrape\"]==\"false\") and (all(.[]; .metadata.labels[\"example.com/env\"]==\"test\")) and ($ctr.securityContext.readOnlyRootFilesystem==true) and ($ctr.env | map(select(.name==\"NFS_SERVER\"))[0].value==\"192.0.2.10\")"
		;;
	rbac-off)
		expect "rbac.create=false, serviceAccount.create=false: only the Deployment and the extra class" "$o" \
			"([.[].kind] | sort == [\"Deployment\",\"StorageClass\"]) and ($pod.serviceAccountName==\"nfs-client-provisioner\")"
		;;
	esac
done

# NOTES.txt renders, and the claim it tells the user to paste is accepted by the apiserver.
name="NOTES.txt: the test claim it shows is valid and on nfs-client"
if out="$("$helm" install nfs-subdir-provisioner "$chart" --namespace "$ns" --dry-run=client --set nfs.server=$server --set nfs.path=$export_path 2>&1)"; then
	sed -n '/^NOTES:/,$p' <<<"$out" | sed -n "/^kubectl apply -f - <<'YAML'\$/,/^YAML\$/p" | sed '1d;$d' >"$work/notes-claim.yaml"
	if [[ "$(q "$work/notes-claim.yaml" '.[0].spec.storageClassName')" == '"nfs-client"' ]] &&
		"$kubectl" create --dry-run=server --validate=strict -n "$ns" -f "$work/notes-claim.yaml" >/dev/null 2>"$work/err"; then
		pass "$name"
	else
		fail "$name" "$(cat "$work/notes-claim.yaml" "$work/err")"
	fi
else
	fail "$name" "$out"
fi

# --- deploy/ ---------------------------------------------------------------------------------------
if out="$("$kubectl" apply -k "$root/deploy" --dry-run=server --validate=strict 2>&1)"; then
	pass "apiserver accepts: kubectl apply -k deploy/"
else
	fail "apiserver accepts: kubectl apply -k deploy/" "$out"
fi
for f in test-claim.yaml test-pod.yaml; do
	if out="$("$kubectl" create --dry-run=server --validate=strict -n "$ns" -f "$root/deploy/$f" 2>&1)"; then
		pass "apiserver accepts: deploy/$f"
	else
		fail "apiserver accepts: deploy/$f" "$out"
	fi
done
# The kind e2e run's in-cluster NFS server (e2e/kind/run.sh) is checked here too, as it can't run here.
sed "s/namespace: nfs-server/namespace: $ns/" "$root/e2e/kind/nfs-server.yaml" >"$work/kind-nfs-server.yaml"
if server_dry_run "$work/kind-nfs-server.yaml" >"$work/dry.txt"; then pass "apiserver accepts: e2e/kind/nfs-server.yaml"; else
	fail "apiserver accepts: e2e/kind/nfs-server.yaml" "$(cat "$work/dry.txt")"
fi
kdeploy="$work/deploy.yaml"
if "$kubectl" kustomize "$root/deploy" >"$kdeploy" 2>"$work/err"; then
	expect "deploy/: anchor object names, secure wire-backend pod" "$kdeploy" \
		'([.[] | "\(.kind)/\(.metadata.name)"] | sort) == (["ClusterRole/nfs-client-provisioner-runner","ClusterRoleBinding/run-nfs-client-provisioner","Deployment/nfs-client-provisioner","Role/leader-locking-nfs-client-provisioner","Role/nfs-client-provisioner-archive-records","RoleBinding/leader-locking-nfs-client-provisioner","RoleBinding/nfs-client-provisioner-archive-records","ServiceAccount/nfs-client-provisioner","StorageClass/nfs-client"]) and (.[] | select(.kind=="Deployment") | .spec.template.spec | .serviceAccountName=="nfs-client-provisioner" and (has("volumes")|not) and .containers[0].securityContext.readOnlyRootFilesystem==true and .containers[0].securityContext.capabilities.drop==["ALL"] and .securityContext.runAsNonRoot==true) and (.[] | select(.kind=="StorageClass") | .provisioner=="k8s-sigs.io/nfs-subdir-external-provisioner")'
else
	fail "kubectl kustomize deploy/" "$(cat "$work/err")"
fi

# (The chart installed for real with its ServiceAccount running the provisioner is an e2e test:
# TestChartInstall in e2e/functional/chart_test.go.)

# --- in-place upgrade from a release of nfs-subdir-external-provisioner's chart -----------------
# anchor-standin/ makes that chart's objects with its defaults; `helm upgrade` onto this chart must
# go through (StorageClass fields are immutable) and keep the class's provisioner name.
upgrade_check() {
	local rel=nfsp-upgrade class=nfsp-upgrade-class name="helm upgrade from the other chart's release keeps the StorageClass"
	local out before after
	if ! out="$("$helm" install "$rel" "$here/anchor-standin" --namespace "$ns" \
		--set nfs.server=$server --set storageClass.name=$class 2>&1)"; then
		fail "$name" "installing the stand-in: $out"
		return 0
	fi
	before="$("$kubectl" get storageclass $class -o json | jq -c '{provisioner, parameters, reclaimPolicy, volumeBindingMode}')"
	if out="$("$helm" upgrade "$rel" "$chart" --namespace "$ns" --set replicaCount=0 \
		--set nfs.server=$server --set nfs.path=/nfs-storage --set storageClass.name=$class 2>&1)"; then
		after="$("$kubectl" get storageclass $class -o json | jq -c '{provisioner, parameters, reclaimPolicy, volumeBindingMode}')"
		if [[ "$before" == "$after" ]]; then pass "$name"; else fail "$name" "before: $before"$'\n'"after:  $after"; fi
	else
		fail "$name" "$out"
	fi
	"$helm" uninstall "$rel" --namespace "$ns" >/dev/null 2>&1 || true
}
upgrade_check

# --- bad values refused --------------------------------------------------------------------------
# refuse NAME WANT ARGS...: helm template must fail and say WANT (case-insensitive).
refuse() {
	local name="$1" want="$2"
	shift 2
	local out
	if out="$("$helm" template chk "$chart" --namespace "$ns" --set nfs.server=$server "$@" 2>&1)"; then
		fail "refused: $name" "helm template succeeded"
	elif grep -qi -- "$want" <<<"$out"; then
		pass "refused: $name"
	else
		fail "refused: $name" "expected the error to mention: $want"$'\n'"$out"
	fi
}
cat >"$work/octal-mode.yaml" <<'EOF'
storageClass:
  mode: 0775
EOF
refuse "unknown backend" "backend.type" --set backend.type=nfs4
refuse "replicaCount not a number" "replicaCount" --set replicaCount=two
refuse "leaderElection.enabled not a boolean" "leaderElection.enabled" --set leaderElection.enabled=yes
refuse "reclaimPolicy Recycle" "reclaimPolicy" --set storageClass.reclaimPolicy=Recycle
refuse "unknown onDelete" "onDelete" --set storageClass.onDelete=destroy
refuse "unknown volumeBindingMode" "volumeBindingMode" --set storageClass.volumeBindingMode=Later
refuse "mode as an unquoted YAML number" "storageClass.mode" -f "$work/octal-mode.yaml"
refuse "mode not octal" "storageClass.mode" --set-string storageClass.mode=0999
refuse "relative nfs.path" "nfs.path" --set nfs.path=exports
refuse "mountOptions as a string" "nfs.mountOptions" --set nfs.mountOptions=nfsvers=4.1
refuse "misspelt top-level key" "storageclass" --set storageclass.name=x
refuse "negative uid" "defaultUid" --set nfs.defaultUid=-1
refuse "metrics port out of range" "metrics.port" --set metrics.port=70000
refuse "unknown pullPolicy" "pullPolicy" --set image.pullPolicy=Sometimes
refuse "extra class without a name" "name" --set 'extraStorageClasses[0].server=10.0.0.2'
refuse "extra class: unknown class parameter" "parameters.*sever" --set 'extraStorageClasses[0].name=x' --set 'extraStorageClasses[0].parameters.sever=10.0.0.2'
refuse "extra class: bad archiveRetention" "archiveRetention" --set 'extraStorageClasses[0].name=x' --set 'extraStorageClasses[0].parameters.archiveRetention=30d'
refuse "main class: unknown class parameter" "parameters.*sever" --set 'storageClass.parameters.sever=10.0.0.2'
refuse "extra class: bad share" "share" --set 'extraStorageClasses[0].name=x' --set 'extraStorageClasses[0].share=relative'
refuse "lease duration not a duration" "leaseDuration" --set leaderElection.leaseDuration=15
refuse "nfs.server missing" "nfs.server is required" --set nfs.server=
refuse "podSecurityPolicy.enabled=true" "PodSecurityPolicy was removed" --set podSecurityPolicy.enabled=true
refuse "two replicas without leader election" "needs leaderElection.enabled" --set leaderElection.enabled=false --set replicaCount=2
refuse "extra class server with mounted backend" "need backend.type=wire" --set backend.type=mounted --set 'extraStorageClasses[0].name=x' --set 'extraStorageClasses[0].server=10.0.0.2'
refuse "two classes with one name" "used twice" --set 'extraStorageClasses[0].name=nfs-client'
refuse "two default classes" "more than one StorageClass" --set storageClass.defaultClass=true --set 'extraStorageClasses[0].name=x' --set 'extraStorageClasses[0].defaultClass=true'
refuse "ServiceMonitor without the Service" "needs metrics.service.enabled" --set metrics.serviceMonitor.enabled=true --set metrics.service.enabled=false

echo
if [[ $failed -gt 0 ]]; then
	echo "chart-check failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "chart-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
