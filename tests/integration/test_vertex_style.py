"""With api_style vertex, requests are re-rendered on the Vertex AI model path, auth untouched."""

from __future__ import annotations

import json

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello vertex"}]}]}


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({"api_style": "vertex", "vertex": {"project": "p", "location": "us-central1"}})


def test_native_stream_lands_on_the_vertex_path(envoy, emulator):
    resp = envoy.post("/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse", BODY, NATIVE_AUTH)
    record = only_request(emulator)
    assert record["path"] == f"{VERTEX}/gemini-3.5-flash:streamGenerateContent"
    assert record["query"] == "alt=sse"
    assert record["headers"].get("x-goog-api-key") == "test-key"
    assert "authorization" not in record["headers"]
    assert json.loads(record["body"]) == BODY
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"


def test_native_generate_content_lands_on_the_vertex_path(envoy, emulator):
    resp = envoy.post("/v1beta/models/gemini-3.5-flash:generateContent", BODY, NATIVE_AUTH)
    record = only_request(emulator)
    assert (record["path"], record["query"]) == (f"{VERTEX}/gemini-3.5-flash:generateContent", "")
    assert resp.status == 200, resp


def test_vertex_request_stays_where_it_is(envoy, emulator):
    path = f"{VERTEX}/gemini-3.1-pro-preview:generateContent"
    auth = {"authorization": "Bearer ya29.oauth-token"}
    resp = envoy.post(path, BODY, auth)
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert record["target"] == path
    assert record["headers"]["authorization"] == "Bearer ya29.oauth-token"


def test_openai_chat_for_an_image_model_goes_to_vertex_generate_content_with_auth_untouched(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a fox"}]}
    envoy.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == f"{VERTEX}/gemini-3.1-flash-image:generateContent"
    assert record["headers"].get("authorization") == "Bearer test-key"
    assert "x-goog-api-key" not in record["headers"]
