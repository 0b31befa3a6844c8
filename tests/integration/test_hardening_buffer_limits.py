"""No response size around Envoy's buffer limit crashes Envoy, and an error
larger than the buffer reaches the client with its own status.

Before the fix, writing a rewritten body just past Envoy's buffer limit from
inside the filter made Envoy send a local reply re-entrantly; the proxy-wasm
SDK panicked ("RefCell already borrowed") and Envoy died with SIGSEGV. Now a
body the filter writes is at most `max_body_bytes` (error bodies at most
64 KiB): larger errors stream through with the diagnostic headers only, and a
translated answer too large to rewrite becomes a 502 in the client's shape.
Checked at the shipped 64 MiB buffers and at Envoy's default 1 MiB with
`max_body_bytes` 512 KiB.
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from tests import harness
from tests.adversary import RawUpstream, Script, h1_response
from tests.harness import OPENAI_AUTH, assert_length_matches, diagnostics

pytestmark = pytest.mark.envoy

MIB = 1024 * 1024
CHAT = "/v1beta/openai/chat/completions"
IMAGEN_CHAT = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a fox"}]}
GEMINI_CHAT = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hi"}]}


def predictions(total: int) -> bytes:
    """A predict answer of exactly `total` bytes."""
    head = b'{"predictions":[{"mimeType":"image/png","bytesBase64Encoded":"'
    tail = b'"}]}'
    return head + b"A" * (total - len(head) - len(tail)) + tail




@pytest.fixture(scope="module")
def script():
    return Script()


@pytest.fixture(scope="module")
def upstream(script):
    server = RawUpstream(script)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=[(64 * MIB, None), (1 * MIB, 512 * 1024)], ids=["64MiB", "1MiB"])
def envoy(request, upstream):
    limit, max_body = request.param
    # Imagen answers are the subject (every Imagen model is shut down, and
    # would otherwise go to its replacement): migration off.
    config = {"migrate": "never", **({"max_body_bytes": max_body} if max_body else {})}
    proxy = harness.Envoy("127.0.0.1", upstream.port, config, buffer_limit=limit).start()
    proxy.limit = limit
    proxy.max_body = max_body or 32 * MIB
    yield proxy
    proxy.stop()


def test_error_just_under_the_buffer_limit(envoy, script):
    body = b"x" * (envoy.limit - 1024)
    script.answer = h1_response(404, [("content-type", "text/plain")], body)
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status == 404
    assert resp.body == body, "an error too large to rewrite streams through unchanged"
    assert diagnostics(resp)["x-gemini-router-hint"]
    assert "Caught Segmentation fault" not in envoy.log_text()


def test_error_larger_than_the_buffer_keeps_its_status(envoy, script):
    body = b"y" * (envoy.limit * 2)
    script.answer = h1_response(404, [("content-type", "text/plain")], body)
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status == 404, resp
    assert len(resp.body) == len(body)
    assert diagnostics(resp)


def test_chunked_error_larger_than_the_buffer_keeps_its_status(envoy, script):
    # Unannounced length: the filter cannot know in advance, so it answers
    # from the body's start as soon as that passes the bound, and drops the
    # rest as it comes without holding it (each held chunk leaves Envoy's
    # buffer, and nothing is held after the answer, so a burst never makes
    # Envoy answer 500 itself).
    chunk = b"z" * (256 * 1024)
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (2 * envoy.limit // len(chunk))
    script.answer = [h1_response(503, [("transfer-encoding", "chunked")])] + parts + [b"0\r\n\r\n"]
    resp = envoy.post(CHAT, GEMINI_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status == 503, resp
    assert_length_matches(resp)
    error = resp.json()["error"]
    assert error["message"].startswith("upstream answered 503: zzzz"), error["message"][:100]
    assert diagnostics(resp)


def test_an_error_past_the_bound_is_answered_before_the_upstream_ends(envoy, script):
    # The upstream sends its first 256 KiB and waits: the client must have
    # the whole answer by then. (Were the rest held until the upstream
    # ended, the read below would wait out its timeout.)
    chunk = b"w" * (256 * 1024)
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    go_on = threading.Event()
    script.answer = [h1_response(503, [("transfer-encoding", "chunked")]), framed, go_on, framed, b"0\r\n\r\n"]
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=20)
    try:
        conn.request("POST", CHAT, body=json.dumps(GEMINI_CHAT),
                     headers={**OPENAI_AUTH, "content-type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 503
        assert resp.getheader("x-gemini-router-hint")
        body = b""
        while True:
            chunk = resp.read1(65536)
            assert chunk, f"the body ended before one whole error object: {body[:200]!r}"
            body += chunk
            try:
                error = json.loads(body)["error"]
                break
            except ValueError:
                continue
        assert error["message"].startswith("upstream answered 503: wwww"), error["message"][:100]
        go_on.set()
        assert resp.read() == b"", "the rest of the upstream's body is dropped"
    finally:
        go_on.set()
        conn.close()
    assert envoy.alive(), envoy.log_tail()


def test_a_burst_into_a_held_translation_cannot_overflow_envoy(envoy, script):
    # The whole answer in one burst, just under max_body_bytes: Envoy would
    # answer 500 itself if it still held earlier chunks.
    body = predictions(envoy.max_body - 4096)
    script.answer = [h1_response(200, [("content-type", "application/json"), ("transfer-encoding", "chunked")]),
                     b"%x\r\n%s\r\n" % (10, body[:10]), b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:])]
    resp = envoy.post(CHAT, IMAGEN_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status in (200, 502), resp
    if resp.status == 502:
        assert "above max_body_bytes" in resp.json()["error"]["message"]


def test_translated_answer_just_under_the_buffer_limit(envoy, script):
    script.answer = h1_response(200, [("content-type", "application/json")], predictions(envoy.limit - 1024))
    resp = envoy.post(CHAT, IMAGEN_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status == 502, resp
    assert_length_matches(resp)
    error = resp.json()["error"]
    assert "above max_body_bytes" in error["message"], error
    assert error["code"] == "translation_failed"


def test_translated_answer_just_under_max_body_bytes(envoy, script):
    # The answer fits max_body_bytes, but its translation would not.
    script.answer = h1_response(200, [("content-type", "application/json")], predictions(envoy.max_body - 16))
    resp = envoy.post(CHAT, IMAGEN_CHAT, OPENAI_AUTH)
    assert envoy.alive(), envoy.log_tail()
    assert resp.status == 502, resp
    assert "above max_body_bytes" in resp.json()["error"]["message"]


def test_translated_answer_well_within_the_bounds(envoy, script):
    script.answer = h1_response(200, [("content-type", "application/json")], predictions(envoy.max_body // 2))
    resp = envoy.post(CHAT, IMAGEN_CHAT, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert_length_matches(resp)
    content = resp.json()["choices"][0]["message"]["content"]
    assert content.startswith("![image](data:image/png;base64,AAAA")
    assert envoy.alive()
