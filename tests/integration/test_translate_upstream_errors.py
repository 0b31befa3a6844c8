"""An upstream error during a translated exchange reaches the client in its own error shape.

When the target answers an error (a retired model's 404 on `:predict`, a
refused key's 400), nothing is translated: the client gets one JSON error
object in its own shape, OpenAI's `{"error":{"message","type","param","code"}}`
or Google's `{"error":{"code","message","status"}}`, whose message is
Google's own followed by the filter's hint naming the model and the endpoint
it was sent to, plus the `x-gemini-router-*` headers. Errors of translated
exchanges are annotated whatever `annotate_statuses` says. Imagen is shut down
(2026): the emulator answers its 404 as Google does.
"""

from __future__ import annotations

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, NATIVE_AUTH, OPENAI_AUTH, assert_length_matches, diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGES = "/v1beta/openai/images/generations"
IMAGEN = "imagen-4.0-generate-001"
PREDICT = f"/v1beta/models/{IMAGEN}:predict"
GOOGLE_404 = f"models/{IMAGEN} is not found for API version v1beta, or is not supported for predict."


# Model migration off: the subject is a shut-down Imagen model's 404 and other
# errors of translated exchanges; migration would otherwise serve the
# replacement.
FILTER_CONFIG = {"migrate": "never"}


def chat(stream: bool) -> dict:
    body: dict = {"model": IMAGEN, "messages": [{"role": "user", "content": "a red fox"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def assert_diagnostics(resp, original_path: str, upstream_path: str, family: str = "imagen") -> None:
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-family"] == family
    assert headers["x-gemini-router-original-path"] == original_path
    assert headers["x-gemini-router-upstream-path"] == upstream_path
    assert upstream_path.rsplit(":", 1)[-1].split("?")[0] in headers["x-gemini-router-hint"]


def openai_error(resp, status: int) -> dict:
    assert resp.status == status, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def google_error(resp, status: int) -> dict:
    assert resp.status == status, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == status
    return body["error"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_retired_imagen_through_chat_is_an_openai_404(envoy, emulator, stream):
    resp = envoy.post(CHAT, chat(stream), OPENAI_AUTH)

    assert only_request(emulator)["path"] == PREDICT
    assert_diagnostics(resp, CHAT, PREDICT)
    assert diagnostics(resp)["x-gemini-router-model"] == IMAGEN
    error = openai_error(resp, 404)
    assert (error["type"], error["code"], error["param"]) == ("not_found_error", "not_found", None)
    message = error["message"]
    assert message.startswith(GOOGLE_404), message
    assert IMAGEN in message and ":predict" in message and "chat/completions" in message
    assert "gemini-router" in message


def test_retired_imagen_through_images_is_an_openai_404(envoy, emulator):
    resp = envoy.post(IMAGES, {"model": IMAGEN, "prompt": "a red fox"}, OPENAI_AUTH)
    assert_diagnostics(resp, IMAGES, PREDICT)
    error = openai_error(resp, 404)
    assert error["type"] == "not_found_error"
    assert error["message"].startswith(GOOGLE_404) and ":predict" in error["message"]


@pytest.mark.parametrize(
    "method,query",
    [("generateContent", ""), ("streamGenerateContent", "alt=sse"), ("streamGenerateContent", "")],
    ids=["generate", "stream-sse", "stream-array"],
)
def test_retired_imagen_through_native_generate_is_a_google_404(envoy, emulator, method, query):
    path = f"/v1beta/models/{IMAGEN}:{method}"
    target = f"{path}?{query}" if query else path
    resp = envoy.post(target, {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}]}, NATIVE_AUTH)

    assert only_request(emulator)["path"] == PREDICT
    assert_diagnostics(resp, target, PREDICT)
    error = google_error(resp, 404)
    assert error["status"] == "NOT_FOUND"
    assert error["message"].startswith(GOOGLE_404), error
    assert f":{method}" in error["message"] and "gemini-router" in error["message"]


def test_retired_gemini_image_through_native_predict_is_a_google_404(envoy, emulator):
    model = "gemini-3.1-flash-image"
    emulator.configure(retired=[model])
    path = f"/v1beta/models/{model}:predict"
    resp = envoy.post(path, {"instances": {"prompt": "a red fox"}}, NATIVE_AUTH)
    generate = f"/v1beta/models/{model}:generateContent"
    assert only_request(emulator)["path"] == generate
    assert_diagnostics(resp, path, generate, family="gemini_image")
    error = google_error(resp, 404)
    assert error["message"].startswith(f"models/{model} is not found for API version v1beta")


def test_refused_key_is_annotated_although_400_is_not_in_annotate_statuses(envoy, emulator):
    resp = envoy.post(CHAT, chat(False), {"authorization": "Bearer wrong-key"})

    record = only_request(emulator)
    assert record["path"] == PREDICT and record["headers"]["x-goog-api-key"] == "wrong-key"
    assert_diagnostics(resp, CHAT, PREDICT)
    error = openai_error(resp, 400)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_argument")
    assert error["message"].startswith("API key not valid.")
    assert "wrong-key" not in resp.text and "wrong-key" not in str(resp.headers)


def test_refused_key_through_native_predict_is_a_google_400(envoy, emulator):
    path = "/v1beta/models/gemini-3.1-flash-image:predict"
    body = {"instances": [{"prompt": "a red fox"}], "parameters": {"sampleCount": 1}}
    resp = envoy.post(path, body, {"x-goog-api-key": "wrong-key"})
    assert_diagnostics(resp, path, "/v1beta/models/gemini-3.1-flash-image:generateContent", family="gemini_image")
    error = google_error(resp, 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("API key not valid.")
