{{/* Chart name, overridable. */}}
{{- define "nfsp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release fullname: the release name alone when it already contains the chart name. */}}
{{- define "nfsp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The fullname nfs-subdir-external-provisioner's chart would have given this release. Only used for
the default provisioner name: StorageClass.provisioner is immutable and the controller deletes
only PVs annotated with its own name, so a release moved over from that chart must keep it.
*/}}
{{- define "nfsp.anchorFullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "nfs-subdir-external-provisioner" .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nfsp.provisionerName" -}}
{{- if .Values.storageClass.provisionerName -}}
{{- .Values.storageClass.provisionerName -}}
{{- else -}}
{{- printf "cluster.local/%s" (include "nfsp.anchorFullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "nfsp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Pod selector labels. Never change these: a Deployment's selector is immutable. */}}
{{- define "nfsp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nfsp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object; .Values.labels (the other chart's key) added last. */}}
{{- define "nfsp.labels" -}}
{{ include "nfsp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: provisioner
helm.sh/chart: {{ include "nfsp.chart" . }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "nfsp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "nfsp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "nfsp.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{/* The provisioner's own namespace (its Lease, its archive records): --leader-election-namespace when leader election is on, POD_NAMESPACE otherwise. */}}
{{- define "nfsp.ownNamespace" -}}
{{- if .Values.leaderElection.enabled -}}{{ include "nfsp.leaseNamespace" . }}{{- else -}}{{ .Release.Namespace }}{{- end -}}
{{- end -}}

{{- define "nfsp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) -}}
{{- end -}}

{{/* The static PV/PVC for the provisioner's own mount: mounted backend with mount options. */}}
{{- define "nfsp.staticVolume" -}}
{{- if and (eq .Values.backend.type "mounted") .Values.nfs.mountOptions -}}true{{- end -}}
{{- end -}}

{{/*
Input checks the schema cannot express. Included by the Deployment, so `helm template`,
`lint` and `install` all stop here with a message saying what to change.
*/}}
{{- define "nfsp.validate" -}}
{{- $_ := required "nfs.server is required: --set nfs.server=<NFS server address>" .Values.nfs.server -}}
{{- if .Values.podSecurityPolicy.enabled -}}
{{- fail "podSecurityPolicy.enabled=true: PodSecurityPolicy was removed in Kubernetes 1.25. Leave it false; the pod already meets the restricted Pod Security Standard (wire backend)." -}}
{{- end -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: two provisioners without a leader would race on every claim." -}}
{{- end -}}
{{- $names := dict -}}
{{- if .Values.storageClass.create -}}
{{- $_ := set $names .Values.storageClass.name true -}}
{{- end -}}
{{- $defaults := 0 -}}
{{- if and .Values.storageClass.create .Values.storageClass.defaultClass -}}{{- $defaults = add1 $defaults -}}{{- end -}}
{{- range $i, $c := .Values.extraStorageClasses -}}
{{- if hasKey $names $c.name -}}
{{- fail (printf "extraStorageClasses[%d]: StorageClass name %q is used twice" $i $c.name) -}}
{{- end -}}
{{- $_ := set $names $c.name true -}}
{{- if $c.defaultClass -}}{{- $defaults = add1 $defaults -}}{{- end -}}
{{- if and (eq $.Values.backend.type "mounted") (or $c.server $c.share (hasKey (default dict $c.parameters) "server") (hasKey (default dict $c.parameters) "share")) -}}
{{- fail (printf "extraStorageClasses[%d] (%s): server/share need backend.type=wire; the mounted backend serves only the export mounted at backend.mountRoot" $i $c.name) -}}
{{- end -}}
{{- end -}}
{{- if gt $defaults 1 -}}
{{- fail "more than one StorageClass has defaultClass: true" -}}
{{- end -}}
{{- end -}}

{{/* Pod securityContext: the user's values; uid 0 for the mounted backend's root mode. */}}
{{- define "nfsp.podSecurityContext" -}}
{{- $ctx := deepCopy (default dict .Values.podSecurityContext) -}}
{{- if and (eq .Values.backend.type "mounted") .Values.backend.runAsRoot -}}
{{- $_ := set $ctx "runAsNonRoot" false -}}
{{- $_ := set $ctx "runAsUser" 0 -}}
{{- $_ := set $ctx "runAsGroup" 0 -}}
{{- end -}}
{{- if and .Values.nfs.privilegedPort .Values.nfs.privilegedPortSysctl (eq .Values.backend.type "wire") -}}
{{- $sysctls := list -}}
{{- range (default list $ctx.sysctls) -}}
{{- if ne .name "net.ipv4.ip_unprivileged_port_start" -}}{{- $sysctls = append $sysctls . -}}{{- end -}}
{{- end -}}
{{- $sysctls = append $sysctls (dict "name" "net.ipv4.ip_unprivileged_port_start" "value" "0") -}}
{{- $_ := set $ctx "sysctls" $sysctls -}}
{{- end -}}
{{- range $k, $v := $ctx -}}{{- if kindIs "invalid" $v -}}{{- $_ := unset $ctx $k -}}{{- end -}}{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* Container securityContext: capabilities added only where the chosen mode needs them. */}}
{{- define "nfsp.securityContext" -}}
{{- $ctx := deepCopy (default dict .Values.securityContext) -}}
{{- $caps := deepCopy (default dict $ctx.capabilities) -}}
{{- $add := default list $caps.add -}}
{{- if and (eq .Values.backend.type "wire") .Values.nfs.privilegedPort -}}
{{- $add = append $add "NET_BIND_SERVICE" -}}
{{- end -}}
{{- if and (eq .Values.backend.type "mounted") .Values.backend.runAsRoot -}}
{{- $add = concat $add (list "CHOWN" "DAC_OVERRIDE" "FOWNER") -}}
{{- $_ := set $ctx "runAsNonRoot" false -}}
{{- $_ := set $ctx "runAsUser" 0 -}}
{{- end -}}
{{- if $add -}}
{{- $_ := set $caps "add" (uniq $add) -}}
{{- end -}}
{{- if $caps -}}
{{- $_ := set $ctx "capabilities" $caps -}}
{{- end -}}
{{- range $k, $v := $ctx -}}{{- if kindIs "invalid" $v -}}{{- $_ := unset $ctx $k -}}{{- end -}}{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* StorageClass body shared by the main class and the extra ones. Takes dict root, class. */}}
{{- define "nfsp.storageClass" -}}
{{- $root := .root -}}
{{- $c := .class -}}
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {{ $c.name }}
  labels:
    {{- include "nfsp.labels" $root | nindent 4 }}
    {{- with $c.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $c.defaultClass $c.annotations }}
  annotations:
    {{- with $c.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if $c.defaultClass }}
    storageclass.kubernetes.io/is-default-class: "true"
    {{- end }}
  {{- end }}
provisioner: {{ include "nfsp.provisionerName" $root }}
allowVolumeExpansion: {{ $c.allowVolumeExpansion }}
reclaimPolicy: {{ $c.reclaimPolicy }}
volumeBindingMode: {{ $c.volumeBindingMode }}
{{- if .parameters }}
parameters:
  {{- range $k, $v := .parameters }}
  {{ $k }}: {{ toString $v | quote }}
  {{- end }}
{{- end }}
{{- with $c.mountOptions }}
mountOptions:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
