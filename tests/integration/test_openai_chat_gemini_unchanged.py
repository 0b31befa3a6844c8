"""An OpenAI chat request for a Gemini chat model reaches the compat layer exactly as sent."""

from __future__ import annotations

import json

import pytest

from tests.harness import OPENAI_AUTH, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


@pytest.mark.parametrize("model", ["gemini-3.5-flash", "models/gemini-3.5-flash", "gemma-3-27b-it"])
def test_plain_chat_is_forwarded_byte_for_byte(envoy, emulator, model):
    sent = json.dumps({"model": model, "messages": [{"role": "user", "content": "hello there"}], "temperature": 0.2})
    resp = envoy.request("POST", CHAT, body=sent, headers={**OPENAI_AUTH, "content-type": "application/json"})
    assert resp.status == 200, resp
    bare = model.removeprefix("models/")
    assert resp.json()["choices"][0]["message"]["content"] == f"Echo from {bare}: hello there"
    assert_no_diagnostics(resp)
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", CHAT, "")
    assert record["body"] == sent
    assert record["headers"]["authorization"] == "Bearer test-key"
    assert "x-goog-api-key" not in record["headers"]
    assert record["headers"].get("content-length") == str(len(sent))


def test_streaming_chat_is_forwarded_and_streams_back(envoy, emulator):
    sent = json.dumps({
        "model": "gemini-3.5-flash",
        "messages": [{"role": "user", "content": "stream please"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    })
    resp = envoy.request("POST", CHAT, body=sent, headers={**OPENAI_AUTH, "content-type": "application/json"})
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Echo from gemini-3.5-flash: stream please"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    record = only_request(emulator)
    assert record["path"] == CHAT and record["body"] == sent


def test_prefix_other_than_v1beta_openai_is_kept(envoy, emulator):
    # OpenAI-style paths are recognised under any prefix; a served request keeps its path.
    path = "/v1beta/openai/v1/chat/completions"
    sent = json.dumps({"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]})
    envoy.request("POST", path, body=sent, headers=OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == path and record["body"] == sent
