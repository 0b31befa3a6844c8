"""The openai SDK asking image models through chat and images endpoints, via Envoy to the emulator.

Chat UIs built on the SDK call `chat.completions.create` with whatever model
the compat layer lists, Imagen included; the filter sends it to `:predict` and
turns the predictions into a chat answer whose content carries markdown data
URL images. `images.generate` for a Gemini image model goes to
`:generateContent` and comes back as `b64_json`. Errors are ones the SDK
raises with a useful message.
"""

from __future__ import annotations

import base64
import re

import openai
import pytest

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]

IMAGEN = "imagen-4.0-generate-001"
IMAGE_MD = re.compile(r"!\[image\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [IMAGEN]


@pytest.fixture
def client(envoy):
    return openai.OpenAI(base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", max_retries=0, timeout=60)


def pngs(content: str) -> list[bytes]:
    images = [base64.b64decode(b64, validate=True) for b64 in IMAGE_MD.findall(content)]
    assert all(i.startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    return images


def test_chat_with_imagen_gets_markdown_images(client, emulator):
    completion = client.chat.completions.create(
        model=IMAGEN, messages=[{"role": "user", "content": "a red fox"}], n=2
    )
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert len(pngs(choice.message.content)) == 2
    assert only_request(emulator)["path"] == f"/v1beta/models/{IMAGEN}:predict"


def test_chat_stream_with_imagen_gets_the_image(client, emulator):
    stream = client.chat.completions.create(
        model=IMAGEN,
        messages=[{"role": "user", "content": "a red fox"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(pngs(content)) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert only_request(emulator)["path"] == f"/v1beta/models/{IMAGEN}:predict"


def test_chat_stream_helper_accumulates_the_image(client, emulator):
    # The SDK's accumulating stream helper builds the final message from the chunks.
    with client.chat.completions.stream(
        model="gemini-3.1-flash-image", messages=[{"role": "user", "content": "a red fox"}]
    ) as stream:
        final = stream.get_final_completion()
    content = final.choices[0].message.content
    assert content.startswith("Here is the image you asked for: a red fox")
    assert len(pngs(content)) == 1
    record = only_request(emulator)
    assert record["path"] == "/v1beta/models/gemini-3.1-flash-image:streamGenerateContent"
    assert record["query"] == "alt=sse"


@pytest.mark.parametrize(
    "model,upstream",
    [
        ("gemini-3.1-flash-image", "/v1beta/models/gemini-3.1-flash-image:generateContent"),
        (IMAGEN, f"/v1beta/models/{IMAGEN}:predict"),
    ],
)
def test_images_generate_gets_b64_json(client, emulator, model, upstream):
    result = client.images.generate(model=model, prompt="a red fox", response_format="b64_json", size="1024x1024")
    [image] = result.data
    assert base64.b64decode(image.b64_json).startswith(b"\x89PNG\r\n\x1a\n")
    assert result.created > 0
    assert only_request(emulator)["path"] == upstream


def test_images_generate_blocked_raises(client, emulator):
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.images.generate(model=IMAGEN, prompt="a BLOCKED fox", response_format="b64_json")
    assert "no image" in caught.value.message
    assert "filtered out" in caught.value.message


def test_chat_blocked_says_why(client, emulator):
    completion = client.chat.completions.create(
        model=IMAGEN, messages=[{"role": "user", "content": "a BLOCKED fox"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content.startswith(f"No image was returned by {IMAGEN}.")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_retired_imagen_raises_not_found_naming_model_endpoint_and_google_message(client, emulator, stream):
    emulator.configure(live=[])  # shut down again, as Google did
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=IMAGEN, messages=[{"role": "user", "content": "a red fox"}], **extra)
    err = caught.value
    assert err.status_code == 404
    assert IMAGEN in err.message
    assert ":predict" in err.message
    assert f"models/{IMAGEN} is not found for API version v1beta, or is not supported for predict" in err.message
    assert err.code == "not_found"
    assert err.response.headers.get("x-gemini-router-upstream-path") == f"/v1beta/models/{IMAGEN}:predict"


def test_chat_without_prompt_raises_bad_request_locally(client, emulator):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=IMAGEN, messages=[{"role": "system", "content": "draw"}])
    assert "no prompt text" in caught.value.message
    assert emulator.requests() == []
