{{/*
The Envoy bootstrap: the same shape as deploy/envoy/envoy.yaml (comments there
explain each limit and the failure policy), plus a "health" listener that
exposes only GET /ready and GET /stats/prometheus of the loopback admin API.
*/}}
{{- define "gemini-router.envoyConfig" -}}
{{- $up := .Values.upstream -}}
{{- $buffer := .Values.envoy.bufferLimitBytes | int64 -}}
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: {{ .Values.envoy.adminPort | int }} } }
static_resources:
  listeners:
  - name: gemini
    address: { socket_address: { address: {{ include "gemini-router.listenAddress" . | quote }}, port_value: {{ .Values.envoy.listenPort | int }} } }
    # INBOUND: the preStop drain (drain_listeners?inboundonly) closes this
    # listener only; the health listener keeps answering probes and scrapes.
    traffic_direction: INBOUND
    per_connection_buffer_limit_bytes: {{ $buffer }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gemini
          codec_type: AUTO
          stream_idle_timeout: {{ .Values.envoy.streamIdleTimeout }}
          {{- if .Values.envoy.accessLog }}
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string: "[%START_TIME%] \"%REQ(:METHOD)% %PATH(WQ:ORIG)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms upstream=%UPSTREAM_HOST%\n"
          {{- end }}
          route_config:
            name: gemini
            virtual_hosts:
            - name: gemini
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: gemini
                  auto_host_rewrite: true
                  timeout: {{ .Values.envoy.routeTimeout }}
                  idle_timeout: {{ .Values.envoy.streamIdleTimeout }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: gemini_router
                root_id: gemini_router
                allow_on_headers_stop_iteration: true
                failure_policy: {{ .Values.envoy.failurePolicy }}
                {{- if eq .Values.envoy.failurePolicy "FAIL_RELOAD" }}
                reload_config:
                  backoff: { base_interval: 1s, max_interval: 30s }
                {{- end }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {{ .Values.filter | default dict | toJson | quote }}
                vm_config:
                  vm_id: gemini_router
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: {{ include "gemini-router.wasmPath" . | quote }} } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: health
    address: { socket_address: { address: 0.0.0.0, port_value: {{ .Values.envoy.healthPort | int }} } }
    traffic_direction: OUTBOUND
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: health
          route_config:
            name: health
            virtual_hosts:
            - name: admin
              domains: ["*"]
              routes:
              - match:
                  path: /ready
                  headers: [{ name: ":method", string_match: { exact: GET } }]
                route: { cluster: envoy_admin }
              - match:
                  path: /stats/prometheus
                  headers: [{ name: ":method", string_match: { exact: GET } }]
                route: { cluster: envoy_admin }
              # Liveness: answered by Envoy itself, also while it drains.
              - match:
                  path: /live
                  headers: [{ name: ":method", string_match: { exact: GET } }]
                direct_response: { status: 200, body: { inline_string: "live\n" } }
              - match: { prefix: "/" }
                direct_response: { status: 404 }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: gemini
    type: LOGICAL_DNS
    dns_lookup_family: V4_PREFERRED
    connect_timeout: {{ .Values.envoy.connectTimeout }}
    per_connection_buffer_limit_bytes: {{ $buffer }}
    load_assignment:
      cluster_name: gemini
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: {{ $up.host | quote }}, port_value: {{ $up.port | int }} }
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        {{- if $up.tls }}
        auto_config:
          http_protocol_options: {}
          http2_protocol_options: {}
        {{- else }}
        explicit_http_config:
          http_protocol_options: {}
        {{- end }}
    {{- if $up.tls }}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: {{ $up.host | quote }}
        common_tls_context:
          validation_context:
            trusted_ca: { filename: {{ $up.caFile | quote }} }
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: { exact: {{ $up.host | quote }} }
    {{- end }}
  - name: envoy_admin
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: envoy_admin
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: {{ .Values.envoy.adminPort | int }} }
{{- end }}
