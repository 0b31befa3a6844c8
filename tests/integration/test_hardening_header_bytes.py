"""Header values that are not UTF-8 (HTTP's obs-text, which Envoy passes on)
in a request or in an upstream's answer: the filter routes and rewrites as
usual, leaves such a header as it came, and its VM survives.

Before the fix the SDK's string readers panicked on them: one request with
`x-note: caf\\xe9` aborted the worker's Wasm VM ("panicked at
proxy-wasm-0.2.5/src/hostcalls.rs"), and every later request on that worker
failed.
"""

from __future__ import annotations

import json

import pytest

from tests import harness
from tests.adversary import RawUpstream, Received, Script, google_error, h1_request, h1_response

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
GEMINI_CHAT = b'{"model":"gemini-3.5-flash","messages":[{"role":"user","content":"hi"}]}'
IMAGEN_CHAT = b'{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"a fox"}]}'
COMPLETION = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "gemini-3.5-flash",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                                      "finish_reason": "stop"}]}).encode()
PREDICTIONS = json.dumps({"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "AAAA"}]}).encode()
LATIN1 = "caf\xe9 \xff\xfe"  # sent as the bytes 63 61 66 e9 20 ff fe: not UTF-8


@pytest.fixture(scope="module")
def seen():
    return []


@pytest.fixture(scope="module")
def script(seen):
    def answer(request: Received) -> bytes:
        seen.append(request)
        body = PREDICTIONS if ":predict" in request.target else COMPLETION
        return h1_response(200, [("content-type", "application/json")], body)

    return Script(default=answer)


@pytest.fixture(scope="module")
def envoy(script):
    server = RawUpstream(script)
    # Imagen is among the subjects: migration off.
    proxy = harness.Envoy("127.0.0.1", server.port, {"api_style": "openai", "migrate": "never"}).start()
    yield proxy
    proxy.stop()
    server.stop()


def post(envoy, body: bytes, headers: str) -> harness.HttpResponse:
    head = (f"POST {CHAT} HTTP/1.1\r\nhost: gemini\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{headers}\r\n").encode("latin-1")
    resp, _ = h1_request(envoy.port, head + body)
    return resp


def assert_vm_alive(envoy) -> None:
    resp = post(envoy, GEMINI_CHAT, "authorization: Bearer AIzaPLAINkey0123\r\n")
    assert resp.status == 200, resp
    assert "panicked" not in envoy.log_text(), envoy.log_tail()


@pytest.mark.parametrize("body,path_part", [(GEMINI_CHAT, "/chat/completions"), (IMAGEN_CHAT, ":predict")],
                         ids=["unchanged", "translated"])
def test_a_request_header_that_is_not_utf8_is_routed_and_passed_on_as_sent(envoy, seen, script, body, path_part):
    script.answer = b""
    seen.clear()
    resp = post(envoy, body, f"authorization: Bearer AIzaPLAINkey0123\r\nx-note: {LATIN1}\r\n")
    assert resp.status == 200, resp
    assert resp.json()["object"] == "chat.completion", resp
    assert path_part in seen[-1].target, seen[-1].target
    assert seen[-1].header("x-note") == [LATIN1], seen[-1].headers
    assert_vm_alive(envoy)


def test_a_credential_that_is_not_utf8_does_not_stop_the_vm(envoy, seen, script):
    script.answer = b""
    seen.clear()
    resp = post(envoy, GEMINI_CHAT, "authorization: Bearer AIza\xff\xfeKEY\r\n")
    # Whatever the filter makes of it (passed on, or refused as no usable
    # credential), the client gets an HTTP answer, and the VM lives on.
    assert 200 <= resp.status < 500, resp
    assert_vm_alive(envoy)


@pytest.mark.parametrize("status", [429, 500])
def test_an_upstream_error_with_a_header_that_is_not_utf8_is_still_rewritten(envoy, script, status):
    body = google_error(status, "Upstream says no.", "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL")
    script.answer = h1_response(status, [("content-type", "application/json"), ("x-upstream-note", LATIN1)], body)
    resp = post(envoy, GEMINI_CHAT, "authorization: Bearer AIzaPLAINkey0123\r\n")
    assert resp.status == status, resp
    error = resp.json()["error"]
    assert error["message"].startswith("Upstream says no. (gemini-router: "), error
    script.answer = b""
    assert_vm_alive(envoy)


def test_a_large_header_map_is_read_whole_in_place(envoy, seen, script):
    # The filter reads the request's header map from the buffer Envoy
    # writes: 90 headers, one value of 30 KB, the credential last of all.
    script.answer = b""
    seen.clear()
    filler = "".join(f"x-filler-{i}: value-{i}\r\n" for i in range(90))
    big = "x-big: " + "b" * 30_000 + "\r\n"
    resp = post(envoy, IMAGEN_CHAT, filler + big + "authorization: Bearer AIzaLASTkey0123\r\n")
    assert resp.status == 200, resp
    assert resp.json()["object"] == "chat.completion", resp
    upstream = seen[-1]
    assert ":predict" in upstream.target, upstream.target
    # The key moved to the header the native API reads: it was found.
    assert upstream.header("x-goog-api-key") == ["AIzaLASTkey0123"], upstream.headers
    assert upstream.header("x-big") == ["b" * 30_000]
    assert upstream.header("x-filler-89") == ["value-89"]
    assert_vm_alive(envoy)


def test_a_header_map_past_envoys_limit_is_refused_by_envoy(envoy, seen, script):
    # The filter keeps the request's header map until the body is decided:
    # Envoy's max_request_headers_kb (60 KiB by default) bounds it, and a
    # larger map never reaches the filter.
    script.answer = b""
    seen.clear()
    before = envoy.counter("gemini_router.requests_total")
    big = "x-big: " + "b" * 70_000 + "\r\n"
    resp = post(envoy, GEMINI_CHAT, big + "authorization: Bearer AIzaPLAINkey0123\r\n")
    assert resp.status == 431, resp
    assert not seen, "refused by Envoy, not sent upstream"
    assert envoy.counter("gemini_router.requests_total") == before, "the filter never saw it"
    assert_vm_alive(envoy)
