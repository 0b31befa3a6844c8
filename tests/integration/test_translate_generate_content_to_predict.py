"""Native `:generateContent` / `:streamGenerateContent` for an Imagen model -> `:predict`, answered in the caller's shape.

The last user content's text becomes the prompt, `candidateCount` ->
`sampleCount`, `imageConfig.aspectRatio` -> `aspectRatio`. The predictions
come back as one `GenerateContentResponse` with
`candidates[0].content.parts[].inlineData`: a JSON object for
`:generateContent`, one SSE event for `:streamGenerateContent?alt=sse`, a
one-element JSON array for `:streamGenerateContent` without `alt=sse`. The
client's version prefix and query (`?key=`) are kept.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.harness import NATIVE_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

MODEL = "imagen-4.0-generate-001"
PREDICT = f"/v1beta/models/{MODEL}:predict"
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}]}


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [MODEL]


def upstream(emulator, path: str = PREDICT, query: str = "") -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", path, query)
    return json.loads(record["body"])


def assert_response(answer: dict, images: int) -> None:
    """A GenerateContentResponse whose one candidate carries `images` PNG inlineData parts."""
    [candidate] = answer["candidates"]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    parts = candidate["content"]["parts"]
    assert len(parts) == images, parts
    for part in parts:
        assert part["inlineData"]["mimeType"] == "image/png"
        assert base64.b64decode(part["inlineData"]["data"], validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    assert answer["modelVersion"] == MODEL
    # Always present, zeros when Imagen gives none: LiteLLM's gemini provider
    # refuses a GenerateContentResponse without it.
    assert answer["usageMetadata"] == {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}


def call(envoy, target: str, body: dict = REQUEST, headers: dict = NATIVE_AUTH):
    return envoy.post(target, body, headers)


def test_generate_content_becomes_predict(envoy, emulator):
    resp = call(envoy, f"/v1beta/models/{MODEL}:generateContent")

    assert upstream(emulator) == {"instances": [{"prompt": "a red fox"}], "parameters": {"sampleCount": 1}}
    assert only_request(emulator)["headers"].get("x-goog-api-key") == "test-key"
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    assert_response(resp.json(), 1)


def test_candidate_count_and_aspect_ratio_map_to_parameters(envoy, emulator):
    body = REQUEST | {"generationConfig": {"candidateCount": 2, "imageConfig": {"aspectRatio": "16:9"}}}
    resp = call(envoy, f"/v1beta/models/{MODEL}:generateContent", body)
    assert upstream(emulator)["parameters"] == {"sampleCount": 2, "aspectRatio": "16:9"}
    assert resp.status == 200, resp
    assert_response(resp.json(), 2)


def test_stream_with_alt_sse_answers_one_sse_event(envoy, emulator):
    resp = call(envoy, f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")

    # alt=sse means nothing to :predict: it is dropped from the upstream query.
    upstream(emulator)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    # Google's framing: `data: {json}` and a blank line (CRLF, as Google writes it), no [DONE].
    assert resp.text.startswith("data: ") and resp.text.endswith("}\r\n\r\n")
    [event] = resp.sse_data()
    assert_response(json.loads(event), 1)


def test_stream_without_alt_sse_answers_a_json_array(envoy, emulator):
    resp = call(envoy, f"/v1beta/models/{MODEL}:streamGenerateContent")
    upstream(emulator)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    frames = resp.json()
    assert isinstance(frames, list) and len(frames) == 1
    assert_response(frames[0], 1)


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_key_in_query_and_version_are_kept(envoy, emulator, version):
    resp = call(envoy, f"/{version}/models/{MODEL}:generateContent?key=test-key", headers={})
    upstream(emulator, f"/{version}/models/{MODEL}:predict", "key=test-key")
    assert resp.status == 200, resp
    assert_response(resp.json(), 1)


def test_prompt_is_the_last_user_content(envoy, emulator):
    body = {
        "systemInstruction": {"parts": [{"text": "be bold"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "a cat"}]},
            {"role": "model", "parts": [{"text": "Here is a cat."}]},
            {"role": "user", "parts": [{"text": "now a"}, {"text": "dog 🐕"}]},
        ],
    }
    resp = call(envoy, f"/v1beta/models/{MODEL}:generateContent", body)
    prompt = upstream(emulator)["instances"][0]["prompt"]
    assert "dog 🐕" in prompt and "now a" in prompt and "cat" not in prompt, prompt
    assert resp.status == 200, resp
