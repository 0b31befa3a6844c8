"""Credentials: exactly one goes upstream, or the request is refused with a
clear 400; and a key is redacted by the parameter's decoded name wherever
the filter echoes a path (diagnostic headers, debug log).

Before the fix, `?%6Bey=KEY`, `?k%65y=KEY` and `?access_token=TOKEN` were
echoed in `x-gemini-router-original-path` / `-upstream-path` and the debug
log, and two `Authorization` headers went upstream joined in one
`x-goog-api-key: AAA,Bearer BBB`.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import pytest

from tests import harness
from tests.adversary import h1_request, h2_request
from tests.harness import diagnostics

pytestmark = pytest.mark.envoy

SECRET = "AIzaSECRETvalue0123"
IMAGEN_NATIVE = "/v1beta/models/imagen-4.0-generate-001:generateContent"
CHAT = "/v1beta/openai/chat/completions"
IMAGEN_CHAT = b'{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"a fox"}]}'


# Imagen paths are the examples: migration off, the model revived.
FILTER_CONFIG = {"migrate": "never"}


@pytest.fixture(autouse=True)
def _imagen_live(emulator):
    emulator.configure(live=["imagen-4.0-generate-001", "imagen-3.0-generate-002"])


@pytest.mark.parametrize("query", [f"%6Bey={SECRET}", f"k%65y={SECRET}", f"%24key={SECRET}",
                                   f"access_token={SECRET}", f"alt=json&ACCESS%5FTOKEN={SECRET}"])
def test_encoded_credential_names_are_redacted(envoy, emulator, query):
    # The emulator refuses the key (or misses it): every error carries the
    # diagnostic headers, which echo both paths.
    path = f"/v1beta/models/imagen-3.0-generate-002:generateContent?{query}"
    resp = envoy.post(path, {"contents": [{"parts": [{"text": "a fox"}]}]})
    assert resp.status >= 400, resp
    diag = diagnostics(resp)
    assert diag["x-gemini-router-original-path"].endswith("=REDACTED"), diag
    for name, value in resp.header_list:
        assert SECRET not in value, (name, value)
    assert SECRET not in resp.text


@pytest.mark.parametrize("kept", [12, 8])
def test_a_key_in_a_long_path_is_not_cut_into_a_diagnostic_header(envoy, emulator, kept):
    # The key goes as x-goog-api-key and again in a parameter that is no
    # credential name, placed so that the path header's 1,024-byte cut
    # would keep its first `kept` bytes: it is scrubbed before the cut.
    head = "/v1beta/models/imagen-3.0-generate-002:generateContent?note="
    path = head + "x" * (1021 - kept - len(head)) + SECRET + "&more=" + "y" * 64
    resp = envoy.post(path, {"contents": [{"parts": [{"text": "a fox"}]}]}, {"x-goog-api-key": SECRET})
    assert resp.status >= 400, resp
    original = diagnostics(resp)["x-gemini-router-original-path"]
    assert len(original) == 1024 and original.endswith("..."), original[-40:]
    for name, value in resp.header_list:
        assert SECRET[:8] not in value, (name, value[-40:])
    assert SECRET not in resp.text


def debug_log_of(envoy, send: Callable[[], None], until: tuple[str, ...]) -> str:
    """What the filter logs at debug level while `send()` is repeated, until
    the log holds every string of `until` (or 10 s pass); the level is put
    back to info after."""
    def level(value: str) -> None:
        req = urllib.request.Request(f"{envoy.admin_url}/logging?wasm={value}", method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    level("debug")
    try:
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline and not all(s in seen for s in until):
            since = envoy.log_size()
            send()
            seen = envoy.log_text(since)
    finally:
        level("info")
    return seen


def test_encoded_credential_names_never_reach_the_debug_log(envoy, emulator):
    def send() -> None:
        for query in (f"%6Bey={SECRET}", f"access_token={SECRET}"):
            envoy.post(f"{IMAGEN_NATIVE}?{query}", {"contents": [{"parts": [{"text": "x"}]}]})

    seen = debug_log_of(envoy, send, ("model imagen",))
    assert "model imagen-4.0-generate-001" in seen, seen[-2000:]
    assert SECRET not in envoy.log_text(), "a key reached Envoy's log"


def test_a_key_under_another_name_never_reaches_the_debug_log(envoy, emulator):
    # The key as x-goog-api-key, and in the path under a name that is no
    # credential parameter: on a request the filter routes, and on one it
    # lets pass (a path it does not route), each logged at debug level.
    def send() -> None:
        envoy.post(f"{IMAGEN_NATIVE}?note={SECRET}", {"contents": [{"parts": [{"text": "x"}]}]},
                   {"x-goog-api-key": SECRET})
        envoy.post(f"/v1beta/cachedContents?note={SECRET}", {"model": "x"}, {"x-goog-api-key": SECRET})

    seen = debug_log_of(envoy, send, ("pass through", "model imagen"))
    assert "pass through" in seen and "model imagen" in seen, seen[-2000:]
    assert "note=REDACTED" in seen, seen[-2000:]
    assert SECRET not in envoy.log_text(), "a key reached Envoy's log"


def raw_chat(port: int, extra_headers: str) -> harness.HttpResponse:
    head = (f"POST {CHAT} HTTP/1.1\r\nhost: gemini\r\ncontent-type: application/json\r\n"
            f"content-length: {len(IMAGEN_CHAT)}\r\n{extra_headers}\r\n").encode()
    resp, _ = h1_request(port, head + IMAGEN_CHAT)
    return resp


@pytest.mark.parametrize("headers", [
    "authorization: Bearer AAA\r\nauthorization: Bearer BBB\r\n",
    "x-goog-api-key: AAA\r\nx-goog-api-key: BBB\r\n",
    "authorization: Bearer AAA\r\nx-goog-api-key: BBB\r\n",
], ids=["two-authorization", "two-api-keys", "bearer-and-other-key"])
def test_two_credentials_are_refused(envoy, emulator, headers):
    resp = raw_chat(envoy.port, headers)
    assert resp.status == 400, resp
    error = resp.json()["error"]
    assert error["code"] == "ambiguous_credentials", error
    assert "exactly one" in error["message"]
    assert "AAA" not in resp.text and "BBB" not in resp.text
    assert emulator.requests() == []


def test_two_authorization_headers_over_http2_are_refused(envoy, emulator):
    request = [(":method", "POST"), (":path", CHAT), (":scheme", "http"), (":authority", "gemini"),
               ("content-type", "application/json"), ("authorization", "Bearer AAA"), ("authorization", "Bearer BBB")]
    resp, _ = h2_request(envoy.port, request, IMAGEN_CHAT)
    assert resp.status == 400, resp
    assert resp.json()["error"]["code"] == "ambiguous_credentials"
    assert emulator.requests() == []


def test_the_same_key_twice_is_one_credential(envoy, emulator):
    resp = raw_chat(envoy.port, f"authorization: Bearer {harness.API_KEY}\r\nx-goog-api-key: {harness.API_KEY}\r\n")
    assert resp.status == 200, resp
    (record,) = emulator.requests()
    sent = {k: v for k, v in record["headers"].items() if k in ("x-goog-api-key", "authorization")}
    assert sent == {"x-goog-api-key": harness.API_KEY}, sent
