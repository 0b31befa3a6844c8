"""Text from the upstream (a block reason) that reaches a diagnostic header can
never split it or add a header: CR, LF and other control characters are escaped."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import harness

pytestmark = pytest.mark.envoy

HOSTILE = {"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "blocked\r\nx-injected: yes\n\u0012"}}


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(HOSTILE).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def envoy():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    proxy = harness.Envoy("127.0.0.1", upstream.server_address[1], {}).start()
    yield proxy
    proxy.stop()
    upstream.shutdown()


@pytest.mark.parametrize("path,body,auth", [
    ("/v1beta/openai/images/generations", {"model": "gemini-3.1-flash-image", "prompt": "a cat"},
     {"authorization": "Bearer k"}),
    ("/v1beta/models/gemini-3.1-flash-image:predict", {"instances": [{"prompt": "a cat"}]},
     {"x-goog-api-key": "k"}),
])
def test_block_reason_cannot_inject_headers(envoy, path, body, auth):
    resp = envoy.post(path, body, auth)
    assert resp.status == 422, resp
    assert "x-injected" not in resp.headers, resp.headers
    hint = harness.diagnostics(resp)["x-gemini-router-hint"]
    assert "blocked\\r\\nx-injected: yes" in hint, hint
    for name, value in resp.header_list:
        assert all(0x20 <= ord(c) < 0x7f or c == "\t" for c in value), (name, value)
    # The body still carries the reason, JSON-escaped.
    assert "x-injected: yes" in resp.json()["error"]["message"]
