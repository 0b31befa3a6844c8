"""Run the Gemini emulator standalone: ``python -m tests.emulator --port N``."""

from __future__ import annotations

import argparse
import sys

from .server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--retired", action="append", default=[], help="model id to retire (repeatable)")
    parser.add_argument("--live", action="append", default=[], help="shut-down model id to revive (repeatable)")
    parser.add_argument("--key", action="append", default=[], help="valid API key (repeatable; default test-key)")
    args = parser.parse_args(argv)
    emulator = Emulator(args.host, args.port)
    try:
        emulator.configure(retired=args.retired or None, valid_keys=args.key or None, live=args.live or None)
    except ValueError as err:
        parser.error(str(err))
    print(f"gemini emulator listening on {emulator.url}", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
