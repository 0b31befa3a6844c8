"""A chat stream to a Gemini image model is translated event by event.

The chat goes to ``:streamGenerateContent?alt=sse`` and each upstream event
becomes ``chat.completion.chunk`` events as it arrives: the model's text
reaches the client before the image is even sent. The emulator holds every
image frame until the test lets it go, so a filter that buffered the
answer would deliver nothing before the image was sent.
"""

from __future__ import annotations

import openai
import pytest

from tests.harness import only_request

pytestmark = [pytest.mark.clients, pytest.mark.envoy]

MODEL = "gemini-3.1-flash-image"


@pytest.fixture
def client(envoy):
    return openai.OpenAI(base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", max_retries=0, timeout=60)


def test_text_arrives_before_the_image_is_sent(client, emulator):
    gate = emulator.hold_stream_images()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a red fox"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    content = ""
    images_sent_at_first_text = None
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta.content or ""
        if delta.strip() and images_sent_at_first_text is None:
            images_sent_at_first_text = emulator.images_streamed()
            gate.set()
        content += delta
        finish = chunk.choices[0].finish_reason or finish
    assert images_sent_at_first_text == 0, "the text waited for the image"
    assert content.startswith("Here is the image you asked for: a red fox\n\n![image](data:image/png;base64,iVBOR"), content[:200]
    assert content.endswith(")")
    assert finish == "stop"
    assert usage is not None and usage.total_tokens > 0
    record = only_request(emulator)
    assert (record["path"], record["query"]) == (f"/v1beta/models/{MODEL}:streamGenerateContent", "alt=sse")


def test_a_blocked_image_stream_says_why(client, emulator):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "BLOCKED fox"}], stream=True
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert f"No image was returned by {MODEL}" in content and "IMAGE_SAFETY" in content, content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
