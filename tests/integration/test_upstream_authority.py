"""With `upstream` set, the :authority of every request is rewritten to its host[:port]."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy


@pytest.fixture(scope="module")
def with_port(start_envoy):
    return start_envoy({"upstream": "https://gemini.example.test:8443"})


@pytest.fixture(scope="module")
def without_port(start_envoy):
    return start_envoy({"upstream": "https://generativelanguage.googleapis.com"})


def test_unchanged_chat_gets_the_upstream_host(with_port, emulator):
    body = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]}
    assert with_port.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH).status == 200
    assert only_request(emulator)["headers"]["host"] == "gemini.example.test:8443"


def test_rewritten_request_gets_the_upstream_host(with_port, emulator):
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "x"}]}
    with_port.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert record["headers"]["host"] == "gemini.example.test:8443"


def test_native_request_without_port(without_port, emulator):
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert without_port.post("/v1beta/models/gemini-3.5-flash:generateContent", body, NATIVE_AUTH).status == 200
    assert only_request(emulator)["headers"]["host"] == "generativelanguage.googleapis.com"


def test_unrouted_get_gets_the_upstream_host(with_port, emulator):
    # "every request": also those the filter does not route.
    assert with_port.request("GET", "/v1beta/models", headers=NATIVE_AUTH).status == 200
    assert only_request(emulator)["headers"]["host"] == "gemini.example.test:8443"


def test_without_upstream_the_client_host_is_kept(envoy, emulator):
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    envoy.post("/v1beta/models/gemini-3.5-flash:generateContent", body, {**NATIVE_AUTH, "host": "client.example:1234"})
    assert only_request(emulator)["headers"]["host"] == "client.example:1234"
