"""A retired model's 404 on chat/completions, made readable for OpenAI clients.

Google answers the compat layer's 404 with a list-wrapped body that older
clients cannot read; the filter turns it into one OpenAI error object whose
message names the model, the endpoint and carries Google's own message.
gemini-2.0-flash and imagen-3.0-generate-002 are shut down (2026): the
emulator answers 404 for them, as Google does.
"""

from __future__ import annotations

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, OPENAI_AUTH, assert_length_matches, diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


# Model migration off: the subject is a shut-down model's 404, which migration
# would otherwise answer from the replacement.
FILTER_CONFIG = {"migrate": "never"}


def chat(model: str, stream: bool) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def assert_openai_error(resp, model: str, endpoint: str, google_message: str) -> None:
    assert resp.status == 404, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == "not_found_error"
    assert error["code"] == "not_found"
    assert error["param"] is None
    assert model in error["message"]
    assert endpoint in error["message"]
    assert google_message in error["message"]
    assert "gemini-router" in error["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_retired_gemini_on_chat(envoy, emulator, stream):
    resp = envoy.post(CHAT, chat("gemini-2.0-flash", stream), OPENAI_AUTH)
    assert only_request(emulator)["path"] == CHAT
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-model"] == "gemini-2.0-flash"
    assert headers["x-gemini-router-family"] == "gemini"
    assert headers["x-gemini-router-original-path"] == CHAT
    assert headers["x-gemini-router-upstream-path"] == CHAT
    assert headers["x-gemini-router-rule"] == "gemini-* (built-in)"
    assert_openai_error(
        resp,
        "gemini-2.0-flash",
        "chat/completions",
        "models/gemini-2.0-flash is not found for API version v1main, or is not supported for generateContent.",
    )


def test_retired_imagen_from_a_chat_ui(envoy, emulator):
    # The failure this project exists for: Open WebUI streams chat to an Imagen
    # model that Google has shut down on the Developer API (the emulator too).
    resp = envoy.post(CHAT, chat("imagen-3.0-generate-002", True), OPENAI_AUTH)
    assert only_request(emulator)["path"] == "/v1beta/models/imagen-3.0-generate-002:predict"
    headers = diagnostics(resp)
    assert headers.get("x-gemini-router-original-path") == CHAT
    assert headers.get("x-gemini-router-upstream-path") == "/v1beta/models/imagen-3.0-generate-002:predict"
    assert headers.get("x-gemini-router-family") == "imagen"
    assert_openai_error(
        resp,
        "imagen-3.0-generate-002",
        "predict",
        "models/imagen-3.0-generate-002 is not found for API version v1beta, or is not supported for predict.",
    )
