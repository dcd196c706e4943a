"""What a user applies, applied to a real API server: the CRDs, every example, the chart;
and every invalid resource the CRD should refuse, refused by the server itself.

The hybrid server's CRD half is Kubernetes 1.36 (defaulting, CEL, the scale subresource);
its built-in APIs are 1.20's (the chart's Deployments, RBAC, ConfigMaps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from triskel.common.resources import kind_named
from triskel.operator.crds import build_crd, build_crds

from support.crd_validation import apply_defaults, object_schema
from support.helm import render
from support.kube_rig import RealApi
from support.realapi_operator import get

pytestmark = pytest.mark.realapi

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
INVALID = REPO / "tests" / "operator" / "invalid_resources"
# What the server's refusal names, per file of invalid_resources/ whose crd_field
# tests/operator/test_example_resources.py sets (the schema or CEL refuses it). Mostly
# that crd_field; the server's own wording where the offline validator's differs.
REFUSED_BY_THE_SERVER = {
    "replicas-min-above-max.yaml": "spec.replicas.min: Invalid value",  # CEL, fieldPath .min
    "desired-outside-bounds.yaml": "spec.replicas.desired: Invalid value",  # CEL
    "unknown-role.yaml": 'spec.role: Unsupported value: "detokenize"',  # enum
    "unknown-engine.yaml": 'spec.engine.type: Unsupported value: "tensorrt-llm"',
    "negative-gpus.yaml": "spec.resources.gpus: Invalid value: -1",  # minimum
    "unknown-connector.yaml": 'spec.kvConnector.type: Unsupported value: "rdma"',
    "nixl-with-mock-engine.yaml": "spec.kvConnector.type: Invalid value",  # CEL on spec
    "host-tier-with-ep.yaml": "spec.profile.hostKvCapacityTokens: Invalid value",  # CEL
    # The root rule names metadata.name in its message; the server's own name check
    # (an RFC 1123 subdomain) names it too.
    "pool-name-not-dns-label.yaml": "metadata.name must be a DNS-1035 label",
    # Strict field validation: the offline validator's "Additional properties".
    "unknown-field.yaml": 'unknown field "spec.replica"',
    "graph-without-pools.yaml": "spec.pools: Invalid value: 0",  # minItems
    "graph-pool-named-twice.yaml": 'spec.pools[2]: Duplicate value: "prefill"',  # list-type set
    "graph-pool-name-not-dns-label.yaml": 'spec.pools[1]: Invalid value: "Decode_Pool"',
}
# Only the operator's models refuse these (crd_field None there): a pluginRef naming no
# plugin needs a search of lists CEL's cost budget refuses (docs/operator.md).
MODEL_ONLY = {"plugin-ref-names-no-plugin.yaml"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_the_generated_crds_are_established(real_api: RealApi) -> None:
    served = json.loads(real_api.kubectl("get", "crd", "-o", "json").stdout)["items"]
    established = {
        crd["metadata"]["name"]
        for crd in served
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd["status"]["conditions"]
        )
    }
    assert established == {crd["metadata"]["name"] for crd in build_crds()}


def test_a_pool_without_replicas_gets_the_default_the_cel_rule_accepts(
    real_api: RealApi, namespace: str
) -> None:
    # The default {min: 1, max: 1} must satisfy `self.min <= self.max`: the 1.36 server
    # checks defaults against CEL rules (it refused the earlier default `{}`).
    pool = {
        "apiVersion": "triskel.io/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "bare"},
        "spec": {"role": "decode", "model": "m"},
    }
    real_api.kubectl("apply", "-f", "-", input=json.dumps(pool), namespace=namespace)
    stored = get(real_api, "wp", "bare", namespace)
    assert stored is not None and stored["spec"]["replicas"] == {"min": 1, "max": 1}


@pytest.mark.parametrize("mode", ["client-side", "server-side"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_applies_and_reads_back_defaulted(
    real_api: RealApi, namespace: str, path: Path, mode: str
) -> None:
    flags = ["--server-side"] if mode == "server-side" else []
    real_api.kubectl("apply", *flags, "-f", str(path), namespace=namespace)
    for obj in documents(path):
        stored = get(real_api, obj["kind"], obj["metadata"]["name"], namespace)
        assert stored is not None
        # The server's defaulting equals the offline model the operator tests rely on
        # (tests/support/crd_validation.py), field for field.
        expected = apply_defaults(object_schema(build_crd(kind_named(obj["kind"]))), obj)
        assert stored["spec"] == expected["spec"]
        if obj["kind"] == "WorkerPool":
            # Every example pool leaves something to defaulting (e.g. parallelism).
            assert stored["spec"] != obj["spec"]


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced", "with-redis"])
def test_the_chart_applies_server_side(real_api: RealApi, namespace: str, scope: str) -> None:
    values_by_scope: dict[str, dict[str, Any]] = {
        "cluster-wide": {},
        # = helm template --set operator.watchNamespaces={<namespace>}
        "namespaced": {"operator": {"watchNamespaces": [namespace]}},
        "with-redis": {"redis": {"enabled": True}},
    }
    values = values_by_scope[scope]
    manifests = render(values, namespace=namespace, kube_version=real_api.server_version())
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
    done = real_api.kubectl("apply", "--dry-run=server", "-f", "-", input=listed)
    # One line per object, each admitted by the server (a refusal exits non-zero above).
    assert done.stdout.count("(server dry run)") == len(manifests), done.stdout


@pytest.mark.parametrize("name", sorted(REFUSED_BY_THE_SERVER))
def test_an_invalid_resource_is_refused_by_the_server_naming_the_field(
    real_api: RealApi, namespace: str, name: str, tmp_path: Path
) -> None:
    (obj,) = documents(INVALID / name)
    body = tmp_path / "body.json"
    body.write_text(json.dumps(obj))
    plural = kind_named(obj["kind"]).plural
    # Straight to the server, with the strict field validation kubectl asks a modern
    # server for: kubectl 1.32 judges unknown fields client-side against the 1.20 front
    # (which predates server-side field validation), and the server must be the judge.
    path = f"/apis/triskel.io/v1alpha1/namespaces/{namespace}/{plural}?fieldValidation=Strict"
    done = real_api.kubectl("create", "--raw", path, "-f", str(body), check=False)
    assert done.returncode != 0, f"the server accepted {name}"
    assert REFUSED_BY_THE_SERVER[name] in done.stderr, done.stderr
    assert get(real_api, obj["kind"], obj["metadata"]["name"], namespace) is None


def test_every_invalid_file_is_tried_here_or_is_model_only() -> None:
    # A new file in invalid_resources/ must be sorted into one of the two.
    files = {p.name for p in INVALID.glob("*.yaml")}
    assert sorted(REFUSED_BY_THE_SERVER) == sorted(files - MODEL_ONLY)
    assert files >= MODEL_ONLY


def test_kubectl_scale_is_held_to_the_bounds(real_api: RealApi, namespace: str) -> None:
    # pd-mock.yaml's llama-decode: replicas {min: 1, max: 4, desired: 2}.
    real_api.kubectl(
        "apply", "-f", str(REPO / "manifests/examples/pd-mock.yaml"), namespace=namespace
    )
    for outside in ("0", "5"):
        refused = real_api.kubectl(
            "scale", "wp/llama-decode", "--replicas", outside, namespace=namespace, check=False
        )
        assert refused.returncode != 0, f"--replicas {outside} was accepted"
        assert "spec.replicas.desired" in refused.stderr, refused.stderr
    for inside in (1, 4):
        real_api.kubectl("scale", "wp/llama-decode", f"--replicas={inside}", namespace=namespace)
        stored = get(real_api, "wp", "llama-decode", namespace)
        assert stored is not None
        assert stored["spec"]["replicas"] == {"min": 1, "max": 4, "desired": inside}
