"""Routed requests ask the upstream for an uncompressed answer, so the filter can
rewrite an error or translate an answer; other requests keep their headers."""

from __future__ import annotations

import pytest

from tests.harness import OPENAI_AUTH, diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
GZIP = {"accept-encoding": "gzip, deflate"}


def test_routed_request_drops_accept_encoding(envoy, emulator):
    body = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = envoy.post(CHAT, body, {**OPENAI_AUTH, **GZIP})
    assert resp.status == 200, resp
    assert "accept-encoding" not in only_request(emulator)["headers"]


def test_retired_model_error_is_rewritten_even_when_client_accepts_gzip(envoy, emulator):
    # Turned off upstream without notice: the filter's lifecycle table does not know it.
    emulator.configure(retired=["gemini-3.6-flash"])
    body = {"model": "gemini-3.6-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = envoy.post(CHAT, body, {**OPENAI_AUTH, **GZIP})
    assert resp.status == 404, resp
    assert "content-encoding" not in resp.headers
    error = resp.json()["error"]
    assert error["type"] == "not_found_error"
    assert "gemini-3.6-flash" in error["message"] and "chat/completions" in error["message"]
    assert diagnostics(resp)["x-gemini-router-model"] == "gemini-3.6-flash"


def test_unrouted_request_keeps_accept_encoding(envoy, emulator):
    resp = envoy.request("GET", "/v1beta/models", headers={"x-goog-api-key": "test-key", **GZIP})
    assert resp.status == 200, resp
    assert only_request(emulator)["headers"]["accept-encoding"] == "gzip, deflate"
