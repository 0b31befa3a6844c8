"""google-genai `generate_content` aimed at an Imagen model gets an image part back.

The SDK calls `{version}/models/imagen-...:generateContent` (or
`:streamGenerateContent?alt=sse`); the filter sends it to `:predict` on the
same version and answers a `GenerateContentResponse` whose parts carry
`inline_data`. Errors arrive as the SDK's `ClientError` with Google's status.
"""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]

IMAGEN = "imagen-4.0-generate-001"


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [IMAGEN]


@pytest.fixture(params=[None, "v1beta"], ids=["default-version", "v1beta"])
def client(request, envoy):
    options = types.HttpOptions(base_url=envoy.url, api_version=request.param, timeout=60_000)
    return genai.Client(api_key="test-key", http_options=options)


def version_of(client) -> str:
    return client._api_client._http_options.api_version


def test_generate_content_with_imagen_gets_an_inline_image(client, emulator):
    response = client.models.generate_content(model=IMAGEN, contents="a red fox")
    parts = response.candidates[0].content.parts
    assert len(parts) == 1
    assert parts[0].inline_data.mime_type == "image/png"
    assert parts[0].inline_data.data.startswith(b"\x89PNG\r\n\x1a\n")
    record = only_request(emulator)
    assert record["path"] == f"/{version_of(client)}/models/{IMAGEN}:predict"
    assert record["headers"]["x-goog-api-key"] == "test-key"


def test_generate_content_candidate_count_gives_several_images(client, emulator):
    response = client.models.generate_content(
        model=IMAGEN, contents="a red fox", config=types.GenerateContentConfig(candidate_count=2)
    )
    images = [p.inline_data.data for p in response.candidates[0].content.parts if p.inline_data]
    assert len(images) == 2 and all(i.startswith(b"\x89PNG") for i in images)


def test_generate_content_stream_with_imagen(client, emulator):
    chunks = list(client.models.generate_content_stream(model=IMAGEN, contents="a red fox"))
    images = [p.inline_data.data for c in chunks for p in c.candidates[0].content.parts if p.inline_data]
    assert len(images) == 1 and images[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert only_request(emulator)["path"] == f"/{version_of(client)}/models/{IMAGEN}:predict"


def test_blocked_prompt_raises_with_the_reason(client, emulator):
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=IMAGEN, contents="a BLOCKED fox")
    err = caught.value
    assert err.code == 422
    assert "no image" in err.message and "filtered out" in err.message


def test_retired_imagen_raises_not_found_with_googles_message(client, emulator):
    emulator.configure(live=[])  # shut down again, as Google did
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=IMAGEN, contents="a red fox")
    err = caught.value
    assert err.code == 404
    assert err.status == "NOT_FOUND"
    assert f"models/{IMAGEN} is not found for API version {version_of(client)}" in err.message
    assert ":predict" in err.message
    assert err.response.headers.get("x-gemini-router-model") == IMAGEN
