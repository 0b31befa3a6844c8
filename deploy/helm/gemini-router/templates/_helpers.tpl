{{/* Names and labels. */}}
{{- define "gemini-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gemini-router.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gemini-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gemini-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gemini-router.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gemini-router.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gemini-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "gemini-router.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where the module sits inside the Envoy container. */}}
{{- define "gemini-router.wasmDir" -}}
/etc/gemini-router/wasm
{{- end }}

{{- define "gemini-router.wasmPath" -}}
{{- if eq .Values.wasm.source "imageVolume" -}}
{{ include "gemini-router.wasmDir" . }}/plugin.wasm
{{- else -}}
{{ include "gemini-router.wasmDir" . }}/gemini_router.wasm
{{- end }}
{{- end }}

{{/* The module image reference: image, pinned to wasm.oci.digest when set. */}}
{{- define "gemini-router.wasmImage" -}}
{{- $oci := .Values.wasm.oci -}}
{{- if and $oci.digest (not (contains "@" $oci.image)) -}}
{{ $oci.image }}@{{ $oci.digest }}
{{- else -}}
{{ $oci.image }}
{{- end }}
{{- end }}

{{- define "gemini-router.configDir" -}}
/etc/gemini-router/envoy
{{- end }}

{{/* The module, base64, for source chart; fails with instructions when it is missing or too big. */}}
{{- define "gemini-router.wasmBase64" -}}
{{- $wasm := .Files.Get "files/gemini_router.wasm" -}}
{{- if not $wasm -}}
{{- fail "wasm.source=chart needs the module in the chart at files/gemini_router.wasm: run deploy/helm/package.sh --with-module (after `make build`); or use wasm.source=configmap (a ConfigMap you create), oci, imageVolume or url" -}}
{{- end -}}
{{- $limit := 655360 -}}
{{- if gt (len $wasm) $limit -}}
{{- fail (printf "wasm.source=chart: the module is %d bytes, over %d: Helm would store it twice in its release Secret (1 MiB limit) and the install would fail. Use wasm.source=configmap: kubectl create configmap %s --from-file=%s=gemini_router.wasm" (len $wasm) $limit .Values.wasm.configMap.name .Values.wasm.configMap.key) -}}
{{- end -}}
{{- $wasm | b64enc -}}
{{- end }}

{{- define "gemini-router.listenAddress" -}}
{{- if .Values.envoy.listenAddress -}}
{{ .Values.envoy.listenAddress }}
{{- else if eq .Values.mode "sidecar" -}}
127.0.0.1
{{- else -}}
{{ include "gemini-router.anyAddress" . }}
{{- end }}
{{- end }}

{{/* All addresses: IPv6 and IPv4 ("::" with ipv4_compat), or IPv4 only. */}}
{{- define "gemini-router.anyAddress" -}}
{{- if .Values.envoy.ipv6 -}}::{{- else -}}0.0.0.0{{- end -}}
{{- end }}

{{/* A socket address; "::" also serves IPv4 clients (ipv4_compat). */}}
{{- define "gemini-router.socketAddress" -}}
{ address: {{ .address | quote }}, port_value: {{ .port | int }}{{ if eq .address "::" }}, ipv4_compat: true{{ end }} }
{{- end }}

{{/* Pod annotations: config checksum (rolls pods when the config changes) and Prometheus. */}}
{{- define "gemini-router.podAnnotations" -}}
checksum/envoy-config: {{ include "gemini-router.envoyConfig" . | sha256sum }}
{{- if eq .Values.wasm.source "chart" }}
checksum/wasm: {{ .Files.Get "files/gemini_router.wasm" | sha256sum }}
{{- end }}
{{- if .Values.metrics.prometheusAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.envoy.healthPort | int | quote }}
prometheus.io/path: /stats/prometheus
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Init containers that fetch the module (sources oci and url). */}}
{{- define "gemini-router.wasmInitContainers" -}}
{{- $wasmPath := include "gemini-router.wasmPath" . -}}
{{- if eq .Values.wasm.source "oci" }}
- name: gemini-router-fetch-wasm
  image: {{ .Values.wasm.oci.craneImage | quote }}
  imagePullPolicy: IfNotPresent
  command: ["/busybox/sh", "-c"]
  args:
  - |
    set -eu
    crane export "$WASM_IMAGE" - | tar -xOf - plugin.wasm > "$WASM_PATH.tmp"
    test -s "$WASM_PATH.tmp"
    mv "$WASM_PATH.tmp" "$WASM_PATH"
  env:
  - name: WASM_IMAGE
    value: {{ include "gemini-router.wasmImage" . | quote }}
  - name: WASM_PATH
    value: {{ $wasmPath | quote }}
  - name: HOME
    value: /tmp
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
  - name: gemini-router-wasm
    mountPath: {{ include "gemini-router.wasmDir" . }}
  - name: gemini-router-tmp
    mountPath: /tmp
{{- else if eq .Values.wasm.source "url" }}
- name: gemini-router-fetch-wasm
  image: {{ .Values.wasm.url.curlImage | quote }}
  imagePullPolicy: IfNotPresent
  command: ["/bin/sh", "-c"]
  args:
  - |
    set -eu
    curl -fsSL --retry 5 --retry-connrefused -o "$WASM_PATH.tmp" "$WASM_URL"
    echo "$WASM_SHA256  $WASM_PATH.tmp" | sha256sum -c -
    mv "$WASM_PATH.tmp" "$WASM_PATH"
  env:
  - name: WASM_URL
    value: {{ .Values.wasm.url.location | quote }}
  - name: WASM_SHA256
    value: {{ .Values.wasm.url.sha256 | quote }}
  - name: WASM_PATH
    value: {{ $wasmPath | quote }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
  - name: gemini-router-wasm
    mountPath: {{ include "gemini-router.wasmDir" . }}
{{- end }}
{{- end }}

{{/* The Envoy container. */}}
{{- define "gemini-router.envoyContainer" -}}
- name: gemini-router
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  command: ["envoy"]
  args:
  - --config-path
  - {{ include "gemini-router.configDir" . }}/envoy.yaml
  - --concurrency
  - {{ .Values.envoy.concurrency | int | quote }}
  - --log-level
  - {{ .Values.envoy.logLevel }}
  {{- if .Values.drain.enabled }}
  # While draining, every response tells its client to reconnect elsewhere.
  - --drain-time-s
  - {{ .Values.drain.seconds | int | quote }}
  - --drain-strategy
  - immediate
  {{- end }}
  ports:
  - name: http
    containerPort: {{ .Values.envoy.listenPort | int }}
    protocol: TCP
  - name: health
    containerPort: {{ .Values.envoy.healthPort | int }}
    protocol: TCP
  {{- with .Values.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.drain.enabled }}
  lifecycle:
    preStop:
      exec:
        command:
        - /bin/bash
        - -c
        - |
          {{- include "gemini-router.drainScript" . | nindent 10 }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
  - name: gemini-router-envoy
    mountPath: {{ include "gemini-router.configDir" . }}
    readOnly: true
  - name: gemini-router-wasm
    mountPath: {{ include "gemini-router.wasmDir" . }}
    readOnly: true
{{- end }}

{{/* Volumes the Envoy container and the fetchers use. */}}
{{- define "gemini-router.volumes" -}}
- name: gemini-router-envoy
  configMap:
    name: {{ include "gemini-router.fullname" . }}-envoy
{{- if eq .Values.wasm.source "configmap" }}
- name: gemini-router-wasm
  configMap:
    name: {{ .Values.wasm.configMap.name }}
    items:
    - key: {{ .Values.wasm.configMap.key }}
      path: gemini_router.wasm
{{- else if eq .Values.wasm.source "chart" }}
- name: gemini-router-wasm
  configMap:
    name: {{ include "gemini-router.fullname" . }}-wasm
{{- else if eq .Values.wasm.source "imageVolume" }}
- name: gemini-router-wasm
  image:
    reference: {{ include "gemini-router.wasmImage" . | quote }}
    pullPolicy: {{ .Values.wasm.oci.pullPolicy }}
{{- else }}
- name: gemini-router-wasm
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
{{- if eq .Values.wasm.source "oci" }}
- name: gemini-router-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
{{- end }}

{{/*
The preStop drain: start Envoy's graceful drain of the API listener (the
"health" listener keeps serving probes and metrics), let it accept for
drain.seconds while the endpoint is removed, then wait until no request is
active. Talks to the loopback admin API over bash's /dev/tcp: the Envoy image
has no curl. When Envoy cannot be reached there is nothing to wait for.
*/}}
{{- define "gemini-router.drainScript" -}}
admin() {
  exec 3<>/dev/tcp/127.0.0.1/{{ .Values.envoy.adminPort | int }} || return 1
  printf '%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' "$1" "$2" >&3
  cat <&3
  exec 3<&-
}
admin POST '/drain_listeners?graceful&inboundonly' >/dev/null
sleep {{ .Values.drain.seconds | int }}
while true; do
  active=$(admin GET '/stats?filter=http.gemini.downstream_rq_active' | tr -d '\r' | sed -n 's/^http\.gemini\.downstream_rq_active: //p')
  if [ "${active:-0}" = 0 ]; then exit 0; fi
  sleep 1
done
{{- end }}

{{/* A duration value (600s, 10m, 1h, 500ms) in whole seconds. */}}
{{- define "gemini-router.seconds" -}}
{{- $d := . | toString -}}
{{- $n := regexFind "^[0-9]+" $d | int -}}
{{- if hasSuffix "ms" $d -}}{{ div $n 1000 }}{{- else if hasSuffix "m" $d -}}{{ mul $n 60 }}{{- else if hasSuffix "h" $d -}}{{ mul $n 3600 }}{{- else -}}{{ $n }}{{- end -}}
{{- end }}

{{/* A Kubernetes quantity of bytes (1Gi, 512Mi, 1G, 1073741824) as an integer. */}}
{{- define "gemini-router.bytes" -}}
{{- $q := . | toString -}}
{{- $n := regexFind "^[0-9]+" $q | int64 -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $q) $q -}}
{{- mul $n (get $units $unit | default 1) -}}
{{- end }}

{{/* Cross-field checks values.schema.json cannot express clearly. */}}
{{- define "gemini-router.validate" -}}
{{- if and (has .Values.wasm.source (list "oci" "imageVolume")) (not .Values.wasm.oci.image) -}}
{{- fail (printf "wasm.source=%s needs wasm.oci.image: the repository you pushed the module image to (make dist writes it to dist/oci; skopeo copy oci:dist/oci:%s docker://REPO:%s), e.g. --set wasm.oci.image=ghcr.io/acme/gemini-router-wasm" .Values.wasm.source .Chart.AppVersion .Chart.AppVersion) -}}
{{- end -}}
{{- if and (eq .Values.wasm.source "url") (or (not .Values.wasm.url.location) (not .Values.wasm.url.sha256)) -}}
{{- fail "wasm.source=url needs wasm.url.location and wasm.url.sha256" -}}
{{- end -}}
{{- if and (eq .Values.mode "egress") .Values.autoscaling.enabled (not (dig "requests" "cpu" "" .Values.resources)) -}}
{{- fail "autoscaling.enabled needs resources.requests.cpu (the HPA scales on CPU utilization)" -}}
{{- end -}}
{{- if .Values.drain.enabled -}}
{{- $needed := add (.Values.drain.seconds | int) (include "gemini-router.seconds" .Values.envoy.routeTimeout | int) -}}
{{- if lt (.Values.terminationGracePeriodSeconds | int) $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least drain.seconds + envoy.routeTimeout (%d s), or requests in flight are cut at shutdown" (.Values.terminationGracePeriodSeconds | int) $needed) -}}
{{- end -}}
{{- end -}}
{{- with dig "limits" "memory" "" (.Values.resources | default dict) -}}
{{- $limit := include "gemini-router.bytes" . | int64 -}}
{{- if gt ($.Values.envoy.overload.maxHeapBytes | int64) $limit -}}
{{- fail (printf "envoy.overload.maxHeapBytes (%d) must be below resources.limits.memory (%s = %d bytes): the kernel would kill Envoy before the overload manager acts; leave room for the Wasm VMs, which are outside the heap (deploy/README.md, Sizing)" ($.Values.envoy.overload.maxHeapBytes | int64) . $limit) -}}
{{- end -}}
{{- end -}}
{{- $maxBody := dig "max_body_bytes" 33554432 .Values.filter | int64 -}}
{{- if lt (.Values.envoy.bufferLimitBytes | int64) $maxBody -}}
{{- fail (printf "envoy.bufferLimitBytes (%d) must be at least filter.max_body_bytes (%d)" (.Values.envoy.bufferLimitBytes | int64) $maxBody) -}}
{{- end -}}
{{- end }}

{{/*
The filter configuration as JSON: .Values.filter, with
route_removes_accept_encoding set (the filter's route removes accept-encoding,
see _envoy.tpl) unless the values set it.
*/}}
{{- define "gemini-router.filterConfig" -}}
{{- $filter := deepCopy (.Values.filter | default dict) -}}
{{- if not (hasKey $filter "route_removes_accept_encoding") -}}
{{- $_ := set $filter "route_removes_accept_encoding" true -}}
{{- end -}}
{{- $filter | toJson -}}
{{- end }}
