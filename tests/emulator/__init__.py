"""A Gemini API emulator that enforces the real contract, for testing gemini-router.

It serves the Gemini Developer API (``/{v1,v1beta,v1alpha}/models/{id}:{method}``),
Vertex AI model paths (``/v1/projects/{p}/locations/{l}/publishers/google/models/{id}:{method}``)
and the OpenAI-compatibility layer (``/v1beta/openai/...``) for the model
catalogue of December 2026 (``catalogue.py``), with Google's auth rules and
error bodies, so a wrong rewrite fails a test the way it would fail in
production. It records every request it receives; see ``server.py`` for the
``/__emulator/`` control API (recorded requests, reset, retired and revived
models, valid keys).

Models Google has shut down (every Imagen model, ``gemini-2.0-flash*``,
``gemini-2.5-*``, ``text-embedding-004``, ...; ``catalogue.SHUT_DOWN``) answer
404 NOT_FOUND on every method exactly as an unknown id does, and are not
listed. A test that needs one served (an Imagen translator, say) revives it
for itself: ``emulator.configure(live=["imagen-4.0-generate-001"])``; the
reset before every test shuts it down again.

Standalone, from the repository root::

    .venv/bin/python -m tests.emulator --port 8089      # 0 picks a free port

In process::

    from tests.emulator import Emulator
    with Emulator() as emu:            # binds 127.0.0.1 on a free port
        ...  emu.url, emu.requests(), emu.configure(retired=[...], live=[...]), emu.reset()

Knobs inside prompts: ``BLOCKED`` makes image models answer with a safety
block; ``BIG`` makes every image about 2 MB of base64. The valid API key is
``test-key`` unless configured otherwise.

Layout: ``catalogue.py`` (models, families, which method serves which family),
``api.py`` (the API surfaces: request in, response out), ``media.py`` (real
PNGs), ``server.py`` (HTTP/1.1 server, recording, control API),
``test_emulator.py`` (its own unit tests).
"""

from .api import DEFAULT_VALID_KEYS
from .server import Emulator

__all__ = ["DEFAULT_VALID_KEYS", "Emulator"]
