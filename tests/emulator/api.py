"""The emulated Gemini API: request in, response out, no sockets.

``GeminiApi.handle`` takes a parsed HTTP request and returns the response the
real service would give, enforcing the parts of the contract that a routing
filter can get wrong:

- which models exist: the live catalogue of December 2026 (``catalogue.LIVE``);
  a shut-down model answers 404 NOT_FOUND on every method exactly as an
  unknown id does, unless a test revives it (``State.configure(live=...)``),
- which methods serve which model family (404 with Google's message otherwise),
- which auth each API wants (``x-goog-api-key``/``?key=`` native,
  ``Authorization: Bearer`` on the compatibility layer),
- request shapes, including proto-JSON's refusal of unknown fields,
- Google's error bodies, list-wrapped on the compatibility layer and on native
  streaming without ``alt=sse``,
- Gemini 3's thought signatures on the compatibility layer's tool calls: a
  ``gemini-3*`` model signs the first tool call of each answer
  (``extra_content.google.thought_signature``) and refuses a later request
  whose current turn sends that call back without the signature it issued
  (or the documented bypass value), as Google does; its streamed tool calls
  carry the compat layer's two defects (no ``index``, ``finish_reason``
  "stop").

Checks run in the service's order: route, auth, JSON parse (unknown fields
included), model and method (404), then the request's content (400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import parse_qs, unquote

from . import catalogue as cat
from . import media

DEFAULT_VALID_KEYS = frozenset({"test-key"})

JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"

_VERSIONS = "v1|v1beta|v1alpha"
_NATIVE_CALL = re.compile(rf"^/({_VERSIONS})/(models|tunedModels)/([^/:]*):([A-Za-z]+)$")
_NATIVE_LIST = re.compile(rf"^/({_VERSIONS})/models/?$")
_NATIVE_GET = re.compile(rf"^/({_VERSIONS})/models/([^/:]+)$")
_NATIVE_OPERATION = re.compile(rf"^/({_VERSIONS})/models/([^/:]+)/operations/([^/]+)$")
_VERTEX_CALL = re.compile(
    r"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/([^/]+)/models/([^/:]*):([A-Za-z]+)$"
)
_VERTEX_GLOBAL_CALL = re.compile(r"^/(v1|v1beta1)/publishers/([^/]+)/models/([^/:]*):([A-Za-z]+)$")
COMPAT_PREFIX = "/v1beta/openai/"

# Proto-JSON field names each request message accepts (camelCase; the
# snake_case spelling is accepted too, as the real parser does).
_FIELDS = {
    cat.GENERATE_CONTENT: {
        "model", "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
        "generationConfig", "cachedContent", "labels",
    },
    cat.COUNT_TOKENS: {"contents", "generateContentRequest"},
    cat.EMBED_CONTENT: {"model", "content", "taskType", "title", "outputDimensionality"},
    cat.BATCH_EMBED_CONTENTS: {"requests"},
    cat.PREDICT: {"instances", "parameters"},
    cat.PREDICT_LONG_RUNNING: {"instances", "parameters"},
    cat.GENERATE_ANSWER: {
        "contents", "answerStyle", "inlinePassages", "semanticRetriever", "safetySettings", "temperature",
    },
}
_FIELDS[cat.STREAM_GENERATE_CONTENT] = _FIELDS[cat.GENERATE_CONTENT]
_GENERATION_CONFIG_FIELDS = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "imageConfig", "mediaResolution", "audioTimestamp", "routingConfig",
    "modelSelectionConfig", "enableAffectiveDialog",
}
_CONTENT_FIELDS = {"role", "parts"}
_PART_FIELDS = {
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult", "thought", "thoughtSignature", "videoMetadata", "partMetadata",
    "mediaResolution",
}
_ROLES = {"user", "model"}

PERMISSION_DENIED_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
API_KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
UNAUTHENTICATED_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)
# Gemini 3 thought signatures (https://ai.google.dev/gemini-api/docs/thought-signatures).
SIGNING_MODEL_PREFIX = "gemini-3"
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"
MISSING_THOUGHT_SIGNATURE_MESSAGE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function "
    "call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
INVALID_THOUGHT_SIGNATURE_MESSAGE = "Thought signature is not valid."
RAI_FILTERED_REASON = (
    "Unable to show generated images. All images were filtered out because they violated "
    "usage guidelines. You will not be charged for blocked images. Try rephrasing the prompt."
)


@dataclass
class Request:
    """One HTTP request as the emulator sees it (body already un-gzipped)."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


@dataclass
class Response:
    """A response: a whole body, or ``chunks`` sent with chunked encoding."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: Iterable[bytes] | None = None

    def content_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""


class ApiError(Exception):
    """A Google error: status code, message and canonical status name."""

    def __init__(self, code: int, message: str, status: str, details: list | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found(model_resource: str, version: str, method: str) -> ApiError:
    return ApiError(
        404,
        f"{model_resource} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
        "NOT_FOUND",
    )


def invalid(message: str, field_violations: list[dict] | None = None) -> ApiError:
    details = None
    if field_violations:
        details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": field_violations}]
    return ApiError(400, message, "INVALID_ARGUMENT", details)


def unknown_field(name: str, where: str | None) -> ApiError:
    at = f" at '{where}'" if where else ""
    return invalid(
        f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
        [{"field": where or "", "description": f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'}],
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _get(obj: dict, name: str) -> Any:
    """A proto-JSON field by its camelCase name, accepting the snake_case spelling."""
    if name in obj:
        return obj[name]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    return obj.get(snake)


def _check_fields(obj: dict, allowed: set[str], where: str | None) -> None:
    for key in obj:
        if _camel(key) not in allowed:
            raise unknown_field(key, where)


def json_response(status: int, payload: Any, extra: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("Content-Type", JSON_TYPE), ("Vary", "Origin, X-Origin, Referer")]
    return Response(status, headers + (extra or []), body)


def html_not_found(path: str) -> Response:
    body = (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n"
        f"  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL <code>{path}</code> "
        "was not found on this server.  <ins>That\u2019s all we know.</ins>\n"
    ).encode()
    return Response(404, [("Content-Type", "text/html; charset=UTF-8")], body)


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _content_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-ish vector for a text."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend(round((b - 127.5) / 127.5, 6) for b in digest)
        counter += 1
    return out[:dims]


def _default_dims(model: str) -> int:
    return 3072 if model.startswith("gemini-embedding-") else 768


class ThoughtSignatures:
    """Issues and verifies the opaque thought signatures of Gemini 3 tool calls.

    A signature is the base64 of ``emulator-thought-signature|<model>|<call
    id>|<16 hex nonce>|`` followed by bytes derived from an HMAC of that head
    under this instance's key, so it binds the model and the call id, differs
    on every answer, and only this emulator can make one. It is
    ``SIGNATURE_BYTES`` long before base64, as real ones run to hundreds of
    bytes. Like Google's, it does not expire (a reset keeps the key) and
    must come back exactly as issued.
    """

    PREFIX = "emulator-thought-signature"
    SIGNATURE_BYTES = 384

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, model: str, call_id: str) -> str:
        return self._make(model, call_id, secrets.token_hex(8))

    def valid(self, signature: Any, model: str, call_id: Any) -> bool:
        """``signature`` is one this emulator issued for ``model`` and ``call_id``."""
        if not isinstance(signature, str) or not isinstance(call_id, str):
            return False
        try:
            raw = base64.b64decode(signature.encode("ascii"), validate=True)
        except (ValueError, UnicodeError):
            return False
        head = f"{self.PREFIX}|{model}|{call_id}|".encode()
        if not raw.startswith(head):
            return False
        nonce = raw[len(head) : len(head) + 16].decode("ascii", errors="replace")
        return hmac.compare_digest(signature.encode("ascii"), self._make(model, call_id, nonce).encode("ascii"))

    def _make(self, model: str, call_id: str, nonce: str) -> str:
        head = f"{self.PREFIX}|{model}|{call_id}|{nonce}|".encode()
        mac = hmac.new(self._key, head, hashlib.sha256).digest()
        filler = hashlib.shake_256(mac).digest(max(32, self.SIGNATURE_BYTES - len(head)))
        return base64.b64encode(head + filler).decode("ascii")


class State:
    """Mutable emulator configuration and the operations it has started.

    A model answers when the catalogue knows it, it is live (``cat.LIVE``, or
    revived with ``live``) and it is not ``retired``; otherwise every method
    answers 404 NOT_FOUND, as for an id Google does not know.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.retired: set[str] = set()
        self.live: set[str] = set()
        self.valid_keys: set[str] = set(DEFAULT_VALID_KEYS)
        self.operations: dict[str, str] = {}
        # Not reset: thought signatures have no expiry.
        self.signatures = ThoughtSignatures()
        # While set, a :streamGenerateContent?alt=sse answer waits (at most
        # STREAM_GATE_SECONDS) for this event before each frame that carries
        # an image; images_streamed counts the image frames sent.
        self.image_gate: threading.Event | None = None
        self.images_streamed = 0

    def reset(self) -> None:
        with self.lock:
            self.image_gate = None
            self.images_streamed = 0
            self.retired = set()
            self.live = set()
            self.valid_keys = set(DEFAULT_VALID_KEYS)
            self.operations = {}

    def configure(
        self,
        retired: Iterable[str] | None = None,
        valid_keys: Iterable[str] | None = None,
        live: Iterable[str] | None = None,
    ) -> None:
        """Replace the retired models, the accepted keys or the revived
        shut-down models; ``None`` keeps a value. A ``live`` id the catalogue
        does not know raises ValueError (it could never answer)."""
        revived = None
        if live is not None:
            revived = {m.removeprefix("models/") for m in live}
            unknown = sorted(m for m in revived if cat.family_of(m) is None)
            if unknown:
                raise ValueError(f"live: models unknown to the catalogue {unknown}")
        with self.lock:
            if retired is not None:
                self.retired = {m.removeprefix("models/") for m in retired}
            if valid_keys is not None:
                self.valid_keys = set(valid_keys)
            if revived is not None:
                self.live = revived

    def available(self, model: str) -> bool:
        """The model exists for callers now: known, live or revived, not retired."""
        if cat.family_of(model) is None:
            return False
        with self.lock:
            return model not in self.retired and (model in cat.LIVE or model in self.live)

    def snapshot(self) -> dict:
        with self.lock:
            return {"retired": sorted(self.retired), "live": sorted(self.live), "valid_keys": sorted(self.valid_keys)}


class GeminiApi:
    """Dispatches a request to the native, Vertex or compatibility surface."""

    def __init__(self, state: State) -> None:
        self.state = state

    # -- entry point -------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path.startswith(COMPAT_PREFIX):
            return self._compat(req)
        m = _VERTEX_CALL.match(req.path)
        if m and req.method == "POST":
            version, project, location, publisher, model, method = m.groups()
            resource = f"projects/{project}/locations/{location}/publishers/{publisher}/models/{unquote(model)}"
            return self._native_call(req, version, "models", unquote(model), method, vertex=resource)
        m = _VERTEX_GLOBAL_CALL.match(req.path)
        if m and req.method == "POST":
            version, publisher, model, method = m.groups()
            resource = f"publishers/{publisher}/models/{unquote(model)}"
            return self._native_call(req, version, "models", unquote(model), method, vertex=resource)
        m = _NATIVE_CALL.match(req.path)
        if m and req.method == "POST":
            version, collection, model, method = m.groups()
            return self._native_call(req, version, collection, unquote(model), method)
        if req.method == "GET":
            if m := _NATIVE_LIST.match(req.path):
                return self._guard(lambda: self._list_models(req))
            if m := _NATIVE_GET.match(req.path):
                return self._guard(lambda: self._get_model(req, m.group(1), unquote(m.group(2))))
            if m := _NATIVE_OPERATION.match(req.path):
                version, model, op = m.groups()
                return self._guard(lambda: self._get_operation(req, version, unquote(model), op))
        return html_not_found(req.path)

    @staticmethod
    def _guard(fn, wrap: bool = False) -> Response:
        try:
            return fn()
        except ApiError as err:
            body = err.body()
            return json_response(err.code, [body] if wrap else body)

    # -- auth --------------------------------------------------------------

    def _keys(self) -> set[str]:
        with self.state.lock:
            return set(self.state.valid_keys)

    def _native_key(self, req: Request) -> str | None:
        if "x-goog-api-key" in req.headers:
            return req.headers["x-goog-api-key"]
        keys = req.query_params().get("key")
        return keys[0] if keys else None

    def _bearer(self, req: Request) -> str | None:
        auth = req.headers.get("authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def _auth_native(self, req: Request) -> None:
        key = self._native_key(req)
        if key is not None:
            if key not in self._keys():
                raise _key_invalid()
            return
        if "authorization" in req.headers:
            # A Bearer token on the Developer API: the key is in the wrong header.
            raise _key_invalid()
        raise ApiError(403, PERMISSION_DENIED_MESSAGE, "PERMISSION_DENIED")

    def _auth_vertex(self, req: Request) -> None:
        # Vertex takes an OAuth token; express mode also takes an API key.
        if self._bearer(req):
            return
        if self._native_key(req) is not None:
            self._auth_native(req)
            return
        raise ApiError(401, UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED")

    def _auth_compat(self, req: Request) -> None:
        token = self._bearer(req)
        if token is not None:
            if token not in self._keys():
                raise _key_invalid()
            return
        if self._native_key(req) is not None:
            # x-goog-api-key or ?key= on the compatibility layer: wrong place.
            raise _key_invalid()
        raise ApiError(403, PERMISSION_DENIED_MESSAGE, "PERMISSION_DENIED")

    def _available(self, model: str) -> bool:
        return self.state.available(model)

    # -- native and Vertex -------------------------------------------------

    def _native_call(
        self, req: Request, version: str, collection: str, model: str, method: str, vertex: str | None = None
    ) -> Response:
        if method not in cat.NATIVE_METHODS:
            return html_not_found(req.path)
        stream = method == cat.STREAM_GENERATE_CONTENT
        sse = stream and "sse" in req.query_params().get("alt", [])
        # Native streaming without alt=sse answers errors in a JSON list.
        wrap = stream and not sse
        try:
            if vertex:
                self._auth_vertex(req)
            else:
                self._auth_native(req)
            body = _parse_object(req.body)
            _check_fields(body, _FIELDS[method], None)
            family = cat.family_of(model) if collection == "models" and self._available(model) else None
            if family is None or not cat.native_serves(method, family):
                if vertex and family is None:
                    raise ApiError(
                        404,
                        f"Publisher Model `{vertex}` was not found or your project does not have access to it. "
                        "Please ensure you are using a valid model version.",
                        "NOT_FOUND",
                    )
                raise not_found(f"{collection}/{model}", version, method)
            return self._dispatch_native(method, model, family, body, sse)
        except ApiError as err:
            return json_response(err.code, [err.body()] if wrap else err.body())

    def _dispatch_native(self, method: str, model: str, family: str, body: dict, sse: bool) -> Response:
        if method == cat.GENERATE_CONTENT:
            return json_response(200, _merge(_generate(model, family, body)))
        if method == cat.STREAM_GENERATE_CONTENT:
            frames = _generate(model, family, body)
            if sse:
                return _sse_response(self._gated(frames))
            return json_response(200, frames)
        if method == cat.COUNT_TOKENS:
            return json_response(200, _count_tokens(body))
        if method == cat.EMBED_CONTENT:
            return json_response(200, {"embedding": {"values": _embed_one(model, body, None)}})
        if method == cat.BATCH_EMBED_CONTENTS:
            return json_response(200, _batch_embed(model, body))
        if method == cat.PREDICT:
            return json_response(200, _predict(body))
        if method == cat.PREDICT_LONG_RUNNING:
            _instances(body)
            op = f"models/{model}/operations/{uuid.uuid4().hex[:12]}"
            with self.state.lock:
                self.state.operations[op] = model
            return json_response(200, {"name": op})
        if method == cat.GENERATE_ANSWER:
            return json_response(200, _generate_answer(body))
        raise AssertionError(method)

    def _gated(self, frames: list[dict]) -> Iterable[bytes]:
        """SSE events of ``frames``; each one with an image waits for the
        image gate when a test set one (see ``State.image_gate``)."""
        for f in frames:
            has_image = any("inlineData" in p for c in f.get("candidates", []) for p in (c.get("content") or {}).get("parts", []))
            gate = self.state.image_gate
            if has_image and gate is not None:
                gate.wait(STREAM_GATE_SECONDS)
            if has_image:
                with self.state.lock:
                    self.state.images_streamed += 1
            yield b"data: " + _dump(f) + b"\r\n\r\n"

    def _list_models(self, req: Request) -> Response:
        """ListModels, paged as Google pages it: ``pageSize`` (default 50,
        at most 1000), an opaque ``nextPageToken`` while more remain, which
        the next call passes back as ``pageToken``."""
        self._auth_native(req)
        models = [cat.model_resource(m) for m in cat.MODELS if self._available(m)]
        params = req.query_params()
        try:
            size = int((params.get("pageSize") or ["0"])[0] or 0)
        except ValueError:
            raise invalid("Invalid value at 'page_size' (TYPE_INT32).")
        size = LIST_PAGE_SIZE if size <= 0 else min(size, LIST_PAGE_SIZE_MAX)
        token = (params.get("pageToken") or [""])[0]
        start = 0
        if token:
            start = _page_offset(token)
            if start is None or start > len(models):
                raise invalid("Invalid page token.")
        page: dict[str, Any] = {"models": models[start : start + size]}
        if start + size < len(models):
            page["nextPageToken"] = _page_token(start + size)
        return json_response(200, page)

    def _get_model(self, req: Request, version: str, model: str) -> Response:
        self._auth_native(req)
        if not self._available(model):
            raise not_found(f"models/{model}", version, "get")
        return json_response(200, cat.model_resource(model))

    def _get_operation(self, req: Request, version: str, model: str, op: str) -> Response:
        self._auth_native(req)
        name = f"models/{model}/operations/{op}"
        with self.state.lock:
            known = name in self.state.operations
        if not known:
            raise ApiError(404, f"Operation {name} not found.", "NOT_FOUND")
        return json_response(
            200,
            {
                "name": name,
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": {"generatedSamples": [{"video": {"uri": media.FAKE_VIDEO_URI}}]},
                },
            },
        )

    # -- OpenAI compatibility layer -----------------------------------------

    def _compat(self, req: Request) -> Response:
        op = req.path[len(COMPAT_PREFIX):]
        if req.method == "POST" and op in cat.COMPAT_OPERATIONS:
            return self._guard(lambda: self._compat_call(req, op), wrap=True)
        if req.method == "GET" and op == "models":
            return self._guard(lambda: self._compat_models(req), wrap=True)
        if req.method == "GET" and op.startswith("models/"):
            return self._guard(lambda: self._compat_model(req, op[len("models/"):]), wrap=True)
        return html_not_found(req.path)

    def _compat_call(self, req: Request, op: str) -> Response:
        self._auth_compat(req)
        body = _parse_object(req.body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("model is not specified or is not a string.", [{"field": "model", "description": "required"}])
        model = model.removeprefix("models/")
        family = cat.family_of(model) if self._available(model) else None
        if family is None or not cat.compat_serves(op, family):
            raise not_found(f"models/{model}", "v1main", cat.COMPAT_METHOD_IN_MESSAGE[op])
        if op == cat.CHAT_COMPLETIONS:
            return _chat(model, body, self.state.signatures)
        if op == cat.IMAGES_GENERATIONS:
            return json_response(200, _images(body))
        return json_response(200, _embeddings(model, body))

    def _compat_models(self, req: Request) -> Response:
        self._auth_compat(req)
        data = [_compat_model_entry(m) for m in cat.MODELS if self._available(m)]
        return json_response(200, {"object": "list", "data": data})

    def _compat_model(self, req: Request, model: str) -> Response:
        self._auth_compat(req)
        model = unquote(model).removeprefix("models/")
        if not self._available(model):
            raise not_found(f"models/{model}", "v1main", "get")
        return json_response(200, _compat_model_entry(model))


# The longest an image frame waits for a test's image gate.
STREAM_GATE_SECONDS = 10

LIST_PAGE_SIZE = 50
LIST_PAGE_SIZE_MAX = 1000


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"models:{offset}".encode()).decode("ascii")


def _page_offset(token: str) -> int | None:
    try:
        kind, _, offset = base64.urlsafe_b64decode(token.encode("ascii")).decode().partition(":")
        return int(offset) if kind == "models" else None
    except (ValueError, UnicodeError):
        return None


def _key_invalid() -> ApiError:
    return ApiError(
        400,
        API_KEY_INVALID_MESSAGE,
        "INVALID_ARGUMENT",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sse_response(frames: Iterable[bytes]) -> Response:
    return Response(200, [("Content-Type", SSE_TYPE), ("Cache-Control", "no-cache")], chunks=frames)


def _parse_object(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Invalid JSON payload received. Unexpected token.")
    if not isinstance(value, dict):
        raise invalid("Invalid JSON payload received. Expected an object.")
    return value


def _compat_model_entry(model: str) -> dict:
    return {"id": f"models/{model}", "object": "model", "created": 0, "owned_by": "google"}


# -- native request checks and answers --------------------------------------


def _check_content(content: Any, where: str, roles: bool = True) -> None:
    if not isinstance(content, dict):
        raise invalid(f"Invalid JSON payload received. Expected an object at '{where}'.")
    _check_fields(content, _CONTENT_FIELDS, where)
    role = content.get("role")
    if roles and role is not None and role not in _ROLES:
        raise invalid("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n")
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at '{where}.parts[{i}]'.")
        _check_fields(part, _PART_FIELDS, f"{where}.parts[{i}]")
        if not part:
            raise invalid(f"* GenerateContentRequest.{where}.parts[{i}].data: required oneof field 'data' must have one initialized field\n")


def _check_generate_request(body: dict) -> list[dict]:
    contents = _get(body, "contents")
    if contents is None or contents == []:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise invalid("Invalid JSON payload received. Expected a list at 'contents'.")
    for i, content in enumerate(contents):
        _check_content(content, f"contents[{i}]")
    system = _get(body, "systemInstruction")
    if system is not None:
        _check_content(system, "system_instruction", roles=False)
    config = _get(body, "generationConfig")
    if config is not None:
        if not isinstance(config, dict):
            raise invalid("Invalid JSON payload received. Expected an object at 'generation_config'.")
        _check_fields(config, _GENERATION_CONFIG_FIELDS, "generation_config")
    return contents


def _prompt_of(contents: list[dict]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            return _content_text(content)
    return ""


def _modalities(body: dict) -> list[str] | None:
    config = _get(body, "generationConfig") or {}
    value = _get(config, "responseModalities")
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid("Invalid value at 'generation_config.response_modalities'.")
    return [str(v).upper() for v in value]


def _generate(model: str, family: str, body: dict) -> list[dict]:
    """The frames of a (stream)GenerateContent answer; generateContent merges them."""
    contents = _check_generate_request(body)
    prompt = _prompt_of(contents)
    modalities = _modalities(body)
    want_image = False
    if family == cat.GEMINI:
        if modalities and "IMAGE" in modalities:
            raise invalid("Model does not support the requested response modalities: image")
    else:
        if model in cat.REQUIRES_TEXT_AND_IMAGE and sorted(modalities or []) != ["IMAGE", "TEXT"]:
            raise invalid(
                "The requested combination of response modalities is not supported by the model. "
                f"models/{model} accepts the following combination of response modalities:\n* IMAGE, TEXT\n"
            )
        want_image = modalities is None or "IMAGE" in modalities
    want_text = modalities is None or "TEXT" in modalities or not want_image
    response_id = uuid.uuid4().hex[:20]
    prompt_tokens = sum(_words(_content_text(c)) for c in contents)

    def frame(parts: list[dict] | None, finish: str | None, usage_tokens: int | None) -> dict:
        candidate: dict[str, Any] = {"index": 0}
        if parts is not None:
            candidate["content"] = {"parts": parts, "role": "model"}
        if finish:
            candidate["finishReason"] = finish
        out: dict[str, Any] = {"candidates": [candidate]}
        if usage_tokens is not None:
            out["usageMetadata"] = {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": usage_tokens,
                "totalTokenCount": prompt_tokens + usage_tokens,
            }
        out["modelVersion"] = model
        out["responseId"] = response_id
        return out

    if want_image and "BLOCKED" in prompt:
        return [frame(None, "IMAGE_SAFETY", 0)]
    frames: list[dict] = []
    if want_text:
        if family == cat.GEMINI:
            text = f"Echo from {model}: {prompt}"
        else:
            text = f"Here is the image you asked for: {prompt}" if want_image else f"Echo from {model}: {prompt}"
        words = text.split(" ")
        third = max(1, len(words) // 3)
        pieces = [" ".join(words[:third]) + " ", " ".join(words[third : 2 * third]) + " ", " ".join(words[2 * third :])]
        frames.extend(frame([{"text": piece}], None, None) for piece in pieces if piece.strip())
    if want_image:
        frames.append(frame([{"inlineData": {"mimeType": "image/png", "data": media.image_b64(prompt)}}], None, None))
    produced = sum(_words(p["text"]) for f in frames for p in f["candidates"][0]["content"]["parts"] if "text" in p)
    last = frames[-1]
    last["candidates"][0]["finishReason"] = "STOP"
    last["usageMetadata"] = frame(None, None, produced + (1290 if want_image else 0))["usageMetadata"]
    # Reorder keys so every frame reads candidates, usageMetadata, modelVersion, responseId.
    return [{k: f[k] for k in ("candidates", "usageMetadata", "modelVersion", "responseId") if k in f} for f in frames]


def _merge(frames: list[dict]) -> dict:
    """Merge stream frames into one generateContent answer (text parts joined)."""
    parts: list[dict] = []
    for f in frames:
        for p in f["candidates"][0].get("content", {}).get("parts", []):
            if "text" in p and parts and "text" in parts[-1]:
                parts[-1] = {"text": parts[-1]["text"] + p["text"]}
            else:
                parts.append(dict(p))
    last = frames[-1]
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"parts": parts, "role": "model"}
    candidate["finishReason"] = last["candidates"][0].get("finishReason", "STOP")
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": last["usageMetadata"],
        "modelVersion": last["modelVersion"],
        "responseId": last["responseId"],
    }


def _count_tokens(body: dict) -> dict:
    inner = _get(body, "generateContentRequest")
    if inner is not None:
        if not isinstance(inner, dict):
            raise invalid("Invalid JSON payload received. Expected an object at 'generate_content_request'.")
        _check_fields(inner, _FIELDS[cat.GENERATE_CONTENT], "generate_content_request")
        contents = _check_generate_request(inner)
    else:
        contents = _check_generate_request(body)
    total = sum(_words(_content_text(c)) for c in contents)
    return {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}


def _embed_one(model: str, request: dict, where: str | None) -> list[float]:
    prefix = f"{where}." if where else ""
    content = _get(request, "content")
    if not isinstance(content, dict):
        raise invalid(f"* EmbedContentRequest.{prefix}content: content is not specified\n")
    _check_fields(content, _CONTENT_FIELDS, f"{prefix}content")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* EmbedContentRequest.{prefix}content.parts: contents.parts must not be empty.\n")
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at '{prefix}content.parts[{i}]'.")
        _check_fields(part, _PART_FIELDS, f"{prefix}content.parts[{i}]")
    dims = _get(request, "outputDimensionality")
    if dims is None:
        dims = _default_dims(model)
    if not isinstance(dims, int) or not 1 <= dims <= 3072:
        raise invalid("* EmbedContentRequest.output_dimensionality: must be between 1 and 3072\n")
    return _vector(_content_text(content), dims)


def _batch_embed(model: str, body: dict) -> dict:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    out = []
    for i, request in enumerate(requests):
        where = f"requests[{i}]"
        if not isinstance(request, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at '{where}'.")
        _check_fields(request, _FIELDS[cat.EMBED_CONTENT], where)
        if request.get("model") != f"models/{model}":
            raise invalid(f"* BatchEmbedContentsRequest.{where}.model: unexpected model name format\n")
        out.append({"values": _embed_one(model, request, where)})
    return {"embeddings": out}


def _instances(body: dict) -> list[dict]:
    instances = body.get("instances")
    if isinstance(instances, dict):
        # Older Open WebUI sends one instance as an object; the service accepts it.
        instances = [instances]
    if not isinstance(instances, list) or not instances:
        raise invalid("* PredictRequest.instances: instances is not specified\n")
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or not isinstance(instance.get("prompt"), str) or not instance["prompt"]:
            raise invalid(f"instances[{i}].prompt is required and must be a non-empty string.")
    return instances


def _sample_count(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise invalid("sampleCount must be an integer between 1 and 4.")
    return value


def _predict(body: dict) -> dict:
    instances = _instances(body)
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid("Invalid JSON payload received. Expected an object at 'parameters'.")
    count = _sample_count(parameters.get("sampleCount"))
    prompt = instances[0]["prompt"]
    if "BLOCKED" in prompt:
        return {"predictions": [{"raiFilteredReason": RAI_FILTERED_REASON}]}
    image = media.image_b64(prompt)
    return {"predictions": [{"bytesBase64Encoded": image, "mimeType": "image/png"} for _ in range(count)]}


def _generate_answer(body: dict) -> dict:
    contents = _check_generate_request(body)
    return {
        "answer": {
            "content": {"parts": [{"text": f"Answer: {_prompt_of(contents)}"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        },
        "answerableProbability": 0.87,
    }


# -- compatibility layer answers ------------------------------------------


def _message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _chat(model: str, body: dict, signatures: ThoughtSignatures) -> Response:
    messages = _check_messages(body)
    tools = _check_tools(body)
    choice = _check_tool_choice(body, tools)
    if model.startswith(SIGNING_MODEL_PREFIX):
        _check_thought_signatures(model, messages, signatures)
    last_role = messages[-1]["role"]
    text: str | None = None
    tool_calls: list[dict] = []
    if tools and choice != "none" and last_role == "user":
        tool_calls = _tool_calls(model, tools, choice, _message_text(messages[-1]), signatures)
    elif last_role == "tool":
        text = f"Echo from {model}: tool results: " + "; ".join(_message_text(m) for m in _tool_results(messages))
    else:
        prompt = next((_message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        text = f"Echo from {model}: {prompt}"
    if text is not None:
        completion_tokens = _words(text)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish_reason = "stop"
    else:
        completion_tokens = sum(_words(f"{c['function']['name']} {c['function']['arguments']}") for c in tool_calls)
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
        finish_reason = "tool_calls"
    prompt_tokens = sum(_words(_message_text(m)) for m in messages)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    created = int(time.time())
    ident = f"chatcmpl-{uuid.uuid4().hex[:16]}"
    if body.get("stream") is not True:
        return json_response(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                "usage": usage,
            },
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish: str | None, choices: bool = True, with_usage: bool = False) -> bytes:
        payload: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
        }
        if with_usage:
            payload["usage"] = usage
        return b"data: " + _dump(payload) + b"\n\n"

    def frames() -> Iterable[bytes]:
        if text is None:
            # The compat layer's stream defects: every call in one delta
            # without "index", and a final finish_reason of "stop".
            yield chunk({"role": "assistant", "tool_calls": tool_calls}, None)
        else:
            words = text.split(" ")
            half = max(1, len(words) // 2)
            yield chunk({"role": "assistant", "content": " ".join(words[:half]) + " "}, None)
            yield chunk({"content": " ".join(words[half:])}, None)
        yield chunk({}, "stop")
        if include_usage:
            yield chunk({}, None, choices=False, with_usage=True)
        yield b"data: [DONE]\n\n"

    return _sse_response(frames())


def _check_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages is required and must be a non-empty list.")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in {"system", "developer", "user", "assistant", "tool"}:
            raise invalid("Each message needs a role of system, developer, user, assistant or tool.")
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and message.get("tool_calls") is not None:
            calls = message["tool_calls"]
            if not isinstance(calls, list):
                raise invalid(f"messages[{i}].tool_calls must be a list.")
            for j, call in enumerate(calls):
                _check_tool_call(call, f"messages[{i}].tool_calls[{j}]")
        if message["role"] == "tool":
            if not isinstance(message.get("tool_call_id"), str) or not message["tool_call_id"]:
                raise invalid(f"messages[{i}].tool_call_id is required for a tool message.")
            if not isinstance(message.get("content"), (str, list)):
                raise invalid(f"messages[{i}].content is required for a tool message.")
    return messages


def _check_tool_call(call: Any, where: str) -> None:
    if not isinstance(call, dict) or call.get("type") != "function":
        raise invalid(f'{where}.type must be "function".')
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise invalid(f"{where}.id is required.")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise invalid(f"{where}.function.name is required.")
    if not isinstance(function.get("arguments"), str):
        raise invalid(f"{where}.function.arguments must be a JSON string.")


def _check_tools(body: dict) -> list[dict]:
    """The request's function tools (``[]`` without any); 400 on a wrong shape."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools must be a list.", [{"field": "tools", "description": "must be a list"}])
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise invalid(f'{where}.type must be "function".', [{"field": f"{where}.type", "description": "unsupported tool type"}])
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid(f"{where}.function.name is required.", [{"field": f"{where}.function.name", "description": "required"}])
        if function.get("description") is not None and not isinstance(function["description"], str):
            raise invalid(f"{where}.function.description must be a string.")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(f"{where}.function.parameters must be a JSON schema object.")
        if isinstance(parameters, dict) and not isinstance(parameters.get("properties", {}), dict):
            raise invalid(f"{where}.function.parameters.properties must be an object.")
    return tools


def _check_tool_choice(body: dict, tools: list[dict]) -> str:
    """The tool choice: "none", "auto", "required", or the name of the one function to call."""
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if name in {t["function"]["name"] for t in tools}:
            return name
    raise invalid("tool_choice must be none, auto, required or a function among the tools.")


def _thought_signature(call: dict) -> Any:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    return google.get("thought_signature") if isinstance(google, dict) else None


def _check_thought_signatures(model: str, messages: list[dict], signatures: ThoughtSignatures) -> None:
    """Gemini 3's rule: in the current turn (after the last user message),
    the first tool call of every assistant step carries the signature the
    model gave it, or the documented bypass value."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    for index in range(last_user + 1, len(messages)):
        message = messages[index]
        if message["role"] != "assistant" or not message.get("tool_calls"):
            continue
        first = message["tool_calls"][0]
        signature = _thought_signature(first)
        if signature is None or signature == "":
            raise invalid(MISSING_THOUGHT_SIGNATURE_MESSAGE.format(name=first["function"]["name"], position=index + 1))
        if signature != SKIP_THOUGHT_SIGNATURE and not signatures.valid(signature, model, first["id"]):
            raise invalid(INVALID_THOUGHT_SIGNATURE_MESSAGE)


def _tool_results(messages: list[dict]) -> list[dict]:
    """The tool messages after the last assistant message."""
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    return [m for m in messages[last_assistant + 1 :] if m["role"] == "tool"]


def _tool_calls(model: str, tools: list[dict], choice: str, prompt: str, signatures: ThoughtSignatures) -> list[dict]:
    """One call for each tool the prompt names (in the order of ``tools``),
    the first tool when it names none, or the tool ``tool_choice`` forces.
    A Gemini 3 model signs the first call, as Gemini signs the first
    function call of each step."""
    functions = [t["function"] for t in tools]
    if choice not in ("auto", "required"):
        chosen = [f for f in functions if f["name"] == choice]
    else:
        chosen = [f for f in functions if f["name"] in prompt] or functions[:1]
    calls = []
    for function in chosen:
        call: dict[str, Any] = {
            "id": f"function-call-{secrets.token_hex(8)}",
            "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps(_arguments(function.get("parameters")))},
        }
        if not calls and model.startswith(SIGNING_MODEL_PREFIX):
            call["extra_content"] = {"google": {"thought_signature": signatures.issue(model, call["id"])}}
        calls.append(call)
    return calls


_ARGUMENT_VALUES = {"string": "emulated", "integer": 1, "number": 1.5, "boolean": True}


def _arguments(parameters: dict | None) -> dict:
    """Arguments for a call: each required property (every property when
    none is required), valued by its JSON schema type."""
    properties = (parameters or {}).get("properties") or {}
    required = (parameters or {}).get("required")
    names = required if isinstance(required, list) else list(properties)
    out = {}
    for name in names:
        schema = properties.get(name)
        kind = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        out[name] = _ARGUMENT_VALUES.get(kind) if isinstance(kind, str) else None
    return out


def _images(body: dict) -> dict:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise invalid("prompt is required and must be a non-empty string.")
    count = _sample_count(body.get("n"))
    fmt = body.get("response_format", "b64_json")
    if fmt not in (None, "b64_json"):
        raise invalid("Only response_format b64_json is supported.")
    created = int(time.time())
    if "BLOCKED" in prompt:
        return {"created": created, "data": []}
    image = media.image_b64(prompt)
    return {"created": created, "data": [{"b64_json": image} for _ in range(count)]}


def _embeddings(model: str, body: dict) -> dict:
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise invalid("input is required and must be a string or a list of strings.")
    dims = body.get("dimensions") or _default_dims(model)
    fmt = body.get("encoding_format", "float")
    data = []
    for index, text in enumerate(inputs):
        vector: Any = _vector(text, dims)
        if fmt == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(_words(t) for t in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
