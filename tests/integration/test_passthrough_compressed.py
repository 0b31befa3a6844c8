"""An OpenAI-style request with content-encoding passes through unchanged (the filter does not inflate)."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from tests.harness import OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


@pytest.mark.parametrize("model", ["imagen-4.0-generate-001", "gemini-3.5-flash"])
def test_gzip_body_is_forwarded_as_sent(envoy, emulator, model):
    raw = gzip.compress(json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]}).encode())
    headers = {**OPENAI_AUTH, "content-type": "application/json", "content-encoding": "gzip"}
    resp = envoy.request("POST", CHAT, body=raw, headers=headers)
    record = only_request(emulator)
    assert (record["path"], record["query"]) == (CHAT, "")
    assert record["body_base64"] and base64.b64decode(record["body"]) == raw
    assert record["headers"]["content-encoding"] == "gzip"
    assert record["headers"]["authorization"] == "Bearer test-key"
    # The emulator inflates like Google does: gemini is served, imagen is not
    # (chat never served it, and it is shut down).
    assert resp.status == (200 if model.startswith("gemini") else 404), resp
