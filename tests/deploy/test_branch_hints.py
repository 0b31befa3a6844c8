"""The shipped module's branch hints (build/hints.py, run by `make build`).

The hints lay out V8's compiled code (`make bench-footprint` counts what they
save). V8 drops a malformed hint section without a word (the module still
validates), so these tests check the section against V8's rules with
`hints.read_hints`, which refuses what V8 would drop, and that the profile
behind it counts what it claims: each counter, on a module small enough to
know the answer by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.artifacts import REPO

sys.path.insert(0, str(REPO / "build"))
import hints  # noqa: E402

HINTS = REPO / "build" / "hints.py"


def test_the_built_module_hints_conditional_branches_before_its_code(wasm: Path) -> None:
    module = hints.Module(wasm.read_bytes())
    ids = [sid if sid else hints.name(p) for sid, p in module.sections]
    assert ids.count(hints.SECTION) == 1
    assert ids[ids.index(hints.SECTION) + 1] == hints.CODE, ids
    found = set(hints.branches(module))
    given = hints.read_hints(wasm.read_bytes())
    # The routed requests' branches: hundreds of them, each at an `if` or a
    # `br_if` of its function, each a 0 or a 1.
    assert len(given) > 500
    assert set(given) <= found, sorted(set(given) - found)[:5]
    assert set(given.values()) == {0, 1}


def test_the_section_is_ordered_as_v8_requires(wasm: Path) -> None:
    # V8 drops the whole section when a function index or an offset within a
    # function does not increase, or a hint is not one byte: read_hints
    # refuses such a section (see the test after this one).
    given = hints.read_hints(wasm.read_bytes())
    payload = next(p for s, p in hints.Module(wasm.read_bytes()).sections
                   if s == hints.CUSTOM and hints.name(p) == hints.SECTION)
    size, i = hints.read_u(payload, 0)
    functions, _ = hints.read_u(payload, i + size)
    # Every function listed has a hint.
    assert functions == len({function for function, _ in given})


def section(entries: list[tuple[int, list[tuple[int, int, int]]]], extra: bytes = b"") -> bytes:
    """A module (the hand-written one) with a hint section of `entries`:
    (function, [(offset, size, hint)])."""
    payload = bytearray(hints.write_u(len(entries)))
    for function, marks in entries:
        payload += hints.write_u(function) + hints.write_u(len(marks))
        for offset, size, hint in marks:
            payload += hints.write_u(offset) + hints.write_u(size) + bytes([hint])
    module = hints.Module(small_module())
    module.sections.insert(-1, hints.custom(hints.SECTION, bytes(payload) + extra))
    return module.to_bytes()


@pytest.mark.parametrize("entries, extra, reason", [
    ([(1, [(8, 1, 1)]), (0, [(3, 1, 0)])], b"", "function 0 after function 1"),
    ([(1, [(8, 1, 1), (8, 1, 0)])], b"", "offset 8 after offset 8"),
    ([(0, [(3, 2, 1)])], b"", "not a one-byte hint"),
    ([(0, [(3, 1, 2)])], b"", "not a one-byte hint"),
    ([(0, [(3, 1, 1)])], b"\x00", "bytes after the last hint"),
])
def test_a_section_v8_would_drop_is_refused(entries, extra, reason) -> None:
    with pytest.raises(hints.WasmError, match=reason):
        hints.read_hints(section(entries, extra))
    assert hints.read_hints(section([(0, [(3, 1, 0)]), (1, [(8, 1, 1)])])) == {(0, 3): 0, (1, 8): 1}


def test_the_build_is_reproducible_and_up_to_date(wasm: Path, tmp_path: Path) -> None:
    # The profile is deterministic: hinting the module again (it replaces
    # its own section) gives the same bytes, twice.
    for run in ("first", "second"):
        out = tmp_path / f"{run}.wasm"
        proc = subprocess.run([sys.executable, str(HINTS), str(wasm), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes() == wasm.read_bytes(), f"{run} run: run `make build`"


def validates(path: Path) -> bool:
    """Whether V8 (node's) validates the module at `path`."""
    script = "process.stdout.write(String(WebAssembly.validate(require('fs').readFileSync(process.argv[1]))))"
    proc = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout == "true"


def test_v8_accepts_the_hinted_module(wasm: Path) -> None:
    # (The module's framing: V8 would refuse a module whose sections the
    # hint step wrote wrongly; it does not refuse a bad hint section.)
    assert validates(wasm)


def test_only_the_hint_section_is_added(wasm: Path) -> None:
    # cargo's own output stays in deps/ (the hint step writes the module
    # anew beside it): without its section, the shipped module is that, byte
    # for byte.
    cargo = wasm.parent / "deps" / wasm.name
    assert cargo.is_file(), f"{cargo}: run `make build`"
    assert hints.read_hints(cargo.read_bytes()) == {}
    assert hints.Module(wasm.read_bytes()).without_hints().to_bytes() == cargo.read_bytes()


# -- the counters, on a module written by hand ---------------------------------------------------


def function_body(code: bytes) -> bytes:
    body = b"\x00" + code + b"\x0b"  # no locals
    return hints.write_u(len(body)) + body


LOW = b"\x02\x40\x20\x00\x41\x0a\x49\x0d\x00\x41\x07\x0f\x0b\x41\x08"


def small_module(low: bytes = LOW) -> bytes:
    """Two exported functions of one i32 parameter:
    `pick(x)`: `if x { 1 } else { 2 }`;
    `low(x)`: `block { br_if 0 (x < 10); return 7 }; 8` (or the code `low`)."""
    section = lambda sid, payload: bytes([sid]) + hints.write_u(len(payload)) + payload  # noqa: E731
    types = section(1, b"\x01\x60\x01\x7f\x01\x7f")
    functions = section(3, b"\x02\x00\x00")
    globals_ = section(6, b"\x01\x7f\x01\x41\x00\x0b")  # a global of its own, as rustc's __stack_pointer
    exports = section(7, b"\x02\x04pick\x00\x00\x03low\x00\x01")
    pick = function_body(b"\x20\x00\x04\x7f\x41\x01\x05\x41\x02\x0b")
    code = section(10, b"\x02" + pick + function_body(low))
    return b"\0asm\x01\0\0\0" + types + functions + globals_ + exports + code


def run_counted(module: bytes, calls: list[tuple[str, int]], tmp_path: Path) -> dict[str, list[int]]:
    path = tmp_path / "counted.wasm"
    path.write_bytes(module)
    script = (
        "const fs = require('fs');"
        "const { exports } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(process.argv[1])));"
        f"for (const [f, x] of {[[f, x] for f, x in calls]!r}) exports[f](x);"
        "const out = {}; for (const [k, g] of Object.entries(exports))"
        " if (/^b\\d+$/.test(k)) out[k] = [Number(g.value >> 32n), Number(g.value & 0xffffffffn)];"
        "process.stdout.write(JSON.stringify(out));"
    )
    proc = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_counter_counts_the_way_its_branch_went(tmp_path: Path) -> None:
    module = small_module()
    found = hints.branches(hints.Module(module))
    # The `if` of function 0 (after its local.get) and the `br_if` of
    # function 1 (after block, local.get, i32.const, i32.lt_u).
    assert found == [(0, 3), (1, 8)]
    instrumented, order = hints.instrument(module)
    assert order == found
    counts = run_counted(instrumented, [("pick", 0), ("pick", 3), ("pick", 5), ("low", 1), ("low", 2)], tmp_path)
    assert counts == {"b0": [2, 3], "b1": [2, 2]}
    # The instrumented copy still computes what the module does.
    path = tmp_path / "same.wasm"
    path.write_bytes(instrumented)
    script = ("const fs = require('fs');"
              "const e = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(process.argv[1]))).exports;"
              "process.stdout.write([e.pick(0), e.pick(9), e.low(3), e.low(30)].join(','));")
    proc = subprocess.run(["node", "-e", script, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "2,1,8,7", proc.stderr


def test_only_a_branch_that_went_one_way_every_time_gets_a_hint() -> None:
    found = [(0, 3), (1, 8), (1, 20), (2, 5)]
    counts = {"b0": [2, 3], "b1": [2, 2], "b2": [0, 9]}  # b3 never ran
    assert hints.choose(found, counts) == {(1, 8): 1, (1, 20): 0}


def test_hints_written_are_hints_read(tmp_path: Path) -> None:
    module = small_module()
    chosen = {(0, 3): 0, (1, 8): 1}
    hinted = hints.with_hints(module, chosen)
    assert hints.read_hints(hinted) == chosen
    # Written again, the section is replaced, not repeated.
    again = hints.with_hints(hinted, {(1, 8): 0})
    assert hints.read_hints(again) == {(1, 8): 0}
    path = tmp_path / "hinted.wasm"
    path.write_bytes(again)
    assert validates(path)


@pytest.mark.parametrize("wasm_bytes, message", [
    (b"\0asm\x02\0\0\0", "not a WebAssembly module"),
    (b"\0asm\x01\0\0\0\x01\x7f", "runs past the end"),
])
def test_a_module_it_cannot_read_is_refused_with_the_reason(wasm_bytes: bytes, message: str) -> None:
    with pytest.raises(hints.WasmError, match=message):
        hints.branches(hints.Module(wasm_bytes))


def test_code_read_astray_is_refused() -> None:
    # `low` made an `i32.const` whose number swallows the function's `end`:
    # read as the format says, the code then stops short of an `end`.
    module = small_module(low=b"\x41\x80")
    with pytest.raises(hints.WasmError, match="function 1: its instructions do not end at its last byte"):
        hints.branches(hints.Module(module))


def test_an_unknown_instruction_is_named_with_its_function_and_offset() -> None:
    module = small_module().replace(b"\x20\x00\x04\x7f", b"\x20\x00\xff\x7f")
    with pytest.raises(hints.WasmError, match=r"function 0, offset 3: unknown opcode 0xff"):
        hints.branches(hints.Module(module))
