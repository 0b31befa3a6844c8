#!/usr/bin/env python3
"""gemini-router against a peer: CPU per chat request of the LiteLLM proxy
and of Envoy with the filter, measured side by side in one run.

The workload is scenario b of ``bench/run.py``: an OpenAI chat request for
gemini-3.5-flash (~1 KiB), answered by the same upstream (an Envoy that
returns a fixed ``chat.completion`` JSON). Two proxies stand in front of it:

- Envoy (``--concurrency 1``) with gemini-router (``{"api_style":"openai"}``),
  started by ``tests/harness.py`` as in ``run.py``; wrk posts to
  ``/v1beta/openai/chat/completions``: the body is buffered, scanned and
  forwarded unchanged.
- the LiteLLM proxy (``litellm --config``, one uvicorn worker, its default),
  with one model ``gemini-3.5-flash`` = ``openai/gemini-3.5-flash`` whose
  ``api_base`` is the upstream's ``/v1``; wrk posts the same body to
  ``/v1/chat/completions`` with the proxy's master key (LiteLLM refuses to
  start without one). LiteLLM runs offline and quiet: the bundled model
  cost map (``LITELLM_LOCAL_MODEL_COST_MAP``), no database, no callbacks,
  ``LITELLM_LOG=ERROR`` (no access log line per request; Envoy logs none
  either).

Rounds alternate the order (Envoy LiteLLM, LiteLLM Envoy, ...); each run is
``--duration`` seconds of wrk ``-t1 -c--connections``. CPU is utime+stime
from /proc: the Envoy process, and LiteLLM's whole process tree (every
descendant of the process started, plus the children it has reaped). The
ratio is LiteLLM ÷ Envoy with the filter, the median over rounds of the two
figures measured in the same round. Writes ``bench/peers.md`` (``--out``).

Needs LiteLLM installed, which ``make bench-peers`` does (pinned, into
``.venv-peers``; it is large and nothing else needs it), and wrk. Fails with
a message, and writes nothing, when LiteLLM cannot start or does not answer
the workload with 200 ``chat.completion``.

Usage: ``make bench-peers``, or
``.venv/bin/python bench/peers.py --litellm .venv-peers/bin/litellm`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/run.py: upstream, Envoys, wrk, report helpers)

LITELLM_PATH = "/v1/chat/completions"
READY_TIMEOUT = 180.0  # LiteLLM imports a lot before it listens
STOP_TIMEOUT = 15.0
MAX_ERROR_SHARE = 0.01  # non-2xx or socket errors over this share of requests fail the run

# LiteLLM offline, without telemetry, database or per-request logging.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "NO_REDOC": "True",
}
# Variables LiteLLM would pick up from the environment and that would change what is measured.
LITELLM_ENV_DROP = ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY", "OPENAI_API_KEY",
                    "OPENAI_BASE_URL", "OPENAI_API_BASE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def log(msg: str) -> None:
    print(f"bench-peers: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port the kernel reports free (LiteLLM cannot listen on port 0 and tell us which)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_stats() -> dict[int, list[str]]:
    """The fields of /proc/PID/stat after the command name, for every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
    return out


def process_tree(root: int, stats: dict[int, list[str]]) -> set[int]:
    """`root` and all its living descendants (field 1 after the name is the ppid)."""
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    tree, frontier = {root}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of `root` and its living descendants, plus their
    cutime+cstime (the children they have reaped)."""
    stats = proc_stats()
    # after the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = sum(sum(int(f) for f in stats[pid][11:15]) for pid in process_tree(root, stats) if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_kib(root: int) -> int:
    """VmRSS of `root` and its descendants, summed (KiB)."""
    total = 0
    for pid in process_tree(root, proc_stats()):
        try:
            total += bench.proc_status(pid).get("VmRSS", 0)
        except OSError:
            continue
    return total


class LiteLLM:
    """The LiteLLM proxy in its own session (process group), forwarding to `upstream_port`."""

    def __init__(self, binary: Path, upstream_port: int) -> None:
        self.binary = binary
        self.workdir = Path(tempfile.mkdtemp(prefix="gemini-router-litellm-"))
        self.config_path = self.workdir / "config.yaml"
        self.log_path = self.workdir / "litellm.log"
        config = {
            "model_list": [
                {
                    "model_name": bench.MODEL,
                    "litellm_params": {
                        "model": f"openai/{bench.MODEL}",
                        "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                        "api_key": "bench-key",
                    },
                }
            ],
            "litellm_settings": {"callbacks": [], "success_callback": [], "failure_callback": []},
            "general_settings": {},
        }
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.port = free_port()
        self.master_key = "sk-" + secrets.token_hex(32)  # what clients send as Bearer token
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LiteLLM":
        env = {k: v for k, v in os.environ.items() if k not in LITELLM_ENV_DROP}
        env.update(LITELLM_ENV)
        env["LITELLM_MASTER_KEY"] = self.master_key
        cmd = [str(self.binary), "--config", str(self.config_path), "--host", "127.0.0.1", "--port", str(self.port),
               "--num_workers", "1"]
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop(keep_log=True)
                raise SystemExit(f"bench-peers: LiteLLM exited with status {self.process.returncode} before it "
                                 f"was ready.\n--- LiteLLM log ({self.log_path}) ---\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop(keep_log=True)
        raise SystemExit(f"bench-peers: LiteLLM not ready after {READY_TIMEOUT:.0f} s.\n"
                         f"--- LiteLLM log ({self.log_path}) ---\n{self.log_tail()}")

    def cpu(self) -> float:
        assert self.process is not None
        return tree_cpu_seconds(self.process.pid)

    def log_tail(self, max_chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if len(text) <= max_chars else "...\n" + text[-max_chars:]

    def stop(self, keep_log: bool = False) -> None:
        """SIGTERM to the process group this process leads (the proxy and its children), then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        if not keep_log and not os.environ.get("GEMINI_ROUTER_KEEP_LOGS"):
            for path in (self.config_path, self.log_path):
                path.unlink(missing_ok=True)
            try:
                self.workdir.rmdir()
            except OSError:
                pass


def check_answer(name: str, url: str, path: str, body: bytes, token: str) -> str:
    """One request of the workload: it must come back 200 with a chat.completion."""
    from tests import harness

    resp = harness.http_request(url, "POST", path, body=body,
                                headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    if resp.status != 200:
        raise SystemExit(f"bench-peers: {name} answered the workload with {resp!r}")
    answer = resp.json()
    if answer.get("object") != "chat.completion" or not answer.get("choices"):
        raise SystemExit(f"bench-peers: {name} did not answer a chat.completion: {resp!r}")
    return f"{name}: 200 {answer['object']} ({answer['choices'][0]['message']['content']!r})"


def litellm_version(binary: Path) -> str:
    python = binary.parent / "python"
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True, timeout=120)
    return out.stdout.strip() or "?"


def measure(args, litellm_bin: Path) -> dict:
    bodies = bench.write_bodies()
    ours = bench.Scenario("b", "chat, gemini model, ~1 KiB", "POST", bench.CHAT_PATH, bodies.small)
    theirs = bench.Scenario("b", "chat, gemini model, ~1 KiB", "POST", LITELLM_PATH, bodies.small)
    body = bodies.small.read_bytes()
    upstream = envoy = litellm = None
    sides = ("envoy", "litellm")
    runs: dict[str, list] = {side: [] for side in sides}
    try:
        log("starting the direct-response upstream and Envoy with gemini-router")
        upstream = bench.start_upstream()
        envoy = bench.start_front("filter", upstream.port, {})
        log(f"starting LiteLLM {args.litellm_version} ({litellm_bin}); it takes a while to import")
        litellm = LiteLLM(litellm_bin, upstream.port).start()
        checks = [check_answer("Envoy with gemini-router", envoy.url, bench.CHAT_PATH, body, "bench-key"),
                  check_answer("LiteLLM", litellm.url, LITELLM_PATH, body, litellm.master_key)]
        rss_idle = {"envoy": bench.proc_status(envoy.process.pid)["VmRSS"], "litellm": tree_rss_kib(litellm.process.pid)}

        def run_once(side: str, seconds: int):
            if side == "envoy":
                return bench.envoy_wrk_run(envoy, ours, seconds, args.connections)
            return bench.wrk_run(litellm.url, litellm.cpu, theirs, seconds, args.connections, litellm.master_key)

        log("warm-up")
        for side in sides:
            run_once(side, args.warmup)
        for r in range(args.repeats):
            for side in bench.rotation(list(sides), r):
                log(f"round {r + 1}/{args.repeats}: {side}")
                runs[side].append(run_once(side, args.duration))
        rss_after = {"envoy": bench.proc_status(envoy.process.pid)["VmRSS"], "litellm": tree_rss_kib(litellm.process.pid)}
        for side in sides:
            requests = sum(r.requests for r in runs[side])
            errors = sum(r.errors for r in runs[side])
            if errors > MAX_ERROR_SHARE * max(requests, 1):
                tail = litellm.log_tail() if side == "litellm" else envoy.log_tail()
                raise SystemExit(f"bench-peers: {side}: {errors} errors in {requests} requests; no figures written.\n"
                                 f"--- log ---\n{tail}")
        return {"runs": runs, "checks": checks, "rss_idle": rss_idle, "rss_after": rss_after}
    finally:
        if litellm is not None:
            litellm.stop()
        for proc in (envoy, upstream):
            if proc is not None:
                proc.stop()


def report(args, result: dict, note: list[str]) -> str:
    runs = result["runs"]
    e, lt = runs["envoy"], runs["litellm"]

    def med(rs, attr):
        return statistics.median(getattr(r, attr) for r in rs)

    def ratio(attr):
        x = bench.paired_ratio(lt, e, attr)
        return bench.fmt_ratio(x) if x is not None else "–"

    errors = sum(r.errors for r in e + lt)
    out = ["# gemini-router against LiteLLM", "",
           "Generated by `bench/peers.py` (`make bench-peers`). The same workload through two proxies in front "
           "of the same upstream, measured side by side in one run; absolute numbers depend on the machine and "
           "on whatever else it was doing.", ""]
    out += note + [""]
    out += ["## CPU per chat request", "",
            "Workload: scenario b of `bench/run.py`, an OpenAI chat request for "
            f"{bench.MODEL} (~1 KiB), answered by an Envoy returning a fixed `chat.completion`. "
            "Envoy (`--concurrency 1`) with gemini-router (`{\"api_style\":\"openai\"}`) at "
            f"`{bench.CHAT_PATH}`; LiteLLM {args.litellm_version} proxy (`litellm --config`, one uvicorn worker, "
            f"model `openai/{bench.MODEL}` with `api_base` the upstream, a master key) at `{LITELLM_PATH}`, offline and quiet "
            "(`LITELLM_LOCAL_MODEL_COST_MAP=True`, `LITELLM_LOG=ERROR`, no database, no callbacks). "
            f"wrk `-t1 -c{args.connections}`, {args.duration} s per run, {args.repeats} rounds alternating the order. "
            "CPU = user+system time per request of the Envoy process, and of LiteLLM's whole process tree. "
            "Figures are medians over the rounds; a ratio is the median over the rounds of LiteLLM ÷ Envoy "
            "measured in the same round.", "",
            "| | Envoy + gemini-router | LiteLLM | LiteLLM ÷ ours |", "|---|---:|---:|---:|",
            f"| CPU per request | {med(e, 'cpu_us'):.0f} µs | {med(lt, 'cpu_us'):.0f} µs | {ratio('cpu_us')} |",
            f"| requests/s | {med(e, 'rps'):,.0f} | {med(lt, 'rps'):,.0f} | {ratio('rps')} |",
            f"| p50 latency | {med(e, 'p50_ms'):.2f} ms | {med(lt, 'p50_ms'):.2f} ms | {ratio('p50_ms')} |",
            f"| p99 latency | {med(e, 'p99_ms'):.2f} ms | {med(lt, 'p99_ms'):.2f} ms | {ratio('p99_ms')} |"]
    for title, key in (("RSS idle (after start)", "rss_idle"), ("RSS after the load", "rss_after")):
        x, y = result[key]["envoy"] / 1024, result[key]["litellm"] / 1024
        out.append(f"| {title} | {x:.1f} MiB | {y:.1f} MiB | {bench.fmt_ratio(y / x)} |")
    out += ["", f"Errors (socket errors and non-2xx) over all runs: {errors}. "
            "What each answered (one request, before the load): " + "; ".join(result["checks"]) + ".", ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", default="target/wasm32-wasip1/release/gemini_router.wasm")
    parser.add_argument("--envoy", default=str(bench.ROOT / ".venv" / "bin" / "envoy"))
    parser.add_argument("--litellm", default=str(bench.ROOT / ".venv-peers" / "bin" / "litellm"),
                        help="the litellm executable (make bench-peers installs it into .venv-peers)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per load run (default 3)")
    parser.add_argument("--repeats", type=int, default=4, help="rounds, each running both proxies (default 4)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unrecorded load on each first (default 3)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1 s runs, 2 rounds)")
    parser.add_argument("--out", default=str(bench.BENCH / "peers.md"), help="Markdown report ('-' for none)")
    parser.add_argument("--revision", help="what code is measured, when this is not a git checkout")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats, args.warmup = 1, 2, 1

    litellm_bin = Path(args.litellm)
    if not litellm_bin.is_absolute():
        litellm_bin = bench.ROOT / litellm_bin
    if not litellm_bin.is_file():
        raise SystemExit(f"bench-peers: LiteLLM not found at {litellm_bin}: `make bench-peers` installs it "
                         "(litellm[proxy], pinned in the Makefile) into .venv-peers")
    wasm = Path(args.wasm)
    if not wasm.is_absolute():
        wasm = bench.ROOT / wasm
    if not wasm.is_file():
        raise SystemExit(f"bench-peers: {wasm} not found: run `make build`")
    os.environ["GEMINI_ROUTER_WASM"] = str(wasm)
    os.environ["ENVOY_BIN"] = args.envoy
    args.litellm_version = litellm_version(litellm_bin)
    bench.ensure_tools(need_node=False, required={"wrk": "wrk"})

    started_at = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    load_start = str(Path("/proc/loadavg").read_text().split()[0:3])
    result = measure(args, litellm_bin)
    text = report(args, result, bench.machine_note(args, started, load_start))
    text += f"\nWhole run: {time.monotonic() - started_at:.0f} s.\n"
    bench.emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
