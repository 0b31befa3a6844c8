"""The emulator's own model table: which models exist, which are live, and which methods serve them.

This table is deliberately independent of the filter's routing rules, so a
routing bug cannot hide behind a shared mistake. Facts follow
``shared/gemini-api.md``.
"""

from __future__ import annotations

# Native method names, in the order Google documents them.
GENERATE_CONTENT = "generateContent"
STREAM_GENERATE_CONTENT = "streamGenerateContent"
COUNT_TOKENS = "countTokens"
EMBED_CONTENT = "embedContent"
BATCH_EMBED_CONTENTS = "batchEmbedContents"
PREDICT = "predict"
PREDICT_LONG_RUNNING = "predictLongRunning"
GENERATE_ANSWER = "generateAnswer"

NATIVE_METHODS = (
    GENERATE_CONTENT,
    STREAM_GENERATE_CONTENT,
    COUNT_TOKENS,
    EMBED_CONTENT,
    BATCH_EMBED_CONTENTS,
    PREDICT,
    PREDICT_LONG_RUNNING,
    GENERATE_ANSWER,
)

# OpenAI-compatibility operations (path suffix under /v1beta/openai/).
CHAT_COMPLETIONS = "chat/completions"
IMAGES_GENERATIONS = "images/generations"
EMBEDDINGS = "embeddings"

COMPAT_OPERATIONS = (CHAT_COMPLETIONS, IMAGES_GENERATIONS, EMBEDDINGS)

# The native method name the compatibility layer puts in its 404 message for
# each operation ("... or is not supported for generateContent").
COMPAT_METHOD_IN_MESSAGE = {
    CHAT_COMPLETIONS: GENERATE_CONTENT,
    IMAGES_GENERATIONS: PREDICT,
    EMBEDDINGS: EMBED_CONTENT,
}

GEMINI = "gemini"
GEMINI_IMAGE = "gemini_image"
IMAGEN = "imagen"
VEO = "veo"
EMBEDDING = "embedding"
AQA = "aqa"

FAMILIES = (GEMINI, GEMINI_IMAGE, IMAGEN, VEO, EMBEDDING, AQA)

# Every model the emulator knows, with its family: the live catalogue of
# December 2026 and the models Google has shut down. A shut-down model answers
# 404 NOT_FOUND on every method, exactly as an unknown id does, unless a test
# revives it (``configure(live=[...])``); its family here is what the emulator
# serves it as then.
MODELS: dict[str, str] = {
    # Live (shared/gemini-api.md, "Model lifecycle (as of December 2026)").
    "gemini-3.5-flash": GEMINI,
    "gemini-3.5-flash-lite": GEMINI,
    "gemini-3.6-flash": GEMINI,
    "gemini-3.7-flash": GEMINI,
    "gemini-3.8-flash": GEMINI,
    "gemini-3.1-flash-lite": GEMINI,
    "gemini-3.1-pro-preview": GEMINI,
    "gemma-3-27b-it": GEMINI,
    "gemini-3.1-flash-image": GEMINI_IMAGE,
    "gemini-3-pro-image": GEMINI_IMAGE,
    "veo-3.1-generate-preview": VEO,
    "veo-3.1-lite-generate-001": VEO,
    "veo-2.0-generate-001": VEO,
    "gemini-embedding-001": EMBEDDING,
    "gemini-embedding-2": EMBEDDING,
    "aqa": AQA,  # UNCONFIRMED: the reference neither lists it live nor shut down
    # Shut down by December 2026.
    "gemini-2.5-flash": GEMINI,
    "gemini-2.5-flash-lite": GEMINI,
    "gemini-2.5-pro": GEMINI,
    "gemini-2.0-flash": GEMINI,
    "gemini-2.0-flash-001": GEMINI,
    "gemini-2.0-flash-lite": GEMINI,
    "gemini-3-pro-preview": GEMINI,
    "gemini-1.5-flash": GEMINI,
    "gemini-1.5-pro": GEMINI,
    "gemini-pro": GEMINI,
    "gemini-2.5-flash-image": GEMINI_IMAGE,
    "gemini-2.0-flash-preview-image-generation": GEMINI_IMAGE,
    "gemini-3-pro-image-preview": GEMINI_IMAGE,
    "gemini-3.1-flash-image-preview": GEMINI_IMAGE,
    "imagen-4.0-generate-001": IMAGEN,
    "imagen-4.0-ultra-generate-001": IMAGEN,
    "imagen-4.0-fast-generate-001": IMAGEN,
    "imagen-3.0-generate-002": IMAGEN,
    "veo-3.0-generate-001": VEO,
    "text-embedding-004": EMBEDDING,
    "embedding-001": EMBEDDING,
}

# The models that answer by default (December 2026). Every other entry of
# MODELS is shut down.
LIVE: frozenset[str] = frozenset(
    {
        "gemini-3.5-flash",
        "gemini-3.5-flash-lite",
        "gemini-3.6-flash",
        "gemini-3.7-flash",
        "gemini-3.8-flash",
        "gemini-3.1-flash-lite",
        "gemini-3.1-pro-preview",
        "gemma-3-27b-it",
        "gemini-3.1-flash-image",
        "gemini-3-pro-image",
        "veo-3.1-generate-preview",
        "veo-3.1-lite-generate-001",
        "veo-2.0-generate-001",
        "gemini-embedding-001",
        "gemini-embedding-2",
        "aqa",
    }
)
SHUT_DOWN: frozenset[str] = frozenset(MODELS) - LIVE

# Which native methods serve which family (the API's contract).
NATIVE_SERVES: dict[str, frozenset[str]] = {
    GENERATE_CONTENT: frozenset({GEMINI, GEMINI_IMAGE}),
    STREAM_GENERATE_CONTENT: frozenset({GEMINI, GEMINI_IMAGE}),
    COUNT_TOKENS: frozenset({GEMINI, GEMINI_IMAGE}),
    EMBED_CONTENT: frozenset({EMBEDDING}),
    BATCH_EMBED_CONTENTS: frozenset({EMBEDDING}),
    PREDICT: frozenset({IMAGEN}),
    PREDICT_LONG_RUNNING: frozenset({VEO}),
    GENERATE_ANSWER: frozenset({AQA}),
}

# Which compat operations serve which family. Chat serves image-output Gemini
# models too, but answers them with text only.
COMPAT_SERVES: dict[str, frozenset[str]] = {
    CHAT_COMPLETIONS: frozenset({GEMINI, GEMINI_IMAGE}),
    IMAGES_GENERATIONS: frozenset({IMAGEN, GEMINI_IMAGE}),
    EMBEDDINGS: frozenset({EMBEDDING}),
}

# The 2.0 preview image model (shut down; a test revives it) accepts only the
# TEXT+IMAGE combination.
REQUIRES_TEXT_AND_IMAGE = frozenset({"gemini-2.0-flash-preview-image-generation"})

DESCRIPTIONS = {
    GEMINI: "Emulated Gemini text and multimodal model.",
    GEMINI_IMAGE: "Emulated Gemini model with image output.",
    IMAGEN: "Emulated Imagen image generation model.",
    VEO: "Emulated Veo video generation model.",
    EMBEDDING: "Emulated text embedding model.",
    AQA: "Emulated model that performs Attributed Question Answering.",
}


def family_of(model: str) -> str | None:
    """The family of a catalogue model id (live or shut down), or None when it is unknown."""
    return MODELS.get(model)


def native_methods_for(model: str) -> list[str]:
    """supportedGenerationMethods of a model, as ListModels reports them."""
    family = MODELS[model]
    return [m for m in NATIVE_METHODS if family in NATIVE_SERVES[m]]


def native_serves(method: str, family: str) -> bool:
    return family in NATIVE_SERVES.get(method, frozenset())


def compat_serves(operation: str, family: str) -> bool:
    return family in COMPAT_SERVES.get(operation, frozenset())


def model_resource(model: str) -> dict:
    """A Model resource as GET /v1beta/models/{id} returns it."""
    family = MODELS[model]
    embedding = family == EMBEDDING
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model.replace("-", " ").title(),
        "description": DESCRIPTIONS[family],
        "inputTokenLimit": 2048 if embedding else 1048576,
        "outputTokenLimit": 1 if embedding else 65536,
        "supportedGenerationMethods": native_methods_for(model),
    }
