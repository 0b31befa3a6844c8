"""Graceful drain: the chart's preStop hook, run against the chart's rendered
Envoy config (with the chart's Envoy arguments) and the built module. A long
request in flight when the hook starts completes; once the drain period is
over new connections are refused; the health listener keeps answering
liveness; the hook returns only after the long request is done."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import yaml

from tests import harness
from tests.deploy.artifacts import RunningEnvoy, chart_envoy_config, find, parse_manifests
from tests.deploy.slow_upstream import SlowUpstream

DRAIN_SECONDS = 2
UPSTREAM_DELAY = 7.0
NATIVE_CALL = "/v1beta/models/gemini-2.5-flash:generateContent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_prestop_drains_without_cutting_the_request_in_flight(helm_template, wasm, tmp_path):
    listen, admin, health = free_port(), free_port(), free_port()
    with SlowUpstream(UPSTREAM_DELAY) as upstream:
        proc = helm_template(
            "--set", f"upstream.host=127.0.0.1,upstream.port={upstream.port},upstream.tls=false",
            "--set", f"envoy.listenAddress=127.0.0.1,envoy.listenPort={listen},envoy.adminPort={admin},envoy.healthPort={health}",
            "--set", f"drain.seconds={DRAIN_SECONDS},envoy.concurrency=1",
        )
        assert proc.returncode == 0, proc.stderr
        docs = parse_manifests(proc.stdout)
        container = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        hook = container["lifecycle"]["preStop"]["exec"]["command"]
        assert hook[:2] == ["/bin/bash", "-c"]
        args = container["args"]
        config_at = args.index("--config-path")
        envoy_args = tuple(args[:config_at] + args[config_at + 2:])
        assert "--drain-time-s" in envoy_args
        config = chart_envoy_config(docs, wasm)

        with RunningEnvoy(config, tmp_path, args=envoy_args) as envoy:
            result: dict = {}

            def long_request() -> None:
                result["response"] = harness.http_request(
                    f"http://127.0.0.1:{listen}", "POST", NATIVE_CALL, headers=harness.NATIVE_AUTH,
                    json_body={"contents": [{"parts": [{"text": "a long one"}]}]}, timeout=60)
                result["done"] = time.monotonic()

            client = threading.Thread(target=long_request)
            client.start()
            assert upstream.received.wait(10), envoy.log_tail()

            started = time.monotonic()
            prestop = subprocess.Popen(hook, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = started + DRAIN_SECONDS + 4
            while not refused(listen):
                assert time.monotonic() < deadline, f"listener still accepting:\n{envoy.log_tail()}"
                time.sleep(0.1)
            refused_at = time.monotonic()
            assert client.is_alive(), "the long request ended before the listener closed: the test proves nothing"
            assert refused_at - started >= DRAIN_SECONDS - 0.5, "the listener closed before the drain period ended"
            # Probes and scrapes go to the health listener, which the drain leaves open.
            assert harness.http_request(f"http://127.0.0.1:{health}", "GET", "/live").status == 200

            output, _ = prestop.communicate(timeout=UPSTREAM_DELAY + 20)
            hook_done = time.monotonic()
            client.join(timeout=30)
            assert prestop.returncode == 0, output
            response = result["response"]
            assert response.status == 200, (response, envoy.log_tail())
            assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "done"
            # Answered during the drain: the client is told not to reuse the connection.
            assert response.headers.get("connection") == "close", response
            assert hook_done >= result["done"] - 0.2, "the hook returned while the request was still in flight"
            assert envoy.process.poll() is None, "Envoy must keep running until the kubelet stops it"


def test_grace_period_must_cover_drain_and_route_timeout(helm_template):
    proc = helm_template("--set", "terminationGracePeriodSeconds=300")
    assert proc.returncode != 0
    assert "drain.seconds + envoy.routeTimeout (615 s)" in proc.stderr, proc.stderr
    proc = helm_template("--set", "envoy.routeTimeout=10m,terminationGracePeriodSeconds=614")
    assert proc.returncode != 0 and "(615 s)" in proc.stderr, proc.stderr
    assert helm_template("--set", "drain.enabled=false,terminationGracePeriodSeconds=30").returncode == 0
