"""A retired model's 404 for a native client: Google's shape, unwrapped, hint appended.

gemini-2.0-flash and text-embedding-004 are shut down (June 2026, January
2026): the emulator answers 404 for them, as Google does.
"""

from __future__ import annotations

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, NATIVE_AUTH, assert_length_matches, diagnostics, only_request

pytestmark = pytest.mark.envoy

BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# Model migration off: the subject is a shut-down model's 404, which migration
# would otherwise answer from the replacement.
FILTER_CONFIG = {"migrate": "never"}


@pytest.mark.parametrize(
    "target,method",
    [
        ("/v1beta/models/gemini-2.0-flash:generateContent", "generateContent"),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", "streamGenerateContent"),
        # Without alt=sse Google wraps the error in a list; the client still gets an object.
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent", "streamGenerateContent"),
    ],
)
def test_retired_gemini_native(envoy, emulator, target, method):
    resp = envoy.post(target, BODY, NATIVE_AUTH)
    assert only_request(emulator)["target"] == target
    assert resp.status == 404, resp
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-model"] == "gemini-2.0-flash"
    # The path headers may carry the query (keys removed) or leave it out.
    assert headers["x-gemini-router-upstream-path"] in (target, target.partition("?")[0])
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    body = resp.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"
    google = (
        f"models/gemini-2.0-flash is not found for API version v1beta, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    assert error["message"].startswith(google)
    assert len(error["message"]) > len(google)


def test_retired_embedding_native(envoy, emulator):
    resp = envoy.post("/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "x"}]}}, NATIVE_AUTH)
    assert resp.status == 404
    assert diagnostics(resp)["x-gemini-router-family"] == "embedding"
    assert "text-embedding-004" in resp.json()["error"]["message"]
