"""OpenAI chat completion for an Imagen model -> `:predict`, and the predictions back as a chat answer.

The chat body becomes `{"instances":[{"prompt"}],"parameters":{"sampleCount"}}`
(prompt = text of the last user message, `n` -> `sampleCount` clamped to
1..4, `size`/`aspect_ratio` -> nearest Imagen `aspectRatio`), the key moves
from `Authorization: Bearer` to `x-goog-api-key`, and each prediction comes
back as `![image](data:image/png;base64,...)` in the assistant message: a
`chat.completion`, or `chat.completion.chunk` SSE frames when the client
streamed.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.harness import API_KEY, OPENAI_AUTH, assert_length_matches, assert_no_diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
MODEL = "imagen-4.0-generate-001"
PREDICT = f"/v1beta/models/{MODEL}:predict"
IMAGE_MD = re.compile(r"!\[image\]\(data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)\)")


# Model migration off: the subject is the Imagen translator, and every Imagen
# model is past its shutdown: migration would send it to its replacement
# instead.
FILTER_CONFIG = {"migrate": "never"}


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = [MODEL]


def chat(prompt="a red fox in the snow", **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra}


def images_in(content: str) -> list[bytes]:
    """The decoded images of a markdown answer; each must be a PNG."""
    found = IMAGE_MD.findall(content)
    decoded = []
    for mime, data in found:
        assert mime == "image/png"
        raw = base64.b64decode(data, validate=True)
        assert raw.startswith(b"\x89PNG\r\n\x1a\n"), raw[:16]
        decoded.append(raw)
    return decoded


def upstream_body(emulator) -> dict:
    record = only_request(emulator)
    assert (record["method"], record["path"], record["query"]) == ("POST", PREDICT, "")
    assert record["headers"].get("x-goog-api-key") == API_KEY
    assert "authorization" not in record["headers"]
    if "content-length" in record["headers"]:
        assert int(record["headers"]["content-length"]) == len(record["body"].encode())
    return json.loads(record["body"])


@pytest.mark.parametrize("n", [None, 1, 2, 4])
def test_chat_answer_carries_one_markdown_image_per_prediction(envoy, emulator, n):
    extra = {} if n is None else {"n": n}
    resp = envoy.post(CHAT, chat(**extra), OPENAI_AUTH)

    assert upstream_body(emulator) == {
        "instances": [{"prompt": "a red fox in the snow"}],
        "parameters": {"sampleCount": n or 1},
    }
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "application/json"
    assert_length_matches(resp)
    assert_no_diagnostics(resp)
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert len(images_in(content)) == (n or 1)
    # Nothing but the images: markdown pieces separated by blank lines.
    assert IMAGE_MD.sub("", content).strip() == ""
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_stream_with_usage_is_sse_chunks_ending_in_done(envoy, emulator):
    resp = envoy.post(CHAT, chat(n=2, stream=True, stream_options={"include_usage": True}), OPENAI_AUTH)

    assert upstream_body(emulator)["parameters"] == {"sampleCount": 2}
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    assert_length_matches(resp)
    # Every event is one `data:` line followed by a blank line.
    assert resp.text.endswith("data: [DONE]\n\n")
    events = [e for e in resp.text.split("\n\n") if e]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events[:2]
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {MODEL}
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(images_in(content)) == 2
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    # The usage chunk comes last, with no choices.
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert set(usage_chunk["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all("usage" not in c for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(envoy, emulator):
    resp = envoy.post(CHAT, chat(stream=True), OPENAI_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["choices"] and "usage" not in c for c in chunks), chunks
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert len(images_in(content)) == 1


@pytest.mark.parametrize(
    "extra,want",
    [
        ({"n": 9}, {"sampleCount": 4}),  # clamped to what Imagen takes
        ({"size": "1792x1024"}, {"sampleCount": 1, "aspectRatio": "16:9"}),
        ({"size": "1024x1792"}, {"sampleCount": 1, "aspectRatio": "9:16"}),
        ({"size": "1024x1024"}, {"sampleCount": 1, "aspectRatio": "1:1"}),
        ({"aspect_ratio": "4:3", "size": "1024x1024"}, {"sampleCount": 1, "aspectRatio": "4:3"}),
        ({"size": "auto"}, {"sampleCount": 1}),
    ],
    ids=["n-clamped", "landscape", "portrait", "square", "aspect-ratio-wins", "auto"],
)
def test_n_and_size_map_to_parameters(envoy, emulator, extra, want):
    resp = envoy.post(CHAT, chat(**extra), OPENAI_AUTH)
    assert resp.status == 200, resp
    assert upstream_body(emulator)["parameters"] == want


@pytest.mark.parametrize(
    "messages,prompt",
    [
        (
            [
                {"role": "system", "content": "You are an artist."},
                {"role": "user", "content": "a cat"},
                {"role": "assistant", "content": "![image](data:image/png;base64,AAAA)"},
                {"role": "user", "content": "now a dog"},
            ],
            "now a dog",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a lighthouse"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "text", "text": "at dusk"},
                    ],
                }
            ],
            "a lighthouse\nat dusk",
        ),
        ([{"role": "user", "content": "ein Fuchs 🦊 im Schnee — «Ünïcödé»"}], "ein Fuchs 🦊 im Schnee — «Ünïcödé»"),
    ],
    ids=["last-user-message", "text-parts", "unicode"],
)
def test_prompt_is_the_last_user_text(envoy, emulator, messages, prompt):
    resp = envoy.post(CHAT, {"model": MODEL, "messages": messages}, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert upstream_body(emulator)["instances"] == [{"prompt": prompt}]
    assert len(images_in(resp.json()["choices"][0]["message"]["content"])) == 1


def test_models_prefix_is_accepted(envoy, emulator):
    resp = envoy.post(CHAT, chat() | {"model": f"models/{MODEL}"}, OPENAI_AUTH)
    assert resp.status == 200, resp
    upstream_body(emulator)
    assert resp.json()["model"] == MODEL


def test_translation_is_counted(start_envoy, emulator):
    envoy = start_envoy({"migrate": "never"})  # its own instance: no other module's traffic is counted
    for _ in range(2):
        assert envoy.post(CHAT, chat(), OPENAI_AUTH).status == 200
    assert envoy.wait_counter("gemini_router.translated", 2) == 2
    assert envoy.counter("gemini_router.rewritten.imagen") == 2
    assert envoy.counter("gemini_router.translate_errors") == 0
