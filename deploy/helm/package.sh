#!/usr/bin/env bash
# Usage: deploy/helm/package.sh [--with-module [WASM]] [--out DIR]
# Lint and package the chart into DIR (default target/helm); print the package path.
# --with-module copies the built module (default
# target/wasm32-wasip1/release/gemini_router.wasm) into the chart's files/ for
# wasm.source=chart; without it the package carries no module and the default
# wasm.source=configmap reads it from a ConfigMap you create.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
chart="$root/deploy/helm/gemini-router"
out="$root/target/helm"
wasm=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --with-module)
      wasm="$root/target/wasm32-wasip1/release/gemini_router.wasm"
      if [[ $# -gt 1 && "$2" != --* ]]; then wasm="$2"; shift; fi ;;
    --out) out="$2"; shift ;;
    *) echo "usage: $0 [--with-module [WASM]] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

helm="$("$root/scripts/install-helm.sh")"
rm -f "$chart/files/gemini_router.wasm"
if [[ -n "$wasm" ]]; then
  if [[ ! -s "$wasm" ]]; then
    echo "package.sh: $wasm not found: run \`make build\` first" >&2
    exit 1
  fi
  size=$(wc -c <"$wasm")
  if (( size > 655360 )); then
    echo "package.sh: the module is $size bytes, over the 640 KiB wasm.source=chart allows (Helm's release Secret holds it twice, 1 MiB limit); package without --with-module and use wasm.source=configmap" >&2
    exit 1
  fi
  cp "$wasm" "$chart/files/gemini_router.wasm"
  trap 'rm -f "$chart/files/gemini_router.wasm"' EXIT
  "$helm" lint "$chart" --set wasm.source=chart >&2
else
  "$helm" lint "$chart" >&2
fi
mkdir -p "$out"
"$helm" package "$chart" --destination "$out" | sed 's/^.*: //'
