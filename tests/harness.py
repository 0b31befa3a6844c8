"""Test harness: run Envoy with the gemini-router wasm in front of the emulator.

- ``Envoy``: one Envoy process. Listener and admin bind port 0 (the kernel
  picks free ports; the harness reads them back from the admin API), so no
  port is ever guessed. Each instance gets its own ``--base-id`` so instances
  run side by side; readiness is polled on admin ``/ready``, never slept on.
- ``bootstrap(...)``: the bootstrap YAML the harness writes (the wasm filter
  exactly as the filter's contract shows it).
- ``validate(config)``: ``envoy --mode validate`` on a bootstrap with that
  filter configuration; returns ``(returncode, output)``.
- ``http_request(...)``: a plain HTTP/1.1 request with ``http.client`` that
  sends the path exactly as given and returns status, headers and body.

Environment: ``ENVOY_BIN`` (default ``.venv/bin/envoy``),
``GEMINI_ROUTER_WASM`` (default ``target/wasm32-wasip1/release/gemini_router.wasm``;
relative paths are taken from the repository root),
``GEMINI_ROUTER_SKIP_UNROUTED`` (``route`` or ``matcher``: how every instance
keeps requests the filter never routes away from it, see ``bootstrap``; unset
or ``off`` by default), and
``GEMINI_ROUTER_KEEP_LOGS=1`` to keep each instance's work directory (config
and log) after it stops.
"""

from __future__ import annotations

import atexit
import http.client
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENVOY_BIN = REPO_ROOT / ".venv" / "bin" / "envoy"
DEFAULT_WASM = Path("target/wasm32-wasip1/release/gemini_router.wasm")
BUFFER_LIMIT = 67108864  # per_connection_buffer_limit_bytes on listener and cluster
ROUTE_TIMEOUT = "120s"
READY_TIMEOUT = 60.0
# The filter hands its counters to Envoy once a tick (src/filter/mod.rs, TICK_MS).
FILTER_TICK_SECONDS = 1.0
STOP_TIMEOUT = 10.0
WASM_FILTER_NAME = "envoy.filters.http.wasm"
SKIP_UNROUTED_ENV = "GEMINI_ROUTER_SKIP_UNROUTED"
SKIP_UNROUTED_MODES = ("off", "route", "matcher")

_base_ids = itertools.count(1)
_live: list["Envoy"] = []


class WasmMissing(RuntimeError):
    """The filter's .wasm has not been built."""


def envoy_bin() -> str:
    return os.environ.get("ENVOY_BIN", str(DEFAULT_ENVOY_BIN))


def wasm_path() -> Path:
    """The built filter, or WasmMissing saying how to build it."""
    path = Path(os.environ.get("GEMINI_ROUTER_WASM", str(DEFAULT_WASM)))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        raise WasmMissing(
            f"gemini-router wasm not found at {path}: run `make build` "
            "(or `cargo build --release --target wasm32-wasip1`), or set GEMINI_ROUTER_WASM"
        )
    return path


def _next_base_id() -> int:
    # Unique per process and per running instance: the pid keeps parallel
    # pytest workers (xdist) apart, the counter this process's instances; it
    # wraps at 100, so an id a running instance holds is passed over (a
    # long-lived one, such as the session's Envoy or the bench's upstream,
    # would otherwise meet its own id again: Envoy refuses to start then).
    held = {envoy.base_id for envoy in _live}
    for _ in range(100):
        base_id = (os.getpid() % 100_000) * 100 + next(_base_ids) % 100
        if base_id not in held:
            return base_id
    raise RuntimeError("harness: 100 Envoys are running in this process; no --base-id is free")


def configuration_value(filter_config: dict | str | None) -> str:
    """The filter's StringValue configuration: JSON text, or "" for defaults."""
    if filter_config is None:
        return ""
    if isinstance(filter_config, str):
        return filter_config
    return json.dumps(filter_config)


def wasm_filter(filter_config: dict | str | None, wasm: Path) -> dict:
    """The HTTP filter entry, as the filter's contract writes it."""
    return {
        "name": WASM_FILTER_NAME,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "gemini_router",
                "root_id": "gemini_router",
                "allow_on_headers_stop_iteration": True,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration_value(filter_config),
                },
                "vm_config": {
                    "vm_id": "gemini_router",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm)}},
                },
            },
        },
    }


# How requests the filter never routes (every :method but POST, src/request.rs)
# are kept away from it. "route" is what the shipped configs do
# (deploy/envoy/*.yaml, the Helm chart): a first route for them, with the same
# action, on which the Wasm filter is disabled, so Envoy never creates it for
# them and they never enter the VM. "matcher" wraps the filter in Envoy's
# match_delegate with a SkipFilter matcher instead: Envoy skips its callbacks,
# but still creates the filter and runs its access-log handler, so the VM still
# creates, logs and deletes a context for every skipped request (measured by
# bench/run.py; not shipped).
NOT_POST = {"name": ":method", "string_match": {"exact": "POST"}, "invert_match": True}
FILTER_DISABLED = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
SKIP_FILTER_MATCHER = {
    "matcher_list": {
        "matchers": [
            {
                "predicate": {
                    "not_matcher": {
                        "single_predicate": {
                            "input": {
                                "name": "request-method",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                                    "header_name": ":method",
                                },
                            },
                            "value_match": {"exact": "POST"},
                        }
                    }
                },
                "on_match": {
                    "action": {
                        "name": "skip",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
                        },
                    }
                },
            }
        ]
    }
}


def skip_unrouted_default() -> str:
    """The mode instances use unless told: ``GEMINI_ROUTER_SKIP_UNROUTED``, or "off"."""
    mode = os.environ.get(SKIP_UNROUTED_ENV, "") or "off"
    if mode not in SKIP_UNROUTED_MODES:
        raise ValueError(f"{SKIP_UNROUTED_ENV}={mode!r}: expected one of {', '.join(SKIP_UNROUTED_MODES)}")
    return mode


def behind_matcher(http_filter: dict) -> dict:
    """An HTTP filter entry wrapped in ``envoy.filters.http.match_delegate``,
    skipped for every request whose :method is not POST."""
    return {
        "name": "envoy.filters.http.match_delegate",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": http_filter,
            "xds_matcher": SKIP_FILTER_MATCHER,
        },
    }


def upstream_authority(filter_config: dict | str | None) -> str | None:
    """The ``:authority`` the filter's ``upstream`` option writes (host[:port],
    the default port dropped), or None when it is not set."""
    config = filter_config
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return None  # a configuration the filter refuses (tests of validation)
    upstream = config.get("upstream") if isinstance(config, dict) else None
    if not isinstance(upstream, str):
        return None
    parts = urlsplit(upstream)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def bootstrap(
    upstream_host: str,
    upstream_port: int,
    filter_config: dict | str | None = None,
    *,
    with_filter: bool = True,
    wasm: Path | None = None,
    buffer_limit: int = BUFFER_LIMIT,
    upstream_http2: bool = False,
    http1_trailers: bool = False,
    skip_unrouted: str | None = None,
    route_removes_accept_encoding: bool = False,
) -> str:
    """Bootstrap YAML: listener and admin on 127.0.0.1 port 0, route / to the upstream.

    ``buffer_limit`` sets ``per_connection_buffer_limit_bytes`` on the listener
    and the cluster; ``upstream_http2`` speaks HTTP/2 (cleartext) upstream;
    ``http1_trailers`` makes Envoy read and send HTTP/1.1 chunked trailers on
    both sides (HTTP/2 trailers always pass).

    ``skip_unrouted`` ("off", "route" or "matcher"; default
    ``GEMINI_ROUTER_SKIP_UNROUTED``) keeps requests that are not POSTs away
    from the filter (see ``NOT_POST``). The filter then does not apply its
    ``upstream`` option to them either, so the rule of the shipped configs
    holds here too: with ``upstream`` set, "route" gives the skip route that
    Host (``host_rewrite_literal``, as the shipped configs'
    ``auto_host_rewrite`` does), and "matcher", which has no route of its
    own, is not used.

    ``route_removes_accept_encoding`` does what the shipped configs do: the
    route the filter runs on removes ``accept-encoding``, and a filter
    configuration given as a dict says so (the field of that name)."""
    mode = skip_unrouted_default() if skip_unrouted is None else skip_unrouted
    if mode not in SKIP_UNROUTED_MODES:
        raise ValueError(f"skip_unrouted={mode!r}: expected one of {', '.join(SKIP_UNROUTED_MODES)}")
    if route_removes_accept_encoding and isinstance(filter_config, dict):
        filter_config = {"route_removes_accept_encoding": True, **filter_config}
    authority = upstream_authority(filter_config)
    if not with_filter or (mode == "matcher" and authority):
        mode = "off"
    http_filters = []
    if with_filter:
        entry = wasm_filter(filter_config, wasm or wasm_path())
        http_filters.append(behind_matcher(entry) if mode == "matcher" else entry)
    action = {"cluster": "upstream", "timeout": ROUTE_TIMEOUT}
    routes: list[dict] = [{"match": {"prefix": "/"}, "route": action}]
    if route_removes_accept_encoding:
        routes[0]["request_headers_to_remove"] = ["accept-encoding"]
    if mode == "route":
        # A copy, so the YAML holds two plain mappings rather than an alias.
        skip_action = {**action, "host_rewrite_literal": authority} if authority else dict(action)
        routes.insert(0, {"match": {"prefix": "/", "headers": [NOT_POST]}, "route": skip_action,
                          "typed_per_filter_config": {WASM_FILTER_NAME: FILTER_DISABLED}})
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "per_connection_buffer_limit_bytes": buffer_limit,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "ingress",
                                        "codec_type": "AUTO",
                                        **({"http_protocol_options": {"enable_trailers": True}} if http1_trailers else {}),
                                        "route_config": {
                                            "name": "local",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": routes,
                                                }
                                            ],
                                        },
                                        "http_filters": http_filters,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "upstream",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "per_connection_buffer_limit_bytes": buffer_limit,
                    **_upstream_protocol(upstream_http2, http1_trailers),
                    "load_assignment": {
                        "cluster_name": "upstream",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {"address": upstream_host, "port_value": upstream_port}
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def _upstream_protocol(http2: bool, http1_trailers: bool) -> dict:
    if not http2 and not http1_trailers:
        return {}
    explicit = {"http2_protocol_options": {}} if http2 else {"http_protocol_options": {"enable_trailers": True}}
    return {
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": explicit,
            }
        }
    }


@dataclass
class HttpResponse:
    status: int
    header_list: list[tuple[str, str]]
    body: bytes
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        merged: dict[str, str] = {}
        for name, value in self.header_list:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self.headers = merged

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def sse_data(self) -> list[str]:
        """The `data:` payloads of an SSE body, in order."""
        out = []
        for line in self.text.replace("\r\n", "\n").split("\n"):
            if line.startswith("data:"):
                out.append(line[5:].strip())
        return out

    def __repr__(self) -> str:
        body = self.body[:600]
        return f"HttpResponse({self.status}, {self.headers!r}, {body!r}{'...' if len(self.body) > 600 else ''})"


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> HttpResponse:
    """Send one request; the path goes on the request line exactly as given."""
    host_port = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.partition(":")
    all_headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body)
        all_headers.setdefault("content-type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        skip_host = any(k.lower() == "host" for k in all_headers)
        conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for name, value in all_headers.items():
            conn.putheader(name, value)
        if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in all_headers):
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, resp.getheaders(), data)
    finally:
        conn.close()


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Envoy:
    """One Envoy process in front of an upstream (the emulator)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        filter_config: dict | str | None = None,
        *,
        with_filter: bool = True,
        name: str = "envoy",
        **bootstrap_options: Any,
    ) -> None:
        self.filter_config = filter_config
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix="gemini-router-envoy-"))
        self.config_path = self.workdir / "envoy.yaml"
        self.config_path.write_text(
            bootstrap(upstream_host, upstream_port, filter_config, with_filter=with_filter, **bootstrap_options)
        )
        self.log_path = self.workdir / "envoy.log"
        self.admin_path = self.workdir / "admin-address"
        self.base_id = _next_base_id()
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.admin_url = ""

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Envoy":
        cmd = [
            envoy_bin(),
            "-c", str(self.config_path),
            "--base-id", str(self.base_id),
            "--concurrency", "1",
            "--log-level", "info",
            "--admin-address-path", str(self.admin_path),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _live.append(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Envoy exited with status {self.process.returncode} before it was ready.\n"
                    f"--- Envoy log ({self.log_path}) ---\n{self.log_tail()}"
                )
            if not self.admin_url and self.admin_path.exists():
                address = self.admin_path.read_text().strip()
                if address:
                    self.admin_url = f"http://{address}"
            if self.admin_url:
                try:
                    status, _ = _get(f"{self.admin_url}/ready", timeout=2)
                except OSError:
                    status = 0
                if status == 200:
                    self.port = self._listener_port()
                    return
            time.sleep(0.02)
        raise RuntimeError(f"Envoy not ready after {READY_TIMEOUT}s.\n--- Envoy log ---\n{self.log_tail()}")

    def _listener_port(self) -> int:
        _, body = _get(f"{self.admin_url}/listeners?format=json")
        for listener in json.loads(body)["listener_statuses"]:
            if listener["name"] == "main":
                return int(listener["local_address"]["socket_address"]["port_value"])
        raise RuntimeError(f"listener 'main' not found in {body!r}")

    def stop(self) -> None:
        if self in _live:
            _live.remove(self)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        if not os.environ.get("GEMINI_ROUTER_KEEP_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- traffic -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        """The process runs and its admin answers /ready."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            status, _ = _get(f"{self.admin_url}/ready", timeout=5)
        except OSError:
            return False
        return status == 200

    def request(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        return http_request(self.url, method, path, **kwargs)

    def post(self, path: str, json_body: Any = None, headers: dict[str, str] | None = None, **kwargs: Any) -> HttpResponse:
        return http_request(self.url, "POST", path, json_body=json_body, headers=headers, **kwargs)

    # -- observation -------------------------------------------------------

    def stats(self, prefix: str = "", settled: bool = True) -> dict[str, int]:
        """Counters and gauges from admin /stats, by full name (e.g. wasmcustom.gemini_router.requests_total).

        The filter hands its counters to Envoy on its root context's tick
        (``FILTER_TICK_SECONDS``): ``settled`` (the default) first waits a
        tick and a margin whenever the filter's counters are asked for, so
        that every request made before the call is counted."""
        if settled and (prefix.startswith("wasmcustom") or "wasmcustom".startswith(prefix)):
            time.sleep(FILTER_TICK_SECONDS + 0.3)
        _, body = _get(f"{self.admin_url}/stats")
        out: dict[str, int] = {}
        for line in body.decode().splitlines():
            name, sep, value = line.partition(": ")
            if not sep or not name.startswith(prefix):
                continue
            try:
                out[name] = int(value)
            except ValueError:
                continue  # histograms
        return out

    def counter(self, name: str) -> int:
        """A filter metric by the name the filter defines (wasmcustom. is added); 0 when absent."""
        full = name if name.startswith("wasmcustom.") else f"wasmcustom.{name}"
        return self.stats(full).get(full, 0)

    def wait_counter(self, name: str, at_least: int, timeout: float = 5.0) -> int:
        """Poll a counter until it reaches ``at_least`` (metrics move on the filter's tick)."""
        full = name if name.startswith("wasmcustom.") else f"wasmcustom.{name}"
        deadline = time.monotonic() + timeout
        value = self.stats(full, settled=False).get(full, 0)
        while value < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.stats(full, settled=False).get(full, 0)
        return value

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(since)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, max_chars: int = 20000) -> str:
        text = self.log_text()
        return text if len(text) <= max_chars else "...\n" + text[-max_chars:]

    @staticmethod
    def validate(filter_config: dict | str | None) -> tuple[int, str]:
        return validate(filter_config)


def live_envoys() -> list[Envoy]:
    return list(_live)


@atexit.register
def _stop_all() -> None:
    # A safety net for interrupted runs: fixtures normally stop their instances.
    for envoy in list(_live):
        envoy.stop()


def validate(filter_config: dict | str | None, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``envoy --mode validate`` on a bootstrap carrying this filter configuration."""
    workdir = Path(tempfile.mkdtemp(prefix="gemini-router-validate-"))
    config_path = workdir / "envoy.yaml"
    config_path.write_text(bootstrap("127.0.0.1", 9, filter_config))
    try:
        proc = subprocess.run(
            [envoy_bin(), "--mode", "validate", "-c", str(config_path), "--base-id", str(_next_base_id()),
             "--log-level", "info"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return proc.returncode, proc.stdout + proc.stderr


# -- assertions shared by the integration and client suites ---------------------

API_KEY = "test-key"
NATIVE_AUTH = {"x-goog-api-key": API_KEY}
OPENAI_AUTH = {"authorization": f"Bearer {API_KEY}"}

DIAGNOSTIC_HEADERS = (
    "x-gemini-router-model",
    "x-gemini-router-family",
    "x-gemini-router-original-path",
    "x-gemini-router-upstream-path",
    "x-gemini-router-rule",
    "x-gemini-router-hint",
)


def is_catalogue_read(record: dict) -> bool:
    """A live-catalogue read the filter made after a 404 (GET .../models)."""
    return (
        record["method"] == "GET"
        and record["path"].rstrip("/").endswith("/models")
        and record["query"].startswith("pageSize=")
    )


def catalogue_reads(emulator: Any) -> list[dict]:
    """The live-catalogue reads the emulator recorded."""
    return [r for r in emulator.requests() if is_catalogue_read(r)]


def only_request(emulator: Any) -> dict:
    """The single request the emulator recorded besides the filter's
    live-catalogue reads after a 404 (fails if there were more or none)."""
    records = [r for r in emulator.requests() if not is_catalogue_read(r)]
    assert len(records) == 1, f"expected exactly one upstream request, got {len(records)}: {records!r}"
    return records[0]


def diagnostics(resp: HttpResponse) -> dict[str, str]:
    """The diagnostic headers of a response (the lifecycle headers, such as
    x-gemini-router-replacement, are not diagnostics: every answer for a
    model with an announced shutdown carries them)."""
    return {k: v for k, v in resp.headers.items() if k in DIAGNOSTIC_HEADERS}


def assert_no_diagnostics(resp: HttpResponse) -> None:
    assert diagnostics(resp) == {}, f"unexpected diagnostic headers: {diagnostics(resp)!r}"


def assert_length_matches(resp: HttpResponse) -> None:
    """content-length, when sent, is the real body length."""
    if "content-length" in resp.headers:
        assert int(resp.headers["content-length"]) == len(resp.body), resp
