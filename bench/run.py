#!/usr/bin/env python3
"""gemini-router benchmarks, reported as ratios measured side by side in one run.

Nothing here asserts a time: machines are shared and noisy, so every number
is compared with its baseline measured in the same run, interleaved.

1. Filter overhead. One upstream: a second Envoy answering every request
   with a fixed JSON ``direct_response`` (after buffering the request, so
   large bodies are read whole). In front of it, two Envoys built by
   ``tests/harness.py``: one without the filter (A) and one with it (B,
   ``{"api_style":"openai"}``). wrk drives A and B in turn (A B, B A, ...),
   each run for ``--duration`` seconds, and the median of ``--repeats`` runs
   is reported for:
     a. GET /v1beta/models: not a routed request, passes untouched;
     b. an OpenAI chat request for gemini-3.5-flash (~1 KiB): buffered,
        scanned, forwarded unchanged;
     c. the same with a 1 MiB inline base64 image;
     d. a chat request for gemini-3.1-flash-image (~1 KiB): routed to
        generateContent, request and answer translated (through A it is simply
        proxied: the ratio is what routing and translation cost).
   Columns: requests/s, p50 and p99 latency, and the front Envoy's CPU time
   per request (utime+stime from /proc, the cost of the filter wherever the
   bottleneck of this 2-core machine happens to be).
2. Memory. Before the throughput runs, ``--mem-requests`` chat requests with
   an 8 MiB image are sent (4 at a time) to A and to B; VmHWM and VmRSS of
   each Envoy (from /proc/PID/status) are compared with its idle RSS.
3. Body scanning, on the host, by ``bench/scan-bench`` (a separate cargo
   package built into target/bench): ``scan::top_level_fields`` against
   ``serde_json::from_slice::<Value>``, serde_json's validate-only
   ``IgnoredAny``, and ``flow::body`` end to end, on bodies of 1 KiB, 1 MiB and
   8 MiB. Instructions are counted by callgrind (repeatable), wall time is
   measured natively and, when ``node`` is present, with the module built for
   wasm32-wasip1 running in V8 (the engine Envoy runs the filter in).

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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = ROOT / "target" / "bench"
BODIES = WORK / "bodies"
SCAN_BENCH = BENCH / "scan-bench"
WRK_SCRIPT = BENCH / "wrk.lua"

sys.path.insert(0, str(ROOT))

FILTER_CONFIG = {"api_style": "openai"}
CHAT_PATH = "/v1beta/openai/chat/completions"
MODEL = "gemini-3.5-flash"
IMAGE_MODEL = "gemini-3.1-flash-image"
MIB = 1 << 20

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


def ensure_tools(need_node: bool) -> bool:
    """Installs missing tools with apt-get when root. Returns whether node is there."""
    wanted = dict(TOOLS)
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
            required = sorted({TOOLS[c] for c in TOOLS if shutil.which(c) is None})
            if required:
                raise SystemExit(f"bench: missing tools; install them with: sudo apt-get install -y {' '.join(required)}")
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


# -- scanner -----------------------------------------------------------------


@dataclass
class ScanResults:
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)  # (body, op) -> outcome
    instructions: dict[tuple[str, str], int] = field(default_factory=dict)
    native_ns: dict[tuple[str, str], float] = field(default_factory=dict)
    wasm_ns: dict[tuple[str, str], float] = field(default_factory=dict)
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


def run_scan(bodies: Bodies, have_node: bool, samples: int) -> ScanResults:
    results = ScanResults()
    native, wasm = build_scan_bench(have_node)
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

    log("timing natively")
    timed = subprocess.run([str(native), "time", "--samples", str(samples), *[str(p) for _, p in files]],
                           capture_output=True, text=True, check=True)
    for row in json_lines(timed.stdout):
        results.native_ns[(label_of[row["file"]], row["op"])] = row["ns_median"]

    if wasm is not None:
        log("timing the wasm32-wasip1 build in V8 (node)")
        wasm_files = {f"/bodies/{p.name}": label for label, p in files}
        proc = subprocess.run(
            ["node", "--no-warnings", "--single-threaded-gc", str(SCAN_BENCH / "wasi-run.mjs"), str(wasm), str(BODIES), "time",
             "--samples", str(samples), *wasm_files],
            capture_output=True, text=True,
        )
        if proc.returncode == 0:
            for row in json_lines(proc.stdout):
                results.wasm_ns[(wasm_files[row["file"]], row["op"])] = row["ns_median"]
        else:
            results.notes.append(f"V8 timing failed: {proc.stderr.strip()[-300:]}")
    else:
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


def start_envoys() -> tuple:
    from tests import harness

    class DirectResponseEnvoy(harness.Envoy):
        """The bench upstream: an Envoy answering fixed JSON, started like any harness Envoy."""

        def __init__(self) -> None:
            super().__init__("127.0.0.1", 9, None, with_filter=False, name="upstream")
            self.config_path.write_text(direct_response_bootstrap())

    upstream = DirectResponseEnvoy().start()
    without = harness.Envoy("127.0.0.1", upstream.port, with_filter=False, name="without-filter").start()
    with_filter = harness.Envoy("127.0.0.1", upstream.port, FILTER_CONFIG, with_filter=True, name="with-filter").start()
    return upstream, without, with_filter


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
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


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int
    requests: int


def wrk_run(envoy, scenario: Scenario, seconds: int, connections: int) -> Run:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_SCRIPT),
           envoy.url + scenario.path, "--", scenario.method, str(scenario.body or "")]
    cpu_before = cpu_seconds(envoy.process.pid)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu_after = cpu_seconds(envoy.process.pid)
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


def hey_run(envoy, body: Path, count: int, concurrency: int) -> None:
    proc = subprocess.run(
        ["hey", "-n", str(count), "-c", str(concurrency), "-m", "POST", "-T", "application/json",
         "-H", "Authorization: Bearer bench-key", "-D", str(body), "-t", "60", envoy.url + CHAT_PATH],
        capture_output=True, text=True, timeout=300,
    )
    ok = re.search(r"\[200\]\s+(\d+) responses", proc.stdout)
    if proc.returncode != 0 or not ok or int(ok.group(1)) != count:
        raise RuntimeError(f"hey: not every request answered 200:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def verify(envoys: dict, scenarios: list[Scenario]) -> list[str]:
    """One request per scenario through each front Envoy: what the client gets back."""
    from tests import harness

    lines = []
    for scenario in scenarios:
        for name, envoy in envoys.items():
            body = scenario.body.read_bytes() if scenario.body else None
            headers = {"authorization": "Bearer bench-key"}
            if body is not None:
                headers["content-type"] = "application/json"
            resp = harness.http_request(envoy.url, scenario.method, scenario.path, body=body, headers=headers)
            if resp.status != 200:
                raise RuntimeError(f"{scenario.key} through {name}: {resp!r}")
            answer = resp.json()
            shape = answer.get("object") or ("generateContent" if "candidates" in answer else "?")
            lines.append(f"{scenario.key} {name}: 200 {shape}")
    return lines


@dataclass
class HttpResults:
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)  # (scenario, side) -> runs
    memory: dict[str, dict] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    scenarios: list[Scenario] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def run_http(bodies: Bodies, seconds: int, repeats: int, connections: int, mem_requests: int) -> HttpResults:
    results = HttpResults()
    results.settings = {"seconds": seconds, "repeats": repeats, "connections": connections,
                        "mem_requests": mem_requests}
    results.scenarios = [
        Scenario("a", "GET pass-through", "GET", "/v1beta/models", None),
        Scenario("b", "chat, gemini model, ~1 KiB (scanned, unchanged)", "POST", CHAT_PATH, bodies.small),
        Scenario("c", "chat + 1 MiB base64 image (scanned, unchanged)", "POST", CHAT_PATH, bodies.one_mib),
        Scenario("d", "chat, image model, ~1 KiB (translated to generateContent)", "POST", CHAT_PATH,
                 bodies.image_model),
    ]
    upstream = without = with_filter = None
    try:
        log("starting Envoys: direct-response upstream, front without and with the filter")
        upstream, without, with_filter = start_envoys()
        sides = {"without": without, "with": with_filter}
        results.checks = verify(sides, results.scenarios)

        log(f"memory: {mem_requests} chat requests with an 8 MiB image to each front Envoy")
        for side, envoy in sides.items():
            idle = proc_status(envoy.process.pid)
            hey_run(envoy, bodies.eight_mib, mem_requests, 4)
            after = proc_status(envoy.process.pid)
            results.memory[side] = {"idle_rss": idle["VmRSS"], "idle_hwm": idle["VmHWM"], "rss": after["VmRSS"],
                                    "hwm": after["VmHWM"], "admin": admin_memory(envoy)}

        for scenario in results.scenarios:
            log(f"load {scenario.key}: {scenario.title}")
            for envoy in sides.values():  # warm-up, not recorded
                wrk_run(envoy, scenario, 1, connections)
            for r in range(repeats):
                order = ["without", "with"] if r % 2 == 0 else ["with", "without"]
                for side in order:
                    run = wrk_run(sides[side], scenario, seconds, connections)
                    results.runs.setdefault((scenario.key, side), []).append(run)
        results.counters = {k.removeprefix("wasmcustom."): v for k, v in with_filter.stats("wasmcustom.").items()}
    finally:
        for envoy in (with_filter, without, upstream):
            if envoy is not None:
                envoy.stop()
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
    if args.revision:
        head, dirty = args.revision, ""
    else:
        head = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                               capture_output=True, text=True).stdout.strip()
    envoy_version = first_line([args.envoy, "--version"])
    envoy_version = re.sub(r"^.*version: ", "", envoy_version)
    return [
        f"- Date: {started} (UTC)",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}; shared, no CPU pinning; "
        f"load average at start {load_start}, at end {Path('/proc/loadavg').read_text().split()[0:3]}",
        f"- Code: gemini-router {head}{' with uncommitted changes under src/' if dirty else ''}; "
        f"Envoy {envoy_version}; {first_line(['rustc', '--version'])}"
        + (f"; node {first_line(['node', '--version'])}" if shutil.which("node") else ""),
    ]


def report(args, http: HttpResults | None, scan: ScanResults | None, note: list[str]) -> str:
    out = ["# gemini-router benchmarks", "",
           "Generated by `bench/run.py` (`make bench`). Every figure is a ratio against a baseline measured "
           "in the same run; absolute numbers depend on the machine and on whatever else it was doing.", ""]
    out += note + [""]

    if http is not None:
        s = http.settings
        out += ["## 1. Filter overhead through Envoy", "",
                f"Envoy `--concurrency 1` in front of a second Envoy that answers fixed JSON; wrk `-t1 -c{s['connections']}`, "
                f"{s['seconds']:g} s per run, runs interleaved without/with the filter, median of {s['repeats']}. "
                f"Filter configuration `{json.dumps(FILTER_CONFIG)}`. CPU = the front Envoy's user+system time "
                "per request. Ratio = with ÷ without.", "",
                "| scenario | req/s without | req/s with | ratio | p50 without | p50 with | ratio | p99 without | p99 with | ratio | CPU/req without | CPU/req with | ratio |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        errors = 0
        for sc in http.scenarios:
            a, b = http.runs[(sc.key, "without")], http.runs[(sc.key, "with")]
            errors += sum(r.errors for r in a + b)

            def med(runs, attr):
                return statistics.median(getattr(r, attr) for r in runs)

            cells = []
            for attr, fmt in (("rps", lambda v: f"{v:,.0f}"), ("p50_ms", lambda v: f"{v:.2f} ms"),
                              ("p99_ms", lambda v: f"{v:.2f} ms"), ("cpu_us", lambda v: f"{v:.0f} µs")):
                x, y = med(a, attr), med(b, attr)
                cells += [fmt(x), fmt(y), fmt_ratio(y / x) if x else "–"]
            out.append(f"| {sc.key}. {sc.title} | " + " | ".join(cells) + " |")
        out += ["", f"Errors (socket errors and non-2xx) over all runs: {errors}. "
                "What each scenario returned (one request each, before the load): "
                + "; ".join(http.checks) + ".", ""]
        if http.counters:
            shown = {k: v for k, v in sorted(http.counters.items()) if v}
            out += ["Filter counters after the run: " + ", ".join(f"`{k}` {v}" for k, v in shown.items()) + ".", ""]

        m = http.memory
        out += ["## 2. Envoy memory after large requests", "",
                f"{s['mem_requests']} chat requests with an 8 MiB inline image (4 concurrent) to each front Envoy, "
                "before the load runs. From /proc/PID/status; `allocated` from admin /memory (Envoy's heap, "
                "which does not include the Wasm VM's linear memory).", "",
                "| | without filter | with filter | ratio |", "|---|---:|---:|---:|"]
        rows = [("RSS idle (after start)", "idle_rss"), ("peak RSS (VmHWM) after the requests", "hwm"),
                ("RSS after the requests", "rss")]
        for title, k in rows:
            x, y = m["without"][k], m["with"][k]
            out.append(f"| {title} | {x / 1024:.1f} MiB | {y / 1024:.1f} MiB | {fmt_ratio(y / x)} |")
        gx = m["without"]["hwm"] - m["without"]["idle_rss"]
        gy = m["with"]["hwm"] - m["with"]["idle_rss"]
        out.append(f"| peak growth over idle | {gx / 1024:.1f} MiB | {gy / 1024:.1f} MiB | "
                   f"{fmt_ratio(gy / gx) if gx > 0 else '–'} |")
        ax = m["without"]["admin"].get("allocated")
        ay = m["with"]["admin"].get("allocated")
        if ax and ay:
            out.append(f"| Envoy heap allocated after | {int(ax) / MIB:.1f} MiB | {int(ay) / MIB:.1f} MiB | "
                       f"{fmt_ratio(int(ay) / int(ax))} |")
        out.append("")

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
        for title, table in (("Wall time, native x86_64 (median)", scan.native_ns),
                             ("Wall time, wasm32-wasip1 in V8 via node (median)", scan.wasm_ns)):
            if not table:
                continue
            out += ["", f"### {title}", "",
                    "| body | " + " | ".join(SCAN_OP_LABELS[op] for op in SCAN_OPS) + " | scan ÷ Value | scan ÷ IgnoredAny |",
                    "|---|" + "---:|" * (len(SCAN_OPS) + 2)]
            for label in labels:
                t = {op: table[(label, op)] for op in SCAN_OPS}
                out.append(f"| {label} | " + " | ".join(fmt_ns(t[op]) for op in SCAN_OPS)
                           + f" | {fmt_ratio(t['scan'] / t['serde_value'])} | {fmt_ratio(t['scan'] / t['serde_ignored'])} |")
        for n in scan.notes:
            out += ["", f"Note: {n}"]
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", default="target/wasm32-wasip1/release/gemini_router.wasm")
    parser.add_argument("--envoy", default=str(ROOT / ".venv" / "bin" / "envoy"))
    parser.add_argument("--duration", type=int, default=3, help="seconds per load run (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="load runs per side and scenario (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--mem-requests", type=int, default=16, help="8 MiB requests for the memory test")
    parser.add_argument("--samples", type=int, default=15, help="timing samples per scanner operation")
    parser.add_argument("--only", choices=["http", "scan"])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1 s runs, 1 repeat)")
    parser.add_argument("--out", default=str(BENCH / "results.md"), help="Markdown report ('-' for none)")
    parser.add_argument("--revision", help="what code is measured, when this is not a git checkout (e.g. an export)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats, args.mem_requests, args.samples = 1, 1, 4, 5

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
    if args.only != "scan":
        if not wasm.is_file():
            raise SystemExit(f"bench: {wasm} not found: run `make build`")
        http = run_http(bodies, args.duration, args.repeats, args.connections, args.mem_requests)
    if args.only != "http":
        scan = run_scan(bodies, have_node, args.samples)

    text = report(args, http, scan, machine_note(args, started, load_start))
    text += f"\nWhole run: {time.monotonic() - started_at:.0f} s.\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
