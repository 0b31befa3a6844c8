#!/usr/bin/env bash
# Usage: deploy/helm/package.sh [WASM] [OUT_DIR]
# Copy the built module into the chart (files/gemini_router.wasm, used by
# wasm.source=configmap), lint the chart and package it into OUT_DIR
# (default target/helm). Prints the package path.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
wasm="${1:-$root/target/wasm32-wasip1/release/gemini_router.wasm}"
out="${2:-$root/target/helm}"
chart="$root/deploy/helm/gemini-router"

if [[ ! -s "$wasm" ]]; then
  echo "package.sh: $wasm not found: run \`make build\` first" >&2
  exit 1
fi
size=$(wc -c <"$wasm")
if (( size > 1048576 )); then
  echo "package.sh: the module is $size bytes, over the 1 MiB ConfigMap limit; use wasm.source=oci, imageVolume or url" >&2
fi
helm="$("$root/scripts/install-helm.sh")"
cp "$wasm" "$chart/files/gemini_router.wasm"
"$helm" lint "$chart" >&2
mkdir -p "$out"
"$helm" package "$chart" --destination "$out" | sed 's/^.*: //'
