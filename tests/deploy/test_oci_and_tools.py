"""The OCI image recipe and its build script, the tool installers, and the
shipped Envoy configs on the oldest supported Envoy."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import CI_VALUES, REPO, chart_envoy_config, run

DOCKERFILE = REPO / "deploy" / "oci" / "Dockerfile"
BUILD = REPO / "deploy" / "oci" / "build.sh"
ENVOY_DIR = REPO / "deploy" / "envoy"
HELM_VERSION = "v4.1.4"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    out = []
    for line in re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_scratch_with_the_module_at_plugin_wasm():
    steps = instructions(DOCKERFILE)
    assert steps[0] == ("FROM", "scratch")
    assert [s for s in steps if s[0] not in ("LABEL",)] == [("FROM", "scratch"), ("COPY", "gemini_router.wasm /plugin.wasm")]


def fake_bin(tmp_path: Path, tools: dict[str, str]) -> dict[str, str]:
    """A PATH with the few commands build.sh needs and the given fake tools."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("dirname", "sed", "head", "mktemp", "cp", "rm", "cat", "ls", "bash"):
        for prefix in ("/usr/bin", "/bin"):
            if Path(prefix, name).exists():
                (bindir / name).symlink_to(Path(prefix, name))
                break
    for name, script in tools.items():
        path = bindir / name
        path.write_text("#!/bin/bash\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {"PATH": str(bindir), "HOME": str(tmp_path)}


def test_build_without_a_container_tool_says_so_and_succeeds(tmp_path, wasm):
    # A docker CLI without an engine counts as no tool.
    env = fake_bin(tmp_path, {"docker": "exit 1\n"})
    proc = run(["/bin/bash", str(BUILD), str(wasm)], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no container tool" in proc.stdout


def test_build_uses_podman_with_the_dockerfile_and_the_module(tmp_path, wasm):
    record = tmp_path / "podman.txt"
    env = fake_bin(tmp_path, {"podman": f'echo "$@" > {record}\nls "${{@: -1}}" >> {record}\n'})
    proc = run(["/bin/bash", str(BUILD), str(wasm), "registry.example/gemini-router-wasm:test"], env=env)
    assert proc.returncode == 0, proc.stderr
    args, listing = record.read_text().splitlines()[0], record.read_text().splitlines()[1:]
    assert args.startswith(f"build -f {DOCKERFILE} -t registry.example/gemini-router-wasm:test ")
    assert listing == ["gemini_router.wasm"]


def test_build_without_the_module_points_at_make_build(tmp_path):
    proc = run(["/bin/bash", str(BUILD), str(tmp_path / "missing.wasm")])
    assert proc.returncode == 1
    assert "make build" in proc.stderr


def test_install_helm_is_idempotent_and_pinned(helm):
    assert helm == str(REPO / ".tools" / "bin" / "helm")
    again = run([str(REPO / "scripts" / "install-helm.sh")])
    assert again.returncode == 0 and again.stdout.strip() == helm
    version = run([helm, "version", "--template", "{{.Version}}"])
    assert version.stdout.strip() == HELM_VERSION


@pytest.mark.parametrize("args", [[], ["latest"], ["1.36"], ["1.36.2", "extra"]])
def test_install_envoy_refuses_bad_usage(args):
    proc = run([str(REPO / "scripts" / "install-envoy.sh"), *args])
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def validate_with(envoy: str, text: str, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    proc = run([envoy, "--mode", "validate", "-c", str(path), "--base-id", str(harness._next_base_id())])
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("template", ["envoy.yaml", "envoy-vertex.yaml"])
def test_shipped_configs_validate_on_the_oldest_supported_envoy(template, old_envoy, wasm, tmp_path):
    proc = run([sys.executable, str(ENVOY_DIR / "render.py"), "--template", str(ENVOY_DIR / template), "--wasm", str(wasm)])
    assert proc.returncode == 0, proc.stderr
    code, output = validate_with(old_envoy, proc.stdout, tmp_path)
    assert code == 0, output


def test_chart_config_validates_on_the_oldest_supported_envoy(old_envoy, rendered, wasm, tmp_path):
    config = chart_envoy_config(rendered(next(p for p in CI_VALUES if p.stem == "egress")), wasm)
    code, output = validate_with(old_envoy, yaml.safe_dump(config), tmp_path)
    assert code == 0, output
