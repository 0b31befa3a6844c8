"""One request cannot kill or bloat the VM: bodies built to make a translator
or the error rewriter build a huge tree are refused (or passed through) with
memory bounded by the README's formula, checked on Envoy's resident memory.

The filter's bound for one request: peak VM memory <= 4 x body +
max_body_bytes + 8 MiB (the body held, at most 65,536 + body/64 parsed values
of <= 128 bytes, and an output of at most max_body_bytes); here the hostile
bodies are refused before any output is built, and error bodies announced
above 64 KiB are never read. Wasm memory is never returned to the system, so a VM's
resident size is the peak of every request it has served: the test measures
Envoy's RSS growth across the hostile requests and allows, besides the
filter's bound, one more body-sized buffer held by Envoy itself.
"""

from __future__ import annotations

import json

import pytest

from tests import harness
from tests.adversary import RawUpstream, Script, h1_response, rss_bytes
from tests.harness import NATIVE_AUTH, OPENAI_AUTH, diagnostics

pytestmark = pytest.mark.envoy

MIB = 1024 * 1024


def bound(body: int) -> int:
    """The filter's bound without an output (4 x body + 8 MiB: these bodies
    are refused before one is built) plus Envoy's own copy of the body and
    16 MiB of allocator slack."""
    return 4 * body + 8 * MIB + body + 16 * MIB




@pytest.fixture(scope="module")
def script():
    return Script(default=h1_response(200, [("content-type", "application/json")], b"{}"))


@pytest.fixture(scope="module")
def envoy(script):
    server = RawUpstream(script)
    proxy = harness.Envoy("127.0.0.1", server.port, {"family_styles": {"embedding": "native"}, "migrate": "never"}).start()
    yield proxy
    proxy.stop()
    server.stop()


def settle(envoy) -> int:
    """RSS after a small request, so lazily created state is counted before."""
    envoy.post("/v1beta/models/gemini-3.5-flash:generateContent", {"contents": []}, NATIVE_AUTH)
    return rss_bytes(envoy.pid)


def test_millions_of_empty_embedding_inputs(envoy):
    before = settle(envoy)
    body = b'{"model":"gemini-embedding-001","input":[' + b",".join([b'""'] * 4_000_000) + b"]}"
    assert len(body) > 11 * MIB
    resp = envoy.post("/v1beta/openai/embeddings", body=body, headers={**OPENAI_AUTH, "content-type": "application/json"})
    assert resp.status == 413, resp
    error = resp.json()["error"]
    assert "JSON objects, arrays and strings" in error["message"], error
    growth = rss_bytes(envoy.pid) - before
    assert growth <= bound(len(body)), f"RSS grew {growth / MIB:.0f} MiB for an {len(body) / MIB:.0f} MiB body"
    # The VM is still there: the next request is routed.
    ok = envoy.post("/v1beta/openai/chat/completions", {"model": "gemini-3.5-flash", "messages": []}, OPENAI_AUTH)
    assert ok.status == 200 and ok.headers.get("x-envoy-upstream-service-time") is not None, ok
    print(f"embeddings 4M inputs: body {len(body) / MIB:.1f} MiB, RSS growth {growth / MIB:.1f} MiB")


def test_millions_of_empty_contents_for_an_imagen_model(envoy):
    before = settle(envoy)
    body = b'{"contents":[' + b",".join([b"{}"] * 8_000_000) + b"]}"
    assert len(body) > 22 * MIB
    resp = envoy.post(
        "/v1beta/models/imagen-4.0-generate-001:generateContent",
        body=body,
        headers={**NATIVE_AUTH, "content-type": "application/json"},
    )
    assert resp.status == 413, resp
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED" or resp.json()["error"]["code"] == 413
    growth = rss_bytes(envoy.pid) - before
    assert growth <= bound(len(body)), f"RSS grew {growth / MIB:.0f} MiB for a {len(body) / MIB:.0f} MiB body"
    print(f"imagen 8M contents: body {len(body) / MIB:.1f} MiB, RSS growth {growth / MIB:.1f} MiB")


@pytest.mark.parametrize("size_mib", [16, 60])
def test_error_body_of_many_small_values(envoy, script, size_mib):
    before = settle(envoy)
    values = b"[" + b",".join([b"{}"] * (size_mib * MIB // 3)) + b"]"
    script.answer = h1_response(500, [("content-type", "application/json")], values)
    resp = envoy.post("/v1beta/openai/chat/completions", {"model": "gemini-3.5-flash", "messages": []}, OPENAI_AUTH)
    script.answer = b""
    assert resp.status == 500, resp
    assert resp.body == values, "an error body above 64 KiB passes as it is"
    assert diagnostics(resp)["x-gemini-router-hint"]
    growth = rss_bytes(envoy.pid) - before
    # Nothing of the body enters the VM (it never reads more than 64 KiB);
    # Envoy may hold up to one body in flight.
    assert growth <= size_mib * MIB + 16 * MIB, f"RSS grew {growth / MIB:.0f} MiB for a {size_mib} MiB error body"
    assert envoy.alive()
    print(f"error body {size_mib} MiB: RSS growth {growth / MIB:.1f} MiB")
