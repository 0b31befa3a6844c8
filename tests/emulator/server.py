"""HTTP/1.1 plumbing for the emulator: sockets, recording and the control API.

Requests under ``/__emulator/`` control the emulator and are not recorded:

- ``GET /__emulator/requests``: every API request received since the last
  reset, as ``{method, path, query, target, headers, body, body_base64}``;
  header names are lowercased, ``body`` is the raw body as text, or base64
  when it is not UTF-8 (then ``body_base64`` is true).
- ``POST /__emulator/reset``: forget recorded requests and configuration
  (the December 2026 catalogue again: shut-down models answer 404).
- ``POST /__emulator/config`` ``{"retired": [...], "live": [...], "valid_keys": [...]}``:
  retire models (404 on every method), revive shut-down catalogue models
  (served as their family again; an id the catalogue does not know is a 400),
  or replace the accepted API keys. Each field replaces its previous value;
  fields left out keep theirs. The answer is the resulting configuration.

API answers with a whole body are gzipped for a request whose
``Accept-Encoding`` admits gzip, as Google's front end answers; streams are
sent as they are.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from .api import GeminiApi, Request, Response, State, invalid, json_response

CONTROL_PREFIX = "/__emulator/"


class Recorder:
    """The requests the API surface received, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict] = []

    def add(self, method: str, target: str, headers: list[tuple[str, str]], raw_body: bytes) -> None:
        path, _, query = target.partition("?")
        merged: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        try:
            body, is_b64 = raw_body.decode("utf-8"), False
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(raw_body).decode("ascii"), True
        record = {
            "method": method,
            "path": path,
            "query": query,
            "target": target,
            "headers": merged,
            "body": body,
            "body_base64": is_b64,
        }
        with self._lock:
            self._records.append(record)

    def all(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: GeminiApi, recorder: Recorder) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.recorder = recorder


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "scaffolding on HTTPServer2"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end at an empty line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        raw_body = self._read_body()
        target = self.path
        if target.startswith(CONTROL_PREFIX):
            self._write(self._control(target, raw_body))
            return
        headers = list(self.headers.items())
        self.server.recorder.add(self.command, target, headers, raw_body)
        path, _, query = target.partition("?")
        lowered = {}
        for name, value in headers:
            lowered[name.lower()] = value
        try:
            body = _decode(lowered.get("content-encoding", ""), raw_body)
        except ValueError as err:
            self._write(json_response(400, invalid(str(err)).body()))
            return
        request = Request(self.command, path, query, lowered, body)
        self._write(_compressed(self.server.api.handle(request), lowered.get("accept-encoding", "")))

    def _control(self, target: str, raw_body: bytes) -> Response:
        path = target.partition("?")[0]
        if path == "/__emulator/requests" and self.command == "GET":
            return json_response(200, self.server.recorder.all())
        if path == "/__emulator/reset" and self.command == "POST":
            self.server.recorder.clear()
            self.server.api.state.reset()
            return json_response(200, {"ok": True})
        if path == "/__emulator/config" and self.command == "POST":
            try:
                config = json.loads(raw_body or b"{}")
                unknown = set(config) - {"retired", "live", "valid_keys"}
                if unknown:
                    raise ValueError(f"unknown config fields {sorted(unknown)}")
                self.server.api.state.configure(config.get("retired"), config.get("valid_keys"), config.get("live"))
            except (ValueError, TypeError, AttributeError) as err:
                return json_response(400, {"error": str(err)})
            return json_response(200, self.server.api.state.snapshot())
        return json_response(404, {"error": f"no control endpoint {self.command} {path}"})

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            if response.chunks is None:
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in response.chunks:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value admits gzip (not `gzip;q=0`)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            name, _, value = params.replace(" ", "").lower().partition("=")
            try:
                return name != "q" or float(value) > 0
            except ValueError:
                return True  # a weight that is not a number: as if none was given
    return False


def _compressed(response: Response, accept_encoding: str) -> Response:
    """`response` gzipped for a client that asks for it, as Google's front end
    answers (a whole body, success or error; streams are left as they are)."""
    if response.chunks is not None or not response.body or not _accepts_gzip(accept_encoding):
        return response
    if any(name.lower() == "content-encoding" for name, _ in response.headers):
        return response
    headers = [*response.headers, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
    return replace(response, headers=headers, body=gzip.compress(response.body, mtime=0))


def _decode(encoding: str, body: bytes) -> bytes:
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError) as err:
        raise ValueError(f"Request body could not be decoded with content-encoding {encoding}: {err}")
    raise ValueError(f"Unsupported content-encoding {encoding}.")


class Emulator:
    """An emulator instance serving on a background thread.

    >>> with Emulator() as emu:           # port 0: a free port
    ...     emu.url                        # 'http://127.0.0.1:PORT'
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = State()
        self.recorder = Recorder()
        self.api = GeminiApi(self.state)
        self._server = _Server((host, port), self.api, self.recorder)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Emulator":
        self._thread = threading.Thread(target=self._server.serve_forever, name="gemini-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def requests(self) -> list[dict]:
        """Recorded API requests (see the module docstring for the fields)."""
        return self.recorder.all()

    def reset(self) -> None:
        self.recorder.clear()
        self.state.reset()

    def configure(
        self,
        retired: Iterable[str] | None = None,
        valid_keys: Iterable[str] | None = None,
        live: Iterable[str] | None = None,
    ) -> None:
        """Retire models, replace the accepted keys, or revive shut-down
        models (``live=["imagen-4.0-generate-001"]``); each argument given
        replaces its previous value, and ``reset()`` restores the defaults."""
        self.state.configure(retired, valid_keys, live)

    def hold_stream_images(self) -> threading.Event:
        """Makes ``:streamGenerateContent?alt=sse`` answers wait before each
        image frame until the returned event is set (or 10 s pass), so a test
        can see what a client received before the image was sent;
        ``images_streamed()`` counts the image frames sent. ``reset()`` lifts it."""
        gate = threading.Event()
        self.state.image_gate = gate
        return gate

    def images_streamed(self) -> int:
        with self.state.lock:
            return self.state.images_streamed

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
