"""Native `:predict` for a Gemini image model -> `:generateContent`, answered as predictions.

`instances[0].prompt` becomes the user text, `sampleCount` above one
`candidateCount`, `aspectRatio` `imageConfig.aspectRatio`; `instances` may be
a single object, as older Open WebUI sends it. The images come back as
`{"predictions":[{"bytesBase64Encoded","mimeType"}]}` (the model's text has no
place there and is dropped). Imagen's own `:predict` with an object
`instances` is already served and passes untouched.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.harness import NATIVE_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

MODEL = "gemini-3.1-flash-image"
PREDICT = f"/v1beta/models/{MODEL}:predict"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
# What Open WebUI's "gemini" image engine posts.
OPEN_WEBUI = {"instances": {"prompt": "a red fox"}, "parameters": {"sampleCount": 1, "outputOptions": {"mimeType": "image/png"}}}


# Model migration off: one test's subject is an Imagen :predict left
# untouched; every Imagen model is past its shutdown, and migration would move
# it.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001"]


def assert_predictions(resp, count: int = 1) -> None:
    assert resp.status == 200, resp
    assert resp.headers["content-type"].startswith("application/json")
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    predictions = resp.json()["predictions"]
    assert len(predictions) == count
    for p in predictions:
        assert set(p) == {"bytesBase64Encoded", "mimeType"}, p
        assert p["mimeType"] == "image/png"
        assert base64.b64decode(p["bytesBase64Encoded"], validate=True).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "body",
    [{"instances": [{"prompt": "a red fox"}], "parameters": {"sampleCount": 1}}, OPEN_WEBUI],
    ids=["instances-list", "instances-object"],
)
def test_predict_becomes_generate_content(envoy, emulator, body):
    resp = envoy.post(PREDICT, body, NATIVE_AUTH)

    record = only_request(emulator)
    assert (record["path"], record["query"]) == (GENERATE, "")
    assert record["headers"].get("x-goog-api-key") == "test-key"
    sent = json.loads(record["body"])
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "a red fox"}]}]
    assert "IMAGE" in sent["generationConfig"]["responseModalities"]
    assert "candidateCount" not in sent["generationConfig"]
    assert_predictions(resp)


def test_sample_count_and_aspect_ratio_are_passed(envoy, emulator):
    body = {"instances": [{"prompt": "a red fox"}], "parameters": {"sampleCount": 2, "aspectRatio": "9:16"}}
    resp = envoy.post(PREDICT, body, NATIVE_AUTH)
    config = json.loads(only_request(emulator)["body"])["generationConfig"]
    assert config["candidateCount"] == 2
    assert config["imageConfig"] == {"aspectRatio": "9:16"}
    # The emulator answers one candidate whatever candidateCount says.
    assert_predictions(resp, 1)


def test_key_in_query_is_kept(envoy, emulator):
    resp = envoy.post(f"{PREDICT}?key=test-key", OPEN_WEBUI)
    record = only_request(emulator)
    assert (record["path"], record["query"]) == (GENERATE, "key=test-key")
    assert_predictions(resp)


def test_imagen_predict_with_object_instances_is_untouched(envoy, emulator):
    raw = json.dumps(OPEN_WEBUI)
    resp = envoy.request(
        "POST",
        "/v1beta/models/imagen-4.0-generate-001:predict",
        body=raw,
        headers={**NATIVE_AUTH, "content-type": "application/json"},
    )
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert record["body"] == raw
    assert_predictions(resp)
