"""Bodies larger than max_body_bytes are not inspected: they pass through unchanged."""

from __future__ import annotations

import json

import pytest

from tests.harness import OPENAI_AUTH, only_request

pytestmark = pytest.mark.envoy

LIMIT = 1024
CHAT = "/v1beta/openai/chat/completions"
GENERATE = "/v1beta/models/gemini-3.1-flash-image:generateContent"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    return start_envoy({"max_body_bytes": LIMIT})


def body_of_size(size: int) -> str:
    """An image model's chat body of exactly `size` bytes."""
    base = {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a cat"}], "user": ""}
    padding = size - len(json.dumps(base))
    assert padding >= 0
    body = json.dumps({**base, "user": "u" * padding})
    assert len(body) == size
    return body


@pytest.mark.parametrize(
    "size,expected_path",
    [
        (LIMIT - 1, GENERATE),
        (LIMIT, GENERATE),  # "larger than" the limit is what passes through
        (LIMIT + 1, CHAT),
        (200_000, CHAT),
    ],
)
def test_limit(envoy, emulator, size, expected_path):
    body = body_of_size(size)
    envoy.request("POST", CHAT, body=body, headers={**OPENAI_AUTH, "content-type": "application/json"})
    record = only_request(emulator)
    assert record["path"] == expected_path
    if expected_path == CHAT:
        assert record["body"] == body
        assert record["headers"]["authorization"] == "Bearer test-key"
