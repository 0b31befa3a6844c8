"""Adversarial peers for the hardening suite: a misbehaving upstream on raw
sockets (HTTP/1.1, and HTTP/2 with the ``h2`` state machine), raw HTTP/1.1
and HTTP/2 clients that send what ``http.client`` will not (repeated headers,
chunked bodies with trailers, HTTP/2 trailers), and Envoy's resident memory.

- ``RawUpstream(responder)``: accepts connections, reads one request per
  connection (``Content-Length`` or chunked, trailers included), records it
  and writes whatever ``responder(request)`` returns: raw bytes, or a list of
  byte chunks written one by one. ``http2=True`` speaks HTTP/2 instead and
  ``responder`` returns an ``H2Answer``.
- ``h1_request(port, raw)``: writes raw request bytes, returns the parsed
  response (status, header list, body, trailers).
- ``h2_request(port, headers, body, trailers)``: one HTTP/2 request over
  cleartext (prior knowledge), with optional request trailers.
- ``rss_bytes(pid)``: resident set size of a process.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings

from tests.harness import HttpResponse


@dataclass
class Received:
    """A request as the upstream read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


@dataclass
class H2Answer:
    """An HTTP/2 answer: headers (``:status`` first), data, optional trailers."""

    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] | None = None


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while True:
        at = buf.find(marker)
        if at >= 0:
            return at
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("peer closed")
        buf.extend(chunk)


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(max(65536, n - len(buf)))
        if not chunk:
            raise ConnectionError("peer closed")
        buf.extend(chunk)
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _parse_headers(block: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = block.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def read_h1_message(sock: socket.socket, buf: bytearray, *, response: bool = False):
    """Reads one HTTP/1.1 message: (start line, headers, body, trailers)."""
    end = _read_until(sock, buf, b"\r\n\r\n")
    start, headers = _parse_headers(bytes(buf[:end]))
    del buf[: end + 4]
    names = {k: v for k, v in headers}
    trailers: list[tuple[str, str]] = []
    if "chunked" in names.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            end = _read_until(sock, buf, b"\r\n")
            size = int(bytes(buf[:end]).split(b";")[0], 16)
            del buf[: end + 2]
            if size == 0:
                end = _read_until(sock, buf, b"\r\n\r\n") if not buf.startswith(b"\r\n") else -2
                if end == -2:
                    del buf[:2]
                else:
                    _, trailers = _parse_headers(b"x\r\n" + bytes(buf[:end]))
                    del buf[: end + 4]
                break
            body.extend(_read_exact(sock, buf, size))
            _read_exact(sock, buf, 2)
        return start, headers, bytes(body), trailers
    if "content-length" in names:
        return start, headers, _read_exact(sock, buf, int(names["content-length"])), trailers
    if response:
        status = int(start.split()[1])
        if status in (204, 304) or 100 <= status < 200:
            return start, headers, b"", trailers
        body = bytearray(buf)
        buf.clear()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body.extend(chunk)
        return start, headers, bytes(body), trailers
    return start, headers, b"", trailers


def h1_response(status: int, headers: list[tuple[str, str]], body: bytes | None = None) -> bytes:
    """A raw HTTP/1.1 response; ``content-length`` is added when a body is given
    and no framing header is."""
    lines = [f"HTTP/1.1 {status} X"]
    names = {k.lower() for k, _ in headers}
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(parts: list[bytes], trailers: list[tuple[str, str]] | None = None) -> bytes:
    """A chunked body with optional trailers."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    out += b"0\r\n"
    for k, v in trailers or []:
        out += f"{k}: {v}\r\n".encode()
    return out + b"\r\n"


class Script:
    """A responder whose answer each test sets: bytes, a list of byte chunks,
    an ``H2Answer``, or a callable taking the request; ``default`` while the
    answer is empty."""

    def __init__(self, default: object = b"") -> None:
        self.answer: object = b""
        self.default = default

    def __call__(self, request: Received) -> object:
        answer = self.answer or self.default
        return answer(request) if callable(answer) else answer


class RawUpstream:
    """A misbehaving upstream: answers each request with ``responder``'s bytes."""

    def __init__(self, responder: Callable[[Received], object], *, http2: bool = False) -> None:
        self.responder = responder
        self.http2 = http2
        self.received: list[Received] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            serve = self._serve_h2 if self.http2 else self._serve_h1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    def _serve_h1(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            while True:
                start, headers, body, trailers = read_h1_message(conn, buf)
                method, target, _ = start.split(" ", 2)
                request = Received(method, target, headers, body, trailers)
                self.received.append(request)
                answer = self.responder(request)
                for part in answer if isinstance(answer, list) else [answer]:
                    if isinstance(part, threading.Event):
                        part.wait(timeout=30)  # the test says when to go on
                        continue
                    conn.sendall(part)
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            conn.close()

    def _serve_h2(self, conn: socket.socket) -> None:
        h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        streams: dict[int, Received] = {}
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for event in h2c.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        hdrs = [(k.decode(), v.decode()) for k, v in event.headers]
                        pseudo = dict(hdrs)
                        streams[event.stream_id] = Received(pseudo[":method"], pseudo[":path"], hdrs, b"")
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id].body += event.data
                        h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.TrailersReceived):
                        streams[event.stream_id].trailers = [(k.decode(), v.decode()) for k, v in event.headers]
                    if isinstance(event, h2.events.StreamEnded):
                        request = streams.pop(event.stream_id)
                        self.received.append(request)
                        answer: H2Answer = self.responder(request)  # type: ignore[assignment]
                        last = not answer.body and answer.trailers is None
                        h2c.send_headers(event.stream_id, answer.headers, end_stream=last)
                        if answer.body:
                            h2c.send_data(event.stream_id, answer.body, end_stream=answer.trailers is None)
                        if answer.trailers is not None:
                            h2c.send_headers(event.stream_id, answer.trailers, end_stream=True)
                conn.sendall(h2c.data_to_send())
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self._sock.close()


def h1_request(port: int, raw: bytes, timeout: float = 60.0) -> tuple[HttpResponse, list[tuple[str, str]]]:
    """Sends raw request bytes; returns the response and its trailers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        buf = bytearray()
        start, headers, body, trailers = read_h1_message(sock, buf, response=True)
    return HttpResponse(int(start.split()[1]), headers, body), trailers


def h2_request(
    port: int,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    trailers: list[tuple[str, str]] | None = None,
    timeout: float = 60.0,
) -> tuple[HttpResponse, list[tuple[str, str]]]:
    """One HTTP/2 request (cleartext, prior knowledge); returns the response
    and its trailers. ``headers`` carries the pseudo-headers first."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        h2c.initiate_connection()
        h2c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        h2c.increment_flow_control_window(2**30)
        stream = h2c.get_next_available_stream_id()
        h2c.send_headers(stream, headers, end_stream=not body and trailers is None)
        pending = body
        if not pending and trailers is not None:
            h2c.send_headers(stream, trailers, end_stream=True)
        sock.sendall(h2c.data_to_send())
        status = 0
        resp_headers: list[tuple[str, str]] = []
        resp_trailers: list[tuple[str, str]] = []
        data = bytearray()
        done = False
        while not done:
            while pending:
                window = min(h2c.local_flow_control_window(stream), h2c.max_outbound_frame_size)
                if window <= 0:
                    break
                piece, pending = pending[:window], pending[window:]
                last = not pending and trailers is None
                h2c.send_data(stream, piece, end_stream=last)
                if not pending and trailers is not None:
                    h2c.send_headers(stream, trailers, end_stream=True)
            sock.sendall(h2c.data_to_send())
            chunk = sock.recv(65536)
            if not chunk:
                break
            for event in h2c.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    resp_headers = [(k.decode(), v.decode()) for k, v in event.headers]
                    status = int(dict(resp_headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    data.extend(event.data)
                    h2c.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.TrailersReceived):
                    resp_trailers = [(k.decode(), v.decode()) for k, v in event.headers]
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            sock.sendall(h2c.data_to_send())
    plain = [(k, v) for k, v in resp_headers if not k.startswith(":")]
    return HttpResponse(status, plain, bytes(data)), resp_trailers


def google_error(status: int, message: str, code: str, details: list | None = None, listed: bool = True) -> bytes:
    """Google's error body (list-wrapped as the compat layer sends it)."""
    error = {"error": {"code": status, "message": message, "status": code}}
    if details is not None:
        error["error"]["details"] = details
    return json.dumps([error] if listed else error).encode()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")
