{{/*
polynet.validate fails the render, with a message that says what to change,
for values the chart cannot render into a working install. Every template that
is always rendered includes it, so the check does not depend on which objects
are enabled.
*/}}
{{- define "polynet.validate" -}}
{{- if not (has .Values.mode (list "thick" "thin")) -}}
{{- fail (printf "mode must be \"thick\" or \"thin\", not %q" (toString .Values.mode)) -}}
{{- end -}}
{{- if and .Values.certApprover.enabled (ne .Values.mode "thick") -}}
{{- fail "certApprover.enabled needs mode: thick: per-node certificates are the daemon's (daemonConfig.perNodeCertificate), and no daemon runs in thin mode" -}}
{{- end -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
{{- if ne .Values.mode "thick" -}}
{{- fail "metrics.serviceMonitor.enabled needs mode: thick: in thin mode no daemon runs on the nodes, so there are no metrics to scrape" -}}
{{- end -}}
{{- if kindIs "invalid" .Values.daemonConfig.metricsPort -}}
{{- fail "metrics.serviceMonitor.enabled needs daemonConfig.metricsPort: the daemon serves metrics only on that port" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
polynet.image is the image of every container.
*/}}
{{- define "polynet.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/*
polynet.helmLabels are Helm's standard labels, as YAML lines, when helmLabels
is on; nothing otherwise.
*/}}
{{- define "polynet.helmLabels" -}}
{{- if .Values.helmLabels -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
app.kubernetes.io/name: {{ .Chart.Name | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end -}}
{{- end -}}

{{/*
polynet.labelsOnly is a whole labels: block of Helm's standard labels, for the
objects that have no labels of their own; nothing when helmLabels is off.
*/}}
{{- define "polynet.labelsOnly" -}}
{{- with include "polynet.helmLabels" . -}}
labels:
{{- . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
polynet.daemonConfig is daemon-config.json: the keys of daemonConfig whose
value is not null, then daemonConfigExtra's over them.
*/}}
{{- define "polynet.daemonConfig" -}}
{{- $conf := dict -}}
{{- range $key, $value := .Values.daemonConfig -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $_ := set $conf $key $value -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := .Values.daemonConfigExtra -}}
{{- $_ := set $conf $key $value -}}
{{- end -}}
{{- toPrettyJson $conf -}}
{{- end -}}

{{/*
polynet.thinFlags is the table of thin_entrypoint's flags: the value key under
thin, the flag, and the binary's default (as a string). Order is the binary's.
*/}}
{{- define "polynet.thinFlags" -}}
- [cniBinDir, cni-bin-dir, /host/opt/cni/bin]
- [cniConfDir, cni-conf-dir, /host/etc/cni/net.d]
- [cniVersion, cni-version, ""]
- [multusConfFile, multus-conf-file, auto]
- [multusBinFile, multus-bin-file, /usr/src/multus-cni/bin/multus]
- [multusCniConfDir, multus-cni-conf-dir, /host/etc/cni/multus/net.d]
- [skipMultusBinaryCopy, skip-multus-binary-copy, "false"]
- [multusKubeconfigFileHost, multus-kubeconfig-file-host, /etc/cni/net.d/multus.d/multus.kubeconfig]
- [multusMasterCniFileName, multus-master-cni-file-name, ""]
- [namespaceIsolation, namespace-isolation, "false"]
- [globalNamespaces, global-namespaces, ""]
- [multusAutoconfigDir, multus-autoconfig-dir, /host/etc/cni/net.d]
- [multusLogToStderr, multus-log-to-stderr, "true"]
- [multusLogLevel, multus-log-level, ""]
- [multusLogFile, multus-log-file, ""]
- [overrideNetworkName, override-network-name, "false"]
- [cleanupConfigOnExit, cleanup-config-on-exit, "false"]
- [skipConfigWatch, skip-config-watch, "false"]
- [renameConfFile, rename-conf-file, "false"]
- [readinessIndicatorFile, readiness-indicator-file, ""]
- [additionalBinDir, additional-bin-dir, ""]
- [skipTlsVerify, skip-tls-verify, "false"]
- [forceCniVersion, force-cni-version, "false"]
- [serviceAccountDir, service-account-dir, /var/run/secrets/kubernetes.io/serviceaccount]
{{- end -}}

{{/*
polynet.thinFlagArgs renders "--flag=value" YAML list items for thin_entrypoint.
It takes a dict: ctx (the root context), always (value keys always passed, in
this order) and only (if set, the value keys that may be passed at all). Other
flags are passed only when their value differs from the binary's default; a
null value means the default.
*/}}
{{- define "polynet.thinFlagArgs" -}}
{{- $thin := .ctx.Values.thin -}}
{{- $table := include "polynet.thinFlags" .ctx | fromYamlArray -}}
{{- $flags := dict -}}
{{- range $table -}}
{{- $_ := set $flags (index . 0) . -}}
{{- end -}}
{{- range .always -}}
{{- $row := index $flags . -}}
{{- $value := index $thin . -}}
{{- if kindIs "invalid" $value -}}
{{- $value = index $row 2 -}}
{{- end }}
- {{ printf "--%s=%s" (index $row 1) (toString $value) | quote }}
{{- end -}}
{{- $always := .always -}}
{{- $only := .only -}}
{{- range $table -}}
{{- $key := index . 0 -}}
{{- $value := index $thin $key -}}
{{- if and (not (has $key $always)) (or (not $only) (has $key $only)) (not (kindIs "invalid" $value)) (ne (toString $value) (index . 2)) }}
- {{ printf "--%s=%s" (index . 1) (toString $value) | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
polynet.thinProbe is the thin container's probe command: --probe with the flags
the probe reads (the configuration's name and folder, the kubeconfig's, and how
the kubeconfig is written), so it checks what the container writes.
*/}}
{{- define "polynet.thinProbe" -}}
- "/thin_entrypoint"
- "--probe"
{{- include "polynet.thinFlagArgs" (dict "ctx" . "always" (list "multusConfFile" "cniConfDir") "only" (list "multusKubeconfigFileHost" "skipTlsVerify" "serviceAccountDir")) }}
{{- end -}}

{{/*
polynet.podMetadata is the pod template's metadata, both modes.
*/}}
{{- define "polynet.podMetadata" -}}
metadata:
  labels:
    tier: node
    app: multus
    name: multus
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/*
polynet.podPlacement is where and how the pods are scheduled, both modes: the
tolerations, then the optional node selector, affinity, priority class and
ServiceAccount.
*/}}
{{- define "polynet.podPlacement" -}}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
serviceAccountName: {{ .Values.serviceAccount.name }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
polynet.daemonSetMetadata is the DaemonSet's metadata, both modes.
*/}}
{{- define "polynet.daemonSetMetadata" -}}
metadata:
  name: kube-multus-ds
  namespace: {{ .Release.Namespace }}
  labels:
    tier: node
    app: multus
    name: multus
    {{- with include "polynet.helmLabels" . }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
polynet.gracePeriod is terminationGracePeriodSeconds: the value, or the mode's
default (dict key "default") when it is null.
*/}}
{{- define "polynet.gracePeriod" -}}
{{- $v := .ctx.Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $v -}}
{{- .default -}}
{{- else -}}
{{- $v -}}
{{- end -}}
{{- end -}}
