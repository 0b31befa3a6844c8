"""The live catalogue: on an upstream 404 the filter asks the upstream which
models the caller's own key can use (GET /v1beta/models through an HTTP
callout to the same cluster), caches the answer per key (by hash), and the
hint names the nearest live models that serve the method the client needs.
A second 404 for the same key does not read the catalogue again; a callout
that times out still gives the static hint."""

from __future__ import annotations

import json
import time

import pytest

from tests import harness
from tests.adversary import RawUpstream, google_error, h1_response
from tests.harness import OPENAI_AUTH, catalogue_reads

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Its own Envoy: the catalogue cache lives in the VM, and the shared one
    # may already hold this key's catalogue from another module's 404.
    return start_envoy({})


def test_a_misspelled_model_gets_the_nearest_live_models(envoy, emulator):
    body = {"model": "gemini-3.5-flsh", "messages": [{"role": "user", "content": "hi"}]}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 404, resp
    hint = resp.headers["x-gemini-router-hint"]
    assert "gemini-3.5-flsh is not among the" in hint and "models this key can use (GET /v1beta/models)" in hint, hint
    assert "the nearest that serve :generateContent: gemini-3.5-flash" in hint, hint
    reads = catalogue_reads(emulator)
    assert len(reads) == 1, reads
    assert reads[0]["query"] == "pageSize=1000"
    assert reads[0]["headers"]["x-goog-api-key"] == harness.API_KEY
    # A second 404 for the same key uses the cached catalogue.
    again = envoy.post(CHAT, {**body, "model": "gemini-3.6-flsh"}, OPENAI_AUTH)
    assert again.status == 404
    assert "the nearest that serve :generateContent: gemini-3.6-flash" in again.headers["x-gemini-router-hint"]
    assert len(catalogue_reads(emulator)) == 1, "the catalogue was read again"
    assert envoy.counter("gemini_router.catalogue.cached") >= 1


class Slow:
    """Answers the chat with a 404 and the catalogue only after the filter's timeout."""

    def __call__(self, request):
        if request.method == "GET":
            time.sleep(3)
            return h1_response(200, [("content-type", "application/json")], json.dumps({"models": []}).encode())
        return h1_response(404, [("content-type", "application/json")], google_error(404, "not found", "NOT_FOUND"))


def test_a_catalogue_that_times_out_still_gives_a_hint():
    upstream = RawUpstream(Slow())
    proxy = harness.Envoy("127.0.0.1", upstream.port, {}).start()
    try:
        started = time.monotonic()
        resp = proxy.post(CHAT, {"model": "gemini-3.5-flsh", "messages": []}, OPENAI_AUTH)
        assert resp.status == 404, resp
        assert time.monotonic() - started < 2.9, "the callout is bounded by its timeout"
        assert "usually means the model is retired, misspelled" in resp.headers["x-gemini-router-hint"]
        assert resp.json()["error"]["type"] == "not_found_error"
        assert proxy.wait_counter("gemini_router.catalogue.failed", 1) == 1
    finally:
        proxy.stop()
        upstream.stop()


def test_a_model_no_rule_matches_is_classified_by_the_cached_catalogue(start_envoy, emulator):
    """Without the built-in rules (and lifecycle) no rule knows imagen-4.0-generate-001,
    revived here: the first chat for it goes to chat/completions as the default family and
    gets the compatibility layer's 404, which reads the key's catalogue; the next one is
    classified by the catalogue (it lists :predict), sent to :predict and translated."""
    emulator.configure(live=["imagen-4.0-generate-001"])
    envoy = start_envoy({"builtin_rules": False, "builtin_lifecycle": False})
    body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a fox"}]}
    reads = len(catalogue_reads(emulator))
    first = envoy.post(CHAT, body, OPENAI_AUTH)
    assert first.status == 404, first
    assert len(catalogue_reads(emulator)) == reads + 1
    second = envoy.post(CHAT, body, OPENAI_AUTH)
    assert second.status == 200, second
    paths = [r["path"] for r in emulator.requests() if r["method"] == "POST"]
    assert paths == ["/v1beta/openai/chat/completions", "/v1beta/models/imagen-4.0-generate-001:predict"], paths
    content = second.json()["choices"][0]["message"]["content"]
    assert content.startswith("![image](data:image/png;base64,"), content[:80]
    assert envoy.counter("gemini_router.rewritten.imagen") == 1
    assert len(catalogue_reads(emulator)) == reads + 1, "the cached catalogue was read again"
