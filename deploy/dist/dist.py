#!/usr/bin/env python3
"""Write the release artifacts of gemini-router into one directory, offline and
reproducibly (the same module gives the same bytes, every run):

    OUT/gemini_router.wasm          the module
    OUT/SHA256SUMS                  sha256 of the module and of the chart package
    OUT/oci/                        OCI image layout of the module (see below)
    OUT/image-digest                the image's manifest digest (sha256:...)
    OUT/gemini-router-CHART.tgz     the Helm chart: appVersion = crate version,
                                    module pulled from the OCI image by digest

The image is what Istio (istio-agent), Envoy Gateway and the chart's `oci` and
`imageVolume` sources pull: one manifest (linux/amd64, no index of platforms,
no attestations), one config, one gzip tar layer holding `plugin.wasm` with
fixed mtime, owner and mode. It is written without Docker; publish it with
skopeo:

    skopeo copy oci:OUT/oci:VERSION docker://ghcr.io/acme/gemini-router-wasm:VERSION

The digest does not change on the way, so the chart's pin holds.

    deploy/dist/dist.py --wasm target/wasm32-wasip1/release/gemini_router.wasm --out dist \\
        [--image ghcr.io/acme/gemini-router-wasm]

--image sets the chart's default image repository (else `helm install` asks
for --set wasm.oci.image=REPO). Needs Python 3.9+ and PyYAML.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "gemini-router"
CHART_EMBED_LIMIT = 655360  # wasm.source=chart refuses larger modules (see values.yaml)
WASM_MAGIC = b"\0asm\x01\0\0\0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class DistError(Exception):
    """An input is missing or does not have the shape this script expects."""


def hinted(module: bytes) -> bool:
    """Whether the module carries the branch hints `make build` gives it
    (build/hints.py): without them it runs the same, with more of V8's code
    per request."""
    sys.path.insert(0, str(ROOT / "build"))
    import hints

    try:
        return bool(hints.read_hints(module))
    except hints.WasmError as err:
        raise DistError(f"the module cannot be read: {err}") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def deterministic_tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A tar of (name, data) entries, data None for a directory; fixed owner,
    mode and mtime, in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def deterministic_gzip(data: bytes) -> bytes:
    """gzip with no file name and mtime 0, so equal input gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def write_blob(layout: Path, data: bytes) -> dict:
    digest = sha256(data)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_oci_layout(module: bytes, layout: Path, version: str) -> str:
    """Write the image; return its manifest digest (sha256:...)."""
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    layer_tar = deterministic_tar([("plugin.wasm", module)])
    layer = {"mediaType": OCI_LAYER, **write_blob(layout, deterministic_gzip(layer_tar))}
    config = {
        "mediaType": OCI_CONFIG,
        **write_blob(layout, canonical_json({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256(layer_tar)}"]},
        })),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
        "annotations": {
            "org.opencontainers.image.title": "gemini-router",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.description": "proxy-wasm filter for Envoy that routes Gemini API requests "
                                                    "to the endpoint serving the model; module at /plugin.wasm",
            "org.opencontainers.image.licenses": "Apache-2.0",
        },
    }
    manifest_desc = {"mediaType": OCI_MANIFEST, **write_blob(layout, canonical_json(manifest))}
    # index.json is the layout's table of contents (the tag), not a pushed
    # multi-platform index: skopeo copies the one manifest it names.
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**manifest_desc, "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"org.opencontainers.image.ref.name": version}}],
    }
    (layout / "index.json").write_bytes(canonical_json(index))
    (layout / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return manifest_desc["digest"]


def set_line(text: str, pattern: str, replacement: str, what: str) -> str:
    """Replace the one line matching `pattern` (keeps the file's comments)."""
    new, count = re.subn(pattern, replacement, text, count=2, flags=re.M)
    if count != 1:
        raise DistError(f"chart: expected one line for {what}, found {count}")
    return new


def chart_files(version: str, digest: str, image: str | None, module: bytes) -> list[tuple[str, bytes]]:
    """The chart's files as packaged: appVersion, the module image pinned by
    digest as the default source, the module embedded when it fits."""
    files: dict[str, bytes] = {}
    for path in sorted(CHART.rglob("*")):
        if path.is_file() and path.suffix not in (".wasm", ".tgz"):
            files[path.relative_to(CHART).as_posix()] = path.read_bytes()
    chart_yaml = set_line(files["Chart.yaml"].decode(), r'^appVersion: .*$', f'appVersion: "{version}"', "appVersion")
    files["Chart.yaml"] = chart_yaml.encode()
    values = files["values.yaml"].decode()
    values = set_line(values, r'^  source: configmap$', "  source: oci", "wasm.source")
    values = set_line(values, r'^    digest: ""$', f'    digest: "{digest}"', "wasm.oci.digest")
    if image:
        values = set_line(values, r'^    image: ""$', f'    image: "{image}"', "wasm.oci.image")
    parsed = yaml.safe_load(values)["wasm"]
    if (parsed["source"], parsed["oci"]["digest"], parsed["oci"]["image"]) != ("oci", digest, image or ""):
        raise DistError(f"chart: values.yaml did not take the dist defaults: {parsed}")
    files["values.yaml"] = values.encode()
    if len(module) <= CHART_EMBED_LIMIT:
        files["files/gemini_router.wasm"] = module
    return sorted(files.items())


def package_chart(files: list[tuple[str, bytes]], out: Path) -> Path:
    meta = yaml.safe_load(dict(files)["Chart.yaml"])
    name, version = meta["name"], meta["version"]
    entries: list[tuple[str, bytes | None]] = []
    seen_dirs: set[str] = set()
    for rel, data in files:
        parts = f"{name}/{rel}".split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                entries.append((directory, None))
        entries.append((f"{name}/{rel}", data))
    package = out / f"{name}-{version}.tgz"
    package.write_bytes(deterministic_gzip(deterministic_tar(entries)))
    return package


def crate_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    if not match:
        raise DistError("Cargo.toml: no package version")
    return match.group(1)


def dist(wasm: Path, out: Path, image: str | None) -> dict:
    if not wasm.is_file():
        raise DistError(f"{wasm} not found: run `make build` first")
    module = wasm.read_bytes()
    if not module.startswith(WASM_MAGIC):
        raise DistError(f"{wasm} is not a WebAssembly module")
    if not hinted(module):
        raise DistError(f"{wasm} has no branch hints (built with BRANCH_HINTS=off, or by cargo alone): "
                        "a release is the module `make build` writes")
    if image and not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+", image):
        raise DistError(f"--image: expected REGISTRY/REPOSITORY without tag or digest, got {image!r}")
    version = crate_version()
    out.mkdir(parents=True, exist_ok=True)
    (out / "gemini_router.wasm").write_bytes(module)
    digest = write_oci_layout(module, out / "oci", version)
    (out / "image-digest").write_text(digest + "\n")
    package = package_chart(chart_files(version, digest, image, module), out)
    sums = "".join(f"{sha256(p.read_bytes())}  {p.name}\n" for p in (out / "gemini_router.wasm", package))
    (out / "SHA256SUMS").write_text(sums)
    return {"version": version, "digest": digest, "chart": package, "module_sha256": sha256(module)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", type=Path, required=True, help="the built module")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)")
    parser.add_argument("--image", help="the chart's default image repository, REGISTRY/REPO (no tag)")
    args = parser.parse_args(argv)
    try:
        result = dist(args.wasm, args.out, args.image)
    except DistError as err:
        print(f"dist.py: {err}", file=sys.stderr)
        return 2
    out = args.out
    print(f"module        {out / 'gemini_router.wasm'}  sha256 {result['module_sha256']}")
    print(f"OCI layout    {out / 'oci'}  tag {result['version']}  digest {result['digest']}")
    print(f"chart         {result['chart']}  (wasm.source=oci, pinned to {result['digest']})")
    print(f"publish:      skopeo copy oci:{out / 'oci'}:{result['version']} docker://REGISTRY/gemini-router-wasm:{result['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
