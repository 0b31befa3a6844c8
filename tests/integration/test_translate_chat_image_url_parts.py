"""`image_message_format: image_url_parts`: chat answers carry images as content parts, not markdown.

The assistant message's `content` becomes a list of
`{"type":"text","text"}` and `{"type":"image_url","image_url":{"url":"data:..."}}`
parts, in the upstream's order, in plain and streamed answers.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.harness import OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001"]


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Model migration off: one test's subject is the Imagen translator.
    return start_envoy({"image_message_format": "image_url_parts", "migrate": "never"})


def assert_png_part(part: dict) -> None:
    assert part["type"] == "image_url", part
    prefix, _, data = part["image_url"]["url"].partition(";base64,")
    assert prefix == "data:image/png"
    assert base64.b64decode(data, validate=True).startswith(b"\x89PNG\r\n\x1a\n")


def test_imagen_images_are_image_url_parts(envoy, emulator):
    body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a red fox"}], "n": 2}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert only_request(emulator)["path"] == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert resp.status == 200, resp
    content = resp.json()["choices"][0]["message"]["content"]
    assert isinstance(content, list) and len(content) == 2, content
    for part in content:
        assert_png_part(part)


def test_gemini_text_and_image_parts_keep_their_order(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a red fox"}]}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    content = resp.json()["choices"][0]["message"]["content"]
    assert len(content) == 2, content
    assert content[0] == {"type": "text", "text": "Here is the image you asked for: a red fox"}
    assert_png_part(content[1])


def test_a_stream_carries_markdown_because_delta_content_is_a_string(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a red fox"}], "stream": True}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    deltas = [chunk["choices"][0]["delta"].get("content") for chunk in map(json.loads, data[:-1]) if chunk["choices"]]
    assert all(d is None or isinstance(d, str) for d in deltas), deltas
    text = "".join(d for d in deltas if d)
    assert text.startswith("Here is the image you asked for: a red fox\n\n![image](data:image/png;base64,"), text[:120]
