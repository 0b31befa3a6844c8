"""Requests that are not routed (GETs, unknown methods, uploads) pass through untouched."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_no_diagnostics, http_request, only_request

pytestmark = pytest.mark.envoy


@pytest.mark.parametrize(
    "target,headers",
    [
        ("/v1beta/models", NATIVE_AUTH),
        ("/v1beta/models?pageSize=50&key=test-key", {}),
        ("/v1beta/models/gemini-3.1-flash-image", NATIVE_AUTH),
        ("/v1beta/openai/models", OPENAI_AUTH),
        ("/v1beta/models/gemini-2.0-flash", NATIVE_AUTH),  # shut down: a 404 that is not annotated
        ("/v1beta/openai/chat/completions", OPENAI_AUTH),  # a recognised path, but not a POST
    ],
)
def test_get_passes_untouched(envoy, emulator, target, headers):
    resp = envoy.request("GET", target, headers=headers)
    direct = http_request(emulator.url, "GET", target, headers=headers)
    assert resp.status == direct.status
    assert resp.body == direct.body
    assert_no_diagnostics(resp)
    record = emulator.requests()[0]
    assert (record["method"], record["target"]) == ("GET", target)
    for name, value in headers.items():
        assert record["headers"][name] == value


@pytest.mark.parametrize(
    "target",
    [
        "/v1beta/models/gemini-3.5-flash:batchGenerateContent",  # unknown method
        "/upload/v1beta/files",
        "/v1beta/cachedContents",
    ],
)
def test_unrouted_post_passes_untouched(envoy, emulator, target):
    body = '{"model": "imagen-4.0-generate-001", "contents": []}'
    resp = envoy.request("POST", target, body=body, headers={**NATIVE_AUTH, "content-type": "application/json"})
    record = only_request(emulator)
    assert record["target"] == target and record["body"] == body
    assert resp.status == 404
    assert_no_diagnostics(resp)
