"""Every error status is annotated, and Google's status maps to the OpenAI error type."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_no_diagnostics, diagnostics

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
GEMINI_CHAT = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def auth_annotated(start_envoy):
    return start_envoy({"annotate_statuses": [400, 403, 404]})


@pytest.fixture(scope="module")
def only_400(start_envoy):
    return start_envoy({"annotate_statuses": [400]})


@pytest.mark.parametrize(
    "headers,status,error_type,code",
    [
        ({"authorization": "Bearer wrong"}, 400, "invalid_request_error", "invalid_argument"),
        ({}, 403, "authentication_error", "permission_denied"),
    ],
    ids=["invalid-argument", "permission-denied"],
)
def test_openai_error_type_follows_google_status(auth_annotated, emulator, headers, status, error_type, code):
    resp = auth_annotated.post(CHAT, GEMINI_CHAT, headers)
    assert resp.status == status, resp
    assert diagnostics(resp)
    body = resp.json()
    assert isinstance(body, dict), body
    assert body["error"]["type"] == error_type
    assert body["error"]["code"] == code
    assert body["error"]["param"] is None


def test_native_annotated_auth_error_keeps_google_shape(auth_annotated, emulator):
    resp = auth_annotated.post("/v1beta/models/gemini-3.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]})
    assert resp.status == 403, resp
    error = resp.json()["error"]
    assert error["status"] == "PERMISSION_DENIED" and error["code"] == 403
    assert diagnostics(resp)


def test_every_error_is_rewritten_whatever_annotate_statuses_says(only_400, emulator):
    # annotate_statuses is retired: a 404 not listed is still one error object.
    emulator.configure(retired=["gemini-3.6-flash"])
    resp = only_400.post(CHAT, {**GEMINI_CHAT, "model": "gemini-3.6-flash"}, OPENAI_AUTH)
    assert resp.status == 404
    assert diagnostics(resp)
    body = resp.json()
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error", body


def test_success_is_never_annotated(only_400, emulator):
    resp = only_400.post("/v1beta/models/gemini-3.5-flash:generateContent", {"contents": [{"parts": [{"text": "x"}]}]}, NATIVE_AUTH)
    assert resp.status == 200
    assert_no_diagnostics(resp)
