"""Configured rules decide the family first; the rule that matched is named in the diagnostics."""

from __future__ import annotations

import pytest

from tests.harness import OPENAI_AUTH, diagnostics, only_request

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture(scope="module")
def with_rules(start_envoy):
    return start_envoy({"rules": [{"match": "my-*", "family": "imagen"}, {"match": "veo-?.1-lite*", "family": "gemini"}]})


@pytest.fixture(scope="module")
def rules_only(start_envoy):
    return start_envoy({"builtin_rules": False, "default_family": "imagen"})


def test_rule_routes_and_is_named_on_404(with_rules, emulator):
    resp = with_rules.post(CHAT, chat("my-painter"), OPENAI_AUTH)
    assert only_request(emulator)["path"] == "/v1beta/models/my-painter:predict"
    assert resp.status == 404  # the emulator does not know my-painter
    headers = diagnostics(resp)
    assert headers["x-gemini-router-rule"] == "my-* (rules[0])"
    assert headers["x-gemini-router-family"] == "imagen"


def test_rules_come_before_builtin_rules(with_rules, emulator):
    # veo-3.1-lite... would be veo by the built-in rules; rules[1] says gemini.
    resp = with_rules.post(CHAT, chat("veo-3.1-lite-generate-001"), OPENAI_AUTH)
    assert only_request(emulator)["path"] == CHAT
    assert diagnostics(resp)["x-gemini-router-rule"] == "veo-?.1-lite* (rules[1])"


def test_builtin_rules_still_apply_after_rules(with_rules, emulator):
    resp = with_rules.post(CHAT, chat("veo-2.0-generate-001"), OPENAI_AUTH)
    assert diagnostics(resp)["x-gemini-router-rule"] == "veo-* (built-in)"


def test_unmatched_model_gets_the_default_family(rules_only, emulator):
    resp = rules_only.post(CHAT, chat("gemini-9-ultra"), OPENAI_AUTH)
    assert only_request(emulator)["path"] == "/v1beta/models/gemini-9-ultra:predict"
    headers = diagnostics(resp)
    assert headers["x-gemini-router-rule"] == "default"
    assert headers["x-gemini-router-family"] == "imagen"
