"""helm for the chart tests: find the binary, render and lint `charts/triskel`.

helm is pinned (v3.17.2) and installed into `.tools/bin` by `scripts/install_tools.sh`
(CI runs it; the first chart test runs it too when helm is missing, so the README's test
command works on a fresh clone). A helm that cannot be installed fails the test with the
fix named: the chart tests are never skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "triskel"
PINNED_HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE = "triskel"
NAMESPACE = "triskel-system"

Manifest = dict[str, Any]


def helm_binary() -> str:
    """The pinned helm in .tools/bin (installed on first use), else one on PATH."""
    if not PINNED_HELM.is_file():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install_tools.sh")],
            capture_output=True,
            timeout=300,
            check=False,
        )
    if PINNED_HELM.is_file():
        return str(PINNED_HELM)
    on_path = shutil.which("helm")
    if on_path is None:
        pytest.fail("helm not found in .tools/bin or on PATH: run scripts/install_tools.sh")
    return on_path


def run_helm(
    args: Sequence[str], values: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `helm ARGS [-f values]`; the caller checks the return code."""
    with tempfile.TemporaryDirectory(prefix="triskel-helm-") as tmp:
        command = [helm_binary(), *args]
        if values is not None:
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(json.dumps(values))  # JSON is YAML
            command += ["-f", str(values_file)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def render(
    values: Mapping[str, Any] | None = None,
    chart: Path = CHART,
    namespace: str = NAMESPACE,
    kube_version: str | None = None,
) -> list[Manifest]:
    """`helm template` of the chart as objects; AssertionError with helm's message on failure.
    `kube_version`: the cluster's, as `helm install` reads it (else helm's default)."""
    args = ["template", RELEASE, str(chart), "--namespace", namespace]
    if kube_version is not None:
        args += ["--kube-version", kube_version]
    result = run_helm(args, values)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: Sequence[Manifest], kind: str, name: str) -> Manifest:
    """The one rendered object of `kind` named `name`."""
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, got {len(matches)}"
    return matches[0]


def container(manifests: Sequence[Manifest], deployment: str) -> Manifest:
    """The single container of a rendered Deployment."""
    spec = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    result: Manifest = only
    return result
