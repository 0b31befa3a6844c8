#!/usr/bin/env python3
"""Render a runnable Envoy config from a gemini-router template.

The templates (deploy/envoy/envoy.yaml, deploy/envoy/envoy-vertex.yaml) are ready
configs that load the module from /etc/envoy/gemini_router.wasm. This script
parses one and edits its fields (never its text): the module path, and what
differs between `make run` (real Gemini over TLS), `make demo` (the local
emulator, plaintext) and the tests: the filter configuration, the listen and
admin addresses, and the upstream. The templates keep requests that are not
POSTs (the filter never routes them) away from the filter, on a first route
that disables it; --no-skip-unrouted removes that route, so the filter sees
(and counts) every request. The templates' filter route removes
accept-encoding and the filter configuration says so
(route_removes_accept_encoding); --config gets that field too unless it sets
it.

    render.py --wasm target/wasm32-wasip1/release/gemini_router.wasm \\
        --upstream http://127.0.0.1:8081 --listen 127.0.0.1:10001 --out /tmp/envoy.yaml

The upstream is a URL: https://HOST[:PORT] (TLS with SNI HOST, certificate checked
against the CA bundle) or http://HOST:PORT (plaintext, HTTP/1.1, for emulators).
The output is YAML that `envoy --mode validate -c OUT` accepts. Needs PyYAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_TEMPLATE = HERE / "envoy.yaml"
WASM_FILTER = "envoy.filters.http.wasm"
HCM = "envoy.filters.network.http_connection_manager"
UPSTREAM_CLUSTER = "gemini"
TLS_SOCKET = "envoy.transport_sockets.tls"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
# The filter field that says the route removes accept-encoding.
ROUTE_REMOVES = "route_removes_accept_encoding"
ACCEPT_ENCODING = "accept-encoding"


class RenderError(Exception):
    """The template does not have the shape this script edits, or an argument is bad."""


def host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise RenderError(f"{what}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def parse_upstream(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RenderError(f"--upstream: expected https://HOST[:PORT] or http://HOST:PORT, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise RenderError(f"--upstream: only scheme, host and port are allowed, got {url!r}")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


def only(items: list[dict], name: str, where: str) -> dict:
    found = [item for item in items if item.get("name") == name]
    if len(found) != 1:
        raise RenderError(f"template: expected exactly one {name!r} in {where}, found {len(found)}")
    return found[0]


def hcm_of(listener: dict) -> dict:
    chains = listener.get("filter_chains") or []
    if len(chains) != 1:
        raise RenderError("template: expected one filter chain on the listener")
    return only(chains[0].get("filters") or [], HCM, "the listener's network filters")["typed_config"]


def skips_filter(route: dict) -> bool:
    """The route disables the Wasm filter (the templates' route for requests it never routes)."""
    config = (route.get("typed_per_filter_config") or {}).get(WASM_FILTER) or {}
    return config.get("@type") == FILTER_CONFIG and config.get("disabled") is True


def routes_remove_encoding(hcm: dict) -> bool:
    """Every route the filter runs on removes accept-encoding (and there is one)."""
    routes = [route for host in hcm.get("route_config", {}).get("virtual_hosts") or []
              for route in host.get("routes") or [] if not skips_filter(route)]
    return bool(routes) and all(ACCEPT_ENCODING in (route.get("request_headers_to_remove") or [])
                                for route in routes)


def render(
    template: str,
    *,
    wasm: str | None = None,
    config: str | None = None,
    listen: str | None = None,
    admin: str | None = None,
    upstream: str | None = None,
    ca_file: str | None = None,
    skip_unrouted: bool = True,
) -> dict:
    """Return the rendered config as a dict. `config` is the filter's JSON configuration;
    `skip_unrouted=False` removes the routes on which the filter is disabled."""
    doc = yaml.safe_load(template)
    static = doc["static_resources"]
    listeners = static.get("listeners") or []
    if len(listeners) != 1:
        raise RenderError("template: expected one listener")
    listener = listeners[0]
    hcm = hcm_of(listener)
    wasm_filter = only(hcm.get("http_filters") or [], WASM_FILTER, "http_filters")
    plugin = wasm_filter["typed_config"]["config"]
    if wasm:
        code = plugin["vm_config"]["code"]
        if "local" not in code:
            raise RenderError("template: the Wasm filter does not load a local module")
        code["local"] = {"filename": wasm}

    if config is not None:
        try:
            parsed = json.loads(config or "{}")
        except json.JSONDecodeError as err:
            raise RenderError(f"--config is not JSON: {err}") from err
        # The templates remove accept-encoding on the filter's routes and tell
        # the filter so; a configuration given here keeps that pair together
        # unless it sets the field itself.
        if isinstance(parsed, dict) and ROUTE_REMOVES not in parsed and routes_remove_encoding(hcm):
            config = json.dumps({**parsed, ROUTE_REMOVES: True}, separators=(",", ":"))
        plugin["configuration"]["value"] = config

    if not skip_unrouted:
        for host in hcm.get("route_config", {}).get("virtual_hosts") or []:
            host["routes"] = [route for route in host.get("routes") or [] if not skips_filter(route)]

    if listen:
        host, port = host_port(listen, "--listen")
        socket = listener["address"]["socket_address"]
        socket.update(address=host, port_value=port)
        # "::" with ipv4_compat serves IPv4 clients too (as v4-mapped addresses).
        socket.pop("ipv4_compat", None)
        if host == "::":
            socket["ipv4_compat"] = True
    if admin:
        host, port = host_port(admin, "--admin")
        doc["admin"]["address"]["socket_address"].update(address=host, port_value=port)

    cluster = only(static.get("clusters") or [], UPSTREAM_CLUSTER, "clusters")
    if upstream:
        host, port, tls = parse_upstream(upstream)
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"].update(address=host, port_value=port)
        options = cluster["typed_extension_protocol_options"][HTTP_OPTIONS]
        if tls:
            if cluster.get("transport_socket", {}).get("name") != TLS_SOCKET:
                raise RenderError("template: the upstream cluster has no TLS transport socket")
            tls_context = cluster["transport_socket"]["typed_config"]
            tls_context["sni"] = host
            for san in tls_context["common_tls_context"]["validation_context"].get(
                "match_typed_subject_alt_names", []
            ):
                san["matcher"] = {"exact": host}
        else:
            cluster.pop("transport_socket", None)
            # ALPN-based auto_config needs TLS; plaintext emulators speak HTTP/1.1.
            options.pop("auto_config", None)
            options["explicit_http_config"] = {"http_protocol_options": {}}
    if ca_file:
        socket = cluster.get("transport_socket")
        if not socket:
            raise RenderError("--ca-file needs a TLS upstream")
        socket["typed_config"]["common_tls_context"]["validation_context"]["trusted_ca"] = {
            "filename": ca_file
        }
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help="template to render (default: %(default)s)")
    parser.add_argument("--wasm", help="path of gemini_router.wasm, made absolute "
                        "(template: /etc/envoy/gemini_router.wasm)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", help="filter configuration as a JSON string")
    group.add_argument("--config-file", type=Path, help="file holding the filter configuration JSON")
    parser.add_argument("--listen", help="listener HOST:PORT (template: 127.0.0.1:10000); "
                        "[::]:PORT listens on IPv6 and IPv4")
    parser.add_argument("--admin", help="admin HOST:PORT (template: 127.0.0.1:9901)")
    parser.add_argument("--upstream", help="https://HOST[:PORT] or http://HOST:PORT")
    parser.add_argument("--ca-file", help="CA bundle for a TLS upstream")
    parser.add_argument("--no-skip-unrouted", dest="skip_unrouted", action="store_false",
                        help="run the filter on every request: remove the template's route that keeps "
                        "requests other than POSTs away from it (they are then counted in its metrics)")
    parser.add_argument("--out", type=Path, help="output file (default: stdout)")
    args = parser.parse_args(argv)

    config = args.config
    if args.config_file:
        config = args.config_file.read_text().strip()
    try:
        doc = render(
            args.template.read_text(),
            wasm=str(Path(args.wasm).resolve()) if args.wasm else None,
            config=config,
            listen=args.listen,
            admin=args.admin,
            upstream=args.upstream,
            ca_file=args.ca_file,
            skip_unrouted=args.skip_unrouted,
        )
    except RenderError as err:
        print(f"render.py: {err}", file=sys.stderr)
        return 2
    text = f"# Rendered from {args.template.name} by deploy/envoy/render.py: do not edit.\n"
    text += yaml.safe_dump(doc, sort_keys=False, width=1000)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
