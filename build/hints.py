#!/usr/bin/env python3
"""Lays out the module's compiled code for the requests it serves most.

V8 compiles each function's blocks in the order of the Wasm code, so the
blocks a request runs lie between the ones it skips (an error here, a rare
header there), and each 64-byte line of compiled code holds a little of
both: in Envoy, each line a request runs is about one instruction-cache
miss. The Wasm branch hinting proposal (`metadata.code.branch_hint`, read
by default by the V8 of Envoy 1.40, 14.6) lets a module say which way a
branch goes; V8 then moves the other side out of the way, to the end of
the function (`make bench-footprint` counts the lines a routed chat runs,
with and without the hints).

rustc's LLVM does not write that section, so this step does, from a
profile: it builds a copy of the module with a counter on each conditional
branch (`if`, `br_if`), runs it in Node.js through the requests of
`build/profile.mjs` (each checked to end as it should), and gives a hint
to each branch that went the same way every time it ran in all of them.
A branch that went both ways, or never ran, gets none. The module's code
is not changed: the hints are one custom section before the code section,
which an engine without branch hinting skips. The same build gives the
same section, byte for byte.

    python3 build/hints.py MODULE [--out FILE]   (default: MODULE in place)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SECTION = "metadata.code.branch_hint"
PROFILE = Path(__file__).resolve().parent / "profile.mjs"
# The exported counters of the instrumented copy: `b0`, `b1`, ...
COUNTER = "b"

# Section ids, and the order the binary format puts them in.
CUSTOM, TYPE, IMPORT, FUNCTION, GLOBAL, EXPORT, CODE = 0, 1, 2, 3, 6, 7, 10
ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]

IF, BR_IF = 0x04, 0x0D


class WasmError(ValueError):
    """A module this step cannot read."""


def read_leb(b: bytes, i: int, signed: bool = False) -> tuple[int, int]:
    """A LEB128 number at `i` (unsigned unless `signed`): its value and the
    offset after it."""
    value = shift = 0
    while True:
        if i >= len(b):
            raise WasmError("a number runs past the end of its section")
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (value - (1 << shift) if signed and byte & 0x40 else value), i


def read_u(b: bytes, i: int) -> tuple[int, int]:
    """An unsigned LEB128 at `i`: its value and the offset after it."""
    return read_leb(b, i)


def write_u(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def write_s(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def assemble(sections: list[tuple[int, bytes]]) -> bytes:
    """A module of these sections ((id, payload), in order)."""
    return b"\0asm\x01\0\0\0" + b"".join(bytes([sid]) + write_u(len(p)) + p for sid, p in sections)


def custom(title: str, payload: bytes) -> tuple[int, bytes]:
    """A custom section `title` holding `payload`."""
    return CUSTOM, write_u(len(title.encode())) + title.encode() + payload


def name(payload: bytes) -> str:
    """A custom section's name."""
    size, i = read_u(payload, 0)
    return payload[i : i + size].decode("utf-8", "replace")


# Immediates by opcode (the instructions rustc's LLVM emits for
# wasm32-wasip1 with SIMD128, bulk memory and sign extension).
_MEMARG = set(range(0x28, 0x3F))
_ONE_INDEX = {0x0C, 0x0D, 0x10, 0x12, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2}
_NONE = {0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1} | set(range(0x45, 0xC5))
_SIMD_MEMARG = set(range(0x00, 0x0C)) | {0x5C, 0x5D}
_SIMD_LANE = set(range(0x15, 0x23))
_SIMD_MEMARG_LANE = set(range(0x54, 0x5C))


def _memarg(code: bytes, i: int) -> int:
    """The offset after a memory argument: its alignment (bit 6: a memory
    index follows, multi-memory), then its offset."""
    align, i = read_u(code, i)
    if align & 0x40:
        i = read_u(code, i)[1]
    return read_u(code, i)[1]


def _skip(code: bytes, op: int, i: int) -> int:
    """The offset after the immediates of opcode `op` (read up to `i`)."""
    if op in _NONE:
        return i
    if op in (0x02, 0x03, 0x04):  # block type: empty, a value type or a type index
        return i + 1 if code[i] == 0x40 or 0x6B <= code[i] <= 0x7F else read_leb(code, i, signed=True)[1]
    if op in _ONE_INDEX or op in (0x41, 0x42):
        return read_u(code, i)[1]
    if op == 0x0E:  # br_table
        count, i = read_u(code, i)
        for _ in range(count + 1):
            i = read_u(code, i)[1]
        return i
    if op in _MEMARG:  # loads and stores
        return _memarg(code, i)
    if op in (0x11, 0x13):  # call_indirect, return_call_indirect: type, table
        return read_u(code, read_u(code, i)[1])[1]
    if op == 0x1C:  # typed select
        count, i = read_u(code, i)
        return i + count
    if op in (0x3F, 0x40, 0xD0):
        return i + 1
    if op == 0x43:
        return i + 4
    if op == 0x44:
        return i + 8
    if op == 0xFC:
        sub, i = read_u(code, i)
        if sub <= 7:
            return i
        if sub in (8, 10):  # memory.init, memory.copy
            return read_u(code, i)[1] + 1 if sub == 8 else i + 2
        if sub == 11:
            return i + 1
        if sub in (12, 14):
            return read_u(code, read_u(code, i)[1])[1]
        if sub in (9, 13, 15, 16, 17):
            return read_u(code, i)[1]
        raise WasmError(f"unknown instruction 0xfc {sub}")
    if op == 0xFD:
        sub, i = read_u(code, i)
        if sub in _SIMD_MEMARG:
            return _memarg(code, i)
        if sub in (0x0C, 0x0D):
            return i + 16
        if sub in _SIMD_LANE:
            return i + 1
        if sub in _SIMD_MEMARG_LANE:
            return _memarg(code, i) + 1
        return i
    raise WasmError(f"unknown opcode {op:#04x}")


def imported(payload: bytes) -> tuple[int, int]:
    """How many functions and globals an import section imports."""
    functions = globals_ = 0
    count, i = read_u(payload, 0)
    for _ in range(count):
        for _ in range(2):  # module and field names
            size, i = read_u(payload, i)
            i += size
        kind = payload[i]
        i += 1
        if kind == 0:  # function: its type
            functions += 1
            i = read_u(payload, i)[1]
        elif kind == 3:  # global: value type, mutability
            globals_ += 1
            i += 2
        elif kind in (1, 2):  # table (element type first), memory: limits
            i += kind == 1
            flags = payload[i]
            i = read_u(payload, i + 1)[1]
            if flags & 1:
                i = read_u(payload, i)[1]
        else:
            raise WasmError(f"unknown import kind {kind}")
    return functions, globals_


@dataclass
class Body:
    """A function's code: its index in the module's function space, its
    bytes (from the locals' declaration, where hint offsets count from),
    and where its instructions start."""

    index: int
    code: bytes
    start: int
    params: int
    locals: int

    def branches(self) -> list[int]:
        """The offsets of its `if` and `br_if` instructions. (Its code must
        be read to exactly its last byte, the function's `end`: a reading
        that went astray does not end there.)"""
        found, i, op = [], self.start, None
        while i < len(self.code):
            op = self.code[i]
            try:
                after = _skip(self.code, op, i + 1)
            except (WasmError, IndexError) as e:
                raise WasmError(f"function {self.index}, offset {i}: {e}") from None
            if op in (IF, BR_IF):
                found.append(i)
            i = after
        if i != len(self.code) or op != 0x0B:
            raise WasmError(f"function {self.index}: its instructions do not end at its last byte")
        return found


class Module:
    """A module's sections, in order."""

    def __init__(self, wasm: bytes) -> None:
        if wasm[:8] != b"\0asm\x01\0\0\0":
            raise WasmError("not a WebAssembly module (version 1)")
        self.sections: list[tuple[int, bytes]] = []
        i = 8
        while i < len(wasm):
            sid = wasm[i]
            size, j = read_u(wasm, i + 1)
            if j + size > len(wasm):
                raise WasmError(f"section {sid} runs past the end of the module")
            if sid != CUSTOM and sid not in ORDER:
                raise WasmError(f"unknown section {sid}")
            self.sections.append((sid, wasm[j : j + size]))
            i = j + size

    def to_bytes(self) -> bytes:
        return assemble(self.sections)

    def payload(self, sid: int) -> bytes | None:
        return next((p for s, p in self.sections if s == sid), None)

    def replace(self, sid: int, payload: bytes) -> None:
        """Sets section `sid` (a known one), inserting it in its place."""
        for k, (s, _) in enumerate(self.sections):
            if s == sid:
                self.sections[k] = (sid, payload)
                return
        rank = ORDER.index(sid)
        at = next(
            (k for k, (s, _) in enumerate(self.sections) if s and ORDER.index(s) > rank),
            len(self.sections),
        )
        self.sections.insert(at, (sid, payload))

    def imports(self) -> tuple[int, int]:
        """How many functions and globals it imports."""
        payload = self.payload(IMPORT)
        return imported(payload) if payload is not None else (0, 0)

    def bodies(self) -> list[Body]:
        """Every function's code."""
        params: list[int] = []
        types = self.payload(TYPE) or b"\0"
        count, i = read_u(types, 0)
        for _ in range(count):
            if types[i] != 0x60:
                raise WasmError("a type that is not a function type")
            n, i = read_u(types, i + 1)
            params.append(n)
            i += n
            n, i = read_u(types, i)
            i += n
        functions = self.payload(FUNCTION) or b"\0"
        count, i = read_u(functions, 0)
        signatures = []
        for _ in range(count):
            t, i = read_u(functions, i)
            signatures.append(t)
        code = self.payload(CODE) or b"\0"
        count, i = read_u(code, 0)
        if count != len(signatures):
            raise WasmError("the code and function sections disagree")
        first, _ = self.imports()
        out = []
        for k in range(count):
            size, i = read_u(code, i)
            body = code[i : i + size]
            i += size
            groups, j = read_u(body, 0)
            declared = 0
            for _ in range(groups):
                n, j = read_u(body, j)
                declared += n
                j += 1
            out.append(Body(first + k, body, j, params[signatures[k]], declared))
        return out

    def without_hints(self) -> "Module":
        self.sections = [(s, p) for s, p in self.sections if not (s == CUSTOM and name(p) == SECTION)]
        return self


def branches(module: Module) -> list[tuple[int, int]]:
    """Every conditional branch: (function index, offset in its body)."""
    return [(body.index, off) for body in module.bodies() for off in body.branches()]


def instrument(wasm: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """A copy of the module that counts, for branch `j` (in the order of
    `branches`), in its exported i64 global `b{j}`: the times the condition
    was true (high 32 bits) and the times it was tested (low 32 bits). Its
    other custom sections are left out. The branches, in counter order."""
    module = Module(wasm)
    module.sections = [(s, p) for s, p in module.sections if s != CUSTOM]
    _, imported_globals = module.imports()
    globals_ = module.payload(GLOBAL) or b"\0"
    defined, rest = read_u(globals_, 0)
    first = imported_globals + defined
    found: list[tuple[int, int]] = []
    bodies = []
    for body in module.bodies():
        offsets = body.branches()
        if not offsets:
            bodies.append(body.code)
            continue
        groups, j = read_u(body.code, 0)
        temp = write_u(body.params + body.locals)
        out = bytearray(write_u(groups + 1) + body.code[j : body.start] + b"\x01\x7f")
        at = body.start
        for off in offsets:
            counter = write_u(first + len(found))
            found.append((body.index, off))
            out += body.code[at:off]
            # cond -> cond; counter += (cond != 0) << 32 | 1
            out += b"\x22" + temp + b"\x45\x45\xad\x42\x20\x86\x42\x01\x84"
            out += b"\x23" + counter + b"\x7c\x24" + counter + b"\x20" + temp
            at = off
        out += body.code[at:]
        bodies.append(bytes(out))
    module.replace(CODE, write_u(len(bodies)) + b"".join(write_u(len(b)) + b for b in bodies))
    counters = b"\x7e\x01\x42\x00\x0b" * len(found)  # mut i64 = 0
    module.replace(GLOBAL, write_u(defined + len(found)) + globals_[rest:] + counters)
    exports = module.payload(EXPORT) or b"\0"
    count, rest = read_u(exports, 0)
    names = b"".join(
        write_u(len(f"{COUNTER}{j}")) + f"{COUNTER}{j}".encode() + b"\x03" + write_u(first + j)
        for j in range(len(found))
    )
    module.replace(EXPORT, write_u(count + len(found)) + exports[rest:] + names)
    return module.to_bytes(), found


def choose(found: list[tuple[int, int]], counts: dict[str, list[int]]) -> dict[tuple[int, int], int]:
    """The hints: 1 (the condition is true: `if` enters its first arm,
    `br_if` branches) or 0, for each branch that went one way every time."""
    hints = {}
    for j, at in enumerate(found):
        true, tested = counts.get(f"{COUNTER}{j}", (0, 0))
        if tested and true in (0, tested):
            hints[at] = int(true == tested)
    return hints


def with_hints(wasm: bytes, hints: dict[tuple[int, int], int]) -> bytes:
    """The module with `hints` as its branch hint section (any earlier one
    replaced), placed before the code section."""
    module = Module(wasm).without_hints()
    by_function: dict[int, list[tuple[int, int]]] = {}
    for (function, offset), hint in hints.items():
        by_function.setdefault(function, []).append((offset, hint))
    payload = bytearray(write_u(len(by_function)))
    for function in sorted(by_function):
        entries = sorted(by_function[function])
        payload += write_u(function) + write_u(len(entries))
        for offset, hint in entries:
            payload += write_u(offset) + b"\x01" + bytes([hint])
    at = next((k for k, (s, _) in enumerate(module.sections) if s == CODE), None)
    if at is None:
        raise WasmError("no code section to hint")
    module.sections.insert(at, custom(SECTION, bytes(payload)))
    return module.to_bytes()


def read_hints(wasm: bytes) -> dict[tuple[int, int], int]:
    """The hints of a module's branch hint section (empty without one),
    refused with the reason where V8 would drop the section: function
    indexes and, within a function, offsets that do not increase, a hint
    that is not one byte of 0 or 1, bytes after the last hint, or a second
    section."""
    module = Module(wasm)
    found = [p for s, p in module.sections if s == CUSTOM and name(p) == SECTION]
    if not found:
        return {}
    if len(found) > 1:
        raise WasmError(f"{len(found)} branch hint sections")
    payload = found[0]
    size, i = read_u(payload, 0)
    i += size
    hints = {}
    functions, i = read_u(payload, i)
    last_function = -1
    for _ in range(functions):
        function, i = read_u(payload, i)
        if function <= last_function:
            raise WasmError(f"function {function} after function {last_function}")
        last_function, last_offset = function, -1
        count, i = read_u(payload, i)
        for _ in range(count):
            offset, i = read_u(payload, i)
            if offset <= last_offset:
                raise WasmError(f"function {function}: offset {offset} after offset {last_offset}")
            last_offset = offset
            size, i = read_u(payload, i)
            if size != 1 or i >= len(payload) or payload[i] not in (0, 1):
                raise WasmError(f"function {function}, offset {offset}: not a one-byte hint of 0 or 1")
            hints[(function, offset)] = payload[i]
            i += 1
    if i != len(payload):
        raise WasmError(f"bytes after the last hint ({len(payload) - i})")
    return hints


def profile(wasm: bytes, node: str) -> tuple[list[tuple[int, int]], dict[str, list[int]]]:
    """The branches, and their counters after build/profile.mjs."""
    instrumented, found = instrument(wasm)
    with tempfile.TemporaryDirectory(prefix="gemini-router-hints-") as tmp:
        module, out = Path(tmp) / "instrumented.wasm", Path(tmp) / "counts.json"
        module.write_bytes(instrumented)
        run = subprocess.run([node, str(PROFILE), str(module), str(out)], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"the profile run failed:\n{(run.stderr or run.stdout)[-3000:]}")
        return found, json.loads(out.read_text())


@dataclass
class Hinted:
    """A module with its hints, and what the profile found."""

    wasm: bytes
    branches: int
    ran: int
    hints: int
    section: int


def hint(wasm: bytes, node: str) -> Hinted:
    """`wasm` with the hints of its profile, any earlier ones replaced."""
    bare = Module(wasm).without_hints().to_bytes()
    found, counts = profile(bare, node)
    hints = choose(found, counts)
    hinted = with_hints(bare, hints)
    ran = sum(1 for j in range(len(found)) if f"{COUNTER}{j}" in counts)
    return Hinted(hinted, len(found), ran, len(hints), len(hinted) - len(bare))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", type=Path)
    parser.add_argument("--out", type=Path, help="where the hinted module goes (default: MODULE, in place)")
    parser.add_argument("--node", default=os.environ.get("NODE", "node"), help="Node.js 20 or newer (default: $NODE, or node)")
    args = parser.parse_args()
    node = shutil.which(args.node)
    if node is None:
        print(f"build/hints.py: {args.node} not found: Node.js 20 or newer runs the profile that lays out the "
              "module's code (apt-get install nodejs; or `make build BRANCH_HINTS=off` for a module without it)",
              file=sys.stderr)
        return 1
    try:
        done = hint(args.module.read_bytes(), node)
    except (WasmError, RuntimeError, OSError) as e:
        print(f"build/hints.py: {args.module}: {e}", file=sys.stderr)
        return 1
    out = args.out or args.module
    if not (out.exists() and out.read_bytes() == done.wasm):
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(done.wasm)
        tmp.replace(out)
    print(f"build/hints.py: {out}: {done.branches} conditional branches, {done.ran} run by the profile, "
          f"{done.hints} hinted (a section of {done.section} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
