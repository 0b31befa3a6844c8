"""A 200 answer without an image (safety filter) never becomes an empty success.

The emulator blocks prompts containing BLOCKED: Imagen answers
`predictions: [{"raiFilteredReason": ...}]`, Gemini image models a candidate
with `finishReason: IMAGE_SAFETY` and no content. Chat clients get an
assistant message that says no image was returned and why, with
`finish_reason: content_filter`; `images/generations` and native clients get
a 422 error in their own shape that carries the reason, with the diagnostic
headers.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, NATIVE_AUTH, OPENAI_AUTH, assert_length_matches, diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGES = "/v1beta/openai/images/generations"
IMAGEN = "imagen-4.0-generate-001"
GEMINI_IMAGE = "gemini-3.1-flash-image"
RAI = "All images were filtered out because they violated usage guidelines"
# Why each model gave no image, in the upstream's words.
REASONS = {IMAGEN: RAI, GEMINI_IMAGE: "IMAGE_SAFETY"}
PROMPT = "a BLOCKED fox"


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [IMAGEN]


def chat(model: str, stream: bool = False) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


@pytest.mark.parametrize("model", [IMAGEN, GEMINI_IMAGE])
def test_chat_gets_an_assistant_message_saying_why(envoy, emulator, model):
    resp = envoy.post(CHAT, chat(model), OPENAI_AUTH)
    only_request(emulator)
    assert resp.status == 200, resp
    assert_length_matches(resp)
    [choice] = resp.json()["choices"]
    assert choice["finish_reason"] == "content_filter"
    content = choice["message"]["content"]
    assert choice["message"]["role"] == "assistant"
    assert content.startswith(f"No image was returned by {model}."), content
    assert REASONS[model] in content
    assert "![image]" not in content


@pytest.mark.parametrize("model", [IMAGEN, GEMINI_IMAGE])
def test_streamed_chat_says_why_in_the_stream(envoy, emulator, model):
    resp = envoy.post(CHAT, chat(model, stream=True), OPENAI_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content.startswith(f"No image was returned by {model}.") and REASONS[model] in content
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "content_filter"
    assert chunks[-1]["choices"] == [] and "usage" in chunks[-1]


def assert_no_image_error(resp, original_path: str, upstream_path: str, model: str) -> dict:
    assert resp.status == 422, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-original-path"] == original_path
    assert headers["x-gemini-router-upstream-path"] == upstream_path
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    message = body["error"]["message"]
    assert model in message and "no image" in message and REASONS[model] in message, message
    return body["error"]


@pytest.mark.parametrize(
    "model,upstream",
    [(IMAGEN, f"/v1beta/models/{IMAGEN}:predict"), (GEMINI_IMAGE, f"/v1beta/models/{GEMINI_IMAGE}:generateContent")],
)
def test_images_client_gets_an_openai_error(envoy, emulator, model, upstream):
    resp = envoy.post(IMAGES, {"model": model, "prompt": PROMPT, "response_format": "b64_json"}, OPENAI_AUTH)
    assert only_request(emulator)["path"] == upstream
    error = assert_no_image_error(resp, IMAGES, upstream, model)
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "path,body,upstream,model",
    [
        (
            f"/v1beta/models/{IMAGEN}:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
            f"/v1beta/models/{IMAGEN}:predict",
            IMAGEN,
        ),
        (
            f"/v1beta/models/{GEMINI_IMAGE}:predict",
            {"instances": {"prompt": PROMPT}},
            f"/v1beta/models/{GEMINI_IMAGE}:generateContent",
            GEMINI_IMAGE,
        ),
    ],
    ids=["generate-to-predict", "predict-to-generate"],
)
def test_native_client_gets_a_google_error(envoy, emulator, path, body, upstream, model):
    resp = envoy.post(path, body, NATIVE_AUTH)
    assert only_request(emulator)["path"] == upstream
    error = assert_no_image_error(resp, path, upstream, model)
    assert (error["code"], error["status"]) == (422, "INVALID_ARGUMENT")


def test_native_sse_client_gets_a_google_error_not_an_empty_stream(envoy, emulator):
    path = f"/v1beta/models/{IMAGEN}:streamGenerateContent?alt=sse"
    resp = envoy.post(path, {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}, NATIVE_AUTH)
    assert_no_image_error(resp, path, f"/v1beta/models/{IMAGEN}:predict", IMAGEN)


def test_no_image_is_counted_as_a_translation_error(start_envoy, emulator):
    envoy = start_envoy({"migrate": "never"})  # its own instance: no other module's traffic is counted
    envoy.post(IMAGES, {"model": IMAGEN, "prompt": PROMPT}, OPENAI_AUTH)
    assert envoy.wait_counter("gemini_router.translate_errors", 1) == 1
    assert envoy.counter("gemini_router.translated") == 1
