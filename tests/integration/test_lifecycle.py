"""The lifecycle table: answers for a model with an announced shutdown carry
`Deprecation` (RFC 9745), `Sunset` (RFC 8594) and the replacement; a 404 for
a model past its shutdown says so and names the replacement; operators add
rows in the configuration, and a bad row is refused naming its field."""

from __future__ import annotations

import pytest

from tests.harness import NATIVE_AUTH, OPENAI_AUTH, diagnostics

pytestmark = pytest.mark.envoy

CHAT = "/v1beta/openai/chat/completions"


@pytest.fixture(scope="module")
def envoy(start_envoy):
    # Migration off: these tests are about what the filter says of the model
    # asked for (test_migration.py covers sending it to its replacement).
    # An operator row for a model the emulator serves, shut down in 2031.
    return start_envoy({"migrate": "never", "lifecycle": [
        {"match": "gemma-3-*", "deprecated": "2026-11-15", "shutdown": "2031-01-31", "replacement": "gemma-4-31b-it",
         "source": "internal notice"},
    ]})


def test_a_shut_down_model_still_answering_carries_the_headers(envoy, emulator):
    # With migration off, an upstream that still answers for a shut-down
    # model (Google routes gemini-2.5-flash to its replacement for a while)
    # gets its answer through, and the client is told.
    emulator.configure(live=["gemini-2.5-flash"])
    resp = envoy.post(CHAT, {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["deprecation"] == "@1796083200"
    assert resp.headers["sunset"] == "Tue, 01 Dec 2026 00:00:00 GMT"
    assert resp.headers["x-gemini-router-replacement"] == "gemini-3.8-flash"
    assert diagnostics(resp) == {}


def test_an_operator_row_announces_a_future_shutdown(envoy, emulator):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    resp = envoy.post("/v1beta/models/gemma-3-27b-it:generateContent", body, NATIVE_AUTH)
    assert resp.status == 200, resp
    assert resp.headers["deprecation"] == "@1794700800"
    assert resp.headers["sunset"] == "Fri, 31 Jan 2031 00:00:00 GMT"
    assert resp.headers["x-gemini-router-replacement"] == "gemma-4-31b-it"


def test_a_model_without_a_row_gets_none(envoy, emulator):
    resp = envoy.post("/v1beta/openai/embeddings", {"model": "gemini-embedding-001", "input": "x"}, OPENAI_AUTH)
    assert resp.status == 200, resp
    assert "sunset" not in resp.headers and "deprecation" not in resp.headers, resp.headers


@pytest.mark.parametrize("stream", [False, True])
def test_a_404_for_a_shut_down_model_says_when_and_what_replaces_it(envoy, emulator, stream):
    # Open WebUI's request for the model this project was born from.
    emulator.configure(retired=["imagen-3.0-generate-002"])
    body = {"model": "imagen-3.0-generate-002", "messages": [{"role": "user", "content": "a fox"}], "stream": stream}
    resp = envoy.post(CHAT, body, OPENAI_AUTH)
    assert resp.status == 404, resp
    hint = diagnostics(resp)["x-gemini-router-hint"]
    assert hint.startswith(
        "imagen-3.0-generate-002 was shut down on 2026-06-24; its replacement is gemini-3.1-flash-image."
    ), hint
    assert resp.headers["sunset"] == "Wed, 24 Jun 2026 00:00:00 GMT"
    message = resp.json()["error"]["message"]
    assert "its replacement is gemini-3.1-flash-image" in message, message


def test_a_bad_row_is_refused_naming_its_field(validate):
    code, output = validate({"lifecycle": [{"match": "x-*", "shutdown": "2026-02-30"}]})
    assert code != 0
    assert 'lifecycle[0].shutdown: "2026-02-30" is not a date' in output, output[-2000:]


def test_the_built_in_table_follows_its_schema_and_the_readme_shows_it():
    import json

    import jsonschema

    from tests.harness import REPO_ROOT

    rows = json.loads((REPO_ROOT / "data" / "lifecycle.json").read_text())
    schema = json.loads((REPO_ROOT / "schema" / "lifecycle.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(rows)
    readme = (REPO_ROOT / "README.md").read_text()
    for row in rows:
        when = row.get("shutdown") or "2025 (date not recorded)"
        replacement = f"`{row['replacement']}`" if "replacement" in row else "none named yet"
        assert f"| `{row['match']}` | {when} | {replacement} |" in readme, row
