"""Shared helpers for the deployment checks: paths, subprocess, manifest lookup,
and RunningEnvoy, which runs a shipped or rendered config for real."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path

import yaml

from tests import harness

REPO = harness.REPO_ROOT
CHART = REPO / "deploy" / "helm" / "gemini-router"
CI_VALUES = sorted((REPO / "deploy" / "helm" / "ci-values").glob("*.yaml"))
# Kubernetes versions the rendered manifests are checked against: the oldest the
# chart's features need together (image volumes are beta from 1.33; native
# sidecars and preStop sleep from 1.29), and the newest kubernetes-validate ships.
K8S_VERSIONS = ("1.33.0", "1.37.0")
WASM_IN_POD = ("/etc/gemini-router/wasm/gemini_router.wasm", "/etc/gemini-router/wasm/plugin.wasm")


def run(cmd: list[str], timeout: float = 300.0, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict], kind: str, name_suffix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def wasm_filter(envoy_config: dict) -> dict:
    """The Wasm PluginConfig of the gemini listener."""
    listener = next(l for l in envoy_config["static_resources"]["listeners"] if l["name"] == "gemini")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm_filters = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm"]
    assert len(wasm_filters) == 1, "expected one Wasm HTTP filter on the gemini listener"
    return wasm_filters[0]["typed_config"]["config"]


def filter_routes(envoy_config: dict) -> list[dict]:
    """The routes of the gemini listener on which the Wasm filter runs (not
    disabled by the route)."""
    listener = next(l for l in envoy_config["static_resources"]["listeners"] if l["name"] == "gemini")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = [route for host in hcm["route_config"]["virtual_hosts"] for route in host["routes"]]
    return [route for route in routes
            if not ((route.get("typed_per_filter_config") or {}).get("envoy.filters.http.wasm") or {}).get("disabled")]


def check_accept_encoding_pair(envoy_config: dict) -> None:
    """The filter leaves `accept-encoding` to the route
    (`route_removes_accept_encoding`) only where every route it runs on
    removes it, and the shipped configs do both (one route lookup per
    request instead of two)."""
    filter_config = json.loads(wasm_filter(envoy_config)["configuration"]["value"] or "{}")
    routes = filter_routes(envoy_config)
    removing = [route for route in routes if "accept-encoding" in (route.get("request_headers_to_remove") or [])]
    assert routes and len(removing) == len(routes), f"a route the filter runs on keeps accept-encoding: {routes}"
    assert filter_config.get("route_removes_accept_encoding") is True, filter_config


def chart_envoy_config(docs: list[dict], wasm: Path) -> dict:
    """The Envoy config of a rendered release, with the module path made local."""
    text = find(docs, "ConfigMap", "-envoy")["data"]["envoy.yaml"]
    config = yaml.safe_load(text)
    code = wasm_filter(config)["vm_config"]["code"]["local"]
    assert code["filename"] in WASM_IN_POD, code
    code["filename"] = str(wasm)
    return config


class RunningEnvoy:
    """An Envoy started from a config file, for the checks that run a shipped or
    rendered config for real. The config binds its own ports (use port 0); the
    admin address is read back through --admin-address-path, readiness is polled
    on /ready, and the log is kept for failure messages. Use as a context manager."""

    def __init__(self, config: dict, workdir: Path, *, envoy: str | None = None,
                 args: tuple[str, ...] = ("--log-level", "info", "--concurrency", "1")) -> None:
        self.workdir = workdir
        self.config_path = workdir / "envoy.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "envoy.log"
        self.admin_path = workdir / "admin-address"
        self.cmd = [envoy or harness.envoy_bin(), "-c", str(self.config_path), "--base-id", str(harness._next_base_id()),
                    "--admin-address-path", str(self.admin_path), *args]
        self.process: subprocess.Popen | None = None
        self.admin = ""

    def __enter__(self) -> "RunningEnvoy":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"envoy exited with {self.process.returncode}:\n{self.log_tail()}")
            if not self.admin and self.admin_path.exists():
                self.admin = self.admin_path.read_text().strip()
            if self.admin:
                try:
                    status, body = self.admin_get("/ready")
                    if status == 200 and body.strip() == b"LIVE":
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"envoy not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def admin_request(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.admin, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def admin_get(self, path: str) -> tuple[int, bytes]:
        return self.admin_request("GET", path)

    def port(self, listener: str) -> int:
        """The port the kernel gave a listener configured with port 0."""
        _, body = self.admin_get("/listeners?format=json")
        for status in json.loads(body)["listener_statuses"]:
            if status["name"] == listener:
                return int(status["local_address"]["socket_address"]["port_value"])
        raise AssertionError(f"no listener {listener!r} in {body!r}")

    def stats(self) -> dict[str, str]:
        """Envoy's /stats, once the filter has handed over its counters
        (it does on its tick)."""
        time.sleep(harness.FILTER_TICK_SECONDS + 0.3)
        _, body = self.admin_get("/stats")
        return dict(line.split(": ", 1) for line in body.decode().splitlines() if ": " in line)

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]
