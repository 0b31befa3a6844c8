"""The official google-genai SDK through Envoy to the emulator's native API.

google-genai 3.x calls the Developer API on `/v1/` by default and embeds with
`:batchEmbedContents`; in Vertex express mode (API key) it calls
`/v1beta1/publishers/google/models/...`. The emulator serves all of them.
"""

from __future__ import annotations

import base64

import pytest
from google import genai
from google.genai import errors, types

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]


# Model migration off: the Vertex express Imagen call passes unchanged and a
# shut-down model's 404 reaches the SDK; migration would serve replacements.
FILTER_CONFIG = {"migrate": "never"}


@pytest.fixture(params=[None, "v1beta"], ids=["default-version", "v1beta"])
def client(request, envoy):
    options = types.HttpOptions(base_url=envoy.url, api_version=request.param, timeout=60_000)
    return genai.Client(api_key="test-key", http_options=options)


def version_of(client) -> str:
    return client._api_client._http_options.api_version


def test_generate_content(client, emulator):
    response = client.models.generate_content(model="gemini-3.5-flash", contents="hello genai")
    assert response.text == "Echo from gemini-3.5-flash: hello genai"
    record = only_request(emulator)
    assert record["path"] == f"/{version_of(client)}/models/gemini-3.5-flash:generateContent"
    assert record["headers"]["x-goog-api-key"] == "test-key"


def test_generate_content_stream(client, emulator):
    chunks = list(client.models.generate_content_stream(model="gemini-3.5-flash", contents="stream genai"))
    assert len(chunks) >= 2
    assert "".join(c.text or "" for c in chunks) == "Echo from gemini-3.5-flash: stream genai"
    record = only_request(emulator)
    assert record["path"] == f"/{version_of(client)}/models/gemini-3.5-flash:streamGenerateContent"
    assert "alt=sse" in record["query"]


def test_embed_content(client, emulator):
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["one", "two"],
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert [len(e.values) for e in result.embeddings] == [8, 8]
    assert only_request(emulator)["path"].endswith("/models/gemini-embedding-001:batchEmbedContents")


def test_image_output_model(client, emulator):
    response = client.models.generate_content(
        model="gemini-3.1-flash-image",
        contents="a small red square",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]),
    )
    images = [p.inline_data for p in response.candidates[0].content.parts if p.inline_data]
    assert len(images) == 1 and images[0].data.startswith(b"\x89PNG")
    assert only_request(emulator)["path"].endswith("/models/gemini-3.1-flash-image:generateContent")


@pytest.fixture
def vertex_express(envoy):
    # Vertex AI express mode: an API key on /v1beta1/publishers/google/models/...
    options = types.HttpOptions(base_url=envoy.url, timeout=60_000)
    return genai.Client(vertexai=True, api_key="test-key", http_options=options)


@pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")
def test_vertex_express_imagen_generate_images(vertex_express, emulator):
    # generate_images exists only for Vertex in this SDK; the request is on the
    # endpoint that serves Imagen, so it passes unchanged. Imagen is shut down
    # (2026); the emulator serves it again for this test.
    emulator.configure(live=["imagen-4.0-generate-001"])
    response = vertex_express.models.generate_images(
        model="imagen-4.0-generate-001",
        prompt="a small red square",
        config=types.GenerateImagesConfig(number_of_images=2),
    )
    assert len(response.generated_images) == 2
    assert response.generated_images[0].image.image_bytes.startswith(b"\x89PNG")
    record = only_request(emulator)
    assert record["path"] == "/v1beta1/publishers/google/models/imagen-4.0-generate-001:predict"
    assert record["headers"]["x-goog-api-key"] == "test-key"


def test_vertex_express_generate_content(vertex_express, emulator):
    response = vertex_express.models.generate_content(model="gemini-3.5-flash", contents="hello vertex")
    assert response.text == "Echo from gemini-3.5-flash: hello vertex"
    assert only_request(emulator)["path"] == "/v1beta1/publishers/google/models/gemini-3.5-flash:generateContent"


def test_models_list_has_live_models_and_their_methods(client, emulator):
    models = {m.name: m for m in client.models.list()}
    assert models["models/gemini-3.5-flash"].supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    assert models["models/veo-3.1-generate-preview"].supported_actions == ["predictLongRunning"]
    assert "models/gemini-2.5-flash" not in models and not [n for n in models if n.startswith("models/imagen-")]
    assert [r["path"] for r in emulator.requests()] == [f"/{version_of(client)}/models"]


def test_retired_model_error_carries_googles_message(client, emulator):
    # gemini-2.0-flash is shut down (June 2026): Google answers 404.
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.0-flash", contents="x")
    err = caught.value
    assert err.code == 404
    assert err.status == "NOT_FOUND"
    assert "models/gemini-2.0-flash is not found" in err.message
    assert err.response.headers.get("x-gemini-router-model") == "gemini-2.0-flash"


def test_emulator_answers_bytes_the_sdk_decodes(client):
    # Sanity: the SDK decodes inline PNG data from base64 as Google sends it.
    response = client.models.generate_content(
        model="gemini-3.1-flash-image",
        contents="x",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"]),
    )
    part = response.candidates[0].content.parts[0]
    assert base64.b64encode(part.inline_data.data)
