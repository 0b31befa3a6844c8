"""OpenAI chat completion for a Gemini image model -> `:generateContent` (`:streamGenerateContent?alt=sse` when streaming).

The chat body becomes a `GenerateContentRequest` asking for
`responseModalities: ["TEXT","IMAGE"]`: the last user message's text and
`data:` URL images become `contents[0].parts`, system messages become
`systemInstruction`, `size`/`aspect_ratio` becomes `imageConfig.aspectRatio`.
The model's text and images come back, in order, as one assistant message
(images as markdown data URLs) with `usageMetadata` as `usage`.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.harness import API_KEY, OPENAI_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
MODEL = "gemini-3.1-flash-image"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
IMAGE_MD = re.compile(r"!\[image\]\(data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)\)")
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


# Model migration off: the 2.0 preview image model (shut down, revived by its
# test) must reach the upstream as itself, not as its replacement.
FILTER_CONFIG = {"migrate": "never"}


def chat(prompt="a red fox in the snow", **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra}


def upstream(emulator, path: str, query: str = "") -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", path, query)
    assert record["headers"].get("x-goog-api-key") == API_KEY
    assert "authorization" not in record["headers"]
    return json.loads(record["body"])


def assert_text_then_png(content: str, prompt: str) -> None:
    # The emulator answers "Here is the image you asked for: <prompt>" and one PNG.
    text, sep, rest = content.partition("\n\n")
    assert sep and text == f"Here is the image you asked for: {prompt}", content[:200]
    [(mime, data)] = IMAGE_MD.findall(rest)
    assert mime == "image/png"
    assert base64.b64decode(data, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    assert IMAGE_MD.sub("", rest).strip() == ""


def test_chat_goes_to_generate_content_with_image_modality(envoy, emulator):
    resp = envoy.post(CHAT, chat(), OPENAI_AUTH)

    body = upstream(emulator, GENERATE)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a red fox in the snow"}]}]
    assert "IMAGE" in body["generationConfig"]["responseModalities"]
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    answer = resp.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == MODEL
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert_text_then_png(choice["message"]["content"], "a red fox in the snow")
    # usageMetadata comes back as usage.
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_goes_to_sse_stream_and_comes_back_as_chunks(envoy, emulator):
    resp = envoy.post(CHAT, chat(stream=True, stream_options={"include_usage": True}), OPENAI_AUTH)

    body = upstream(emulator, STREAM, "alt=sse")
    assert "IMAGE" in body["generationConfig"]["responseModalities"]
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.text.endswith("data: [DONE]\n\n")
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    # The upstream's text fragments and image frames are collected into one message.
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert_text_then_png(content, "a red fox in the snow")
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_system_images_and_aspect_ratio_are_passed(envoy, emulator):
    messages = [
        {"role": "system", "content": "Draw in watercolour."},
        {"role": "user", "content": "old prompt"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "make the sky purple"},
                {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                {"type": "image_url", "image_url": {"url": "https://example.com/not-inlined.png"}},
            ],
        },
    ]
    resp = envoy.post(CHAT, {"model": MODEL, "messages": messages, "size": "1792x1024"}, OPENAI_AUTH)

    body = upstream(emulator, GENERATE)
    _, _, data = PNG_DATA_URL.partition(";base64,")
    # Consecutive user messages are one turn; the http(s) image cannot be inlined.
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "old prompt"},
                {"text": "make the sky purple"},
                {"inlineData": {"mimeType": "image/png", "data": data}},
            ],
        }
    ]
    assert body["systemInstruction"] == {"parts": [{"text": "Draw in watercolour."}]}
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert resp.status == 200, resp
    # The emulator answers with the text of the last user turn.
    assert_text_then_png(resp.json()["choices"][0]["message"]["content"], "old prompt make the sky purple")


def test_preview_model_gets_text_and_image_modalities(envoy, emulator):
    # gemini-2.0-flash-preview-image-generation refuses anything but TEXT+IMAGE.
    # It is shut down (June 2026); revived for this test.
    model = "gemini-2.0-flash-preview-image-generation"
    emulator.configure(live=[model])
    resp = envoy.post(CHAT, chat() | {"model": model}, OPENAI_AUTH)
    body = upstream(emulator, f"/v1beta/models/{model}:generateContent")
    assert sorted(body["generationConfig"]["responseModalities"]) == ["IMAGE", "TEXT"]
    assert resp.status == 200, resp
    assert_text_then_png(resp.json()["choices"][0]["message"]["content"], "a red fox in the snow")


def test_iterative_edit_sends_the_conversation_with_the_previous_image(envoy, emulator):
    # First turn: the model draws; its answer carries the image as markdown.
    first = envoy.post(CHAT, chat(), OPENAI_AUTH)
    assert first.status == 200, first
    answer = first.json()["choices"][0]["message"]["content"]
    emulator.reset()
    # Second turn, as a chat UI sends it: the whole conversation.
    messages = chat()["messages"] + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "now make the sky purple"},
    ]
    resp = envoy.post(CHAT, {"model": MODEL, "messages": messages}, OPENAI_AUTH)
    assert resp.status == 200, resp
    contents = upstream(emulator, GENERATE)["contents"]
    assert [turn["role"] for turn in contents] == ["user", "model", "user"]
    _, _, previous = answer.rpartition(";base64,")
    model_parts = contents[1]["parts"]
    assert {"inlineData": {"mimeType": "image/png", "data": previous.rstrip(")")}} in model_parts
    assert all("data:image" not in part.get("text", "") for part in model_parts)
    assert contents[2]["parts"] == [{"text": "now make the sky purple"}]
    assert_text_then_png(resp.json()["choices"][0]["message"]["content"], "now make the sky purple")
