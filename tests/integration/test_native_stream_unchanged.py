"""Native Gemini requests already on the endpoint that serves the model pass unchanged."""

from __future__ import annotations

import json

import pytest

from tests.harness import NATIVE_AUTH, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

BODY = json.dumps({"contents": [{"role": "user", "parts": [{"text": "tell me a story"}]}]})


@pytest.mark.parametrize(
    "target,headers",
    [
        ("/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse", NATIVE_AUTH),
        ("/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse&key=test-key", {}),
        ("/v1beta/models/gemma-3-27b-it:streamGenerateContent?alt=sse", NATIVE_AUTH),
    ],
)
def test_sse_stream_is_forwarded_unchanged(envoy, emulator, target, headers):
    resp = envoy.request("POST", target, body=BODY, headers={**headers, "content-type": "application/json"})
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.body.endswith(b"\r\n\r\n")
    frames = [json.loads(d) for d in resp.sse_data()]
    assert frames[-1]["candidates"][0]["finishReason"] == "STOP"
    assert_no_diagnostics(resp)
    record = only_request(emulator)
    assert record["target"] == target
    assert record["body"] == BODY
    assert {k: record["headers"].get(k) for k in headers} == headers


@pytest.mark.parametrize(
    "target",
    [
        "/v1beta/models/gemini-3.5-flash:streamGenerateContent",  # JSON-array stream
        "/v1beta/models/gemini-3.5-flash:generateContent",
        "/v1beta/models/gemini-3.5-flash:countTokens",
        "/v1/models/gemini-3.5-flash:generateContent",  # google-genai's default version
        "/v1alpha/models/gemini-3.6-flash:generateContent",
    ],
)
def test_other_served_native_calls_are_unchanged(envoy, emulator, target):
    resp = envoy.request("POST", target, body=BODY, headers={**NATIVE_AUTH, "content-type": "application/json"})
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert record["target"] == target and record["body"] == BODY


def test_large_image_frames_stream_through(envoy, emulator):
    body = {"contents": [{"parts": [{"text": "BIG harbour"}]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
    resp = envoy.post("/v1beta/models/gemini-3.1-flash-image:streamGenerateContent?alt=sse", body, NATIVE_AUTH)
    assert resp.status == 200, resp
    frames = [json.loads(d) for d in resp.sse_data()]
    images = [p["inlineData"]["data"] for f in frames for p in f["candidates"][0]["content"]["parts"] if "inlineData" in p]
    assert len(images) == 1 and len(images[0]) > 1_900_000
    assert only_request(emulator)["path"] == "/v1beta/models/gemini-3.1-flash-image:streamGenerateContent"
