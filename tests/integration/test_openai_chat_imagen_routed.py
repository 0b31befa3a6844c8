"""OpenAI chat for a model chat does not serve goes to the model's native endpoint.

With api_style native (the default) and model migration off, the path
becomes the native method of the model's family and the key moves from
`Authorization: Bearer` to `x-goog-api-key`. The body's translation is
another suite's concern; only path and auth are asserted here.
"""

from __future__ import annotations

import pytest

from tests.harness import API_KEY, OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001", "imagen-3.0-generate-002"]


def chat(model: str, stream: bool = False) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": "a lighthouse at dusk"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


@pytest.mark.parametrize(
    "model,stream,path,query",
    [
        ("imagen-4.0-generate-001", False, "/v1beta/models/imagen-4.0-generate-001:predict", ""),
        # The Open WebUI case: streaming chat with usage for an Imagen model.
        ("imagen-4.0-generate-001", True, "/v1beta/models/imagen-4.0-generate-001:predict", ""),
        ("models/imagen-3.0-generate-002", False, "/v1beta/models/imagen-3.0-generate-002:predict", ""),
        ("gemini-3.1-flash-image", False, "/v1beta/models/gemini-3.1-flash-image:generateContent", ""),
        ("gemini-3.1-flash-image", True, "/v1beta/models/gemini-3.1-flash-image:streamGenerateContent", "alt=sse"),
    ],
)
def test_path_and_auth_move_to_the_native_endpoint(envoy, emulator, model, stream, path, query):
    envoy.post(CHAT, chat(model, stream), OPENAI_AUTH)
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", path, query)
    assert record["headers"].get("x-goog-api-key") == API_KEY
    assert "authorization" not in record["headers"]
    # The body was replaced: a stale content-length must not survive.
    if "content-length" in record["headers"]:
        assert int(record["headers"]["content-length"]) == len(record["body"].encode())


@pytest.mark.parametrize("native_version", ["v1", "v1alpha"])
def test_native_version_is_configurable(start_envoy, emulator, native_version):
    envoy = start_envoy({"native_version": native_version, "migrate": "never"})
    envoy.post(CHAT, chat("imagen-4.0-generate-001"), OPENAI_AUTH)
    assert only_request(emulator)["path"] == f"/{native_version}/models/imagen-4.0-generate-001:predict"
