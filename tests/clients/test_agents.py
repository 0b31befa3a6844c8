"""Tool calling through the compatibility layer with Gemini 3 thought signatures.

A Gemini 3 model signs the first tool call of each answer
(``extra_content.google.thought_signature``) and refuses the next request
whose assistant tool call comes back without it. Agent frameworks rebuild
the assistant message from ``id``, ``type`` and ``function`` and drop it; the
filter remembers each call's signature by its id and puts it back (or the
documented bypass value when it remembers none). The compat stream sends
tool-call deltas without ``index`` and ends with ``finish_reason: "stop"``;
the filter repairs both.

Clients: the official ``openai`` SDK (a loop that keeps ``extra_content``
and one that drops it, plain and streamed, with the SDK's stream helper
too) and LangChain's ``ChatOpenAI``, which drops it.
"""

from __future__ import annotations

import json
import operator
import uuid
from functools import reduce

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.harness import is_catalogue_read

pytestmark = [pytest.mark.clients, pytest.mark.envoy]

MODEL = "gemini-3.5-flash"
BYPASS = "skip_thought_signature_validator"
CHAT = "/v1beta/openai/chat/completions"
PROMPT = "What is the weather in Paris? Use get_weather."
FINAL = f"Echo from {MODEL}: tool results: sunny in emulated"

STORED = "gemini_router.signatures.stored"
RESTORED = "gemini_router.signatures.restored"
BYPASSED = "gemini_router.signatures.bypassed"
REPAIRED = "gemini_router.streams.repaired"

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city."}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "The current weather in a city.", "parameters": PARAMETERS},
}
# The SDK's stream helper parses arguments only of strict function tools.
STRICT_WEATHER = {"type": "function", "function": {**WEATHER["function"], "strict": True}}


def get_weather(city: str) -> str:
    return f"sunny in {city}"


# -- what the clients send back ---------------------------------------------------


def as_dict(obj) -> dict:
    return obj if isinstance(obj, dict) else obj.model_dump(exclude_none=True)


def kept(message) -> dict:
    """The assistant message as the answer carried it, ``extra_content`` included."""
    data = as_dict(message)
    data.pop("parsed", None)  # the stream helper's parsed fields are the client's, not the wire's
    for call in data.get("tool_calls") or []:
        call["function"].pop("parsed_arguments", None)
    return data


def dropped(message) -> dict:
    """The assistant message rebuilt from id, type and function, as agent frameworks do."""
    data = as_dict(message)
    calls = [
        {"id": c["id"], "type": c["type"], "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
        for c in data["tool_calls"]
    ]
    return {"role": "assistant", "content": data.get("content"), "tool_calls": calls}


VARIANTS = {"keeps extra_content": kept, "drops extra_content": dropped}


def signature_of(call) -> str | None:
    """The thought signature of a tool call (an SDK object or a dict)."""
    data = as_dict(call)
    return ((data.get("extra_content") or {}).get("google") or {}).get("thought_signature")


def tool_results(calls) -> list[dict]:
    """Run each called tool; the ``tool`` messages with its results."""
    out = []
    for call in calls:
        data = as_dict(call)
        assert data["function"]["name"] == "get_weather", data
        result = get_weather(**json.loads(data["function"]["arguments"]))
        out.append({"role": "tool", "tool_call_id": data["id"], "content": result})
    return out


# -- what reached the emulator -------------------------------------------------


def chat_bodies(emulator) -> list[dict]:
    """The chat requests the emulator received, parsed, in order."""
    return [json.loads(r["body"]) for r in emulator.requests() if r["path"] == CHAT and not is_catalogue_read(r)]


def assert_restored(envoy, before: int, variant: str) -> None:
    """The filter restored one signature for a client that dropped it, none for one that kept it."""
    if variant == "drops extra_content":
        assert envoy.wait_counter(RESTORED, before + 1) == before + 1, envoy.stats("wasmcustom.")
    else:
        assert envoy.counter(RESTORED) == before, envoy.stats("wasmcustom.")


def sent_signature(body: dict) -> str | None:
    """The signature on the first tool call of the request's last assistant tool-call message."""
    assistant = [m for m in body["messages"] if m.get("role") == "assistant" and m.get("tool_calls")]
    assert assistant, body
    return signature_of(assistant[-1]["tool_calls"][0])


# -- streams -------------------------------------------------------------------


def accumulate(stream) -> tuple[dict, str | None]:
    """The assistant message a chunk stream builds and its last finish_reason,
    merging tool-call deltas by ``index`` as the SDK's stream helper does.
    Every tool-call delta must carry an integer index."""
    message: dict = {"role": "assistant", "content": None}
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta.to_dict()
            if delta.get("content"):
                message["content"] = (message["content"] or "") + delta["content"]
            for part in delta.get("tool_calls") or []:
                assert isinstance(part.get("index"), int), f"tool-call delta without an integer index: {part}"
                into = calls.setdefault(part["index"], {"function": {"name": "", "arguments": ""}})
                for key, value in part.items():
                    if key == "function":
                        into["function"]["name"] += value.get("name") or ""
                        into["function"]["arguments"] += value.get("arguments") or ""
                    elif key != "index":
                        into[key] = value
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message, finish


# -- fixtures ------------------------------------------------------------------


def sdk(envoy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", max_retries=0, timeout=60)


@pytest.fixture
def client(envoy):
    return sdk(envoy)


@pytest.fixture(scope="module")
def remembered_only(start_envoy):
    """Envoy whose filter restores remembered signatures only, never the bypass value."""
    return start_envoy({"thought_signatures": {"restore": "remembered"}})


def invented_turn() -> list[dict]:
    """A conversation whose assistant tool call the client made up: no
    answer ever carried its id, so nothing can be remembered for it."""
    call_id = f"call_{uuid.uuid4().hex}"
    return [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny in Paris"},
    ]


# -- the openai SDK ------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdk_tool_loop(client, envoy, emulator, variant):
    restored = envoy.counter(RESTORED)
    messages: list = [{"role": "user", "content": PROMPT}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "emulated"}
    signature = signature_of(call)
    assert signature, f"the answer's tool call carries no thought signature: {call!r}"

    messages += [VARIANTS[variant](choice.message), *tool_results(choice.message.tool_calls)]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == FINAL
    assert second.choices[0].finish_reason == "stop"

    bodies = chat_bodies(emulator)
    assert len(bodies) == 2, bodies
    assert sent_signature(bodies[1]) == signature
    assert_restored(envoy, restored, variant)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdk_stream_tool_loop(client, envoy, emulator, variant):
    repaired, restored = envoy.counter(REPAIRED), envoy.counter(RESTORED)
    messages: list = [{"role": "user", "content": PROMPT}]
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], stream=True, stream_options={"include_usage": True}
    )
    assistant, finish = accumulate(stream)
    assert finish == "tool_calls"
    (call,) = assistant["tool_calls"]
    assert call["id"] and call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "emulated"}
    signature = signature_of(call)
    assert signature
    assert envoy.wait_counter(REPAIRED, repaired + 1) >= repaired + 1, envoy.stats("wasmcustom.")

    messages += [VARIANTS[variant](assistant), *tool_results(assistant["tool_calls"])]
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], stream=True)
    answer, finish = accumulate(stream)
    assert answer == {"role": "assistant", "content": FINAL}
    assert finish == "stop"
    assert sent_signature(chat_bodies(emulator)[1]) == signature
    assert_restored(envoy, restored, variant)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdk_stream_helper_tool_loop(client, envoy, emulator, variant):
    restored = envoy.counter(RESTORED)
    messages: list = [{"role": "user", "content": PROMPT}]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[STRICT_WEATHER]) as stream:
        events = list(stream)
        first = stream.get_final_completion()
    deltas = [d for e in events if e.type == "chunk" for c in e.chunk.choices for d in c.delta.tool_calls or []]
    assert deltas and all(isinstance(d.index, int) for d in deltas), deltas
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.name, e.parsed_arguments) for e in done] == [("get_weather", {"city": "emulated"})]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.parsed_arguments == {"city": "emulated"}
    signature = signature_of(call)
    assert signature

    messages += [VARIANTS[variant](choice.message), *tool_results(choice.message.tool_calls)]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[STRICT_WEATHER]) as stream:
        second = stream.get_final_completion()
    assert second.choices[0].message.content == FINAL
    assert second.choices[0].finish_reason == "stop"
    assert sent_signature(chat_bodies(emulator)[1]) == signature
    assert_restored(envoy, restored, variant)


def test_unremembered_call_gets_the_bypass_value(client, envoy, emulator):
    bypassed = envoy.counter(BYPASSED)
    completion = client.chat.completions.create(model=MODEL, messages=invented_turn(), tools=[WEATHER])
    assert completion.choices[0].message.content == f"Echo from {MODEL}: tool results: sunny in Paris"
    (body,) = chat_bodies(emulator)
    assert sent_signature(body) == BYPASS
    assert envoy.wait_counter(BYPASSED, bypassed + 1) == bypassed + 1, envoy.stats("wasmcustom.")


def test_restore_remembered_only(remembered_only, emulator):
    client = sdk(remembered_only)
    # A call the filter saw answered gets its signature back ...
    messages: list = [{"role": "user", "content": PROMPT}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    messages += [dropped(message), *tool_results(message.tool_calls)]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == FINAL
    assert sent_signature(chat_bodies(emulator)[1]) == signature_of(message.tool_calls[0])
    # ... an invented one does not, and Google's 400 reaches the client as an OpenAI error.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=invented_turn(), tools=[WEATHER])
    err = caught.value
    assert err.status_code == 400
    assert "thought_signature" in err.message, err.message
    assert isinstance(err.body, dict) and err.body.get("type") == "invalid_request_error", err.body
    assert sent_signature(chat_bodies(emulator)[-1]) is None


# -- LangChain -------------------------------------------------------------------


@tool("get_weather")
def weather_tool(city: str) -> str:
    """The current weather in a city."""
    return get_weather(city)


@pytest.fixture
def langchain_model(envoy, monkeypatch):
    # No tracing: nothing may leave 127.0.0.1.
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        monkeypatch.delenv(name, raising=False)
    model = ChatOpenAI(
        base_url=f"{envoy.url}/v1beta/openai/", api_key="test-key", model=MODEL, max_retries=0, timeout=60
    )
    return model.bind_tools([weather_tool])


def run_langchain(model, stream: bool):
    """Invoke (or stream and add up the chunks) the model once."""
    def call(messages):
        return reduce(operator.add, model.stream(messages)) if stream else model.invoke(messages)
    return call


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_langchain_tool_loop(langchain_model, envoy, emulator, stream):
    restored = envoy.counter(RESTORED)
    call = run_langchain(langchain_model, stream)
    messages: list = [HumanMessage(PROMPT)]
    ai = call(messages)
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [("get_weather", {"city": "emulated"})], ai
    messages.append(ai)
    messages += [ToolMessage(weather_tool.invoke(c["args"]), tool_call_id=c["id"]) for c in ai.tool_calls]
    final = call(messages)
    assert final.content == FINAL
    assert not final.tool_calls

    first, second = chat_bodies(emulator)
    assert first.get("stream", False) is stream
    # LangChain sent the call back without its signature; the filter restored
    # the one the answer carried (the emulator accepts only that one).
    signature = sent_signature(second)
    assert signature and signature != BYPASS
    assert_restored(envoy, restored, "drops extra_content")
