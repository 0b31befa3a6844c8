#!/usr/bin/env bash
# Usage: deploy/oci/build.sh [WASM] [IMAGE]
# Build the OCI image of the module (deploy/oci/Dockerfile) with the first
# container tool found: docker (with a reachable engine), podman or buildah.
# WASM defaults to target/wasm32-wasip1/release/gemini_router.wasm; IMAGE to
# gemini-router-wasm:<crate version>. Without a container tool it says so and
# exits 0, so `make oci` does not fail on machines that cannot build images.
# Push with your tool afterwards, e.g. docker push IMAGE.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
wasm="${1:-$root/target/wasm32-wasip1/release/gemini_router.wasm}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
image="${2:-gemini-router-wasm:${version:-dev}}"

if [[ ! -s "$wasm" ]]; then
  echo "build.sh: $wasm not found: run \`make build\` first" >&2
  exit 1
fi

tool=""
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  tool=docker
elif command -v podman >/dev/null 2>&1; then
  tool=podman
elif command -v buildah >/dev/null 2>&1; then
  tool=buildah
fi
if [[ -z "$tool" ]]; then
  echo "build.sh: no container tool here (docker with a running engine, podman or buildah); image not built."
  echo "build.sh: elsewhere run: deploy/oci/build.sh $wasm $image"
  exit 0
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$wasm" "$context/gemini_router.wasm"
case "$tool" in
  buildah) buildah bud -f "$root/deploy/oci/Dockerfile" -t "$image" "$context" ;;
  *) "$tool" build -f "$root/deploy/oci/Dockerfile" -t "$image" "$context" ;;
esac
echo "build.sh: built $image with $tool (module at /plugin.wasm)"
