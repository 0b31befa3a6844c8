"""OpenAI `images/generations` for models the compat layer is not trusted with -> the native method.

By default (`openai_images_families: []`) Imagen goes to `:predict` and Gemini
image models to `:generateContent`; the key moves to `x-goog-api-key`, and the
answer comes back as `{"created":...,"data":[{"b64_json":...}]}` with
`revised_prompt` carrying a Gemini model's text.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.harness import API_KEY, OPENAI_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

IMAGES = "/v1beta/openai/images/generations"


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001", "imagen-3.0-generate-002"]


def upstream(emulator, path: str) -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", path, "")
    assert record["headers"].get("x-goog-api-key") == API_KEY
    assert "authorization" not in record["headers"]
    return json.loads(record["body"])


def assert_images_answer(resp, count: int) -> list[dict]:
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    body = resp.json()
    assert isinstance(body["created"], int) and body["created"] > 0
    assert len(body["data"]) == count, body
    for item in body["data"]:
        assert base64.b64decode(item["b64_json"], validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    return body["data"]


@pytest.mark.parametrize(
    "extra,parameters",
    [
        ({}, {"sampleCount": 1}),
        ({"n": 2, "size": "1024x1024"}, {"sampleCount": 2, "aspectRatio": "1:1"}),
        ({"n": 3, "size": "1536x1024"}, {"sampleCount": 3, "aspectRatio": "4:3"}),
        ({"aspect_ratio": "9:16"}, {"sampleCount": 1, "aspectRatio": "9:16"}),
    ],
    ids=["defaults", "n2-square", "n3-landscape", "aspect-ratio"],
)
def test_imagen_goes_to_predict(envoy, emulator, extra, parameters):
    body = {"model": "imagen-4.0-generate-001", "prompt": "a red fox", "response_format": "b64_json", **extra}
    resp = envoy.post(IMAGES, body, OPENAI_AUTH)

    assert upstream(emulator, "/v1beta/models/imagen-4.0-generate-001:predict") == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": parameters,
    }
    data = assert_images_answer(resp, parameters["sampleCount"])
    assert all(set(item) == {"b64_json"} for item in data), data


def test_url_format_is_answered_as_b64_json(envoy, emulator):
    # There is no URL to give: the answer always carries b64_json.
    body = {"model": "imagen-4.0-generate-001", "prompt": "a red fox", "response_format": "url"}
    resp = envoy.post(IMAGES, body, OPENAI_AUTH)
    upstream(emulator, "/v1beta/models/imagen-4.0-generate-001:predict")
    assert_images_answer(resp, 1)


def test_gemini_image_goes_to_generate_content(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "prompt": "a red fox", "size": "1792x1024", "response_format": "b64_json"}
    resp = envoy.post(IMAGES, body, OPENAI_AUTH)

    sent = upstream(emulator, "/v1beta/models/gemini-3.1-flash-image:generateContent")
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "a red fox"}]}]
    assert "IMAGE" in sent["generationConfig"]["responseModalities"]
    assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    [item] = assert_images_answer(resp, 1)
    # What the model said in text comes back as revised_prompt.
    assert item["revised_prompt"] == "Here is the image you asked for: a red fox"


def test_models_prefix_and_unicode_prompt(envoy, emulator):
    prompt = "une renarde rousse 🦊 sous la neige, « style aquarelle »"
    resp = envoy.post(IMAGES, {"model": "models/imagen-3.0-generate-002", "prompt": prompt}, OPENAI_AUTH)
    assert upstream(emulator, "/v1beta/models/imagen-3.0-generate-002:predict")["instances"] == [{"prompt": prompt}]
    assert_images_answer(resp, 1)
