"""Every error status of a routed request reaches the client as one error
object in its own shape, with the original status, Google's message, the
upstream's headers (Retry-After among them) and a hint fitting the status;
bodies the filter replaces never carry a stale content-encoding or
content-length.

Before the fix only 404s were rewritten: a 429, 500 or 503 reached an
OpenAI-style client as Google's JSON list; a 404 with `content-length: 0`
got no body; and a gzip-encoded translated 2xx became a 502 whose plain JSON
body still said `content-encoding: gzip`.
"""

from __future__ import annotations

import gzip
import json

import pytest

from tests import harness
from tests.adversary import RawUpstream, Script, google_error, h1_response
from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_length_matches, diagnostics

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
GEMINI_CHAT = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hi"}]}
IMAGEN_CHAT = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a fox"}]}
NATIVE = "/v1beta/models/gemini-3.5-flash:generateContent"
QUOTA = [
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
]




@pytest.fixture(scope="module")
def script():
    return Script()


@pytest.fixture(scope="module")
def envoy(script):
    server = RawUpstream(script)
    # Imagen translations are among the subjects: migration off.
    proxy = harness.Envoy("127.0.0.1", server.port, {"migrate": "never"}).start()
    yield proxy
    proxy.stop()
    server.stop()


@pytest.mark.parametrize("status,google,kind,hint", [
    (429, "RESOURCE_EXHAUSTED", "rate_limit_error", "GenerateRequestsPerMinutePerProjectPerModel-FreeTier (limit 10) is exhausted"),
    (500, "INTERNAL", "api_error", "a failure at the upstream, not in the routing; retry with backoff"),
    (503, "UNAVAILABLE", "api_error", "a failure at the upstream, not in the routing; retry with backoff"),
    (401, "UNAUTHENTICATED", "authentication_error", "missing, invalid, or lacks permission"),
])
def test_error_statuses_reach_an_openai_client_as_one_object(envoy, script, status, google, kind, hint):
    details = QUOTA if status == 429 else None
    body = google_error(status, "Upstream says no.", google, details)
    script.answer = h1_response(status, [("content-type", "application/json"), ("retry-after", "30"),
                                         ("x-upstream-trace", "t-1")], body)
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert resp.status == status, resp
    assert_length_matches(resp)
    error = resp.json()["error"]
    assert error["type"] == kind, error
    assert error["message"].startswith("Upstream says no. (gemini-router: "), error
    assert resp.headers["retry-after"] == "30"
    assert resp.headers["x-upstream-trace"] == "t-1"
    assert hint in diagnostics(resp)["x-gemini-router-hint"]


def test_a_native_429_keeps_google_shape_and_details(envoy, script):
    script.answer = h1_response(429, [("content-type", "application/json")], google_error(429, "Quota.", "RESOURCE_EXHAUSTED", QUOTA))
    resp = envoy.post(NATIVE, {"contents": [{"parts": [{"text": "x"}]}]}, NATIVE_AUTH)
    assert resp.status == 429
    error = resp.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["details"] == QUOTA, error
    # Google gave no Retry-After header: the filter sets it from RetryInfo.
    assert resp.headers["retry-after"] == "31"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_error_without_a_body_gets_one(envoy, script, framing):
    if framing == "chunked":
        script.answer = h1_response(404, [("transfer-encoding", "chunked"), ("retry-after", "5")]) + b"0\r\n\r\n"
    else:
        script.answer = h1_response(404, [("content-length", "0"), ("retry-after", "5")])
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert resp.status == 404, resp
    assert_length_matches(resp)
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert error["type"] == "not_found_error"
    assert "upstream answered 404 with an empty body" in error["message"]
    assert resp.headers["retry-after"] == "5"
    assert diagnostics(resp)["x-gemini-router-hint"]


def test_a_gzip_translated_answer_becomes_a_plain_502(envoy, script):
    predictions = json.dumps({"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "AAAA"}]}).encode()
    script.answer = h1_response(200, [("content-type", "application/json"), ("content-encoding", "gzip")], gzip.compress(predictions))
    resp = envoy.post(CHAT, IMAGEN_CHAT, OPENAI_AUTH)
    assert resp.status == 502, resp
    assert "content-encoding" not in resp.headers, resp.headers
    assert_length_matches(resp)
    error = resp.json()["error"]
    assert "compressed (content-encoding: gzip)" in error["message"], error


def test_a_gzip_error_keeps_its_body_and_encoding(envoy, script):
    body = gzip.compress(google_error(404, "gone", "NOT_FOUND"))
    script.answer = h1_response(404, [("content-type", "application/json"), ("content-encoding", "gzip")], body)
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert resp.status == 404
    assert resp.headers["content-encoding"] == "gzip" and resp.body == body
    assert diagnostics(resp)


@pytest.mark.parametrize("kept", [12, 8])
def test_an_upstream_text_error_cut_at_512_bytes_keeps_no_part_of_the_key(envoy, script, kept):
    # A body that is no Google error becomes the message, cut to 512 bytes:
    # the key echoed across the cut is scrubbed before it.
    key = "AIzaECHOEDsecret42"

    def echo(request):
        assert key in request.target, request.target
        text = "t" * (512 - kept) + key + " and the rest of the upstream's text"
        return h1_response(502, [("content-type", "text/plain")], text.encode())

    script.answer = echo
    resp = envoy.post(f"{NATIVE}?key={key}", {"contents": [{"parts": [{"text": "x"}]}]})
    assert resp.status == 502, resp
    message = resp.json()["error"]["message"]
    assert "upstream answered 502" in message and "REDACTED" in message, message
    assert key[:8] not in resp.text, resp.text[500:700]


# The echo as the upstream words it: after a space, or after a backslash
# (a Windows path, a regex), which the filter's JSON writes as `\\`.
@pytest.mark.parametrize("before", [" ", "\\", "\\\\"], ids=["space", "backslash", "two-backslashes"])
def test_an_upstream_echoing_the_key_does_not_get_it_back_to_the_client(envoy, script, before):
    key = "AIzaECHOEDsecret42"

    def echo(request):
        seen = f"{request.target} {request.header('x-goog-api-key')} {request.header('authorization')}"
        assert key in seen, seen  # what the upstream got: the key, and it says it back
        return h1_response(400, [("content-type", "application/json")],
                           google_error(400, f"Cannot serve {seen} (key{before}{key})", "INVALID_ARGUMENT"))

    script.answer = echo
    native = envoy.post(f"{NATIVE}?k%65y={key}", {"contents": [{"parts": [{"text": "x"}]}]})
    chat = envoy.post(CHAT, GEMINI_CHAT, {"authorization": f"Bearer {key}"})
    for resp in (native, chat):
        assert resp.status == 400, resp
        assert "Cannot serve" in resp.text and "REDACTED" in resp.text, resp
        assert key not in resp.text
        assert key not in resp.json()["error"]["message"], resp.text
        for name, value in resp.header_list:
            assert key not in value, (name, value)


# An image model that answers an image request with text only: the 422 quotes
# the text up to 300 characters. A key in that text (a model repeating what
# the prompt carried) is scrubbed before the quote is cut, so no part of it
# stands at the cut.
@pytest.mark.parametrize("kept", [12, 8])
def test_a_key_in_a_text_only_answer_is_not_cut_into_the_no_image_error(envoy, script, kept):
    key = "AIzaTEXTONLYsecret42"
    text = "x" * (300 - kept) + key + " and then some more words"
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}
    script.answer = h1_response(200, [("content-type", "application/json")], json.dumps(answer).encode())
    resp = envoy.post("/v1beta/openai/images/generations", {"model": "gemini-3.1-flash-image", "prompt": "a cat"},
                      {"authorization": f"Bearer {key}"})
    assert resp.status == 422, resp
    message = resp.json()["error"]["message"]
    assert "text only" in message and "REDACTED" in message, message
    assert key[:8] not in resp.text, message[-120:]
    for name, value in resp.header_list:
        assert key[:8] not in value, (name, value[-120:])
