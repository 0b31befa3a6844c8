#!/usr/bin/env python3
"""What the filter's idle RSS is made of: the filter against the no-op
module and against probes that change one thing each.

`make bench` reports an Envoy's idle RSS with the filter over the same Envoy
with the no-op module (issue 8's target: at most +8 MiB). This measures
where that difference comes from, with every front Envoy started `--starts`
times in interleaved rounds (one front at a time; each figure the median):

- the filter as shipped (`make build`'s module);
- the same module with 400,000 more bytes that are not code (an inert
  custom section): what a byte of module costs, whatever it holds;
- the module built with its function names, every function of
  `src/translate` (about 74 KB of code, the filter's largest part) emptied
  to `unreachable` and the names dropped: what that much less code saves.
  The probe loads and configures, but it cannot translate: it measures, it
  is not a filter.
- the same with only the largest functions of `src/translate` emptied
  (about 16 KB), and with as many bytes of its smallest functions
  emptied: whether a byte of code costs the same in a large function as in
  a small one (V8 compiles each function whole).

For each: VmRSS, Envoy's heap (admin /memory: allocated, and free pages
tcmalloc keeps, both of which the V8 compile of the module leaves), and the
compiled code (anonymous executable mappings). Prints a Markdown table and
writes bench/idle.md; about 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: reference modules, Envoy fronts, /proc readers)

ROOT = R.ROOT
WORK = R.WORK / "idle"
PADDING = 400_000
# How many bytes the named build's code may differ from the shipped one's
# (see `probes`).
CODE_SLACK = 64
# The largest and the smallest probes: about this many bytes of code each.
SPLIT_BYTES = 16_000
# The probe empties the functions whose (legacy-demangled) name is in the
# translate module; `ImageMessageFormat::read` is configuration, which runs at
# start, so it stays.
TRANSLATE = re.compile(r"^_?<?gemini_router::translate::(?!ImageMessageFormat)")


# -- a few Wasm binary helpers (enough to name and empty functions) --------------
# The module reader is build/hints.py's (which `make build` runs; bench/run.py
# puts build/ on the import path).

from hints import Module, WasmError, imported, read_u as leb, write_u as uleb  # noqa: E402
from hints import assemble as module, custom as custom_section  # noqa: E402


def sections(data: bytes) -> list[tuple[int, bytes]]:
    """The module's sections as (id, payload), in order."""
    try:
        return Module(data).sections
    except WasmError as e:
        raise SystemExit(f"idle: {e}") from None


def function_names(payload: bytes) -> dict[int, str]:
    """The function names of a `name` custom section's payload (after its name)."""
    names, i = {}, 0
    while i < len(payload):
        sub = payload[i]
        size, i = leb(payload, i + 1)
        if sub == 1:
            count, j = leb(payload, i)
            for _ in range(count):
                index, j = leb(payload, j)
                length, j = leb(payload, j)
                names[index] = payload[j:j + length].decode("utf-8", "replace")
                j += length
        i += size
    return names


def demangle(name: str) -> str:
    """A legacy Rust symbol's path (`_ZN...E` -> `a::b::c`), without the hash."""
    if not name.startswith("_ZN"):
        return name
    parts, i = [], 3
    while i < len(name) and name[i].isdigit():
        digits = re.match(r"\d+", name[i:]).group()
        i += len(digits)
        parts.append(name[i:i + int(digits)])
        i += int(digits)
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    path = "::".join(parts)
    for escaped, char in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$C$", ","), ("$RF$", "&"), ("..", "::")):
        path = path.replace(escaped, char)
    return path


def without_names(data: bytes, empty: re.Pattern | None) -> tuple[bytes, int]:
    """`data` without its custom sections, and with the body of every function
    whose name matches `empty` replaced by `unreachable`: (module, code bytes
    removed)."""
    parts = sections(data)
    names = named_functions(parts)
    if empty is not None and not names:
        raise SystemExit("idle: the module has no function names to choose by")
    out, removed = [], 0
    for sid, payload in parts:
        if sid == 0:
            continue
        if sid == 10 and empty is not None:
            bodies = list(code_bodies(payload))
            code = bytearray(uleb(len(bodies)))
            for index, body in enumerate(bodies):
                if empty.search(names.get(index, "")):
                    removed += len(body) - 3
                    body = b"\x00\x00\x0b"  # no locals; unreachable; end
                code += uleb(len(body)) + body
            payload = bytes(code)
        out.append((sid, payload))
    return module(out), removed


def named_functions(parts: list[tuple[int, bytes]]) -> dict[int, str]:
    """The demangled name of each function the code section defines, by its
    place there (imported functions come first in the name section's
    numbering), from the module's `name` section (none: empty)."""
    imports, names = 0, {}
    for sid, payload in parts:
        if sid == 2:
            imports = imported(payload)[0]
        elif sid == 0:
            length, i = leb(payload, 0)
            if payload[i:i + length] == b"name":
                names = function_names(payload[i + length:])
    return {index - imports: demangle(name) for index, name in names.items() if index >= imports}


def code_bodies(payload: bytes):
    """Each function body of a code section, in order."""
    count, i = leb(payload, 0)
    for _ in range(count):
        size, i = leb(payload, i)
        yield payload[i:i + size]
        i += size


def translate_functions(data: bytes) -> list[tuple[int, str]]:
    """(body bytes, demangled name) of each function of `src/translate`
    (see TRANSLATE) in the named module `data`, largest first."""
    parts = sections(data)
    names = named_functions(parts)
    code = next(payload for sid, payload in parts if sid == 10)
    found = [(len(body), names.get(index, "")) for index, body in enumerate(code_bodies(code))]
    return sorted((entry for entry in found if TRANSLATE.search(entry[1])), reverse=True)


def exactly(names: list[str]) -> re.Pattern:
    """A pattern matching these names and no other."""
    return re.compile("^(?:" + "|".join(re.escape(n) for n in names) + ")$")


# -- the probes -----------------------------------------------------------------


def named_cargo_module() -> Path:
    """The filter's module built with its function names."""
    target = WORK / "target"
    R.log("building the filter with function names (target/bench/idle)")
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="debuginfo")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "--target-dir",
                    str(target)], cwd=ROOT, env=env, check=True)
    return target / "wasm32-wasip1" / "release" / "deps" / "gemini_router.wasm"


def probes(shipped: Path) -> tuple[dict[str, Path], dict[str, str], dict[str, int]]:
    """Front name -> module, front name -> what it is, and probe name ->
    the bytes of code it lacks."""
    WORK.mkdir(parents=True, exist_ok=True)
    padded = WORK / "padded.wasm"
    padded.write_bytes(module(sections(shipped.read_bytes()) + [custom_section("padding", bytes(PADDING))]))
    named = named_cargo_module().read_bytes()
    # With its names dropped, the named build is the shipped module's code in
    # another order (the linker orders functions by their symbols): the
    # same sections, of the same sizes, but for the code, which can differ
    # by a few bytes: a call's function index is a LEB128 number, whose
    # length depends on where the linker put the function.
    unnamed, _ = without_names(named, None)
    shapes = [[(sid, len(payload)) for sid, payload in sections(m) if sid != 0]
              for m in (unnamed, shipped.read_bytes())]
    same = len(shapes[0]) == len(shapes[1]) and all(
        a[0] == b[0] and (a[1] == b[1] or (a[0] == 10 and abs(a[1] - b[1]) <= CODE_SLACK))
        for a, b in zip(*shapes))
    if not same:
        raise SystemExit(f"idle: the named build is not the code of {shipped}: run `make build` first")
    emptied, removed = without_names(named, TRANSLATE)
    (WORK / "emptied.wasm").write_bytes(emptied)
    # The same bytes of code taken out as a few large functions or as many
    # small ones (all of `src/translate`, which the probes do not run):
    # what the size of a function costs, beside its bytes.
    ranked = translate_functions(named)
    largest, taken = [], 0
    for size, name in ranked:
        if taken >= SPLIT_BYTES:
            break
        largest.append(name)
        taken += size
    smallest, small_taken = [], 0
    for size, name in reversed(ranked):
        if small_taken >= taken or name in largest:
            break
        smallest.append(name)
        small_taken += size
    large_module, large_removed = without_names(named, exactly(largest))
    small_module, small_removed = without_names(named, exactly(smallest))
    (WORK / "largest.wasm").write_bytes(large_module)
    (WORK / "smallest.wasm").write_bytes(small_module)
    modules = {"filter": shipped, "padded": padded, "emptied": WORK / "emptied.wasm",
               "largest": WORK / "largest.wasm", "smallest": WORK / "smallest.wasm"}
    what = {
        "noop": "no-op module",
        "filter": f"gemini-router ({shipped.stat().st_size:,} B)",
        "padded": f"the same + {PADDING:,} B inert custom section",
        "emptied": f"the same, `src/translate` emptied ({removed:,} B less code)",
        "largest": f"the same, its {len(largest)} largest functions emptied ({large_removed:,} B less code)",
        "smallest": f"the same, its {len(smallest)} smallest functions emptied ({small_removed:,} B less code)",
    }
    return modules, what, {"emptied": removed, "largest": large_removed, "smallest": small_removed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", type=Path, default=ROOT / "target/wasm32-wasip1/release/gemini_router.wasm",
                        help="the shipped module (make build's)")
    parser.add_argument("--envoy", type=Path, default=ROOT / ".venv/bin/envoy")
    parser.add_argument("--starts", type=int, default=5, help="starts of each front Envoy (interleaved rounds)")
    parser.add_argument("--out", default=str(R.BENCH / "idle.md"), help="Markdown report ('-' for none)")
    args = parser.parse_args()
    os.environ["ENVOY_BIN"] = str(args.envoy)
    modules, what, removed = probes(args.wasm)
    modules["noop"] = R.build_ref_modules()["noop"]
    fronts = ["noop", "filter", "padded", "emptied", "largest", "smallest"]
    runs: dict[str, list[dict[str, float]]] = {f: [] for f in fronts}
    for r in range(args.starts):
        R.log(f"round {r + 1} of {args.starts}")
        for name in R.rotation(fronts, r):
            runs[name].append(R.sample_idle(name, modules[name]))

    def med(front: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[front])

    keys = [("rss", "RSS"), ("allocated", "heap allocated"), ("free", "heap free, kept"), ("code", "compiled code")]
    lines = [
        "# What the filter's idle RSS is made of",
        "",
        f"Generated by `bench/idle.py` (`make bench-idle`) on gemini-router {R.revision()}: each front Envoy "
        f"(`--concurrency 1`, the bench's configuration) started {args.starts} times in interleaved rounds, "
        f"its figures read {R.IDLE_SETTLE_SECONDS} s after it is ready; medians, in MiB. RSS from /proc/PID/status, "
        "Envoy's heap from admin /memory (allocated, and the free pages tcmalloc keeps), compiled code from "
        "/proc/PID/smaps (anonymous executable mappings). The probes measure; they are not filters.",
        "",
        "| module | " + " | ".join(title for _, title in keys) + " | RSS − no-op | RSS, each start |",
        "|---|" + "---:|" * (len(keys) + 1) + "---|",
    ]
    for front in fronts:
        cells = [f"{med(front, k):.1f}" for k, _ in keys]
        lines.append(f"| {what[front]} | " + " | ".join(cells) + f" | {med(front, 'rss') - med('noop', 'rss'):+.1f} | "
                     + " ".join(f"{run['rss']:.1f}" for run in runs[front]) + " |")
    padding = med("padded", "rss") - med("filter", "rss")

    def saves(probe: str) -> str:
        code = med("filter", "rss") - med(probe, "rss")
        return (f"{removed[probe]:,} B less code saves {code:.2f} MiB "
                f"({code * R.MIB / removed[probe]:.1f} B of RSS per byte of code, module bytes included)")

    lines += [
        "",
        f"Module bytes: {PADDING:,} B more cost {padding:+.2f} MiB "
        f"({padding * R.MIB / PADDING:.1f} B of RSS per byte of module).",
        f"Code: {saves('emptied')}.",
        f"Large functions against small ones: the largest functions of `src/translate`, {saves('largest')}; "
        f"its smallest, {saves('smallest')}.",
    ]
    R.emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
