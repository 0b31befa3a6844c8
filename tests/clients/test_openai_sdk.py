"""The official openai SDK through Envoy to the emulator's compatibility layer."""

from __future__ import annotations

import openai
import pytest

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]


# Model migration off: the subject is a shut-down model's 404, which migration
# would otherwise answer from the replacement.
FILTER_CONFIG = {"migrate": "never"}


@pytest.fixture
def client(envoy):
    return openai.OpenAI(base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", max_retries=0, timeout=60)


def test_chat(client, emulator):
    completion = client.chat.completions.create(
        model="gemini-3.5-flash", messages=[{"role": "user", "content": "hello sdk"}]
    )
    assert completion.choices[0].message.content == "Echo from gemini-3.5-flash: hello sdk"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    record = only_request(emulator)
    assert record["path"] == "/v1beta/openai/chat/completions"
    assert record["headers"]["authorization"] == "Bearer test-key"


def test_chat_stream(client, emulator):
    stream = client.chat.completions.create(
        model="gemini-3.5-flash",
        messages=[{"role": "user", "content": "stream sdk"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo from gemini-3.5-flash: stream sdk"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert only_request(emulator)["path"] == "/v1beta/openai/chat/completions"


def test_models_list_names_live_models_with_the_models_prefix(client, emulator):
    # Google's compat layer lists ids as "models/..."; shut-down models are gone.
    ids = {m.id for m in client.models.list()}
    assert {"models/gemini-3.5-flash", "models/gemini-3.1-flash-image", "models/gemini-embedding-001"} <= ids
    assert not {i for i in ids if i.startswith(("models/imagen-", "models/gemini-2."))}, ids
    assert [r["path"] for r in emulator.requests()] == ["/v1beta/openai/models"]


@pytest.mark.parametrize("encoding_format", [None, "float"])
def test_embeddings(client, emulator, encoding_format):
    kwargs = {"encoding_format": encoding_format} if encoding_format else {}
    result = client.embeddings.create(model="gemini-embedding-001", input=["one", "two"], dimensions=16, **kwargs)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 16 and isinstance(d.embedding[0], float) for d in result.data)
    assert only_request(emulator)["path"] == "/v1beta/openai/embeddings"


def test_retired_model_raises_not_found_naming_model_and_endpoint(client, emulator):
    # gemini-2.0-flash is shut down (June 2026): Google answers 404.
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": "x"}])
    err = caught.value
    assert err.status_code == 404
    assert "gemini-2.0-flash" in err.message
    assert "chat/completions" in err.message
    assert "is not found for API version v1main" in err.message
    assert isinstance(err.body, dict) and err.body.get("type") == "not_found_error", err.body
    assert err.code == "not_found"
    assert err.response.headers.get("x-gemini-router-model") == "gemini-2.0-flash"


def test_retired_model_stream_raises_not_found(client, emulator):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="gemini-2.0-flash", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert "gemini-2.0-flash" in caught.value.message and "chat/completions" in caught.value.message


def test_hostile_model_raises_bad_request(client, emulator):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="../../v1beta/models/x", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "invalid_model"
    assert caught.value.param == "model"
    assert emulator.requests() == []
