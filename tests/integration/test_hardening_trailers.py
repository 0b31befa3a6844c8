"""Trailers end the body, on requests and on responses, over HTTP/1.1
(chunked, with Envoy's `enable_trailers`) and HTTP/2.

Before the fix a request whose body ended in trailers was never decided on:
the filter waited for an end of stream that came with the trailers instead,
and the body went upstream unvalidated (the model `../../v1beta/files`
reached the upstream) and untranslated; a response ending in trailers was
neither translated nor annotated.
"""

from __future__ import annotations

import json

import pytest

from tests import harness
from tests.adversary import H2Answer, RawUpstream, Script, chunked, google_error, h1_request, h1_response, h2_request
from tests.harness import API_KEY, diagnostics

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
HOSTILE = json.dumps({"model": "../../v1beta/files", "messages": [{"role": "user", "content": "x"}]}).encode()
IMAGEN = json.dumps({"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a fox"}]}).encode()
PREDICTIONS = json.dumps({"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "iVBORw0KGgo="}]}).encode()
NOT_FOUND = google_error(404, "models/gemini-x is not found for API version v1main", "NOT_FOUND")
TRAILERS = [("x-checksum", "abc")]


@pytest.fixture(scope="module")
def to_emulator(emulator):
    # Imagen translation is the subject: migration off, the model revived.
    proxy = harness.Envoy(emulator.host, emulator.port, {"migrate": "never"}, http1_trailers=True).start()
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def _imagen_live(emulator):
    emulator.configure(live=["imagen-4.0-generate-001"])


def h2_post(port: int, path: str, body: bytes, headers=()) -> tuple:
    request = [(":method", "POST"), (":path", path), (":scheme", "http"), (":authority", "gemini"),
               ("content-type", "application/json"), ("authorization", f"Bearer {API_KEY}"), *headers]
    return h2_request(port, request, body, TRAILERS)


def h1_post(port: int, path: str, body: bytes) -> tuple:
    head = (f"POST {path} HTTP/1.1\r\nhost: gemini\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {API_KEY}\r\ntransfer-encoding: chunked\r\n\r\n").encode()
    return h1_request(port, head + chunked([body[:10], body[10:]], TRAILERS))


@pytest.mark.parametrize("send", [h2_post, h1_post], ids=["http2", "http1-chunked"])
def test_request_trailers_do_not_skip_validation(to_emulator, emulator, send):
    resp, _ = send(to_emulator.port, CHAT, HOSTILE)
    assert resp.status == 400, resp
    assert resp.json()["error"]["code"] == "invalid_model"
    assert emulator.requests() == [], "the hostile model reached the upstream"


@pytest.mark.parametrize("send", [h2_post, h1_post], ids=["http2", "http1-chunked"])
def test_request_trailers_do_not_skip_translation(to_emulator, emulator, send):
    resp, _ = send(to_emulator.port, CHAT, IMAGEN)
    assert resp.status == 200, resp
    assert resp.json()["choices"][0]["message"]["content"].startswith("![image](data:image/png;base64,")
    (record,) = emulator.requests()
    assert record["path"].endswith("/models/imagen-4.0-generate-001:predict"), record["path"]




@pytest.fixture(scope="module")
def script():
    return Script()


@pytest.fixture(scope="module", params=["http1", "http2"])
def with_trailers(request, script):
    """Envoy in front of an upstream that ends its answers with trailers."""
    http2 = request.param == "http2"
    server = RawUpstream(script, http2=http2)
    proxy = harness.Envoy("127.0.0.1", server.port, {"migrate": "never"}, upstream_http2=http2, http1_trailers=True).start()
    proxy.http2 = http2
    yield proxy
    proxy.stop()
    server.stop()


def answer(envoy, status: int, body: bytes):
    if envoy.http2:
        return H2Answer([(":status", str(status)), ("content-type", "application/json")], body, TRAILERS)
    head = h1_response(status, [("content-type", "application/json"), ("transfer-encoding", "chunked")])
    return head + chunked([body[:7], body[7:]], TRAILERS)


def test_translated_answer_ending_in_trailers(with_trailers, script):
    script.answer = answer(with_trailers, 200, PREDICTIONS)
    resp = with_trailers.post(CHAT, json.loads(IMAGEN), {"authorization": f"Bearer {API_KEY}"})
    assert resp.status == 200, resp
    body = resp.json()
    assert "predictions" not in body, body
    assert body["choices"][0]["message"]["content"] == "![image](data:image/png;base64,iVBORw0KGgo=)"


def test_error_ending_in_trailers_is_one_object(with_trailers, script):
    script.answer = answer(with_trailers, 404, NOT_FOUND)
    gemini = {"model": "gemini-x", "messages": [{"role": "user", "content": "hi"}]}
    resp = with_trailers.post(CHAT, gemini, {"authorization": f"Bearer {API_KEY}"})
    assert resp.status == 404, resp
    body = resp.json()
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error", body
    assert diagnostics(resp)["x-gemini-router-hint"]


def test_error_with_trailers_and_no_body(with_trailers, script):
    if with_trailers.http2:
        script.answer = H2Answer([(":status", "503")], b"", TRAILERS)
    else:
        script.answer = h1_response(503, [("transfer-encoding", "chunked")]) + chunked([], TRAILERS)
    gemini = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = with_trailers.post(CHAT, gemini, {"authorization": f"Bearer {API_KEY}"})
    assert resp.status == 503, resp
    assert resp.json()["error"]["type"] == "api_error"
    assert with_trailers.alive()
