"""The emulator's own tests: it must hold the Gemini contract the filter is judged by.

Plain HTTP against the in-process emulator (the session ``emulator`` fixture,
reset before each test); no Envoy. The catalogue is that of December 2026:
tests that need a shut-down model served (every Imagen model, for ``:predict``)
revive it with ``emulator.configure(live=[...])``.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
import zlib

import pytest

from tests.emulator import catalogue as cat
from tests.emulator import media
from tests.harness import HttpResponse, http_request

KEY = {"x-goog-api-key": "test-key"}
BEARER = {"authorization": "Bearer test-key"}
LIST_MODELS_HINT = "Call ListModels to see the list of available models and their supported methods."
IMAGEN = "imagen-4.0-generate-001"  # shut down: revived by the tests that need :predict served


def post(emulator, path: str, body=None, headers=None, raw: bytes | None = None) -> HttpResponse:
    if raw is not None:
        return http_request(emulator.url, "POST", path, body=raw, headers=headers)
    return http_request(emulator.url, "POST", path, json_body=body, headers=headers)


def get(emulator, path: str, headers=None) -> HttpResponse:
    return http_request(emulator.url, "GET", path, headers=headers)


def native_body(method: str, model: str) -> dict:
    """A valid request body for a native method and model."""
    contents = [{"role": "user", "parts": [{"text": "a red apple"}]}]
    if method in (cat.GENERATE_CONTENT, cat.STREAM_GENERATE_CONTENT):
        body: dict = {"contents": contents}
        if cat.MODELS.get(model) == cat.GEMINI_IMAGE:
            body["generationConfig"] = {"responseModalities": ["TEXT", "IMAGE"]}
        return body
    if method == cat.COUNT_TOKENS:
        return {"contents": contents}
    if method == cat.EMBED_CONTENT:
        return {"content": {"parts": [{"text": "a red apple"}]}}
    if method == cat.BATCH_EMBED_CONTENTS:
        return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": "a red apple"}]}}]}
    if method in (cat.PREDICT, cat.PREDICT_LONG_RUNNING):
        return {"instances": [{"prompt": "a red apple"}], "parameters": {"sampleCount": 1}}
    if method == cat.GENERATE_ANSWER:
        return {"contents": contents, "answerStyle": "ABSTRACTIVE"}
    raise AssertionError(method)


def compat_body(op: str, model: str) -> dict:
    if op == cat.CHAT_COMPLETIONS:
        return {"model": model, "messages": [{"role": "user", "content": "a red apple"}]}
    if op == cat.IMAGES_GENERATIONS:
        return {"model": model, "prompt": "a red apple", "response_format": "b64_json"}
    return {"model": model, "input": "a red apple"}


def google_error(resp: HttpResponse) -> dict:
    """The error object of a Google error body that is NOT list-wrapped."""
    body = resp.json()
    assert isinstance(body, dict), f"expected an object, got {resp!r}"
    return body["error"]


def wrapped_error(resp: HttpResponse) -> dict:
    """The error object of a list-wrapped Google error body."""
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1, f"expected a one-element list, got {resp!r}"
    return body[0]["error"]


def not_found_message(resource: str, version: str, method: str) -> str:
    return f"{resource} is not found for API version {version}, or is not supported for {method}. {LIST_MODELS_HINT}"


def revive_if_shut_down(emulator, *models: str) -> None:
    """Serve the shut-down ones among ``models`` for this test."""
    emulator.configure(live=[m for m in models if m in cat.SHUT_DOWN])


# -- the December 2026 catalogue ----------------------------------------------


def test_catalogue_live_and_shut_down_models():
    assert cat.LIVE <= set(cat.MODELS)
    assert cat.SHUT_DOWN == set(cat.MODELS) - cat.LIVE
    assert {m for m in cat.LIVE if cat.MODELS[m] == cat.GEMINI} == {
        "gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.6-flash", "gemini-3.7-flash",
        "gemini-3.8-flash", "gemini-3.1-flash-lite", "gemini-3.1-pro-preview", "gemma-3-27b-it",
    }
    assert {m for m in cat.LIVE if cat.MODELS[m] == cat.GEMINI_IMAGE} == {"gemini-3.1-flash-image", "gemini-3-pro-image"}
    assert {m for m in cat.LIVE if cat.MODELS[m] == cat.VEO} == {
        "veo-3.1-generate-preview", "veo-3.1-lite-generate-001", "veo-2.0-generate-001",
    }
    assert {m for m in cat.LIVE if cat.MODELS[m] == cat.EMBEDDING} == {"gemini-embedding-001", "gemini-embedding-2"}
    assert "aqa" in cat.LIVE
    assert not {m for m in cat.LIVE if cat.MODELS[m] == cat.IMAGEN}, "every Imagen model is shut down"
    for model in ("gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-image",
                  "gemini-3-pro-image-preview", "gemini-2.0-flash-preview-image-generation",
                  "text-embedding-004", "embedding-001", "veo-3.0-generate-001", "imagen-3.0-generate-002"):
        assert model in cat.SHUT_DOWN, model


def _answer_for(emulator, model: str, method: str) -> HttpResponse:
    query = "?alt=sse" if method == cat.STREAM_GENERATE_CONTENT else ""
    return post(emulator, f"/v1beta/models/{model}:{method}{query}", native_body(method, model), KEY)


@pytest.mark.parametrize("model", sorted(cat.SHUT_DOWN))
def test_shut_down_model_answers_like_an_unknown_id_everywhere(emulator, model):
    for method in cat.NATIVE_METHODS:
        resp = _answer_for(emulator, model, method)
        assert resp.status == 404, (method, resp)
        assert google_error(resp) == {
            "code": 404,
            "message": not_found_message(f"models/{model}", "v1beta", method),
            "status": "NOT_FOUND",
        }
        unknown = _answer_for(emulator, "gemini-9-ultra", method)
        assert google_error(unknown)["message"] == google_error(resp)["message"].replace(model, "gemini-9-ultra")
    for op in cat.COMPAT_OPERATIONS:
        resp = post(emulator, f"/v1beta/openai/{op}", compat_body(op, model), BEARER)
        assert resp.status == 404, (op, resp)
        assert wrapped_error(resp) == {
            "code": 404,
            "message": not_found_message(f"models/{model}", "v1main", cat.COMPAT_METHOD_IN_MESSAGE[op]),
            "status": "NOT_FOUND",
        }
    vertex = post(emulator, f"{VERTEX}/{model}:generateContent", native_body(cat.GENERATE_CONTENT, model),
                  {"authorization": "Bearer ya29.token"})
    assert vertex.status == 404 and google_error(vertex)["message"].startswith(
        f"Publisher Model `projects/p/locations/us-central1/publishers/google/models/{model}` was not found"
    ), vertex
    assert get(emulator, f"/v1beta/models/{model}", KEY).status == 404
    assert get(emulator, f"/v1beta/openai/models/{model}", BEARER).status == 404


def test_revived_model_is_served_listed_and_shut_down_again_by_reset(emulator):
    body = native_body(cat.PREDICT, IMAGEN)
    assert post(emulator, f"/v1beta/models/{IMAGEN}:predict", body, KEY).status == 404
    emulator.configure(live=[f"models/{IMAGEN}"])
    assert post(emulator, f"/v1beta/models/{IMAGEN}:predict", body, KEY).status == 200
    assert post(emulator, "/v1beta/models/imagen-3.0-generate-002:predict", body, KEY).status == 404  # only what was revived
    listed = {m["name"] for m in get(emulator, "/v1beta/models", KEY).json()["models"]}
    assert f"models/{IMAGEN}" in listed
    assert f"models/{IMAGEN}" in {d["id"] for d in get(emulator, "/v1beta/openai/models", BEARER).json()["data"]}
    emulator.configure(live=[])
    assert post(emulator, f"/v1beta/models/{IMAGEN}:predict", body, KEY).status == 404
    emulator.configure(live=[IMAGEN])
    emulator.reset()
    assert post(emulator, f"/v1beta/models/{IMAGEN}:predict", body, KEY).status == 404


def test_retired_wins_over_live(emulator):
    emulator.configure(live=[IMAGEN], retired=[IMAGEN])
    assert post(emulator, f"/v1beta/models/{IMAGEN}:predict", native_body(cat.PREDICT, IMAGEN), KEY).status == 404


def test_reviving_an_unknown_model_is_refused(emulator):
    with pytest.raises(ValueError, match="gemini-9-ultra"):
        emulator.configure(live=["gemini-9-ultra"])
    refused = post(emulator, "/__emulator/config", {"live": ["gemini-9-ultra"]})
    assert refused.status == 400 and "gemini-9-ultra" in refused.text


# -- families x methods ------------------------------------------------------

NATIVE_MATRIX = [
    pytest.param(model, method, id=f"{model}:{method}") for model in cat.MODELS for method in cat.NATIVE_METHODS
]


@pytest.mark.parametrize("model,method", NATIVE_MATRIX)
def test_native_method_serves_only_its_families(emulator, model, method):
    # Shut-down models are revived: a test that revives one gets its family's contract.
    revive_if_shut_down(emulator, model)
    query = "?alt=sse" if method == cat.STREAM_GENERATE_CONTENT else ""
    resp = post(emulator, f"/v1beta/models/{model}:{method}{query}", native_body(method, model), KEY)
    if cat.MODELS[model] in cat.NATIVE_SERVES[method]:
        assert resp.status == 200, resp
    else:
        assert resp.status == 404, resp
        assert google_error(resp) == {
            "code": 404,
            "message": not_found_message(f"models/{model}", "v1beta", method),
            "status": "NOT_FOUND",
        }


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_native_404_names_the_path_version(emulator, version):
    resp = post(emulator, f"/{version}/models/veo-2.0-generate-001:generateContent", native_body("generateContent", "x"), KEY)
    assert resp.status == 404
    assert google_error(resp)["message"] == not_found_message("models/veo-2.0-generate-001", version, "generateContent")
    ok = post(emulator, f"/{version}/models/gemini-3.5-flash:generateContent", native_body("generateContent", "x"), KEY)
    assert ok.status == 200, ok


def test_unknown_model_is_404_on_every_method(emulator):
    for method in cat.NATIVE_METHODS:
        resp = post(emulator, f"/v1beta/models/gemini-9-ultra:{method}", native_body(method, "gemini-9-ultra"), KEY)
        assert resp.status == 404, (method, resp)
        assert "models/gemini-9-ultra is not found" in json.dumps(resp.json())


def test_unknown_native_method_is_an_html_404(emulator):
    resp = post(emulator, "/v1beta/models/gemini-3.5-flash:fooBar", {}, KEY)
    assert resp.status == 404
    assert resp.headers["content-type"].startswith("text/html")


COMPAT_MATRIX = [pytest.param(model, op, id=f"{op}:{model}") for model in cat.MODELS for op in cat.COMPAT_OPERATIONS]


@pytest.mark.parametrize("model,op", COMPAT_MATRIX)
def test_compat_operation_serves_only_its_families(emulator, model, op):
    revive_if_shut_down(emulator, model)
    resp = post(emulator, f"/v1beta/openai/{op}", compat_body(op, model), BEARER)
    if cat.MODELS[model] in cat.COMPAT_SERVES[op]:
        assert resp.status == 200, resp
    else:
        assert resp.status == 404, resp
        assert wrapped_error(resp) == {
            "code": 404,
            "message": not_found_message(f"models/{model}", "v1main", cat.COMPAT_METHOD_IN_MESSAGE[op]),
            "status": "NOT_FOUND",
        }


@pytest.mark.parametrize("model", ["gemini-3.5-flash", "models/gemini-3.5-flash"])
def test_compat_accepts_model_with_or_without_prefix(emulator, model):
    resp = post(emulator, "/v1beta/openai/chat/completions", compat_body(cat.CHAT_COMPLETIONS, model), BEARER)
    assert resp.status == 200, resp
    assert resp.json()["choices"][0]["message"]["content"] == "Echo from gemini-3.5-flash: a red apple"


VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models"


@pytest.mark.parametrize(
    "path,status",
    [
        (f"{VERTEX}/gemini-3.5-flash:generateContent", 200),
        (f"{VERTEX}/gemini-3.5-flash:streamGenerateContent?alt=sse", 200),
        (f"{VERTEX}/veo-2.0-generate-001:generateContent", 404),
        (f"{VERTEX}/gemini-2.5-flash:generateContent", 404),
        ("/v1/publishers/google/models/gemini-3.5-flash:generateContent", 200),
        (f"{VERTEX}/gemini-9-ultra:generateContent", 404),
    ],
)
def test_vertex_paths(emulator, path, status):
    resp = post(emulator, path, native_body("generateContent", "gemini-3.5-flash"), {"authorization": "Bearer ya29.token"})
    assert resp.status == status, resp


def test_vertex_imagen_predict_and_auth(emulator):
    emulator.configure(live=[IMAGEN])
    body = native_body("predict", "imagen-4.0-generate-001")
    path = f"{VERTEX}/imagen-4.0-generate-001:predict"
    assert post(emulator, path, body, {"authorization": "Bearer ya29.token"}).status == 200
    assert post(emulator, path, body, KEY).status == 200  # express mode API key
    missing = post(emulator, path, body, {})
    assert missing.status == 401 and google_error(missing)["status"] == "UNAUTHENTICATED"


# -- auth --------------------------------------------------------------------

AUTH_CASES = [
    # (name, path, headers, status, google status, list-wrapped)
    ("native header key", "/v1beta/models/gemini-3.5-flash:generateContent", KEY, 200, None, False),
    ("native query key", "/v1beta/models/gemini-3.5-flash:generateContent?key=test-key", {}, 200, None, False),
    ("native missing", "/v1beta/models/gemini-3.5-flash:generateContent", {}, 403, "PERMISSION_DENIED", False),
    ("native wrong key", "/v1beta/models/gemini-3.5-flash:generateContent", {"x-goog-api-key": "nope"}, 400, "INVALID_ARGUMENT", False),
    ("native wrong query key", "/v1beta/models/gemini-3.5-flash:generateContent?key=nope", {}, 400, "INVALID_ARGUMENT", False),
    ("native bearer is wrong header", "/v1beta/models/gemini-3.5-flash:generateContent", BEARER, 400, "INVALID_ARGUMENT", False),
    ("native stream missing key is wrapped", "/v1beta/models/gemini-3.5-flash:streamGenerateContent", {}, 403, "PERMISSION_DENIED", True),
    ("compat bearer", "/v1beta/openai/chat/completions", BEARER, 200, None, True),
    ("compat missing", "/v1beta/openai/chat/completions", {}, 403, "PERMISSION_DENIED", True),
    ("compat wrong key", "/v1beta/openai/chat/completions", {"authorization": "Bearer nope"}, 400, "INVALID_ARGUMENT", True),
    ("compat goog header is wrong header", "/v1beta/openai/chat/completions", KEY, 400, "INVALID_ARGUMENT", True),
    ("compat query key is wrong place", "/v1beta/openai/chat/completions?key=test-key", {}, 400, "INVALID_ARGUMENT", True),
]


@pytest.mark.parametrize("name,path,headers,status,google_status,wrapped", AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_auth(emulator, name, path, headers, status, google_status, wrapped):
    if "/openai/" in path:
        body = compat_body(cat.CHAT_COMPLETIONS, "gemini-3.5-flash")
    else:
        body = native_body(cat.GENERATE_CONTENT, "gemini-3.5-flash")
    resp = post(emulator, path, body, headers)
    assert resp.status == status, resp
    if google_status:
        error = wrapped_error(resp) if wrapped else google_error(resp)
        assert error["status"] == google_status
        if status == 400:
            assert error["message"] == "API key not valid. Please pass a valid API key."
        assert "nope" not in resp.text and "test-key" not in resp.text


def test_configured_keys_replace_the_default(emulator):
    emulator.configure(valid_keys=["other-key"])
    path = "/v1beta/models/gemini-3.5-flash:generateContent"
    body = native_body(cat.GENERATE_CONTENT, "gemini-3.5-flash")
    assert post(emulator, path, body, KEY).status == 400
    assert post(emulator, path, body, {"x-goog-api-key": "other-key"}).status == 200


# -- shapes ------------------------------------------------------------------

GC = "/v1beta/models/gemini-3.5-flash:generateContent"
CHAT_X = {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]}
SHAPE_CASES = [
    # (name, path, headers, body (dict or raw bytes), wrapped)
    ("invalid json", GC, KEY, b"{not json", False),
    ("json list body", GC, KEY, b"[]", False),
    ("missing contents", GC, KEY, {"generationConfig": {}}, False),
    ("contents not a list", GC, KEY, {"contents": {"parts": [{"text": "x"}]}}, False),
    ("openai body on generateContent", GC, KEY, {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "x"}]}, False),
    ("openai part on generateContent", GC, KEY, {"contents": [{"role": "user", "parts": [{"type": "text", "text": "x"}]}]}, False),
    ("assistant role", GC, KEY, {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, False),
    ("unknown generationConfig field", GC, KEY, {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}}, False),
    ("empty parts", GC, KEY, {"contents": [{"role": "user", "parts": []}]}, False),
    ("text model asked for images", GC, KEY, {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, False),
    ("2.0 preview image model needs TEXT and IMAGE", "/v1beta/models/gemini-2.0-flash-preview-image-generation:generateContent", KEY,
     {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["IMAGE"]}}, False),
    ("2.0 preview image model without modalities", "/v1beta/models/gemini-2.0-flash-preview-image-generation:generateContent", KEY,
     {"contents": [{"parts": [{"text": "x"}]}]}, False),
    ("stream without alt wraps shape errors", "/v1beta/models/gemini-3.5-flash:streamGenerateContent", KEY, {"contents": []}, True),
    ("predict without instances", "/v1beta/models/imagen-4.0-generate-001:predict", KEY, {"parameters": {}}, False),
    ("predict instance without prompt", "/v1beta/models/imagen-4.0-generate-001:predict", KEY, {"instances": [{"text": "x"}]}, False),
    ("predict with contents", "/v1beta/models/imagen-4.0-generate-001:predict", KEY, {"contents": [{"parts": [{"text": "x"}]}]}, False),
    ("predict sampleCount 5", "/v1beta/models/imagen-4.0-generate-001:predict", KEY, {"instances": [{"prompt": "x"}], "parameters": {"sampleCount": 5}}, False),
    ("embedContent without content", "/v1beta/models/gemini-embedding-001:embedContent", KEY, {"taskType": "RETRIEVAL_QUERY"}, False),
    ("batchEmbedContents without requests", "/v1beta/models/gemini-embedding-001:batchEmbedContents", KEY, {}, False),
    ("batchEmbedContents without model", "/v1beta/models/gemini-embedding-001:batchEmbedContents", KEY,
     {"requests": [{"content": {"parts": [{"text": "x"}]}}]}, False),
    ("batchEmbedContents other model", "/v1beta/models/gemini-embedding-001:batchEmbedContents", KEY,
     {"requests": [{"model": "models/embedding-001", "content": {"parts": [{"text": "x"}]}}]}, False),
    ("predictLongRunning without instances", "/v1beta/models/veo-3.1-generate-preview:predictLongRunning", KEY, {}, False),
    ("compat invalid json", "/v1beta/openai/chat/completions", BEARER, b"{not json", True),
    ("compat chat without messages", "/v1beta/openai/chat/completions", BEARER, {"model": "gemini-3.5-flash"}, True),
    ("compat chat without model", "/v1beta/openai/chat/completions", BEARER, {"messages": [{"role": "user", "content": "x"}]}, True),
    ("compat chat numeric model", "/v1beta/openai/chat/completions", BEARER, {"model": 7, "messages": [{"role": "user", "content": "x"}]}, True),
    ("compat images without prompt", "/v1beta/openai/images/generations", BEARER, {"model": "imagen-4.0-generate-001"}, True),
    ("compat images n 5", "/v1beta/openai/images/generations", BEARER, {"model": "imagen-4.0-generate-001", "prompt": "x", "n": 5}, True),
    ("compat embeddings without input", "/v1beta/openai/embeddings", BEARER, {"model": "gemini-embedding-001"}, True),
    ("compat tools not a list", "/v1beta/openai/chat/completions", BEARER, {**CHAT_X, "tools": {"type": "function"}}, True),
    ("compat tool of another type", "/v1beta/openai/chat/completions", BEARER,
     {**CHAT_X, "tools": [{"type": "code_interpreter"}]}, True),
    ("compat tool without name", "/v1beta/openai/chat/completions", BEARER,
     {**CHAT_X, "tools": [{"type": "function", "function": {"description": "x"}}]}, True),
    ("compat tool parameters not an object", "/v1beta/openai/chat/completions", BEARER,
     {**CHAT_X, "tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]}, True),
    ("compat tool_choice unknown", "/v1beta/openai/chat/completions", BEARER,
     {**CHAT_X, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}, True),
    ("compat tool_choice names no tool", "/v1beta/openai/chat/completions", BEARER,
     {**CHAT_X, "tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "g"}}}, True),
    ("compat assistant tool call without function", "/v1beta/openai/chat/completions", BEARER,
     {"model": "gemma-3-27b-it", "messages": [{"role": "user", "content": "x"},
                                              {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}]}, True),
    ("compat assistant tool call arguments not a string", "/v1beta/openai/chat/completions", BEARER,
     {"model": "gemma-3-27b-it", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
         {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {}}}]}]}, True),
    ("compat tool message without tool_call_id", "/v1beta/openai/chat/completions", BEARER,
     {"model": "gemma-3-27b-it", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]}, True),
]


@pytest.mark.parametrize("name,path,headers,body,wrapped", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_wrong_shape_is_400_invalid_argument(emulator, name, path, headers, body, wrapped):
    # Imagen and the 2.0 preview image model are shut down: revived to reach their shape checks.
    revive_if_shut_down(emulator, IMAGEN, "gemini-2.0-flash-preview-image-generation")
    resp = post(emulator, path, raw=body, headers=headers) if isinstance(body, bytes) else post(emulator, path, body, headers)
    assert resp.status == 400, resp
    error = wrapped_error(resp) if wrapped else google_error(resp)
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"]


@pytest.mark.parametrize(
    "name,path,headers,body",
    [
        ("predict with object instances (older Open WebUI)", "/v1beta/models/imagen-4.0-generate-001:predict", KEY,
         {"instances": {"prompt": "x"}, "parameters": {"sampleCount": 1, "outputOptions": {"mimeType": "image/png"}}}),
        ("snake_case proto fields", GC, KEY,
         {"contents": [{"parts": [{"text": "x"}]}], "system_instruction": {"parts": [{"text": "be brief"}]},
          "generation_config": {"max_output_tokens": 5}}),
        ("countTokens with generateContentRequest", "/v1beta/models/gemini-3.5-flash:countTokens", KEY,
         {"generateContentRequest": {"model": "models/gemini-3.5-flash", "contents": [{"parts": [{"text": "x y"}]}]}}),
        ("compat chat with content parts", "/v1beta/openai/chat/completions", BEARER,
         {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        ("compat embeddings list input", "/v1beta/openai/embeddings", BEARER, {"model": "gemini-embedding-001", "input": ["a", "b"]}),
        ("compat tool loop without signatures on gemma", "/v1beta/openai/chat/completions", BEARER,
         {"model": "gemma-3-27b-it", "messages": [
             {"role": "user", "content": "x"},
             {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]}],
          "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"},
                                                      "strict": True}}],
          "tool_choice": "auto"}),
    ],
)
def test_accepted_shapes(emulator, name, path, headers, body):
    revive_if_shut_down(emulator, IMAGEN)
    resp = post(emulator, path, body, headers)
    assert resp.status == 200, resp


# -- answers -----------------------------------------------------------------


def decode_png(b64: str) -> bytes:
    data = base64.b64decode(b64, validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    return data


def test_generate_content_answer_shape(emulator):
    resp = post(emulator, GC, native_body(cat.GENERATE_CONTENT, "gemini-3.5-flash"), KEY)
    body = resp.json()
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["content-length"] == str(len(resp.body))
    candidate = body["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "Echo from gemini-3.5-flash: a red apple"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert body["modelVersion"] == "gemini-3.5-flash"
    usage = body["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


@pytest.mark.parametrize("model", [m for m, f in cat.MODELS.items() if f == cat.GEMINI_IMAGE])
def test_gemini_image_answers_text_and_png(emulator, model):
    revive_if_shut_down(emulator, model)
    resp = post(emulator, f"/v1beta/models/{model}:generateContent", native_body(cat.GENERATE_CONTENT, model), KEY)
    parts = resp.json()["candidates"][0]["content"]["parts"]
    assert [next(iter(p)) for p in parts] == ["text", "inlineData"]
    assert parts[1]["inlineData"]["mimeType"] == "image/png"
    decode_png(parts[1]["inlineData"]["data"])


def test_gemini_image_blocked_prompt_is_image_safety(emulator):
    body = {"contents": [{"parts": [{"text": "a BLOCKED thing"}]}], "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
    resp = post(emulator, "/v1beta/models/gemini-3.1-flash-image:generateContent", body, KEY)
    assert resp.status == 200
    candidate = resp.json()["candidates"][0]
    assert candidate["finishReason"] == "IMAGE_SAFETY"
    assert "inlineData" not in json.dumps(candidate)


@pytest.mark.parametrize("count", [None, 1, 3, 4])
def test_predict_sample_count(emulator, count):
    emulator.configure(live=[IMAGEN])
    body: dict = {"instances": [{"prompt": "a cat"}]}
    if count is not None:
        body["parameters"] = {"sampleCount": count}
    predictions = post(emulator, "/v1beta/models/imagen-4.0-generate-001:predict", body, KEY).json()["predictions"]
    assert len(predictions) == (count or 1)
    for p in predictions:
        assert p["mimeType"] == "image/png"
        decode_png(p["bytesBase64Encoded"])


def test_predict_blocked_prompt_is_rai_filtered(emulator):
    emulator.configure(live=[IMAGEN])
    body = {"instances": [{"prompt": "BLOCKED cat"}]}
    predictions = post(emulator, "/v1beta/models/imagen-4.0-generate-001:predict", body, KEY).json()["predictions"]
    assert len(predictions) == 1 and set(predictions[0]) == {"raiFilteredReason"}


def test_big_prompt_gives_about_2mb_images(emulator):
    emulator.configure(live=[IMAGEN])
    body = {"instances": [{"prompt": "BIG cat"}], "parameters": {"sampleCount": 2}}
    resp = post(emulator, "/v1beta/models/imagen-4.0-generate-001:predict", body, KEY)
    predictions = resp.json()["predictions"]
    for p in predictions:
        assert 1_900_000 <= len(p["bytesBase64Encoded"]) <= 2_200_000
        decode_png(p["bytesBase64Encoded"])
    assert len(resp.body) > 4_000_000


def test_stream_sse_frames(emulator):
    resp = post(emulator, "/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse",
                native_body(cat.STREAM_GENERATE_CONTENT, "gemini-3.5-flash"), KEY)
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers.get("transfer-encoding") == "chunked"
    assert resp.body.startswith(b"data: {") and resp.body.endswith(b"\r\n\r\n")
    frames = [json.loads(d) for d in resp.sse_data()]
    assert len(frames) >= 2
    text = "".join(p["text"] for f in frames for p in f["candidates"][0]["content"]["parts"])
    assert text == "Echo from gemini-3.5-flash: a red apple"
    assert frames[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in frames[-1]
    assert b"[DONE]" not in resp.body


def test_stream_image_model_sends_the_image_in_a_frame(emulator):
    model = "gemini-3.1-flash-image"
    resp = post(emulator, f"/v1beta/models/{model}:streamGenerateContent?alt=sse", native_body(cat.STREAM_GENERATE_CONTENT, model), KEY)
    frames = [json.loads(d) for d in resp.sse_data()]
    images = [p for f in frames for p in f["candidates"][0]["content"]["parts"] if "inlineData" in p]
    assert len(images) == 1


def test_stream_without_alt_is_one_json_array(emulator):
    resp = post(emulator, "/v1beta/models/gemini-3.5-flash:streamGenerateContent",
                native_body(cat.STREAM_GENERATE_CONTENT, "gemini-3.5-flash"), KEY)
    body = resp.json()
    assert isinstance(body, list) and len(body) >= 2
    assert body[-1]["candidates"][0]["finishReason"] == "STOP"


def test_stream_without_alt_wraps_404(emulator):
    resp = post(emulator, "/v1beta/models/imagen-4.0-generate-001:streamGenerateContent", native_body(cat.STREAM_GENERATE_CONTENT, "x"), KEY)
    assert resp.status == 404
    assert wrapped_error(resp)["status"] == "NOT_FOUND"
    sse = post(emulator, "/v1beta/models/imagen-4.0-generate-001:streamGenerateContent?alt=sse", native_body(cat.STREAM_GENERATE_CONTENT, "x"), KEY)
    assert sse.status == 404
    assert google_error(sse)["status"] == "NOT_FOUND"


def test_count_tokens(emulator):
    resp = post(emulator, "/v1beta/models/gemini-3.5-flash:countTokens", {"contents": [{"parts": [{"text": "one two three"}]}]}, KEY)
    assert resp.json()["totalTokens"] == 3


def test_embeddings(emulator):
    one = post(emulator, "/v1beta/models/gemini-embedding-001:embedContent",
               {"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 8}, KEY).json()
    assert len(one["embedding"]["values"]) == 8
    default = post(emulator, "/v1beta/models/gemini-embedding-2:embedContent", native_body(cat.EMBED_CONTENT, "x"), KEY).json()
    assert len(default["embedding"]["values"]) == 3072
    emulator.configure(live=["text-embedding-004"])
    older = post(emulator, "/v1beta/models/text-embedding-004:embedContent", native_body(cat.EMBED_CONTENT, "x"), KEY).json()
    assert len(older["embedding"]["values"]) == 768
    batch = post(emulator, "/v1beta/models/gemini-embedding-001:batchEmbedContents", {
        "requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}, "outputDimensionality": 4} for t in "ab"]
    }, KEY).json()
    assert [len(e["values"]) for e in batch["embeddings"]] == [4, 4]
    assert batch["embeddings"][0] != batch["embeddings"][1]


def test_veo_operation_flow(emulator):
    started = post(emulator, "/v1beta/models/veo-3.1-generate-preview:predictLongRunning", native_body(cat.PREDICT_LONG_RUNNING, "x"), KEY).json()
    assert started["name"].startswith("models/veo-3.1-generate-preview/operations/")
    polled = get(emulator, f"/v1beta/{started['name']}", KEY).json()
    assert polled["done"] is True
    assert polled["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"] == media.FAKE_VIDEO_URI
    assert get(emulator, "/v1beta/models/veo-3.1-generate-preview/operations/nope", KEY).status == 404


def test_generate_answer(emulator):
    resp = post(emulator, "/v1beta/models/aqa:generateAnswer", native_body(cat.GENERATE_ANSWER, "aqa"), KEY)
    assert resp.json()["answer"]["content"]["parts"][0]["text"]


def test_list_and_get_models(emulator):
    models = get(emulator, "/v1beta/models", KEY).json()["models"]
    by_name = {m["name"]: m for m in models}
    assert set(by_name) == {f"models/{m}" for m in cat.LIVE}
    assert by_name["models/gemini-3.1-flash-image"]["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent", "countTokens"]
    assert by_name["models/gemini-embedding-2"]["supportedGenerationMethods"] == ["embedContent", "batchEmbedContents"]
    assert by_name["models/gemini-3.5-flash"]["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent", "countTokens"]
    assert get(emulator, "/v1beta/models/veo-2.0-generate-001", KEY).json()["supportedGenerationMethods"] == ["predictLongRunning"]
    assert get(emulator, "/v1beta/models/nope", KEY).status == 404
    assert get(emulator, "/v1beta/models", {}).status == 403
    emulator.configure(live=[IMAGEN])
    revived = {m["name"]: m for m in get(emulator, "/v1beta/models", KEY).json()["models"]}
    assert revived[f"models/{IMAGEN}"]["supportedGenerationMethods"] == ["predict"]


def test_list_models_pages_like_google(emulator):
    pages, token = [], None
    while True:
        query = "?pageSize=5" + (f"&pageToken={token}" if token else "")
        body = get(emulator, f"/v1beta/models{query}", KEY).json()
        pages.append([m["name"] for m in body["models"]])
        token = body.get("nextPageToken")
        if not token:
            break
    assert all(len(p) == 5 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 5
    names = [n for p in pages for n in p]
    assert len(names) == len(set(names)) and set(names) == {f"models/{m}" for m in cat.LIVE}
    whole = get(emulator, "/v1beta/models?key=test-key", {}).json()
    assert "nextPageToken" not in whole and len(whole["models"]) == len(cat.LIVE)  # default page size 50
    bad = get(emulator, "/v1beta/models?pageToken=nonsense", KEY)
    assert bad.status == 400 and google_error(bad)["status"] == "INVALID_ARGUMENT"


def test_compat_models_list_prefixed_ids(emulator):
    resp = get(emulator, "/v1beta/openai/models", BEARER)
    assert resp.status == 200, resp
    body = resp.json()
    assert body["object"] == "list"
    assert {d["id"] for d in body["data"]} == {f"models/{m}" for m in cat.LIVE}
    assert all(d["object"] == "model" and d["owned_by"] == "google" for d in body["data"])
    missing_key = get(emulator, "/v1beta/openai/models", {})
    assert missing_key.status == 403 and wrapped_error(missing_key)["status"] == "PERMISSION_DENIED"
    assert get(emulator, "/v1beta/openai/models/gemini-3.5-flash", BEARER).json()["id"] == "models/gemini-3.5-flash"


def test_compat_chat_stream(emulator):
    body = {**compat_body(cat.CHAT_COMPLETIONS, "gemini-3.5-flash"), "stream": True, "stream_options": {"include_usage": True}}
    resp = post(emulator, "/v1beta/openai/chat/completions", body, BEARER)
    assert resp.headers["content-type"] == "text/event-stream"
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Echo from gemini-3.5-flash: a red apple"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    no_usage = post(emulator, "/v1beta/openai/chat/completions", {**body, "stream_options": {}}, BEARER)
    assert all("usage" not in json.loads(d) for d in no_usage.sse_data()[:-1])


def test_compat_chat_with_gemini_image_model_is_text_only(emulator):
    resp = post(emulator, "/v1beta/openai/chat/completions", compat_body(cat.CHAT_COMPLETIONS, "gemini-3.1-flash-image"), BEARER)
    assert resp.status == 200
    assert isinstance(resp.json()["choices"][0]["message"]["content"], str)


@pytest.mark.parametrize("model", [IMAGEN, "gemini-3.1-flash-image"])
def test_compat_images(emulator, model):
    revive_if_shut_down(emulator, model)
    resp = post(emulator, "/v1beta/openai/images/generations", {**compat_body(cat.IMAGES_GENERATIONS, model), "n": 2}, BEARER)
    body = resp.json()
    assert isinstance(body["created"], int)
    assert len(body["data"]) == 2
    decode_png(body["data"][0]["b64_json"])


def test_compat_embeddings_float_and_base64(emulator):
    body = {"model": "gemini-embedding-001", "input": "x", "dimensions": 4}
    floats = post(emulator, "/v1beta/openai/embeddings", body, BEARER).json()
    assert floats["object"] == "list" and floats["model"] == "gemini-embedding-001"
    assert floats["data"][0]["object"] == "embedding" and floats["data"][0]["index"] == 0
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 4
    packed = post(emulator, "/v1beta/openai/embeddings", {**body, "encoding_format": "base64"}, BEARER).json()
    unpacked = struct.unpack("<4f", base64.b64decode(packed["data"][0]["embedding"]))
    assert unpacked == pytest.approx(vector, abs=1e-6)


# -- tools and Gemini 3 thought signatures (compat chat) ----------------------

CHAT = "/v1beta/openai/chat/completions"
SIGNING = "gemini-3.5-flash"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                       "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
FUNCTION_CALL_ID = re.compile(r"^function-call-[0-9a-f]{16}$")


def tool_request(model: str, prompt: str = "what is the weather in Paris?", tools=(WEATHER, TIME), **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "tools": list(tools), **extra}


def signature_of(call: dict):
    return ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")


def first_turn(emulator, model: str = SIGNING, **extra) -> dict:
    """The assistant message of a first turn that calls get_weather."""
    if model in cat.SHUT_DOWN:
        emulator.configure(live=[model])
    resp = post(emulator, CHAT, tool_request(model, **extra), BEARER)
    assert resp.status == 200, resp
    return resp.json()["choices"][0]["message"]


def second_turn(model: str, assistant: dict, before: list[dict] | None = None) -> dict:
    """The request that sends the tool's result back after ``assistant``."""
    messages = (before or []) + [{"role": "user", "content": "what is the weather in Paris?"}, assistant]
    messages += [{"role": "tool", "tool_call_id": c["id"], "content": f"sunny ({c['function']['name']})"}
                 for c in assistant["tool_calls"]]
    return {"model": model, "messages": messages, "tools": [WEATHER, TIME]}


def with_signature(message: dict, signature) -> dict:
    """``message`` with its first tool call's signature replaced (``None``: removed)."""
    calls = [dict(c) for c in message["tool_calls"]]
    calls[0].pop("extra_content", None)
    if signature is not None:
        calls[0]["extra_content"] = {"google": {"thought_signature": signature}}
    return {**message, "tool_calls": calls}


@pytest.mark.parametrize("model,signed", [(SIGNING, True), ("gemini-3.1-pro-preview", True),
                                          ("gemini-2.5-flash", False), ("gemma-3-27b-it", False)])
def test_compat_tool_call_answer(emulator, model, signed):
    revive_if_shut_down(emulator, model)
    resp = post(emulator, CHAT, tool_request(model, "get_weather in Paris, and get_time too"), BEARER)
    assert resp.status == 200, resp
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] is None
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert all(FUNCTION_CALL_ID.match(c["id"]) and c["type"] == "function" for c in calls), calls
    assert calls[0]["id"] != calls[1]["id"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "emulated"}, {}]
    # Gemini signs only the first function call of a step.
    assert "extra_content" not in calls[1]
    if signed:
        signature = signature_of(calls[0])
        assert set(calls[0]["extra_content"]) == {"google"}
        decoded = base64.b64decode(signature, validate=True)
        assert decoded.startswith(f"emulator-thought-signature|{model}|{calls[0]['id']}|".encode())
        assert 300 <= len(signature) <= 1000
    else:
        assert "extra_content" not in calls[0]


TOOL_CHOICE_CASES = [
    # (name, prompt, tools, extra request fields, names called (None: a text answer))
    ("named tools in the order of tools", "get_time then get_weather", (WEATHER, TIME), {}, ["get_weather", "get_time"]),
    ("none named: the first tool", "hello", (TIME, WEATHER), {}, ["get_time"]),
    ("required", "hello", (WEATHER, TIME), {"tool_choice": "required"}, ["get_weather"]),
    ("forced function", "get_weather please", (WEATHER, TIME),
     {"tool_choice": {"type": "function", "function": {"name": "get_time"}}}, ["get_time"]),
    ("tool_choice none", "get_weather please", (WEATHER, TIME), {"tool_choice": "none"}, None),
    ("empty tools", "get_weather please", (), {}, None),
]


@pytest.mark.parametrize("name,prompt,tools,extra,called", TOOL_CHOICE_CASES, ids=[c[0] for c in TOOL_CHOICE_CASES])
def test_compat_tool_choice(emulator, name, prompt, tools, extra, called):
    resp = post(emulator, CHAT, tool_request(SIGNING, prompt, tools, **extra), BEARER)
    assert resp.status == 200, resp
    choice = resp.json()["choices"][0]
    if called is None:
        assert choice["message"] == {"role": "assistant", "content": f"Echo from {SIGNING}: {prompt}"}
        assert choice["finish_reason"] == "stop"
    else:
        assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == called
        assert choice["finish_reason"] == "tool_calls"


ARGUMENT_CASES = [
    # (name, parameters, arguments)
    ("no parameters", None, {}),
    ("required only", {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"]}, {"b": 1}),
    ("every property when none required",
     {"properties": {"s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"},
                     "b": {"type": "boolean"}, "o": {"type": "object"}, "l": {"type": "array"}, "x": {}}},
     {"s": "emulated", "i": 1, "n": 1.5, "b": True, "o": None, "l": None, "x": None}),
    ("nullable type", {"properties": {"s": {"type": ["null", "string"]}}}, {"s": "emulated"}),
    ("required but undescribed", {"properties": {}, "required": ["q"]}, {"q": None}),
]


@pytest.mark.parametrize("name,parameters,arguments", ARGUMENT_CASES, ids=[c[0] for c in ARGUMENT_CASES])
def test_compat_tool_call_arguments(emulator, name, parameters, arguments):
    function: dict = {"name": "f"}
    if parameters is not None:
        function["parameters"] = {"type": "object", **parameters}
    resp = post(emulator, CHAT, tool_request(SIGNING, "x", [{"type": "function", "function": function}]), BEARER)
    assert resp.status == 200, resp
    assert json.loads(resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == arguments


def missing_signature(name: str, position: int) -> str:
    return (
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
        "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
        f"call `default_api:{name}` , position {position}. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    )


def other_call_signature(emulator, message: dict) -> str:
    return signature_of(first_turn(emulator)["tool_calls"][0])


def other_model_signature(emulator, message: dict) -> str:
    return signature_of(first_turn(emulator, "gemini-3.6-flash")["tool_calls"][0])


def repadded_signature(emulator, message: dict) -> str:
    return base64.b64encode(base64.b64decode(signature_of(message["tool_calls"][0])) + b"\0").decode()


SECOND_TURN_CASES = [
    # (name, model, signature for the first call (callable: made from the emulator and the first answer), status, message)
    ("signature kept", SIGNING, "kept", 200, None),
    ("bypass value", SIGNING, "skip_thought_signature_validator", 200, None),
    ("missing", SIGNING, None, 400, missing_signature("get_weather", 2)),
    ("empty", SIGNING, "", 400, missing_signature("get_weather", 2)),
    ("another call's signature", SIGNING, other_call_signature, 400, "Thought signature is not valid."),
    ("another model's signature", SIGNING, other_model_signature, 400, "Thought signature is not valid."),
    ("altered signature", SIGNING, repadded_signature, 400, "Thought signature is not valid."),
    ("not base64", SIGNING, "not a signature!", 400, "Thought signature is not valid."),
    ("gemini-2.5 needs none", "gemini-2.5-flash", None, 200, None),
    ("gemma needs none", "gemma-3-27b-it", None, 200, None),
]


@pytest.mark.parametrize("name,model,signature,status,message", SECOND_TURN_CASES, ids=[c[0] for c in SECOND_TURN_CASES])
def test_compat_second_turn_thought_signature(emulator, name, model, signature, status, message):
    assistant = first_turn(emulator, model)
    if callable(signature):
        signature = signature(emulator, assistant)
    if signature != "kept":
        assistant = with_signature(assistant, signature)
    resp = post(emulator, CHAT, second_turn(model, assistant), BEARER)
    assert resp.status == status, resp
    if status == 200:
        choice = resp.json()["choices"][0]
        assert choice["message"] == {"role": "assistant", "content": f"Echo from {model}: tool results: sunny (get_weather)"}
        assert choice["finish_reason"] == "stop"
    else:
        assert wrapped_error(resp) == {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}


def test_compat_thought_signature_checks_only_the_current_turn_and_first_calls(emulator):
    earlier = first_turn(emulator)
    unsigned_earlier = with_signature(earlier, None)
    history = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, unsigned_earlier,
               {"role": "tool", "tool_call_id": earlier["tool_calls"][0]["id"], "content": "rain"},
               {"role": "assistant", "content": "It rains."}]
    # An earlier turn's unsigned calls do not matter.
    current = first_turn(emulator, prompt="get_weather and get_time")
    assert "extra_content" not in current["tool_calls"][1]
    ok = post(emulator, CHAT, second_turn(SIGNING, current, history), BEARER)
    assert ok.status == 200, ok
    assert ok.json()["choices"][0]["message"]["content"] == (
        f"Echo from {SIGNING}: tool results: sunny (get_weather); sunny (get_time)"
    )
    # The current turn's unsigned first call is refused, by its position in messages.
    refused = post(emulator, CHAT, second_turn(SIGNING, with_signature(current, None), history), BEARER)
    assert wrapped_error(refused)["message"] == missing_signature("get_weather", 7)
    # A second step of the same turn needs its own signature too.
    step_two = first_turn(emulator)
    request = second_turn(SIGNING, current, history)
    request["messages"] += [with_signature(step_two, None),
                            {"role": "tool", "tool_call_id": step_two["tool_calls"][0]["id"], "content": "cold"}]
    refused = post(emulator, CHAT, request, BEARER)
    assert wrapped_error(refused)["message"] == missing_signature("get_weather", 10)
    request["messages"][-2] = step_two
    accepted = post(emulator, CHAT, request, BEARER)
    assert accepted.json()["choices"][0]["message"]["content"] == f"Echo from {SIGNING}: tool results: cold"


def test_compat_thought_signatures_outlive_a_reset(emulator):
    # Google's signatures have no expiry.
    assistant = first_turn(emulator)
    emulator.reset()
    assert post(emulator, CHAT, second_turn(SIGNING, assistant), BEARER).status == 200


def test_compat_thought_signature_is_checked_without_tools_too(emulator):
    request = second_turn(SIGNING, with_signature(first_turn(emulator), None))
    del request["tools"]
    resp = post(emulator, CHAT, request, BEARER)
    assert wrapped_error(resp)["message"] == missing_signature("get_weather", 2)


@pytest.mark.parametrize("model,signed", [(SIGNING, True), ("gemma-3-27b-it", False)])
@pytest.mark.parametrize("include_usage", [True, False])
def test_compat_tool_call_stream_has_the_compat_defects(emulator, model, signed, include_usage):
    request = tool_request(model, "get_weather and get_time", stream=True, stream_options={"include_usage": include_usage})
    resp = post(emulator, CHAT, request, BEARER)
    assert resp.status == 200 and resp.headers["content-type"] == "text/event-stream", resp
    data = resp.sse_data()
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == model for c in chunks)
    delta = chunks[0]["choices"][0]["delta"]
    assert delta["role"] == "assistant" and chunks[0]["choices"][0]["finish_reason"] is None
    calls = delta["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    # The compat layer's defect: tool-call deltas without "index".
    assert all("index" not in c and set(c) <= {"id", "type", "function", "extra_content"} for c in calls), calls
    assert (signature_of(calls[0]) is not None) == signed and "extra_content" not in calls[1]
    # The other defect: a stream that called tools ends with "stop".
    assert chunks[1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    if include_usage:
        assert len(chunks) == 3 and chunks[2]["choices"] == [] and chunks[2]["usage"]["total_tokens"] > 0
    else:
        assert len(chunks) == 2
    if signed:
        # The streamed signature works on the next turn.
        assistant = {"role": "assistant", "content": None, "tool_calls": calls}
        assert post(emulator, CHAT, second_turn(model, assistant), BEARER).status == 200


def test_compat_tool_results_stream_as_text(emulator):
    request = {**second_turn(SIGNING, first_turn(emulator)), "stream": True}
    chunks = [json.loads(d) for d in post(emulator, CHAT, request, BEARER).sse_data()[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == f"Echo from {SIGNING}: tool results: sunny (get_weather)"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# -- retired models ------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-3.5-flash", "gemini-embedding-001", "veo-2.0-generate-001"])
def test_retired_model_is_404_everywhere(emulator, model):
    emulator.configure(retired=[model])
    family = cat.MODELS[model]
    for method in cat.NATIVE_METHODS:
        query = "?alt=sse" if method == cat.STREAM_GENERATE_CONTENT else ""
        resp = post(emulator, f"/v1beta/models/{model}:{method}{query}", native_body(method, model), KEY)
        assert resp.status == 404, (method, resp)
        assert google_error(resp)["message"] == not_found_message(f"models/{model}", "v1beta", method)
    for op in cat.COMPAT_OPERATIONS:
        resp = post(emulator, f"/v1beta/openai/{op}", compat_body(op, model), BEARER)
        assert resp.status == 404, (op, resp)
        assert wrapped_error(resp)["message"] == not_found_message(f"models/{model}", "v1main", cat.COMPAT_METHOD_IN_MESSAGE[op])
    listed = {m["name"] for m in get(emulator, "/v1beta/models", KEY).json()["models"]}
    assert f"models/{model}" not in listed
    assert family  # the model exists in the catalogue, it is only retired


def test_retired_imagen_message_says_predict(emulator):
    emulator.configure(live=["imagen-3.0-generate-002"], retired=["imagen-3.0-generate-002"])
    resp = post(emulator, "/v1beta/models/imagen-3.0-generate-002:predict", native_body(cat.PREDICT, "x"), KEY)
    assert "is not supported for predict" in google_error(resp)["message"]


# -- recording and control ----------------------------------------------------


def test_records_method_path_query_headers_and_body(emulator):
    post(emulator, "/v1beta/models/gemini-3.5-flash:generateContent?key=test-key&x=1",
         native_body(cat.GENERATE_CONTENT, "m"), {"X-Custom": "Yes"})
    (record,) = emulator.requests()
    assert record["method"] == "POST"
    assert record["path"] == "/v1beta/models/gemini-3.5-flash:generateContent"
    assert record["query"] == "key=test-key&x=1"
    assert record["headers"]["x-custom"] == "Yes"
    assert record["headers"]["host"].startswith("127.0.0.1:")
    assert json.loads(record["body"]) == native_body(cat.GENERATE_CONTENT, "m")
    assert record["body_base64"] is False


def test_records_binary_body_as_base64_and_decodes_gzip(emulator):
    raw = gzip.compress(json.dumps(native_body(cat.GENERATE_CONTENT, "m")).encode())
    resp = post(emulator, GC, raw=raw, headers={**KEY, "content-type": "application/json", "content-encoding": "gzip"})
    assert resp.status == 200, resp
    (record,) = emulator.requests()
    assert record["body_base64"] is True
    assert base64.b64decode(record["body"]) == raw


def test_reads_chunked_request_bodies(emulator):
    payload = json.dumps(native_body(cat.GENERATE_CONTENT, "m")).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(payload[i : i + 10]), payload[i : i + 10]) for i in range(0, len(payload), 10)) + b"0\r\n\r\n"
    resp = http_request(emulator.url, "POST", GC, body=chunked, headers={**KEY, "transfer-encoding": "chunked"})
    assert resp.status == 200, resp
    assert json.loads(emulator.requests()[0]["body"]) == native_body(cat.GENERATE_CONTENT, "m")


def test_control_api_over_http(emulator):
    config = post(emulator, "/__emulator/config",
                  {"retired": ["models/gemini-3.1-pro-preview"], "live": ["models/gemini-2.5-pro"], "valid_keys": ["k2"]})
    assert config.json() == {"retired": ["gemini-3.1-pro-preview"], "live": ["gemini-2.5-pro"], "valid_keys": ["k2"]}
    assert post(emulator, "/v1beta/models/gemini-3.1-pro-preview:generateContent", native_body(cat.GENERATE_CONTENT, "m"), {"x-goog-api-key": "k2"}).status == 404
    assert post(emulator, "/v1beta/models/gemini-2.5-pro:generateContent", native_body(cat.GENERATE_CONTENT, "m"), {"x-goog-api-key": "k2"}).status == 200
    recorded = get(emulator, "/__emulator/requests").json()
    assert [r["path"] for r in recorded] == [
        "/v1beta/models/gemini-3.1-pro-preview:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent",
    ]
    assert post(emulator, "/__emulator/config", {"bogus": 1}).status == 400
    assert post(emulator, "/__emulator/reset").status == 200
    assert get(emulator, "/__emulator/requests").json() == []
    assert post(emulator, "/v1beta/models/gemini-3.1-pro-preview:generateContent", native_body(cat.GENERATE_CONTENT, "m"), KEY).status == 200
    assert post(emulator, "/v1beta/models/gemini-2.5-pro:generateContent", native_body(cat.GENERATE_CONTENT, "m"), KEY).status == 404


def test_unknown_paths_are_html_404(emulator):
    for path in ["/", "/v2/models/gemini-3.5-flash:generateContent", "/v1beta/openai/videos"]:
        resp = post(emulator, path, {}, KEY)
        assert resp.status == 404 and resp.headers["content-type"].startswith("text/html"), path


def test_tiny_png_is_valid():
    data = media.tiny_png()
    assert data.startswith(b"\x89PNG") and len(data) < 512
    # IDAT decompresses to 8 rows of 1 + 8*3 bytes.
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert len(zlib.decompress(data[41 : 41 + idat_len])) == 8 * 25


@pytest.mark.parametrize(
    "accept, gzipped",
    [("gzip, deflate", True), ("br;q=1, GZIP", True), ("*", True), ("gzip;q=0", False),
     ("gzip; q=0.0", False), ("gzip;Q=0.0000", False), ("gzip;q=0.5", True),
     ("identity", False), ("", False)],
)
def test_answers_are_gzipped_for_a_client_that_asks(emulator, accept, gzipped):
    # An error and a success alike: what makes the filter ask for them uncompressed.
    for model, status in [("gemini-3.5-flash", 200), ("no-such-model", 404)]:
        headers = {**KEY, "content-type": "application/json", **({"accept-encoding": accept} if accept else {})}
        resp = post(emulator, f"/v1beta/models/{model}:generateContent",
                    body=native_body(cat.GENERATE_CONTENT, "gemini-3.5-flash"), headers=headers)
        assert resp.status == status, resp
        assert (resp.headers.get("content-encoding") == "gzip") == gzipped, (accept, resp.headers)
        body = gzip.decompress(resp.body) if gzipped else resp.body
        assert json.loads(body), body


def test_a_stream_is_not_gzipped(emulator):
    headers = {**KEY, "content-type": "application/json", "accept-encoding": "gzip"}
    resp = post(emulator, "/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse",
                body=native_body(cat.STREAM_GENERATE_CONTENT, "gemini-3.5-flash"), headers=headers)
    assert resp.status == 200, resp
    assert "content-encoding" not in resp.headers
    assert resp.body.startswith(b"data: ")
