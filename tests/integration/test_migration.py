"""Model migration: a request for a model past its shutdown date (by the
host's clock and the lifecycle table) is served by its replacement, with
whatever translation the replacement's family needs, and answered in the
shape the client asked for; every migrated answer names the model asked for
and the model that served, and migrations are counted per family.

The seed story: Open WebUI's chat with `imagen-3.0-generate-002` (shut down
June 24, 2026) gets an image from `gemini-3.1-flash-image`.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, assert_length_matches, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
IMAGES = "/v1beta/openai/images/generations"
RETIRED_IMAGEN = "imagen-3.0-generate-002"
IMAGE_MODEL = "gemini-3.1-flash-image"
IMAGE_MD = re.compile(r"!\[image\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")
OPEN_WEBUI_CHAT = {
    "model": RETIRED_IMAGEN,
    "messages": [{"role": "user", "content": "a red fox in the snow"}],
    "stream_options": {"include_usage": True},
}


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({
        "lifecycle": [{"match": "gemma-3-*", "shutdown": "2031-01-31", "replacement": "gemini-3.5-flash",
                       "source": "test"}],
        "migrate_always": ["gemma-3-*"],
    })


def assert_migrated(resp, asked: str, served: str) -> None:
    assert resp.headers["x-gemini-router-requested-model"] == asked, resp.headers
    assert resp.headers["x-gemini-router-served-model"] == served, resp.headers
    assert resp.headers["x-gemini-router-replacement"] == served
    assert "sunset" in resp.headers and resp.headers["deprecation"].startswith("@")


def assert_png(b64: str) -> None:
    assert base64.b64decode(b64, validate=True).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_open_webui_chat_with_a_shut_down_imagen_model_gets_an_image(envoy, emulator, stream):
    before = envoy.counter("gemini_router.migrated.imagen")
    resp = envoy.post(CHAT, {**OPEN_WEBUI_CHAT, "stream": stream}, OPENAI_AUTH)
    assert resp.status == 200, resp
    record = only_request(emulator)
    method = "streamGenerateContent" if stream else "generateContent"
    assert record["path"] == f"/v1beta/models/{IMAGE_MODEL}:{method}", record["path"]
    assert_migrated(resp, RETIRED_IMAGEN, IMAGE_MODEL)
    if stream:
        content = "".join(
            json.loads(d)["choices"][0]["delta"].get("content") or ""
            for d in resp.sse_data() if d != "[DONE]" and json.loads(d)["choices"]
        )
    else:
        assert_length_matches(resp)
        content = resp.json()["choices"][0]["message"]["content"]
    images = IMAGE_MD.findall(content)
    assert images, content[:300]
    assert_png(images[0])
    assert envoy.wait_counter("gemini_router.migrated.imagen", before + 1) == before + 1


def test_open_webui_gemini_image_engine_gets_predictions(envoy, emulator):
    # Open WebUI's "gemini" image engine: :predict, instances as an object.
    body = {"instances": {"prompt": "a red fox"}, "parameters": {"sampleCount": 1, "outputOptions": {"mimeType": "image/png"}}}
    resp = envoy.post(f"/v1beta/models/{RETIRED_IMAGEN}:predict", body, NATIVE_AUTH)
    assert resp.status == 200, resp
    assert only_request(emulator)["path"] == f"/v1beta/models/{IMAGE_MODEL}:generateContent"
    assert_migrated(resp, RETIRED_IMAGEN, IMAGE_MODEL)
    predictions = resp.json()["predictions"]
    assert predictions and predictions[0]["mimeType"] == "image/png"
    assert_png(predictions[0]["bytesBase64Encoded"])


def test_an_images_client_gets_b64_json(envoy, emulator):
    body = {"model": RETIRED_IMAGEN, "prompt": "a red fox", "n": 1, "response_format": "b64_json"}
    resp = envoy.post(IMAGES, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert only_request(emulator)["path"] == f"/v1beta/models/{IMAGE_MODEL}:generateContent"
    assert_migrated(resp, RETIRED_IMAGEN, IMAGE_MODEL)
    assert_png(resp.json()["data"][0]["b64_json"])


def test_a_shut_down_chat_model_is_spliced_in_the_body(envoy, emulator):
    # The body is copied with only the model value replaced.
    raw = ('{"messages":[{"role":"user","content":"hi \\u00e9"}],"model":"models/gemini-2.5-flash",'
           '"temperature":0.2}')
    resp = envoy.post(CHAT, body=raw, headers={**OPENAI_AUTH, "content-type": "application/json"})
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert record["path"] == CHAT
    assert record["body"] == raw.replace("models/gemini-2.5-flash", "gemini-3.8-flash")
    assert_migrated(resp, "gemini-2.5-flash", "gemini-3.8-flash")


def test_a_shut_down_native_model_is_rewritten_in_the_path(envoy, emulator):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    resp = envoy.post("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", body, NATIVE_AUTH)
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert (record["path"], record["query"]) == ("/v1beta/models/gemini-3.1-flash-lite:streamGenerateContent", "alt=sse")
    assert json.loads(record["body"]) == body
    assert_migrated(resp, "gemini-2.0-flash", "gemini-3.1-flash-lite")


def test_migrate_always_moves_a_listed_model_before_its_shutdown(envoy, emulator):
    resp = envoy.post(CHAT, {"model": "gemma-3-27b-it", "messages": [{"role": "user", "content": "hi"}]}, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert json.loads(only_request(emulator)["body"])["model"] == "gemini-3.5-flash"
    assert resp.headers["x-gemini-router-served-model"] == "gemini-3.5-flash"
    assert resp.headers["sunset"] == "Fri, 31 Jan 2031 00:00:00 GMT"


def test_a_migrated_request_that_fails_says_where_it_went(envoy, emulator):
    emulator.configure(retired=["gemini-3.8-flash"])
    resp = envoy.post(CHAT, {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}, OPENAI_AUTH)
    assert resp.status == 404, resp
    hint = resp.headers["x-gemini-router-hint"]
    assert hint.startswith(
        "gemini-2.5-flash was shut down on 2026-12-01; gemini-router sent the request to its replacement gemini-3.8-flash."
    ), hint


def test_migration_off_sends_the_model_asked_for(start_envoy, emulator):
    envoy = start_envoy({"migrate": "never"})
    resp = envoy.post(CHAT, {**OPEN_WEBUI_CHAT, "stream": False}, OPENAI_AUTH)
    assert resp.status == 404, resp
    assert only_request(emulator)["path"] == f"/v1beta/models/{RETIRED_IMAGEN}:predict"
    assert "x-gemini-router-served-model" not in resp.headers
    assert resp.headers["x-gemini-router-hint"].startswith(
        f"{RETIRED_IMAGEN} was shut down on 2026-06-24; its replacement is {IMAGE_MODEL}."
    )


def test_the_first_migration_of_a_model_is_logged_at_info(envoy, emulator):
    envoy.post(CHAT, {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}, OPENAI_AUTH)
    envoy.post(CHAT, {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}, OPENAI_AUTH)
    lines = [l for l in envoy.log_text().splitlines()
             if "gemini-2.5-pro was shut down on 2026-12-01; gemini-router sent the request to its replacement" in l]
    assert len(lines) == 1, lines
    assert "[info]" in lines[0]
