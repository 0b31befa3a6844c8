"""A Veo model on generateContent has no translator: left unchanged, and its 404 explained."""

from __future__ import annotations

import json

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, NATIVE_AUTH, assert_length_matches, assert_no_diagnostics, diagnostics, only_request

pytestmark = pytest.mark.envoy

PATH = "/v1beta/models/veo-3.1-generate-preview:generateContent"
BODY = json.dumps({"contents": [{"role": "user", "parts": [{"text": "a drone shot of a coast"}]}]})
GOOGLE_MESSAGE = (
    "models/veo-3.1-generate-preview is not found for API version v1beta, or is not supported for generateContent. "
    "Call ListModels to see the list of available models and their supported methods."
)


def test_request_is_unchanged_and_404_carries_diagnostics(envoy, emulator):
    resp = envoy.request("POST", PATH, body=BODY, headers={**NATIVE_AUTH, "content-type": "application/json"})
    record = only_request(emulator)
    assert record["target"] == PATH and record["body"] == BODY
    assert record["headers"]["x-goog-api-key"] == "test-key"

    assert resp.status == 404, resp
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-model"] == "veo-3.1-generate-preview"
    assert headers["x-gemini-router-family"] == "veo"
    assert headers["x-gemini-router-original-path"] == PATH
    assert headers["x-gemini-router-upstream-path"] == PATH
    assert headers["x-gemini-router-rule"] == "veo-* (built-in)"
    hint = headers["x-gemini-router-hint"]
    assert hint and "\n" not in hint and "generateContent" in hint

    error = resp.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"
    assert error["message"].startswith(GOOGLE_MESSAGE)
    assert len(error["message"]) > len(GOOGLE_MESSAGE)  # the hint is appended
    assert_length_matches(resp)


def test_veo_on_its_own_endpoint_is_untouched(envoy, emulator):
    body = json.dumps({"instances": [{"prompt": "a drone shot of a coast"}]})
    path = "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    resp = envoy.request("POST", path, body=body, headers={**NATIVE_AUTH, "content-type": "application/json"})
    assert resp.status == 200, resp
    assert resp.json()["name"].startswith("models/veo-3.1-generate-preview/operations/")
    assert_no_diagnostics(resp)
    record = only_request(emulator)
    assert record["target"] == path and record["body"] == body
