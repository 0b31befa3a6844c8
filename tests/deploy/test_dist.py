"""`make dist` (deploy/dist/dist.py): the release artifacts, built twice to the
same bytes; the OCI layout checked by skopeo and unpacked the way istio-agent
and the chart's init container unpack it; and the packaged chart, from the dist
output alone, rendering an egress deployment that pulls the module by digest,
whose Envoy config then runs with the module taken out of the pulled image."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests import harness
from tests.deploy.artifacts import K8S_VERSIONS, REPO, RunningEnvoy, find, parse_manifests, run, wasm_filter

DIST = REPO / "deploy" / "dist" / "dist.py"
IMAGE = "registry.example.com/acme/gemini-router-wasm"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def crate_version() -> str:
    return next(line.split('"')[1] for line in (REPO / "Cargo.toml").read_text().splitlines() if line.startswith("version"))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def make_dist(wasm: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = run([sys.executable, str(DIST), "--wasm", str(wasm), "--out", str(out), *extra])
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def dist_dir(wasm, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    make_dist(wasm, out)
    return out


@pytest.fixture(scope="module")
def skopeo() -> str:
    path = shutil.which("skopeo")
    if not path:
        pytest.fail("skopeo not found: `make deploy-check` installs it (apt-get install skopeo)", pytrace=False)
    return path


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, f"blob {digest} does not match its digest"
    return data


def test_dist_is_reproducible(dist_dir, wasm, tmp_path):
    make_dist(wasm, tmp_path / "again")
    first, second = files_of(dist_dir), files_of(tmp_path / "again")
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert not different, f"not reproducible: {different}"


def test_checksums_and_module(dist_dir, wasm):
    assert (dist_dir / "gemini_router.wasm").read_bytes() == wasm.read_bytes()
    sums = dict(reversed(line.split("  ")) for line in (dist_dir / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"gemini_router.wasm", "gemini-router-0.1.0.tgz"}
    for name, digest in sums.items():
        assert hashlib.sha256((dist_dir / name).read_bytes()).hexdigest() == digest, name


def test_skopeo_reads_one_linux_amd64_manifest_with_one_layer(dist_dir, skopeo, tmp_path):
    ref = f"oci:{dist_dir / 'oci'}:{crate_version()}"
    info = json.loads(run([skopeo, "inspect", ref]).stdout)
    digest = (dist_dir / "image-digest").read_text().strip()
    assert info["Digest"] == digest
    assert (info["Os"], info["Architecture"], len(info["Layers"])) == ("linux", "amd64", 1)
    raw = run([skopeo, "inspect", "--raw", ref]).stdout.encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.manifest.v1+json"  # not an index
    # Publishing keeps the digest (the chart's and the EnvoyFilter's pin).
    copy = run([skopeo, "copy", "--preserve-digests", ref, f"oci:{tmp_path / 'pushed'}:x"])
    assert copy.returncode == 0, copy.stderr
    assert json.loads(run([skopeo, "inspect", f"oci:{tmp_path / 'pushed'}:x"]).stdout)["Digest"] == digest


def test_unpacked_like_istio_agent(dist_dir, wasm):
    """istio-agent's fetcher: the tag resolves to one image manifest whose digest
    is the pin (`sha256` in the EnvoyFilter); the last layer must be an OCI
    gzip tar holding a file named plugin.wasm; that file must be WebAssembly."""
    layout = dist_dir / "oci"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1, "one manifest: no platform index, no attestation manifests"
    descriptor = index["manifests"][0]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == crate_version()
    assert descriptor["digest"] == (dist_dir / "image-digest").read_text().strip()
    manifest = json.loads(blob(layout, descriptor["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert len(manifest["layers"]) == 1 and manifest["layers"][0]["mediaType"] == OCI_LAYER
    layer = blob(layout, manifest["layers"][-1]["digest"])
    tar_bytes = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"]
        assert (members[0].mtime, members[0].uid, members[0].gid, members[0].mode) == (0, 0, 0, 0o644)
        module = tar.extractfile(members[0]).read()
    assert module == wasm.read_bytes() and module.startswith(b"\0asm\x01\0\0\0")
    # The chart's init container: `crane export IMAGE - | tar -xOf - plugin.wasm`.
    extracted = subprocess.run(["tar", "-xOf", "-", "plugin.wasm"], input=tar_bytes, capture_output=True, check=True)
    assert extracted.stdout == module


def test_packaged_chart_needs_the_image_repository_or_takes_it_from_dist(dist_dir, helm, wasm, tmp_path):
    package = dist_dir / "gemini-router-0.1.0.tgz"
    digest = (dist_dir / "image-digest").read_text().strip()
    refused = run([helm, "template", "gr", str(package)])
    assert refused.returncode != 0 and "/wasm/oci/image" in refused.stderr, refused.stderr
    make_dist(wasm, tmp_path / "with-image", "--image", IMAGE)
    alone = run([helm, "template", "gr", str(tmp_path / "with-image" / "gemini-router-0.1.0.tgz"), "-n", "ai"])
    assert alone.returncode == 0, alone.stderr
    init = find(parse_manifests(alone.stdout), "Deployment")["spec"]["template"]["spec"]["initContainers"][0]
    assert {e["name"]: e["value"] for e in init["env"]}["WASM_IMAGE"] == f"{IMAGE}@{digest}"


def pulled_module(dist_dir: Path, skopeo: str, where: Path) -> Path:
    """Pull the image the way a registry client would (skopeo, to a directory)
    and unpack /plugin.wasm as the chart's init container does."""
    proc = run([skopeo, "copy", f"oci:{dist_dir / 'oci'}:{crate_version()}", f"dir:{where / 'pulled'}"])
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((where / "pulled" / "manifest.json").read_text())
    layer = (where / "pulled" / manifest["layers"][0]["digest"].removeprefix("sha256:")).read_bytes()
    module = where / "plugin.wasm"
    module.write_bytes(subprocess.run(["tar", "-xzOf", "-", "plugin.wasm"], input=layer, capture_output=True,
                                      check=True).stdout)
    return module


def test_dist_chart_deploys_the_module_from_the_image_by_digest(dist_dir, helm, skopeo, emulator, tmp_path):
    """From the dist output alone: helm lint and template of the package (the
    image repository set at install), manifests valid for Kubernetes, appVersion
    the crate's, the init container pulling REPO@digest; then that Envoy config,
    with the module out of the pulled image, routes a request."""
    package = dist_dir / "gemini-router-0.1.0.tgz"
    digest = (dist_dir / "image-digest").read_text().strip()
    lint = run([helm, "lint", "--strict", str(package), "--set", f"wasm.oci.image={IMAGE}"])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    proc = run([helm, "template", "gr", str(package), "-n", "ai", "--set", f"wasm.oci.image={IMAGE}",
                "--set", f"upstream.host=127.0.0.1,upstream.port={emulator.port},upstream.tls=false",
                "--set", "envoy.listenPort={},envoy.adminPort={},envoy.healthPort={}".format(*free_ports(3))])
    assert proc.returncode == 0, proc.stderr
    docs = parse_manifests(proc.stdout)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    deployment = find(docs, "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == crate_version()
    pod = deployment["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert {e["name"]: e["value"] for e in init["env"]}["WASM_IMAGE"] == f"{IMAGE}@{digest}"

    config = yaml.safe_load(find(docs, "ConfigMap", "-envoy")["data"]["envoy.yaml"])
    code = wasm_filter(config)["vm_config"]["code"]["local"]
    assert code["filename"] == {e["name"]: e["value"] for e in init["env"]}["WASM_PATH"]
    code["filename"] = str(pulled_module(dist_dir, skopeo, tmp_path))
    (tmp_path / "run").mkdir()
    with RunningEnvoy(config, tmp_path / "run") as envoy:
        url = f"http://127.0.0.1:{envoy.port('gemini')}"
        body = {"model": "imagen-4.0-generate-001", "messages": [{"role": "user", "content": "a lighthouse"}]}
        resp = harness.http_request(url, "POST", "/v1beta/openai/chat/completions", json_body=body,
                                    headers=harness.OPENAI_AUTH)
        assert resp.status == 200, (resp, envoy.log_tail())
        # Imagen 4 is shut down (December 2026): its replacement serves it.
        assert harness.only_request(emulator)["path"] == "/v1beta/models/gemini-3.1-flash-image:generateContent"


def test_dist_refuses_bad_input(tmp_path):
    (tmp_path / "x.wasm").write_bytes(b"not wasm")
    proc = run([sys.executable, str(DIST), "--wasm", str(tmp_path / "x.wasm"), "--out", str(tmp_path / "o")])
    assert proc.returncode == 2 and "not a WebAssembly module" in proc.stderr
    proc = run([sys.executable, str(DIST), "--wasm", str(tmp_path / "missing.wasm"), "--out", str(tmp_path / "o")])
    assert proc.returncode == 2 and "make build" in proc.stderr


def test_dist_refuses_a_module_without_its_branch_hints(wasm, tmp_path):
    sys.path.insert(0, str(REPO / "build"))
    import hints

    bare = tmp_path / "bare.wasm"
    bare.write_bytes(hints.Module(wasm.read_bytes()).without_hints().to_bytes())
    proc = run([sys.executable, str(DIST), "--wasm", str(bare), "--out", str(tmp_path / "o")])
    assert proc.returncode == 2 and "no branch hints" in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_module_is_embedded_in_the_chart_when_it_fits(dist_dir, helm, wasm):
    """Under the chart's 640 KiB cut-off the package carries the module, so
    `--set wasm.source=chart` installs without any registry."""
    package = dist_dir / "gemini-router-0.1.0.tgz"
    with tarfile.open(package) as tar:
        names = tar.getnames()
        embedded = "gemini-router/files/gemini_router.wasm" in names
        module = tar.extractfile("gemini-router/files/gemini_router.wasm").read() if embedded else None
    assert embedded == (wasm.stat().st_size <= 655360)
    if not embedded:
        return
    assert module == wasm.read_bytes()
    proc = run([helm, "template", "gr", str(package), "--set", "wasm.source=chart"])
    assert proc.returncode == 0, proc.stderr
    configmap = find(parse_manifests(proc.stdout), "ConfigMap", "-wasm")
    assert base64.b64decode(configmap["binaryData"]["gemini_router.wasm"]) == module
