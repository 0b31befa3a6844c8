"""When the filter changes a routed request's headers, Envoy matches its route
again (Envoy clears the route it cached for a request whose headers a Wasm
module of this ABI version changes): a route chosen by path sees the path the
filter sends upstream, and a route that matches a header the filter removes
no longer matches."""

from __future__ import annotations

import pytest
import yaml

from tests import harness
from tests.harness import OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


def routes_marked(proxy: harness.Envoy, first: dict) -> None:
    """Puts a route matching `first` before the catch-all route of `proxy`'s
    configuration; each route tells the upstream its name in `x-route`."""
    config = yaml.safe_load(proxy.config_path.read_text())
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    catch_all = routes[-1]
    # The first route removes what the catch-all removes (see route_removes below).
    removes = {key: catch_all[key] for key in ["request_headers_to_remove"] if key in catch_all}
    marked = [
        {"match": first, "route": catch_all["route"], **removes, "request_headers_to_add": [
            {"header": {"key": "x-route", "value": "first"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]},
        {**catch_all, "request_headers_to_add": [
            {"header": {"key": "x-route", "value": "catch-all"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]},
    ]
    routes[-1:] = marked
    proxy.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def start_marked(emulator):
    started: list[harness.Envoy] = []

    def start(first: dict, **options) -> harness.Envoy:
        proxy = harness.Envoy(emulator.host, emulator.port, {"migrate": "never"}, skip_unrouted="off", **options)
        routes_marked(proxy, first)
        started.append(proxy.start())
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def chat_sent(proxy: harness.Envoy, emulator, model: str, headers: dict[str, str] | None = None) -> dict:
    """What reached the upstream for a chat request for `model`, answered 200."""
    body = {"model": model, "messages": [{"role": "user", "content": "a red cube"}]}
    resp = proxy.post(CHAT, body, {**OPENAI_AUTH, **(headers or {})})
    assert resp.status == 200, resp
    return only_request(emulator)


def test_a_rewritten_path_is_routed_by_the_new_path(start_marked, emulator):
    sent = chat_sent(start_marked({"prefix": "/v1beta/models/"}), emulator, "gemini-3.1-flash-image")
    assert sent["path"].startswith("/v1beta/models/gemini-3.1-flash-image:generateContent"), sent["path"]
    assert sent["headers"]["x-route"] == "first", "the route of the path sent upstream"


def test_a_request_left_on_its_path_keeps_its_route(start_marked, emulator):
    sent = chat_sent(start_marked({"prefix": "/v1beta/models/"}), emulator, "gemini-3.5-flash")
    assert sent["path"] == CHAT
    assert sent["headers"]["x-route"] == "catch-all"


def test_a_route_on_a_removed_header_stops_matching(start_marked, emulator):
    # The filter removes a routed request's Accept-Encoding (so that an error
    # arrives uncompressed): that change alone has Envoy match the route again.
    first = {"prefix": "/", "headers": [{"name": "accept-encoding", "present_match": True}]}
    sent = chat_sent(start_marked(first), emulator, "gemini-3.5-flash", {"accept-encoding": "gzip"})
    assert "accept-encoding" not in sent["headers"]
    assert sent["headers"]["x-route"] == "catch-all"


def test_a_route_that_removes_accept_encoding_keeps_its_match(start_marked, emulator):
    # What the shipped configs do: the route removes Accept-Encoding and the
    # filter is told so (route_removes_accept_encoding). A chat forwarded
    # unchanged then gets no header change from the filter, and Envoy sends
    # it on the route it matched first.
    first = {"prefix": "/", "headers": [{"name": "accept-encoding", "present_match": True}]}
    proxy = start_marked(first, route_removes_accept_encoding=True)
    sent = chat_sent(proxy, emulator, "gemini-3.5-flash", {"accept-encoding": "gzip"})
    assert "accept-encoding" not in sent["headers"]
    assert sent["headers"]["x-route"] == "first"
