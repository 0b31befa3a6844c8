"""Multi-megabyte image answers are translated whole.

A prompt containing BIG makes the emulator answer ~2 MB of base64 per image;
with n=2 the upstream body is ~4 MB, buffered and rewritten in one piece (an
SSE line of several MB for streaming chat). Every image must come back byte
for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from tests.emulator import media
from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_length_matches

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGEN = "imagen-4.0-generate-001"
IMAGE_MD = re.compile(r"!\[image\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")
BIG_SHA = hashlib.sha256(media.big_png()).hexdigest()


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [IMAGEN]


def assert_big(b64: str) -> None:
    assert len(b64) > 1_900_000
    assert hashlib.sha256(base64.b64decode(b64, validate=True)).hexdigest() == BIG_SHA


def test_chat_answer_of_four_megabytes(envoy, emulator):
    body = {"model": IMAGEN, "messages": [{"role": "user", "content": "a BIG fox"}], "n": 2}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert_length_matches(resp)
    assert len(resp.body) > 3_800_000
    images = IMAGE_MD.findall(resp.json()["choices"][0]["message"]["content"])
    assert len(images) == 2
    for b64 in images:
        assert_big(b64)


def test_streamed_chat_answer_of_four_megabytes(envoy, emulator):
    body = {
        "model": IMAGEN,
        "messages": [{"role": "user", "content": "a BIG fox"}],
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    content = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in map(json.loads, data[:-1]) if c["choices"]
    )
    images = IMAGE_MD.findall(content)
    assert len(images) == 2
    for b64 in images:
        assert_big(b64)


def test_native_generate_content_for_imagen(envoy, emulator):
    body = {"contents": [{"parts": [{"text": "a BIG fox"}]}], "generationConfig": {"candidateCount": 2}}
    resp = envoy.post(f"/v1beta/models/{IMAGEN}:generateContent", body, NATIVE_AUTH)
    assert resp.status == 200, resp
    assert_length_matches(resp)
    parts = resp.json()["candidates"][0]["content"]["parts"]
    assert len(parts) == 2
    for part in parts:
        assert_big(part["inlineData"]["data"])


def test_images_generations_for_gemini_image(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "prompt": "a BIG fox", "response_format": "b64_json"}
    resp = envoy.post("/v1beta/openai/images/generations", body, OPENAI_AUTH)
    assert resp.status == 200, resp
    [item] = resp.json()["data"]
    assert_big(item["b64_json"])
