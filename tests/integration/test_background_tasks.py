"""No surprise image bills: Open WebUI's background tasks (chat title, tags,
follow-up suggestions) use the chat's own model; with an image model chosen,
each would be a billed image generation. The filter recognises their prompts
(`### Task:` by default, `task_prefixes` in the configuration) for image
models and answers them itself with an empty completion, or has `task_model`
answer them."""

from __future__ import annotations

import json

import pytest

from tests.harness import OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
# Open WebUI's title-generation template, as it sends it.
TITLE_PROMPT = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme or subject of the conversation.\n"
    "### Output:\nJSON format: { \"title\": \"your concise title here\" }\n"
    "### Chat History:\n<chat_history>\nUSER: a red fox in the snow\n</chat_history>"
)


def task(model: str, stream: bool = False) -> dict:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": TITLE_PROMPT}]}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_title_task_for_an_image_model_is_answered_empty(envoy, emulator, stream):
    before = envoy.counter("gemini_router.tasks.answered")
    resp = envoy.post(CHAT, task("imagen-3.0-generate-002", stream), OPENAI_AUTH)
    assert resp.status == 200, resp
    assert emulator.requests() == [], "a background task reached an image endpoint"
    if stream:
        assert resp.headers["content-type"] == "text/event-stream"
        chunks = [json.loads(d) for d in resp.sse_data() if d != "[DONE]"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert resp.sse_data()[-1] == "[DONE]"
    else:
        answer = resp.json()
        assert answer["object"] == "chat.completion"
        assert answer["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert "task_model" in resp.headers["x-gemini-router-hint"]
    assert envoy.wait_counter("gemini_router.tasks.answered", before + 1) == before + 1


def test_an_image_prompt_is_still_an_image(envoy, emulator):
    body = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a red fox"}]}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert only_request(emulator)["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"


def test_task_model_answers_them(start_envoy, emulator):
    proxy = start_envoy({"task_model": "gemini-3.5-flash"})
    before = proxy.counter("gemini_router.tasks.served")
    resp = proxy.post(CHAT, task("gemini-3.1-flash-image"), OPENAI_AUTH)
    assert resp.status == 200, resp
    record = only_request(emulator)
    assert record["path"] == CHAT
    assert json.loads(record["body"])["model"] == "gemini-3.5-flash"
    assert resp.headers["x-gemini-router-served-model"] == "gemini-3.5-flash"
    assert resp.headers["x-gemini-router-requested-model"] == "gemini-3.1-flash-image"
    assert proxy.wait_counter("gemini_router.tasks.served", before + 1) == before + 1
