"""Routed requests ask the upstream for an uncompressed answer, so the filter can
rewrite an error or translate an answer; other requests keep their headers."""

from __future__ import annotations

import pytest

from tests import harness
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


@pytest.fixture
def start_proxy(emulator):
    started: list[harness.Envoy] = []

    def start(config: dict, **options) -> harness.Envoy:
        proxy = harness.Envoy(emulator.host, emulator.port, config, skip_unrouted="off", **options)
        started.append(proxy.start())
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def retired_chat(proxy: harness.Envoy, emulator) -> harness.HttpResponse:
    emulator.configure(retired=["gemini-3.6-flash"])
    body = {"model": "gemini-3.6-flash", "messages": [{"role": "user", "content": "hi"}]}
    return proxy.post(CHAT, body, {**OPENAI_AUTH, **GZIP})


def test_a_route_that_removes_it_serves_the_filter_as_well(start_proxy, emulator):
    # The shipped configs: the route removes the header, the filter leaves it.
    proxy = start_proxy({"migrate": "never"}, route_removes_accept_encoding=True)
    resp = retired_chat(proxy, emulator)
    assert resp.status == 404, resp
    assert "content-encoding" not in resp.headers
    assert resp.json()["error"]["type"] == "not_found_error"
    assert "accept-encoding" not in only_request(emulator)["headers"]


def test_the_field_on_a_route_that_keeps_it_is_logged_once(start_proxy, emulator):
    # A configuration that says the route removes the header when it does
    # not: the upstream gzips the error, which passes with its body unread,
    # and the log says why, once.
    proxy = start_proxy({"migrate": "never", "route_removes_accept_encoding": True})
    since = proxy.log_size()
    for _ in range(2):
        resp = retired_chat(proxy, emulator)
        assert resp.status == 404, resp
        assert resp.headers.get("content-encoding") == "gzip"
        assert diagnostics(resp)["x-gemini-router-model"] == "gemini-3.6-flash"
        emulator.reset()
    log = proxy.log_text(since)
    assert log.count("although route_removes_accept_encoding is set") == 1, log
