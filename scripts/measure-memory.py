#!/usr/bin/env python3
"""Measure Envoy's memory per concurrent translated Imagen request.

Runs the Helm chart's rendered Envoy config (egress mode, chart defaults: 64 MiB
buffers, max_body_bytes 32 MiB, the overload manager) with the built module, in
front of a tiny local upstream that answers every Imagen `:predict` with one
prediction of IMAGE_MIB of base64. For each Envoy concurrency (workers, one
Wasm VM each) and each number N of concurrent OpenAI chat requests for
`imagen-4.0-generate-001` (chat -> :predict -> chat.completion, the largest
translation the filter does), a fresh Envoy is started and measured:

- idle: VmRSS after one small request (the VMs exist and have run once);
- peak: the highest VmRSS sampled every 10 ms while the N requests run;
- after: VmRSS once all N answers are read (Wasm memory is never returned to
  the system, so a VM keeps its peak);
- peak heap: the highest `allocated` of the admin API's /memory (read live
  from the allocator) sampled alongside: Envoy's own
  heap (request and response buffers), which is what the overload manager's
  fixed-heap monitor sees; Wasm VM memory is mapped outside it.

Not part of `make test` (it moves gigabytes through loopback): run it with
`make measure-memory` or `.venv/bin/python scripts/measure-memory.py`, and paste
the table it prints into deploy/README.md ("Sizing").
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import harness  # noqa: E402
from tests.deploy.artifacts import RunningEnvoy, chart_envoy_config, parse_manifests, run  # noqa: E402

MIB = 1024 * 1024
MODEL = "imagen-4.0-generate-001"


class PredictUpstream(http.server.ThreadingHTTPServer):
    """Answers POST ...:predict with one big prediction; anything else with {}."""

    daemon_threads = True

    def __init__(self, image_bytes: int) -> None:
        self.answer = json.dumps({"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "A" * image_bytes}]}).encode()
        super().__init__(("127.0.0.1", 0), PredictHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


class PredictHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = self.server.answer if self.path.endswith(":predict") else b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def chat(port: int, model: str, prompt: str) -> tuple[int, int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    conn.request("POST", "/v1beta/openai/chat/completions", body,
                 {**harness.OPENAI_AUTH, "content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    kind = ""
    if resp.status == 200:
        kind = json.loads(data).get("object", "")
    return resp.status, len(data), kind


def render(helm: str, upstream: int, listen: int, admin: int, health: int, concurrency: int) -> tuple[dict, tuple[str, ...]]:
    proc = run([helm, "template", "gr", str(REPO / "deploy" / "helm" / "gemini-router"), "--namespace", "ai",
                "--set", f"upstream.host=127.0.0.1,upstream.port={upstream},upstream.tls=false",
                "--set", f"envoy.listenAddress=127.0.0.1,envoy.listenPort={listen},envoy.adminPort={admin},envoy.healthPort={health}",
                "--set", f"envoy.concurrency={concurrency}",
                # Imagen is shut down (December 2026): keep the request on
                # :predict so the largest translation is what is measured.
                "--set", "filter.migrate=never"])
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    docs = parse_manifests(proc.stdout)
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    at = args.index("--config-path")
    return chart_envoy_config(docs, harness.wasm_path()), tuple(args[:at] + args[at + 2:])


def measure(helm: str, upstream: PredictUpstream, concurrency: int, n: int) -> dict:
    listen, admin, health = free_port(), free_port(), free_port()
    config, args = render(helm, upstream.port, listen, admin, health, concurrency)
    with tempfile.TemporaryDirectory(prefix="gemini-router-mem-") as work, RunningEnvoy(config, Path(work), args=args) as envoy:
        pid = envoy.process.pid
        status, _, _ = chat(listen, "gemini-2.5-flash", "warm up")
        assert status == 200, (status, envoy.log_tail())
        time.sleep(0.5)
        idle = rss(pid)
        peak, peak_heap, stop = idle, 0, threading.Event()

        def sample() -> None:
            nonlocal peak, peak_heap
            while not stop.is_set():
                peak = max(peak, rss(pid))
                _, body = envoy.admin_get("/memory")
                peak_heap = max(peak_heap, int(json.loads(body)["allocated"]))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        results: list[tuple[int, int, str]] = []
        clients = [threading.Thread(target=lambda i=i: results.append(chat(listen, MODEL, f"fox {i}"))) for i in range(n)]
        started = time.monotonic()
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        seconds = time.monotonic() - started
        time.sleep(0.5)
        stop.set()
        sampler.join()
        after = rss(pid)
        stats = envoy.stats()
        bad = [r for r in results if r[0] != 200 or r[2] != "chat.completion"]
        if bad:
            raise SystemExit(f"requests failed: {bad}\n{envoy.log_tail()}")
        return {"concurrency": concurrency, "n": n, "idle": idle, "peak": peak, "after": after,
                "heap": int(stats.get("server.memory_heap_size", 0)), "peak_heap": peak_heap, "answer": results[0][1], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-mib", type=float, default=30.0,
                        help="base64 size of the prediction (default 30: the answer stays under max_body_bytes, 32 MiB)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2], help="Envoy worker counts")
    parser.add_argument("-n", type=int, nargs="+", default=[1, 2, 4], help="concurrent requests")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines too")
    ns = parser.parse_args()
    helm = run([str(REPO / "scripts" / "install-helm.sh")], timeout=600).stdout.strip().splitlines()[-1]
    upstream = PredictUpstream(int(ns.image_mib * MIB))
    print(f"upstream answer {len(upstream.answer) / MIB:.1f} MiB; Envoy {harness.envoy_bin()}", flush=True)
    print("| workers | concurrent requests | idle RSS | peak RSS | RSS after | peak - idle per request | Envoy heap peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for concurrency in ns.concurrency:
        for n in ns.n:
            row = measure(helm, upstream, concurrency, n)
            per = (row["peak"] - row["idle"]) / n
            print(f"| {concurrency} | {n} | {row['idle'] / MIB:.0f} MiB | {row['peak'] / MIB:.0f} MiB | "
                  f"{row['after'] / MIB:.0f} MiB | {per / MIB:.0f} MiB | {row['peak_heap'] / MIB:.0f} MiB |", flush=True)
            if ns.json:
                print(json.dumps(row), flush=True)
    upstream.shutdown()


if __name__ == "__main__":
    main()
