"""Per-request debug lines follow Envoy's wasm log level, including a change made
at runtime through the admin API, and never carry the API key."""

from __future__ import annotations

import time
import urllib.request

import pytest

pytestmark = pytest.mark.envoy

SECRET = "sk-LOGSECRET-91c2"
CHAT = "/v1beta/openai/chat/completions"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({})


def set_wasm_level(envoy, level: str) -> None:
    req = urllib.request.Request(f"{envoy.admin_url}/logging?wasm={level}", method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def debug_lines_after(envoy, send) -> str:
    since = envoy.log_size()
    send()
    return envoy.log_text(since)


def test_debug_lines_follow_the_runtime_level_and_hide_the_key(envoy, emulator):
    emulator.configure(valid_keys=[SECRET])
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a fox"}]}

    def send():
        assert envoy.post(CHAT, body, {"authorization": f"Bearer {SECRET}"}).status == 200
        native = f"/v1beta/models/gemini-3.5-flash:generateContent?key={SECRET}"
        envoy.post(native, {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})

    # Envoy starts at info: no per-request lines.
    quiet = debug_lines_after(envoy, send)
    assert "model gemini-3.1-flash-image" not in quiet, quiet[-2000:]

    # The filter re-reads the level every second: poll until the lines appear.
    set_wasm_level(envoy, "debug")
    deadline = time.monotonic() + 10
    loud = ""
    while time.monotonic() < deadline and "model gemini-3.1-flash-image" not in loud:
        loud = debug_lines_after(envoy, send)
    set_wasm_level(envoy, "info")
    assert "model gemini-3.1-flash-image family gemini_image" in loud, loud[-2000:]
    assert "key=REDACTED" in loud, loud[-2000:]
    assert SECRET not in envoy.log_text(), "the API key reached Envoy's log"
