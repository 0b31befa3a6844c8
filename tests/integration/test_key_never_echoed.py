"""The API key never appears in a header or body the filter writes."""

from __future__ import annotations

import pytest

from tests.harness import DIAGNOSTIC_HEADERS, diagnostics, only_request

pytestmark = pytest.mark.envoy

SECRET = "sk-SECRET-7f3a9c"
WRONG = "sk-WRONG-2b81d0"
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Annotate auth failures too, so the wrong-key answers get diagnostics;
    # model migration off, so shut-down models give Google's 404.
    return start_envoy({"annotate_statuses": [400, 403, 404], "migrate": "never"})


@pytest.fixture(autouse=True)
def secret_key(emulator):
    emulator.configure(valid_keys=[SECRET])


def assert_not_echoed(resp, *secrets: str) -> None:
    for secret in secrets:
        for name, value in resp.header_list:
            assert secret not in name and secret not in value, (name, value)
        assert secret.encode() not in resp.body, resp


@pytest.mark.parametrize(
    "target,body",
    [
        # Unchanged, upstream 404: diagnostics carry the paths.
        (f"/v1beta/models/veo-3.1-generate-preview:generateContent?key={SECRET}", CONTENTS),
        (f"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key={SECRET}", CONTENTS),
        (f"/v1beta/models/gemini-2.0-flash:streamGenerateContent?key={SECRET}&alt=sse", CONTENTS),
        # Rewritten to another native method, key kept in the query.
        (f"/v1beta/models/imagen-3.0-generate-002:generateContent?key={SECRET}", CONTENTS),
    ],
)
def test_query_key_not_in_diagnostics(envoy, emulator, target, body):
    # gemini-2.0-flash and imagen-3.0-generate-002 are shut down: Google answers 404.
    resp = envoy.post(target, body)
    assert resp.status == 404, resp
    headers = diagnostics(resp)
    assert set(DIAGNOSTIC_HEADERS) <= set(headers), headers
    assert headers["x-gemini-router-original-path"].startswith(target.partition("?")[0])
    assert_not_echoed(resp, SECRET)
    # The key still reached Google where the client put it.
    assert f"key={SECRET}" in only_request(emulator)["query"]


@pytest.mark.parametrize(
    "model,auth_header",
    [
        ("gemini-2.0-flash", "authorization"),  # compat, unchanged
        ("imagen-3.0-generate-002", "x-goog-api-key"),  # moved to native predict
    ],
)
def test_bearer_key_not_in_diagnostics(envoy, emulator, model, auth_header):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    resp = envoy.post("/v1beta/openai/chat/completions", body, {"authorization": f"Bearer {SECRET}"})
    assert resp.status == 404, resp
    assert diagnostics(resp)
    assert_not_echoed(resp, SECRET)
    assert SECRET in only_request(emulator)["headers"][auth_header]


@pytest.mark.parametrize(
    "target,headers",
    [
        (f"/v1beta/models/gemini-3.5-flash:generateContent?key={WRONG}", {}),
        ("/v1beta/models/gemini-3.5-flash:generateContent", {"x-goog-api-key": WRONG}),
        ("/v1beta/openai/chat/completions", {"authorization": f"Bearer {WRONG}"}),
    ],
)
def test_wrong_key_answer_does_not_echo_it(envoy, emulator, target, headers):
    body = CONTENTS if "openai" not in target else {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = envoy.post(target, body, headers)
    assert resp.status == 400, resp
    assert diagnostics(resp), resp
    assert "API key not valid" in resp.text
    assert_not_echoed(resp, WRONG)
