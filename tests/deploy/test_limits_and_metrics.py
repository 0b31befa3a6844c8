"""Limits and metrics of the Envoy configs, checked on a running Envoy with the
built module in front of the emulator:

- the chart's config exposes the filter's counters on the health listener's
  /stats/prometheus (where Prometheus scrapes) with family and reason as
  labels, and the example alert rules use only metric names that appear there;
- the downstream connection limit of the shipped config refuses the
  connection over the limit;
- the overload manager, connection limit and circuit breakers are in every
  shipped config and in the chart's, with the chart's values.
"""

from __future__ import annotations

import http.client
import re
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import CHART, REPO, RunningEnvoy, chart_envoy_config, find, parse_manifests, run

ENVOY_DIR = REPO / "deploy" / "envoy"
CHAT = "/v1beta/openai/chat/completions"
SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        out[(match["name"], labels)] = float(match["value"])
    return out


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def chart_envoy(helm_template, wasm, emulator, tmp_path_factory):
    listen, admin, health = free_port(), free_port(), free_port()
    proc = helm_template(
        "--set", f"upstream.host=127.0.0.1,upstream.port={emulator.port},upstream.tls=false",
        "--set", f"envoy.listenAddress=127.0.0.1,envoy.listenPort={listen},envoy.adminPort={admin},envoy.healthPort={health}",
    )
    assert proc.returncode == 0, proc.stderr
    docs = parse_manifests(proc.stdout)
    with RunningEnvoy(chart_envoy_config(docs, wasm), tmp_path_factory.mktemp("chart-envoy")) as envoy:
        envoy.listen, envoy.health, envoy.docs = listen, health, docs
        yield envoy


def test_scraped_metrics_carry_family_and_reason_labels(chart_envoy, emulator):
    url = f"http://127.0.0.1:{chart_envoy.listen}"
    # imagen-4.0 is shut down: it goes to gemini-3.1-flash-image (rewritten,
    # family gemini_image; migrated, family imagen).
    for model in ("imagen-4.0-generate-001", "gemini-3.5-flash", "../x"):
        harness.http_request(url, "POST", CHAT, json_body=chat(model), headers=harness.OPENAI_AUTH)
    harness.http_request(url, "POST", CHAT, body="{nope", headers=harness.OPENAI_AUTH)
    time.sleep(harness.FILTER_TICK_SECONDS + 0.3)  # the filter hands over its counters on its tick
    scrape = harness.http_request(f"http://127.0.0.1:{chart_envoy.health}", "GET", "/stats/prometheus")
    assert scrape.status == 200
    samples = prometheus_samples(scrape.text)
    assert samples[("gemini_router_rewritten", frozenset({("family", "gemini_image")}))] == 1
    assert samples[("gemini_router_migrated", frozenset({("family", "imagen")}))] == 1
    assert samples[("gemini_router_unchanged", frozenset({("family", "gemini")}))] == 1
    assert samples[("gemini_router_rejected", frozenset({("reason", "invalid_model")}))] == 1
    assert samples[("gemini_router_passthrough", frozenset({("reason", "invalid_json")}))] == 1
    assert samples[("gemini_router_requests_total", frozenset())] == 4
    names = {name for name, _ in samples}
    baked = sorted(n for n in names if re.match(r"gemini_router_(rewritten|unchanged|migrated|passthrough|rejected|catalogue|tasks)_", n))
    assert not baked, f"family or reason still in the metric name: {baked}"


def test_alert_rules_use_metrics_envoy_exports(chart_envoy):
    """Every metric an example alert names is one the running Envoy exports."""
    scrape = harness.http_request(f"http://127.0.0.1:{chart_envoy.health}", "GET", "/stats/prometheus")
    exported = {name for name, _ in prometheus_samples(scrape.text)}
    rules = yaml.safe_load((CHART / "files" / "prometheus-alerts.yaml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    for expr in exprs:
        used = set(re.findall(r"\b(gemini_router_[a-z_]+|envoy_[a-z_]+)\b", expr))
        assert used and used <= exported, (expr, used - exported)


def test_health_listener_is_exempt_from_the_connection_limit(chart_envoy):
    config = yaml.safe_load(find(chart_envoy.docs, "ConfigMap", "-envoy")["data"]["envoy.yaml"])
    health = next(l for l in config["static_resources"]["listeners"] if l["name"] == "health")
    assert health["ignore_global_conn_limit"] is True


def test_connection_over_the_limit_is_refused(wasm, emulator, tmp_path):
    """The shipped envoy.yaml's global_downstream_max_connections, lowered to 2."""
    proc = run([sys.executable, str(ENVOY_DIR / "render.py"), "--wasm", str(wasm), "--upstream", emulator.url,
                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    monitor = next(m for m in config["overload_manager"]["resource_monitors"]
                   if m["name"] == "envoy.resource_monitors.global_downstream_max_connections")
    monitor["typed_config"]["max_active_downstream_connections"] = 2
    with RunningEnvoy(config, tmp_path) as envoy:
        port = envoy.port("gemini")
        held = []
        try:
            for _ in range(2):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/v1beta/models", headers=harness.NATIVE_AUTH)
                assert conn.getresponse().read() is not None
                held.append(conn)
            extra = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
                extra.request("GET", "/v1beta/models", headers=harness.NATIVE_AUTH)
                extra.getresponse().read()
        finally:
            for conn in held:
                conn.close()
        assert int(envoy.stats()["listener.127.0.0.1_0.downstream_global_cx_overflow"]) >= 1


def overload_of(config: dict) -> dict:
    manager = config["overload_manager"]
    monitors = {m["name"]: m["typed_config"] for m in manager["resource_monitors"]}
    actions = {a["name"]: a["triggers"][0] for a in manager["actions"]}
    return {"monitors": monitors, "actions": actions, "buffer": manager.get("buffer_factory_config", {})}


def check_limits(config: dict, heap: int, connections: int, breakers: dict) -> None:
    overload = overload_of(config)
    assert overload["monitors"]["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"] == heap
    assert overload["monitors"]["envoy.resource_monitors.global_downstream_max_connections"][
        "max_active_downstream_connections"] == connections
    actions = overload["actions"]
    assert set(actions) == {"envoy.overload_actions.shrink_heap", "envoy.overload_actions.reset_high_memory_stream",
                            "envoy.overload_actions.stop_accepting_requests"}
    assert all(t["name"] == "envoy.resource_monitors.fixed_heap" for t in actions.values())
    # Resetting the biggest streams starts before Envoy refuses new requests.
    reset = actions["envoy.overload_actions.reset_high_memory_stream"]["scaled"]
    assert reset["scaling_threshold"] < actions["envoy.overload_actions.stop_accepting_requests"]["threshold"]["value"]
    assert overload["buffer"]["minimum_account_to_track_power_of_two"] <= 25  # tracks streams of 32 MiB and less
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == "gemini")
    thresholds = cluster["circuit_breakers"]["thresholds"][0]
    assert {k: thresholds[k] for k in breakers} == breakers


@pytest.mark.parametrize("template", ["envoy.yaml", "envoy-vertex.yaml"])
def test_shipped_configs_have_the_limits(template):
    config = yaml.safe_load((ENVOY_DIR / template).read_text())
    check_limits(config, 1073741824, 1000, {"max_connections": 1024, "max_pending_requests": 256, "max_requests": 1024})


def test_chart_limits_follow_the_values(helm_template, wasm):
    proc = helm_template("--set", "envoy.overload.maxHeapBytes=400000000,envoy.overload.maxDownstreamConnections=50",
                         "--set", "envoy.circuitBreakers.maxRequests=64,resources.limits.memory=512Mi")
    assert proc.returncode == 0, proc.stderr
    config = chart_envoy_config(parse_manifests(proc.stdout), wasm)
    check_limits(config, 400000000, 50, {"max_requests": 64, "max_pending_requests": 256})


def test_chart_refuses_a_heap_limit_above_the_memory_limit(helm_template):
    proc = helm_template("--set", "resources.limits.memory=512Mi")
    assert proc.returncode != 0
    assert "envoy.overload.maxHeapBytes (671088640) must be below resources.limits.memory (512Mi = 536870912 bytes)" in proc.stderr
