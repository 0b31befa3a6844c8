"""In the openai style, a native image request whose compat endpoint has no
translator from it goes to the native method that serves the model instead of
being left on an endpoint that 404s."""

from __future__ import annotations

import base64

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, diagnostics, only_request

pytestmark = pytest.mark.envoy

# Model migration off: Imagen is past its shutdown and would be migrated.
CONFIG = {"api_style": "openai", "openai_images_families": ["imagen", "gemini_image"], "migrate": "never"}
KEY = {"x-goog-api-key": "test-key"}
PNG = b"\x89PNG\r\n\x1a\n"


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001"]


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy(CONFIG)


def test_generate_content_for_imagen_goes_to_predict(envoy, emulator):
    body = {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}]}
    resp = envoy.post("/v1beta/models/imagen-4.0-generate-001:generateContent", body, KEY)
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert record["headers"]["x-goog-api-key"] == "test-key"
    part = resp.json()["candidates"][0]["content"]["parts"][0]
    assert base64.b64decode(part["inlineData"]["data"]).startswith(PNG)


def test_predict_for_gemini_image_goes_to_generate_content(envoy, emulator):
    body = {"instances": {"prompt": "a red fox"}, "parameters": {"sampleCount": 1}}
    resp = envoy.post("/v1beta/models/gemini-3.1-flash-image:predict", body, KEY)
    assert resp.status == 200, resp
    assert only_request(emulator)["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    prediction = resp.json()["predictions"][0]
    assert base64.b64decode(prediction["bytesBase64Encoded"]).startswith(PNG)


def test_untranslatable_request_is_refused_locally_with_diagnostics(envoy, emulator):
    body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "system", "content": "no user turn"}]}
    resp = envoy.post("/v1beta/openai/chat/completions", body, {"authorization": "Bearer test-key"})
    assert resp.status == 400, resp
    assert emulator.requests() == []
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-upstream-path"] == "/v1beta/openai/images/generations"
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and "could not translate" in error["message"]
