"""Shared helpers for the deployment checks: paths, subprocess, manifest lookup."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests import harness

REPO = harness.REPO_ROOT
CHART = REPO / "deploy" / "helm" / "gemini-router"
CI_VALUES = sorted((REPO / "deploy" / "helm" / "ci-values").glob("*.yaml"))
# Kubernetes versions the rendered manifests are checked against: the oldest the
# chart's features need together (image volumes are beta from 1.33; native
# sidecars and preStop sleep from 1.29), and the newest kubernetes-validate ships.
K8S_VERSIONS = ("1.33.0", "1.37.0")
WASM_IN_POD = ("/etc/gemini-router/wasm/gemini_router.wasm", "/etc/gemini-router/wasm/plugin.wasm")


def run(cmd: list[str], timeout: float = 300.0, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def parse_manifests(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict], kind: str, name_suffix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def wasm_filter(envoy_config: dict) -> dict:
    """The Wasm PluginConfig of the gemini listener."""
    listener = next(l for l in envoy_config["static_resources"]["listeners"] if l["name"] == "gemini")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm_filters = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm"]
    assert len(wasm_filters) == 1, "expected one Wasm HTTP filter on the gemini listener"
    return wasm_filters[0]["typed_config"]["config"]


def chart_envoy_config(docs: list[dict], wasm: Path) -> dict:
    """The Envoy config of a rendered release, with the module path made local."""
    text = find(docs, "ConfigMap", "-envoy")["data"]["envoy.yaml"]
    config = yaml.safe_load(text)
    code = wasm_filter(config)["vm_config"]["code"]["local"]
    assert code["filename"] in WASM_IN_POD, code
    code["filename"] = str(wasm)
    return config
