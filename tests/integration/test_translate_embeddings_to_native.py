"""`family_styles: {"embedding":"native"}`: OpenAI `embeddings` -> native `:batchEmbedContents`.

The compat endpoint serves embedding models, so only an explicit
`family_styles` entry moves these requests. `input` (a string or a list)
becomes one request per text, `dimensions` -> `outputDimensionality`, the key
moves to `x-goog-api-key`, and the vectors come back as an OpenAI list (base64
of little-endian float32 when the client asked for `encoding_format: base64`,
as the openai SDK does by default).
"""

from __future__ import annotations

import base64
import json
import struct

import pytest

from tests.harness import API_KEY, OPENAI_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

EMBEDDINGS = "/v1beta/openai/embeddings"
MODEL = "gemini-embedding-001"
BATCH = f"/v1beta/models/{MODEL}:batchEmbedContents"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({"family_styles": {"embedding": "native"}})


def upstream(emulator) -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", BATCH, "")
    assert record["headers"].get("x-goog-api-key") == API_KEY
    assert "authorization" not in record["headers"]
    return json.loads(record["body"])


def native_request(text: str, dims: int | None) -> dict:
    request = {"model": f"models/{MODEL}", "content": {"parts": [{"text": text}]}}
    if dims is not None:
        request["outputDimensionality"] = dims
    return request


def assert_list(resp, count: int) -> list:
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    body = resp.json()
    assert body["object"] == "list"
    assert body["model"] == MODEL
    assert [d["index"] for d in body["data"]] == list(range(count))
    assert {d["object"] for d in body["data"]} == {"embedding"}
    assert set(body["usage"]) == {"prompt_tokens", "total_tokens"}
    return [d["embedding"] for d in body["data"]]


@pytest.mark.parametrize(
    "inputs,texts",
    [("hello world", ["hello world"]), (["one", "two", "thrée ✓"], ["one", "two", "thrée ✓"])],
    ids=["string", "list"],
)
def test_embeddings_go_to_batch_embed_contents(envoy, emulator, inputs, texts):
    resp = envoy.post(EMBEDDINGS, {"model": MODEL, "input": inputs, "dimensions": 8}, OPENAI_AUTH)

    assert upstream(emulator) == {"requests": [native_request(t, 8) for t in texts]}
    vectors = assert_list(resp, len(texts))
    assert all(len(v) == 8 and all(isinstance(x, float) for x in v) for v in vectors)
    # One vector per text, in input order (the emulator's vectors differ per text).
    assert len({tuple(v) for v in vectors}) == len(texts)


def test_vectors_are_the_native_values(envoy, emulator):
    # The translated list carries exactly what :batchEmbedContents answers for the same texts.
    resp = envoy.post(EMBEDDINGS, {"model": MODEL, "input": ["alpha", "beta"], "dimensions": 4}, OPENAI_AUTH)
    translated = assert_list(resp, 2)
    emulator.reset()
    native = envoy.post(
        BATCH, {"requests": [native_request("alpha", 4), native_request("beta", 4)]}, {"x-goog-api-key": API_KEY}
    )
    assert native.status == 200, native
    assert translated == [e["values"] for e in native.json()["embeddings"]]


def test_base64_encoding_is_little_endian_float32(envoy, emulator):
    resp = envoy.post(EMBEDDINGS, {"model": MODEL, "input": "hello", "dimensions": 4}, OPENAI_AUTH)
    [floats] = assert_list(resp, 1)
    emulator.reset()
    resp = envoy.post(
        EMBEDDINGS, {"model": MODEL, "input": "hello", "dimensions": 4, "encoding_format": "base64"}, OPENAI_AUTH
    )
    [encoded] = assert_list(resp, 1)
    assert isinstance(encoded, str)
    decoded = struct.unpack("<4f", base64.b64decode(encoded))
    assert decoded == pytest.approx(floats, rel=1e-6)


def test_default_dimensions_are_left_to_the_model(envoy, emulator):
    resp = envoy.post(EMBEDDINGS, {"model": MODEL, "input": "hello"}, OPENAI_AUTH)
    assert upstream(emulator) == {"requests": [native_request("hello", None)]}
    [vector] = assert_list(resp, 1)
    assert len(vector) == 3072
