"""The requests Open WebUI sends for image models, byte for byte, get answers it can show.

Chat: Open WebUI lists `imagen-*` among the compat layer's models and streams
`POST {base}/chat/completions` with `Authorization: Bearer`, `stream: true`
and `stream_options.include_usage: true`. It must get an SSE stream whose
joined `delta.content` holds the image as a markdown data URL; when the model
is retired, an error it can read: one JSON object (older Open WebUI reads a
message only from an object or a string, never a list) whose message names the
model, the endpoint tried and Google's own message.

Image engine "gemini": `{base}/models/{model}:predict` with an object
`instances`, or `:generateContent` with bare `contents`, and `x-goog-api-key`;
it reads `predictions[].bytesBase64Encoded` or
`candidates[].content.parts[].inlineData.data`.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.harness import API_KEY, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
MODEL = "imagen-4.0-generate-001"
CHAT_BODY = json.dumps(
    {
        "model": MODEL,
        "messages": [{"role": "user", "content": "a red fox"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
CHAT_HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
GEMINI_HEADERS = {"x-goog-api-key": API_KEY, "Content-Type": "application/json"}
IMAGE_MD = re.compile(r"!\[image\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


# Model migration off: the subject is the Imagen translator for Open WebUI
# (and a shut-down model's 404); migration would send Imagen to its
# replacement.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [MODEL]


def is_png(b64: str) -> bool:
    return base64.b64decode(b64, validate=True).startswith(b"\x89PNG\r\n\x1a\n")


def read_like_open_webui(body: bytes) -> tuple[str, dict | None]:
    """Joined delta content and the usage, read line by line as Open WebUI does."""
    content, usage = "", None
    for line in body.decode().splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            break
        chunk = json.loads(payload)
        for choice in chunk.get("choices") or []:
            content += choice.get("delta", {}).get("content") or ""
        usage = chunk.get("usage") or usage
    return content, usage


def test_chat_stream_contains_the_image(envoy, emulator):
    resp = envoy.request("POST", CHAT, body=CHAT_BODY, headers=CHAT_HEADERS)

    record = only_request(emulator)
    assert record["path"] == f"/v1beta/models/{MODEL}:predict"
    assert record["headers"]["x-goog-api-key"] == API_KEY
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.sse_data()[-1] == "[DONE]"
    content, usage = read_like_open_webui(resp.body)
    [image] = IMAGE_MD.findall(content)
    assert is_png(image)
    assert usage is not None and "total_tokens" in usage


def test_retired_model_error_is_one_object_naming_model_endpoint_and_google_message(envoy, emulator):
    emulator.configure(live=[])  # shut down again, as Google did
    resp = envoy.request("POST", CHAT, body=CHAT_BODY, headers=CHAT_HEADERS)

    assert resp.status == 404, resp
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body, dict), body
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert MODEL in message
    assert ":predict" in message
    assert f"models/{MODEL} is not found for API version v1beta, or is not supported for predict." in message
    assert resp.headers["x-gemini-router-upstream-path"] == f"/v1beta/models/{MODEL}:predict"


@pytest.mark.parametrize("model", ["imagen-4.0-generate-001", "gemini-3.1-flash-image"])
def test_image_engine_predict(envoy, emulator, model):
    body = {"instances": {"prompt": "a red fox"}, "parameters": {"sampleCount": 1, "outputOptions": {"mimeType": "image/png"}}}
    resp = envoy.request("POST", f"/v1beta/models/{model}:predict", body=json.dumps(body), headers=GEMINI_HEADERS)
    assert resp.status == 200, resp
    images = [p["bytesBase64Encoded"] for p in resp.json()["predictions"]]
    assert len(images) == 1 and is_png(images[0])


@pytest.mark.parametrize("model", ["imagen-4.0-generate-001", "gemini-3.1-flash-image"])
def test_image_engine_generate_content(envoy, emulator, model):
    body = {"contents": [{"parts": [{"text": "a red fox"}]}]}
    resp = envoy.request("POST", f"/v1beta/models/{model}:generateContent", body=json.dumps(body), headers=GEMINI_HEADERS)
    assert resp.status == 200, resp
    parts = resp.json()["candidates"][0]["content"]["parts"]
    images = [p["inlineData"]["data"] for p in parts if "inlineData" in p]
    assert len(images) == 1 and is_png(images[0])
