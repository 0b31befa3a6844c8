"""Routing to the OpenAI-compatibility layer: compat paths, and the key moved to `Authorization: Bearer`.

Translated pairs: only the path and auth are asserted here.
"""

from __future__ import annotations

import pytest

from tests.harness import API_KEY, NATIVE_AUTH, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

EMBED = {"content": {"parts": [{"text": "x"}]}}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001"]


@pytest.fixture(scope="module")
def embeddings_on_openai(start_envoy):
    return start_envoy({"family_styles": {"embedding": "openai"}})


@pytest.fixture(scope="module")
def images_on_openai(start_envoy):
    # Model migration off: Imagen is past its shutdown and would be migrated.
    return start_envoy({"api_style": "openai", "openai_images_families": ["imagen"], "migrate": "never"})


@pytest.fixture(scope="module")
def custom_base_path(start_envoy):
    return start_envoy({"family_styles": {"embedding": "openai"}, "openai_base_path": "/compat/v1"})


@pytest.mark.parametrize(
    "target,headers",
    [
        ("/v1beta/models/gemini-embedding-001:embedContent", NATIVE_AUTH),
        ("/v1beta/models/gemini-embedding-001:embedContent?key=test-key", {}),
    ],
    ids=["header-key", "query-key"],
)
def test_native_embed_moves_to_compat_with_bearer(embeddings_on_openai, emulator, target, headers):
    embeddings_on_openai.post(target, EMBED, headers)
    record = only_request(emulator)
    assert record["path"] == "/v1beta/openai/embeddings"
    assert "key=" not in record["query"]
    assert record["headers"].get("authorization") == f"Bearer {API_KEY}"
    assert "x-goog-api-key" not in record["headers"]


def test_openai_base_path_prefixes_compat_targets(custom_base_path, emulator):
    custom_base_path.post("/v1beta/models/gemini-embedding-001:embedContent", EMBED, NATIVE_AUTH)
    assert only_request(emulator)["path"] == "/compat/v1/embeddings"


def test_chat_for_imagen_goes_to_images_generations_when_trusted(images_on_openai, emulator):
    body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a fox"}]}
    images_on_openai.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == "/v1beta/openai/images/generations"
    assert record["headers"].get("authorization") == f"Bearer {API_KEY}"


def test_untrusted_image_family_stays_native(images_on_openai, emulator):
    # gemini_image is not in openai_images_families: its native endpoint serves it.
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a fox"}]}
    images_on_openai.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH)
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"
    assert record["headers"].get("x-goog-api-key") == API_KEY


def test_gemini_chat_stays_on_chat_in_openai_style(images_on_openai, emulator):
    body = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]}
    assert images_on_openai.post("/v1beta/openai/chat/completions", body, OPENAI_AUTH).status == 200
    assert only_request(emulator)["path"] == "/v1beta/openai/chat/completions"
