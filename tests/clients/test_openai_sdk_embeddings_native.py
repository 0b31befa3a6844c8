"""The openai SDK's embeddings through `family_styles: {"embedding":"native"}` (sent to `:batchEmbedContents`).

The SDK asks for `encoding_format: "base64"` unless told otherwise and decodes
the vectors itself, so the translated answer must carry base64 of
little-endian float32 then, and plain floats when `float` was asked for.
"""

from __future__ import annotations

import openai
import pytest

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]

MODEL = "gemini-embedding-001"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({"family_styles": {"embedding": "native"}})


@pytest.fixture
def client(envoy):
    return openai.OpenAI(base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", max_retries=0, timeout=60)


def test_default_encoding_round_trips(client, emulator):
    result = client.embeddings.create(model=MODEL, input=["one", "two"], dimensions=16)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 16 and isinstance(d.embedding[0], float) for d in result.data)
    record = only_request(emulator)
    assert record["path"] == f"/v1beta/models/{MODEL}:batchEmbedContents"
    assert record["headers"]["x-goog-api-key"] == "test-key"


def test_float_and_base64_agree(client, emulator):
    floats = client.embeddings.create(model=MODEL, input="hello", dimensions=8, encoding_format="float")
    decoded = client.embeddings.create(model=MODEL, input="hello", dimensions=8)
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
