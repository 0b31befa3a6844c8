"""Bodies the filter cannot route by (malformed JSON, no model) pass through unchanged."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy


@pytest.mark.parametrize(
    "path,body",
    [
        pytest.param("/v1beta/openai/chat/completions", '{"model": "imagen-4.0-generate-001", "messages": [', id="chat-truncated"),
        pytest.param("/v1beta/openai/chat/completions", "model=imagen-4.0-generate-001", id="chat-not-json"),
        pytest.param("/v1beta/openai/chat/completions", '{"messages": [{"role": "user", "content": "x"}]}', id="chat-no-model"),
        pytest.param("/v1beta/openai/chat/completions", '["imagen-4.0-generate-001"]', id="chat-json-list"),
        pytest.param("/v1beta/openai/chat/completions", "", id="chat-empty-body"),
        pytest.param("/v1beta/openai/images/generations", '{"prompt": "x", "model": ', id="images-truncated"),
        pytest.param("/v1beta/openai/embeddings", '{"input": "x"}', id="embeddings-no-model"),
    ],
)
def test_openai_request_is_forwarded_as_sent(envoy, emulator, path, body):
    resp = envoy.request("POST", path, body=body, headers={**OPENAI_AUTH, "content-type": "application/json"})
    record = only_request(emulator)
    assert (record["path"], record["query"]) == (path, "")
    assert record["body"] == body
    assert record["headers"]["authorization"] == "Bearer test-key"
    assert "x-goog-api-key" not in record["headers"]
    # Google's own answer comes back: a list-wrapped 400 from the compat layer.
    assert resp.status == 400, resp
    assert isinstance(resp.json(), list)


def test_native_malformed_body_for_a_served_model_is_forwarded(envoy, emulator):
    path = "/v1beta/models/gemini-3.5-flash:generateContent"
    body = '{"contents": [{"parts": [{"text": "x"}]'
    resp = envoy.request("POST", path, body=body, headers={**NATIVE_AUTH, "content-type": "application/json"})
    record = only_request(emulator)
    assert record["target"] == path and record["body"] == body
    assert resp.status == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
