"""The filter's counters move with what it does (Envoy shows them as wasmcustom.gemini_router.*)."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"
LIMIT = 4096


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Its own instance, so no other module's traffic is counted; model
    # migration off, so Imagen (shut down) is counted as itself.
    return start_envoy({"max_body_bytes": LIMIT, "migrate": "never"})


# Shut down in 2026; revived for this module's tests (see conftest).
REVIVE = ["imagen-4.0-generate-001"]


def chat(model, **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "x"}], **extra}


def send_chat(envoy, body) -> None:
    envoy.post(CHAT, body, OPENAI_AUTH)


CASES = [
    # (name, counter that must move by exactly one, action)
    ("unchanged gemini", "gemini_router.unchanged.gemini", lambda e: send_chat(e, chat("gemini-3.5-flash"))),
    ("rewritten imagen", "gemini_router.rewritten.imagen", lambda e: send_chat(e, chat("imagen-4.0-generate-001"))),
    ("rewritten gemini_image", "gemini_router.rewritten.gemini_image", lambda e: send_chat(e, chat("gemini-3.1-flash-image"))),
    ("unchanged embedding", "gemini_router.unchanged.embedding",
     lambda e: e.post("/v1beta/openai/embeddings", {"model": "gemini-embedding-001", "input": "x"}, OPENAI_AUTH)),
    ("invalid model", "gemini_router.rejected.invalid_model", lambda e: send_chat(e, chat("../etc"))),
    ("invalid json", "gemini_router.passthrough.invalid_json",
     lambda e: e.request("POST", CHAT, body="{nope", headers=OPENAI_AUTH)),
    ("no model", "gemini_router.passthrough.no_model", lambda e: e.post(CHAT, {"messages": []}, OPENAI_AUTH)),
    ("too large", "gemini_router.passthrough.too_large",
     lambda e: send_chat(e, chat("imagen-4.0-generate-001", user="u" * (LIMIT + 10)))),
    ("compressed", "gemini_router.passthrough.compressed",
     lambda e: e.request("POST", CHAT, body=gzip.compress(json.dumps(chat("imagen-4.0-generate-001")).encode()),
                         headers={**OPENAI_AUTH, "content-encoding": "gzip"})),
    ("no translator", "gemini_router.passthrough.no_translator",
     lambda e: e.post("/v1beta/models/veo-3.1-generate-preview:generateContent",
                      {"contents": [{"parts": [{"text": "x"}]}]}, NATIVE_AUTH)),
]


@pytest.mark.parametrize("name,counter,action", CASES, ids=[c[0] for c in CASES])
def test_counter_moves(envoy, name, counter, action):
    before = envoy.counter(counter)
    total_before = envoy.counter("gemini_router.requests_total")
    action(envoy)
    assert envoy.wait_counter(counter, before + 1) == before + 1, envoy.stats("wasmcustom.")
    assert envoy.wait_counter("gemini_router.requests_total", total_before + 1) >= total_before + 1


def test_annotated_counts_diagnosed_answers(envoy, emulator):
    before = envoy.counter("gemini_router.annotated")  # gemini-2.0-flash is shut down: a 404
    send_chat(envoy, chat("gemini-2.0-flash"))
    assert envoy.wait_counter("gemini_router.annotated", before + 1) == before + 1
    # A 200 is not annotated.
    send_chat(envoy, chat("gemini-3.5-flash"))
    assert envoy.counter("gemini_router.annotated") == before + 1


def test_translated_counts_translations(envoy):
    before = envoy.counter("gemini_router.translated")
    send_chat(envoy, chat("imagen-4.0-generate-001"))
    assert envoy.wait_counter("gemini_router.translated", before + 1) == before + 1


def test_unchanged_requests_are_not_counted_as_rewritten(envoy):
    before = {k: v for k, v in envoy.stats("wasmcustom.gemini_router.rewritten.").items()}
    send_chat(envoy, chat("gemini-3.5-flash"))
    envoy.wait_counter("gemini_router.unchanged.gemini", 1)
    assert envoy.stats("wasmcustom.gemini_router.rewritten.") == before
