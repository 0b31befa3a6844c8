"""Model names that could escape the path are refused locally with 400 and never reach upstream."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

HOSTILE_BODY_MODELS = [
    pytest.param("../x", id="dotdot-slash"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("a/b", id="slash"),
    pytest.param("models/../x", id="prefix-dotdot"),
    pytest.param("a%2Fb", id="percent-2F"),
    pytest.param("gemini?x=1", id="question"),
    pytest.param("gemini#frag", id="hash"),
    pytest.param("gemini 2.5", id="space"),
    pytest.param("gémini-2.5-flash", id="non-ascii"),
    pytest.param("", id="empty"),
    pytest.param("models/", id="empty-after-prefix"),
    pytest.param(123, id="number"),
    pytest.param(["gemini-2.5-flash"], id="list"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("a" * 129, id="129-chars"),
    pytest.param("gemini\n-2.5", id="newline"),
]

# Native paths: the model segment as it appears on the request line. Characters
# that would end the path (? #) or are not allowed on a request line are sent
# percent-encoded, as a client library would.
HOSTILE_NATIVE_SEGMENTS = [
    pytest.param("../x", id="dotdot-slash"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("a/b", id="slash"),
    pytest.param("a%2Fb", id="percent-2F"),
    pytest.param("a%3Fx", id="question"),
    pytest.param("a%23b", id="hash"),
    pytest.param("a%20b", id="space"),
    pytest.param("g%C3%A9mini", id="non-ascii"),
    pytest.param("", id="empty"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("a" * 129, id="129-chars"),
]


def assert_openai_invalid_model(resp) -> None:
    assert resp.status == 400, resp
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "model"
    assert error["code"] == "invalid_model"
    assert isinstance(error["message"], str) and error["message"]


def assert_google_invalid_argument(resp) -> None:
    assert resp.status == 400, resp
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("model", HOSTILE_BODY_MODELS)
@pytest.mark.parametrize("op", ["chat/completions", "images/generations", "embeddings"])
def test_openai_shape(envoy, emulator, model, op):
    body = {"model": model, "messages": [{"role": "user", "content": "x"}], "prompt": "x", "input": "x"}
    resp = envoy.post(f"/v1beta/openai/{op}", body, OPENAI_AUTH)
    assert_openai_invalid_model(resp)
    assert emulator.requests() == []


@pytest.mark.parametrize("segment", HOSTILE_NATIVE_SEGMENTS)
@pytest.mark.parametrize("method", ["generateContent", "predict"])
def test_native_shape(envoy, emulator, segment, method):
    resp = envoy.post(f"/v1beta/models/{segment}:{method}", {"contents": [{"parts": [{"text": "x"}]}]}, NATIVE_AUTH)
    assert_google_invalid_argument(resp)
    assert emulator.requests() == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/projects/p/locations/us-central1/publishers/google/models/a%2Fb:generateContent",
        "/v1/projects/p/locations/us-central1/publishers/google/models/..:generateContent",
        "/v1/publishers/google/models/a%20b:generateContent",
    ],
)
def test_vertex_shape(envoy, emulator, path):
    resp = envoy.post(path, {"contents": [{"parts": [{"text": "x"}]}]}, {"authorization": "Bearer t"})
    assert_google_invalid_argument(resp)
    assert emulator.requests() == []


def test_longest_accepted_name_reaches_upstream(envoy, emulator):
    # 128 characters is the default max_model_length: valid, so Google answers (404, unknown model).
    model = "gemini-" + "a" * 121
    resp = envoy.post("/v1beta/openai/chat/completions", {"model": model, "messages": [{"role": "user", "content": "x"}]}, OPENAI_AUTH)
    assert resp.status == 404, resp
    # The request itself, besides the filter's live-catalogue read after the 404.
    assert model in only_request(emulator)["body"]
