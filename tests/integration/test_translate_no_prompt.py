"""A translated request with no prompt text is refused locally with a 400 in the client's shape.

An image endpoint needs a prompt; a chat body whose last user message has no
text (only a system message, only image parts, blank text, no messages), an
`images/generations` body without `prompt`, or a native body without text
cannot be translated; neither can a body the translator cannot read (a chat
body without `messages`, a native body that is not JSON). The filter answers
400 itself, in the OpenAI or Google error shape, and nothing reaches the
upstream.
"""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_length_matches

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGES = "/v1beta/openai/images/generations"
IMAGEN = "imagen-4.0-generate-001"
IMAGE_PART = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [IMAGEN]


@pytest.mark.parametrize(
    "model",
    [IMAGEN, "gemini-3.1-flash-image"],
)
@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "You draw foxes."}],
        [{"role": "user", "content": [IMAGE_PART]}],
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": "a fox"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": ""}],
        [],
    ],
    ids=["system-only", "image-parts-only", "blank", "last-user-empty", "no-messages"],
)
def test_chat_without_user_text_is_a_local_openai_400(envoy, emulator, model, messages):
    resp = envoy.post(CHAT, {"model": model, "messages": messages, "stream": True}, OPENAI_AUTH)

    assert emulator.requests() == []
    assert resp.status == 400, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "translation_failed"
    message = body["error"]["message"]
    assert model in message and "no prompt text" in message, message


@pytest.mark.parametrize("body", [{"model": IMAGEN}, {"model": IMAGEN, "prompt": " "}], ids=["missing", "blank"])
def test_images_without_prompt_is_a_local_openai_400(envoy, emulator, body):
    resp = envoy.post(IMAGES, body, OPENAI_AUTH)
    assert emulator.requests() == []
    assert resp.status == 400, resp
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and "no prompt text" in error["message"]


@pytest.mark.parametrize(
    "path,body",
    [
        (
            f"/v1beta/models/{IMAGEN}:generateContent",
            {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}]},
        ),
        ("/v1beta/models/gemini-3.1-flash-image:predict", {"instances": [{"prompt": ""}]}),
    ],
    ids=["generate-to-predict", "predict-to-generate"],
)
def test_native_without_prompt_is_a_local_google_400(envoy, emulator, path, body):
    resp = envoy.post(path, body, NATIVE_AUTH)
    assert emulator.requests() == []
    assert resp.status == 400, resp
    assert_length_matches(resp)
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "no prompt text" in error["message"]


@pytest.mark.parametrize(
    "path,body,headers,shape",
    [
        (CHAT, '{"model":"imagen-4.0-generate-001"}', OPENAI_AUTH, "openai"),
        (f"/v1beta/models/{IMAGEN}:generateContent", "not json", NATIVE_AUTH, "google"),
    ],
    ids=["chat-without-messages", "native-not-json"],
)
def test_unreadable_body_is_a_local_400(envoy, emulator, path, body, headers, shape):
    # The same local refusal for a body the translator cannot read at all.
    resp = envoy.request("POST", path, body=body, headers={**headers, "content-type": "application/json"})
    assert emulator.requests() == []
    assert resp.status == 400, resp
    error = resp.json()["error"]
    assert "invalid request body" in error["message"] and IMAGEN in error["message"]
    if shape == "openai":
        assert (error["type"], error["code"]) == ("invalid_request_error", "translation_failed")
    else:
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
