"""Real (decodable) PNG images for the emulator's image answers.

``tiny_png_b64()`` is an 8x8 image; ``big_png_b64()`` is a noise image whose
base64 is about 2 MB, for tests of large bodies. Both are built once with the
standard library and cached.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
import zlib

BIG_TARGET_B64_BYTES = 2_000_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int, height: int, pixel_rows: list[bytes], level: int = 9) -> bytes:
    """Encode 8-bit RGB rows (each width*3 bytes) as a PNG file."""
    raw = b"".join(b"\x00" + row for row in pixel_rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, level))
        + _chunk(b"IEND", b"")
    )


@functools.lru_cache(maxsize=None)
def tiny_png() -> bytes:
    rows = [b"".join(bytes((x * 32, y * 32, 128)) for x in range(8)) for y in range(8)]
    return png(8, 8, rows)


@functools.lru_cache(maxsize=None)
def tiny_png_b64() -> str:
    return base64.b64encode(tiny_png()).decode("ascii")


@functools.lru_cache(maxsize=None)
def big_png() -> bytes:
    """An incompressible image stored without compression: ~1.5 MB of PNG."""
    # 1.5 MB raw -> ~2 MB base64. Pixels are a SHA-256 stream, so they are
    # deterministic and do not compress.
    raw_bytes = BIG_TARGET_B64_BYTES * 3 // 4
    side = int((raw_bytes / 3) ** 0.5)
    stream = bytearray()
    counter = 0
    while len(stream) < side * side * 3:
        stream += hashlib.sha256(counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    rows = [bytes(stream[y * side * 3 : (y + 1) * side * 3]) for y in range(side)]
    return png(side, side, rows, level=0)


@functools.lru_cache(maxsize=None)
def big_png_b64() -> str:
    return base64.b64encode(big_png()).decode("ascii")


def image_b64(prompt: str) -> str:
    """The image for a prompt: ~2 MB when the prompt asks for BIG, tiny otherwise."""
    return big_png_b64() if "BIG" in prompt else tiny_png_b64()


FAKE_VIDEO_URI = "https://generativelanguage.googleapis.com/v1beta/files/emulated-video:download?alt=media"
