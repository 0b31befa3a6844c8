"""`family_styles: {"embedding":"openai"}`: native `:embedContent` / `:batchEmbedContents` -> compat `embeddings`.

The text parts become `input` (a string for `:embedContent`, a list for
`:batchEmbedContents`), `outputDimensionality` -> `dimensions`, the key moves
from `x-goog-api-key` (or `?key=`, which is taken out of the query) to
`Authorization: Bearer`, and the vectors come back as
`{"embedding":{"values"}}` or `{"embeddings":[{"values"}]}`.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import API_KEY, NATIVE_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

EMBEDDINGS = "/v1beta/openai/embeddings"
MODEL = "gemini-embedding-001"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({"family_styles": {"embedding": "openai"}})


def upstream(emulator) -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", EMBEDDINGS, "")
    assert record["headers"].get("authorization") == f"Bearer {API_KEY}"
    assert "x-goog-api-key" not in record["headers"]
    return json.loads(record["body"])


def assert_json(resp) -> dict:
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    return resp.json()


def content(text: str) -> dict:
    return {"parts": [{"text": text}]}


@pytest.mark.parametrize(
    "target,headers",
    [
        (f"/v1beta/models/{MODEL}:embedContent", NATIVE_AUTH),
        (f"/v1beta/models/{MODEL}:embedContent?key={API_KEY}", {}),
    ],
    ids=["header-key", "query-key"],
)
def test_embed_content_goes_to_compat_embeddings(envoy, emulator, target, headers):
    body = {"content": content("hello world"), "outputDimensionality": 8, "taskType": "RETRIEVAL_QUERY"}
    resp = envoy.post(target, body, headers)

    sent = upstream(emulator)
    assert {k: sent[k] for k in ("model", "input", "dimensions")} == {
        "model": MODEL,
        "input": "hello world",
        "dimensions": 8,
    }
    answer = assert_json(resp)
    assert set(answer) == {"embedding"}
    values = answer["embedding"]["values"]
    assert len(values) == 8 and all(isinstance(v, float) for v in values)


def test_batch_embed_contents_goes_to_compat_embeddings(envoy, emulator):
    texts = ["one", "two", "thrée ✓"]
    body = {
        "requests": [
            {"model": f"models/{MODEL}", "content": content(t), "outputDimensionality": 4} for t in texts
        ]
    }
    resp = envoy.post(f"/v1beta/models/{MODEL}:batchEmbedContents", body, NATIVE_AUTH)

    sent = upstream(emulator)
    assert (sent["model"], sent["input"], sent["dimensions"]) == (MODEL, texts, 4)
    answer = assert_json(resp)
    assert set(answer) == {"embeddings"}
    assert [len(e["values"]) for e in answer["embeddings"]] == [4, 4, 4]
    assert answer["embeddings"][0]["values"] != answer["embeddings"][1]["values"]


def test_default_dimensions_are_left_to_the_model(envoy, emulator):
    resp = envoy.post(f"/v1beta/models/{MODEL}:embedContent", {"content": content("hello")}, NATIVE_AUTH)
    assert "dimensions" not in upstream(emulator)
    assert len(assert_json(resp)["embedding"]["values"]) == 3072


def test_batch_with_different_dimensions_is_refused_locally(envoy, emulator):
    # The compat layer takes one `dimensions` per call.
    body = {
        "requests": [
            {"model": f"models/{MODEL}", "content": content("one"), "outputDimensionality": 4},
            {"model": f"models/{MODEL}", "content": content("two"), "outputDimensionality": 8},
        ]
    }
    resp = envoy.post(f"/v1beta/models/{MODEL}:batchEmbedContents", body, NATIVE_AUTH)
    assert emulator.requests() == []
    assert resp.status == 400, resp
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "outputDimensionality" in error["message"]
