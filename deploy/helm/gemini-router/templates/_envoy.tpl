{{/*
The Envoy bootstrap: the same shape as deploy/envoy/envoy.yaml (comments there
explain each limit and the failure policy), plus a "health" listener that
exposes only GET /ready and GET /stats/prometheus of the loopback admin API.
*/}}
{{/* The action of the API routes (the same with and without the filter). */}}
{{- define "gemini-router.routeAction" -}}
cluster: gemini
auto_host_rewrite: true
timeout: {{ .Values.envoy.routeTimeout }}
idle_timeout: {{ .Values.envoy.streamIdleTimeout }}
{{- end }}

{{- define "gemini-router.envoyConfig" -}}
{{- $up := .Values.upstream -}}
{{- $buffer := .Values.envoy.bufferLimitBytes | int64 -}}
{{- $cb := .Values.envoy.circuitBreakers -}}
# The filter's family and reason become Prometheus labels:
# gemini_router_rewritten{family="imagen"}, gemini_router_passthrough{reason="too_large"}.
stats_config:
  stats_tags:
  - tag_name: family
    regex: '^wasmcustom\.gemini_router\.(?:rewritten|unchanged|migrated)(\.([a-z0-9_]+))$'
  - tag_name: reason
    regex: '^wasmcustom\.gemini_router\.(?:passthrough|rejected)(\.([a-z0-9_]+))$'
  - tag_name: outcome
    regex: '^wasmcustom\.gemini_router\.(?:catalogue|tasks)(\.([a-z0-9_]+))$'
overload_manager:
  refresh_interval: 0.25s
  resource_monitors:
  - name: envoy.resource_monitors.fixed_heap
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig
      max_heap_size_bytes: {{ .Values.envoy.overload.maxHeapBytes | int64 }}
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: {{ .Values.envoy.overload.maxDownstreamConnections | int64 }}
  actions:
  - name: envoy.overload_actions.shrink_heap
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: { value: 0.90 }
  - name: envoy.overload_actions.reset_high_memory_stream
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      scaled: { scaling_threshold: 0.85, saturation_threshold: 0.95 }
  - name: envoy.overload_actions.stop_accepting_requests
    triggers:
    - name: envoy.resource_monitors.fixed_heap
      threshold: { value: 0.95 }
  buffer_factory_config:
    minimum_account_to_track_power_of_two: 20
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: {{ .Values.envoy.adminPort | int }} } }
static_resources:
  listeners:
  - name: gemini
    address: { socket_address: {{ include "gemini-router.socketAddress" (dict "address" (include "gemini-router.listenAddress" .) "port" .Values.envoy.listenPort) }} }
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
              {{- if .Values.envoy.skipUnrouted }}
              # Requests the filter never routes (every method but POST): the
              # filter is disabled on this route (envoy.skipUnrouted).
              - match:
                  prefix: "/"
                  headers:
                  - name: ":method"
                    string_match: { exact: POST }
                    invert_match: true
                route:
                  {{- include "gemini-router.routeAction" . | nindent 18 }}
                typed_per_filter_config:
                  envoy.filters.http.wasm:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
              {{- end }}
              - match: { prefix: "/" }
                route:
                  {{- include "gemini-router.routeAction" . | nindent 18 }}
                # The upstream answers uncompressed, so the filter can rewrite errors
                # and translate answers. Removed here rather than by the filter (whose
                # header change would have Envoy match the route again); the filter
                # configuration says so (gemini-router.filterConfig).
                request_headers_to_remove: ["accept-encoding"]
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
                  value: {{ include "gemini-router.filterConfig" . | quote }}
                vm_config:
                  vm_id: gemini_router
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: {{ include "gemini-router.wasmPath" . | quote }} } }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: health
    address: { socket_address: {{ include "gemini-router.socketAddress" (dict "address" (include "gemini-router.anyAddress" .) "port" .Values.envoy.healthPort) }} }
    traffic_direction: OUTBOUND
    # Probes and scrapes still get through when the connection limit is reached.
    ignore_global_conn_limit: true
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
    circuit_breakers:
      thresholds:
      - priority: DEFAULT
        max_connections: {{ $cb.maxConnections | int }}
        max_pending_requests: {{ $cb.maxPendingRequests | int }}
        max_requests: {{ $cb.maxRequests | int }}
        max_retries: 3
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
