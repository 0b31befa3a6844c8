"""Fixtures for the deployment-artifact checks (offline, no cluster, no container engine).

- ``wasm`` (session): the built module; fails (never skips) with "run `make build`"
  when it is missing.
- ``helm`` (session): the pinned helm from ``scripts/install-helm.sh`` (idempotent).
- ``chart`` (session): a copy of deploy/helm/gemini-router with the built module
  in ``files/``, as ``deploy/helm/package.sh`` would ship it.
- ``helm_template(*args)``: ``helm template`` of that copy; returns the process.
- ``rendered(values_file)``: the parsed manifests for a values file (cached).
- ``envoy_validate(config)``: ``envoy --mode validate`` on a config (dict or YAML
  text); returns ``(returncode, output)``. Uses ``ENVOY_BIN`` like the
  integration harness, so ``make matrix``-style runs can point it at another Envoy.
- ``old_envoy`` (session): the oldest supported Envoy (``ENVOY_OLDEST`` in the
  Makefile), installed by ``scripts/install-envoy.sh`` (idempotent); its path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import CHART, REPO, parse_manifests, run


@pytest.fixture(scope="session")
def wasm() -> Path:
    try:
        return harness.wasm_path()
    except harness.WasmMissing as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def helm() -> str:
    proc = run([str(REPO / "scripts" / "install-helm.sh")], timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"scripts/install-helm.sh failed:\n{proc.stderr}", pytrace=False)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory, wasm: Path) -> Path:
    copy = tmp_path_factory.mktemp("chart") / "gemini-router"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("*.wasm", "*.tgz"))
    shutil.copyfile(wasm, copy / "files" / "gemini_router.wasm")
    return copy


@pytest.fixture(scope="session")
def helm_template(helm: str, chart: Path) -> Callable[..., subprocess.CompletedProcess]:
    def template(*args: str, chart_dir: Path | None = None) -> subprocess.CompletedProcess:
        return run([helm, "template", "gr", str(chart_dir or chart), "--namespace", "ai", *args])

    return template


@pytest.fixture(scope="session")
def rendered(helm_template) -> Callable[[Path], list[dict]]:
    cache: dict[Path, list[dict]] = {}

    def render(values_file: Path) -> list[dict]:
        if values_file not in cache:
            proc = helm_template("-f", str(values_file))
            assert proc.returncode == 0, f"helm template -f {values_file.name} failed:\n{proc.stderr}"
            cache[values_file] = parse_manifests(proc.stdout)
        return cache[values_file]

    return render


@pytest.fixture(scope="session")
def envoy_validate() -> Callable[[dict | str], tuple[int, str]]:
    def validate(config: dict | str) -> tuple[int, str]:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        with tempfile.TemporaryDirectory(prefix="gemini-router-deploy-") as work:
            path = Path(work) / "envoy.yaml"
            path.write_text(text)
            proc = run(
                [harness.envoy_bin(), "--mode", "validate", "-c", str(path),
                 "--base-id", str(harness._next_base_id()), "--log-level", "info"],
                timeout=120,
            )
        return proc.returncode, proc.stdout + proc.stderr

    return validate


def oldest_envoy() -> str:
    """ENVOY_OLDEST from the Makefile: the bottom of the supported range."""
    match = re.search(r"^ENVOY_OLDEST\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert match, "Makefile has no ENVOY_OLDEST"
    return match.group(1)


@pytest.fixture(scope="session")
def old_envoy() -> str:
    version = oldest_envoy()
    proc = run([str(REPO / "scripts" / "install-envoy.sh"), version], timeout=600)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip().splitlines()[-1]
    assert f"/{version}/" in run([path, "--version"]).stdout
    return path
