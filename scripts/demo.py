#!/usr/bin/env python3
"""`make demo`: Envoy with gemini-router in front of the local Gemini emulator.

Starts the emulator (tests/emulator) and Envoy with the built filter, sends a
few requests that show what the filter does, prints what reached the emulator
and what came back, then stops both. Nothing leaves this machine.

    .venv/bin/python scripts/demo.py --wasm target/wasm32-wasip1/release/gemini_router.wasm --envoy .venv/bin/envoy
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


KEY = "test-key"

EXAMPLES = [
    (
        "A chat UI asks an image model for a chat completion: routed to :generateContent, answered as chat",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "gemini-3.1-flash-image", "messages": [{"role": "user", "content": "a lighthouse at dusk"}]},
    ),
    (
        "A Gemini chat request stays where it is",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "gemini-3.5-flash", "messages": [{"role": "user", "content": "hello"}]},
    ),
    (
        "Open WebUI's default image model, shut down in 2026: served by its replacement, answered as chat",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "imagen-3.0-generate-002", "messages": [{"role": "user", "content": "a lighthouse at dusk"}]},
    ),
    (
        "A text model shut down on December 1, 2026: served by its replacement",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "A model the upstream does not know: the 404 comes back annotated, in the OpenAI error shape",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "gemini-3.5-flsh", "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "A hostile model name never reaches the upstream",
        "/v1beta/openai/chat/completions",
        {"authorization": f"Bearer {KEY}"},
        {"model": "../../v1beta/files", "messages": []},
    ),
]


def shorten(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} bytes)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--envoy", required=True)
    args = parser.parse_args()
    # The test harness reads the Envoy binary and the module from these.
    os.environ["ENVOY_BIN"] = str(Path(args.envoy).resolve())
    os.environ["GEMINI_ROUTER_WASM"] = str(Path(args.wasm).resolve())
    from tests.emulator import Emulator
    from tests.harness import Envoy

    with Emulator() as emulator:
        envoy = Envoy(emulator.host, emulator.port, filter_config={}).start()
        try:
            print(f"emulator {emulator.url}, envoy {envoy.url}\n")
            for title, path, headers, body in EXAMPLES:
                emulator.reset()
                resp = envoy.post(path, body, headers=headers)
                print(f"== {title}")
                print(f"   client -> POST {path} model={body['model']!r}")
                seen = emulator.requests()
                if seen:
                    print(f"   upstream saw: {seen[0]['method']} {seen[0]['path']}")
                else:
                    print("   upstream saw: nothing")
                print(f"   client got: {resp.status}")
                for name, value in resp.headers.items():
                    if name.startswith("x-gemini-router-"):
                        print(f"     {name}: {value}")
                print(f"     body: {shorten(resp.text)}\n")
            print("counters:", json.dumps(envoy.stats("wasmcustom.gemini_router"), indent=2))
        finally:
            envoy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
