"""The harness itself, with an Envoy that has no wasm filter.

A baseline: if these fail, the problem is the harness, Envoy or the emulator,
not the filter. They need no built wasm.
"""

from __future__ import annotations

import json

import pytest

from tests import harness

pytestmark = pytest.mark.envoy

KEY = {"x-goog-api-key": "test-key"}


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy(with_filter=False)


def test_proxies_to_the_emulator_and_records(envoy, emulator):
    resp = envoy.post("/v1beta/models/gemini-3.5-flash:generateContent",
                      {"contents": [{"parts": [{"text": "hi"}]}]}, KEY)
    assert resp.status == 200, resp
    (record,) = emulator.requests()
    assert record["path"] == "/v1beta/models/gemini-3.5-flash:generateContent"
    assert record["headers"]["x-goog-api-key"] == "test-key"


def test_sse_stream_passes_through(envoy):
    resp = envoy.post("/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse",
                      {"contents": [{"parts": [{"text": "hi"}]}]}, KEY)
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert len(resp.sse_data()) >= 2


def test_large_answers_fit_the_buffer_limits(envoy, emulator):
    emulator.configure(live=["imagen-4.0-generate-001"])  # shut down; its 4-image answers are the largest
    body = {"instances": [{"prompt": "BIG cat"}], "parameters": {"sampleCount": 4}}
    resp = envoy.post("/v1beta/models/imagen-4.0-generate-001:predict", body, KEY)
    assert resp.status == 200
    assert len(resp.json()["predictions"]) == 4
    assert len(resp.body) > 8_000_000


def test_instances_run_side_by_side(start_envoy, envoy):
    other = start_envoy(with_filter=False)
    assert other.port != envoy.port and other.base_id != envoy.base_id
    assert other.request("GET", "/v1beta/models", headers=KEY).status == 200
    other.stop()
    assert other.process.poll() is not None


def test_stats_and_log_are_readable(envoy):
    envoy.request("GET", "/v1beta/models", headers=KEY)
    stats = envoy.stats("http.ingress.")
    assert stats.get("http.ingress.downstream_rq_total", 0) >= 1
    assert "starting main dispatch loop" in envoy.log_text()


def test_bootstrap_carries_the_contract_filter_shape(tmp_path):
    wasm = tmp_path / "f.wasm"
    wasm.write_bytes(b"\0asm")
    import yaml

    config = yaml.safe_load(harness.bootstrap("127.0.0.1", 1, {"api_style": "openai"}, wasm=wasm, skip_unrouted="off"))
    listener = config["static_resources"]["listeners"][0]
    assert listener["per_connection_buffer_limit_bytes"] == 67108864
    assert config["static_resources"]["clusters"][0]["per_connection_buffer_limit_bytes"] == 67108864
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm_filter, router = hcm["http_filters"]
    assert router["name"] == "envoy.filters.http.router"
    inner = wasm_filter["typed_config"]["config"]
    assert inner["allow_on_headers_stop_iteration"] is True
    assert inner["root_id"] == inner["name"] == inner["vm_config"]["vm_id"] == "gemini_router"
    assert json.loads(inner["configuration"]["value"]) == {"api_style": "openai"}
    assert hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["timeout"] == "120s"


def test_bootstrap_skip_modes(tmp_path):
    """GEMINI_ROUTER_SKIP_UNROUTED: "route" (the shipped configs' way, checked
    against them in tests/deploy/test_skip_unrouted.py) and "matcher"."""
    wasm = tmp_path / "f.wasm"
    wasm.write_bytes(b"\0asm")
    import yaml

    def hcm(filter_config, mode):
        config = yaml.safe_load(harness.bootstrap("127.0.0.1", 1, filter_config, wasm=wasm, skip_unrouted=mode))
        return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]

    route = hcm({}, "route")
    skip, api = route["route_config"]["virtual_hosts"][0]["routes"]
    assert skip["match"]["headers"] == [harness.NOT_POST] and api["match"] == {"prefix": "/"}
    assert skip["route"] == api["route"]
    assert skip["typed_per_filter_config"] == {route["http_filters"][0]["name"]: harness.FILTER_DISABLED}
    # With `upstream`, the skip route writes the Host the filter would have.
    skip, api = hcm({"upstream": "https://gemini.example.test:8443"}, "route")["route_config"]["virtual_hosts"][0]["routes"]
    assert skip["route"]["host_rewrite_literal"] == "gemini.example.test:8443"
    assert "host_rewrite_literal" not in api["route"]

    matcher = hcm({}, "matcher")
    wrapper, router = matcher["http_filters"]
    assert wrapper["name"] == "envoy.filters.http.match_delegate"
    assert wrapper["typed_config"]["extension_config"]["name"] == harness.WASM_FILTER_NAME
    assert len(matcher["route_config"]["virtual_hosts"][0]["routes"]) == 1
    # The matcher has no route of its own to set the Host: not used with `upstream`.
    assert hcm({"upstream": "https://h"}, "matcher")["http_filters"][0]["name"] == harness.WASM_FILTER_NAME
