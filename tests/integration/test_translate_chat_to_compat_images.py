"""OpenAI chat for an Imagen model -> the compat `images/generations`, when the configuration trusts it.

With `{"api_style":"openai","openai_images_families":["imagen"]}` the chat
request stays on the compatibility layer: it becomes
`{"model","prompt","n","size"?,"response_format":"b64_json"}` on
`{prefix}/images/generations` with the client's `Authorization: Bearer`, and
the `b64_json` images come back as markdown images in a chat answer.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.harness import OPENAI_AUTH, assert_length_matches, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGES = "/v1beta/openai/images/generations"
MODEL = "imagen-4.0-generate-001"
IMAGE_MD = re.compile(r"!\[image\]\(data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)\)")


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [MODEL]


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Model migration off: the subject is the Imagen translator, and Imagen is past its shutdown.
    return start_envoy({"api_style": "openai", "openai_images_families": ["imagen"], "migrate": "never"})


def pngs(content: str) -> int:
    found = IMAGE_MD.findall(content)
    for mime, data in found:
        assert mime == "image/png"
        assert base64.b64decode(data, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    return len(found)


def upstream(emulator) -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"]) == ("POST", IMAGES)
    assert record["headers"].get("authorization") == "Bearer test-key"
    assert "x-goog-api-key" not in record["headers"]
    return json.loads(record["body"])


def test_chat_goes_to_compat_images_with_bearer(envoy, emulator):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "a red fox"}], "n": 2, "size": "1792x1024"}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)

    assert upstream(emulator) == {
        "model": MODEL,
        "prompt": "a red fox",
        "n": 2,
        "size": "1792x1024",
        "response_format": "b64_json",
    }
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    answer = resp.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert pngs(answer["choices"][0]["message"]["content"]) == 2


def test_stream_comes_back_as_chunks(envoy, emulator):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "a red fox"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = envoy.post(CHAT, body, OPENAI_AUTH)

    sent = upstream(emulator)
    assert sent["prompt"] == "a red fox" and sent["n"] == 1
    assert "stream" not in sent
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert pngs("".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])) == 1
    assert chunks[-1]["choices"] == [] and "usage" in chunks[-1]


def test_untrusted_image_family_still_goes_native(envoy, emulator):
    # gemini_image is not in openai_images_families: native :generateContent.
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a red fox"}]}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert record["headers"].get("x-goog-api-key") == "test-key"
    assert resp.status == 200, resp
    assert pngs(resp.json()["choices"][0]["message"]["content"]) == 1


def test_empty_data_becomes_an_assistant_message_saying_so(envoy, emulator):
    # The compat layer answers a blocked prompt with `"data": []`.
    body = {"model": MODEL, "messages": [{"role": "user", "content": "a BLOCKED fox"}]}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    upstream(emulator)
    assert resp.status == 200, resp
    [choice] = resp.json()["choices"]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"].startswith(f"No image was returned by {MODEL}. Reason:")
    assert "![image]" not in choice["message"]["content"]
