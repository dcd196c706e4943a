"""What a user applies, applied to a real API server: the CRDs, every example, the chart;
and every invalid resource the CRD should refuse, refused by the server itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import render
from support.kube_rig import RealApi
from support.realapi_operator import get

pytestmark = pytest.mark.realapi

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
INVALID = REPO / "tests" / "operator" / "invalid_resources"
# What the server names in its refusal (schema or CEL), per file of invalid_resources/
# that the CRD refuses (tests/operator/test_example_resources.py: the rest only the
# operator's models refuse).
REFUSED_BY_THE_SERVER = {
    "replicas-min-above-max.yaml": "spec.replicas.min",
    "desired-outside-bounds.yaml": "spec.replicas.desired",
    "unknown-role.yaml": "spec.role",
    "unknown-engine.yaml": "spec.engine.type",
    "negative-gpus.yaml": "spec.resources.gpus",
    "unknown-connector.yaml": "spec.kvConnector.type",
    "nixl-with-mock-engine.yaml": "spec.kvConnector.type",
    "pool-name-not-dns-label.yaml": "metadata.name",
    "unknown-field.yaml": "replica",
    "graph-without-pools.yaml": "spec.pools",
    "graph-pool-named-twice.yaml": "spec.pools[2]",
    "graph-pool-name-not-dns-label.yaml": "spec.pools[1]",
}


def test_the_generated_crds_are_established(real_api: RealApi) -> None:
    crds = json.loads(real_api.kubectl("get", "crd", "-o", "json").stdout)["items"]
    established = {
        c["metadata"]["name"]
        for c in crds
        if any(
            s["type"] == "Established" and s["status"] == "True" for s in c["status"]["conditions"]
        )
    }
    assert established >= {
        "workerpools.triskel.io",
        "servinggraphs.triskel.io",
        "routingpolicies.triskel.io",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_applies_and_reads_back_defaulted(
    real_api: RealApi, namespace: str, path: Path
) -> None:
    real_api.kubectl("apply", "-f", str(path), namespace=namespace)
    for obj in yaml.safe_load_all(path.read_text()):
        stored = get(real_api, obj["kind"], obj["metadata"]["name"], namespace)
        assert stored is not None
        if obj["kind"] == "WorkerPool":
            # Server-side defaults, filled in by the 1.36 CRD server.
            assert stored["spec"]["engine"]["type"] in ("mock", "vllm", "sglang")
            assert {"min", "max"} <= stored["spec"]["replicas"].keys()
            assert "tp" in stored["spec"]["parallelism"]


@pytest.mark.parametrize(
    "values",
    [{}, {"redis": {"enabled": True}}, {"operator": {"watchNamespaces": ["team-a"]}}],
    ids=["defaults", "redis", "namespaced"],
)
def test_the_chart_applies_server_side(
    real_api: RealApi, namespace: str, values: dict[str, Any]
) -> None:
    manifests = render(values, namespace=namespace)
    if "operator" in values:
        real_api.kubectl("create", "namespace", "team-a", check=False)
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
    done = real_api.kubectl("apply", "--dry-run=server", "-f", "-", input=listed)
    assert "created (server dry run)" in done.stdout


@pytest.mark.parametrize("name", sorted(REFUSED_BY_THE_SERVER))
def test_an_invalid_resource_is_refused_by_the_server_naming_the_field(
    real_api: RealApi, namespace: str, name: str, tmp_path: Path
) -> None:
    (obj,) = yaml.safe_load_all((INVALID / name).read_text())
    body = tmp_path / "body.json"
    body.write_text(json.dumps(obj))
    plural = {"WorkerPool": "workerpools", "ServingGraph": "servinggraphs"}[obj["kind"]]
    # Straight to the server, as strict as kubectl asks a modern one to be: kubectl 1.32
    # would judge it client-side first here (the 1.20 front predates server-side checks).
    path = f"/apis/triskel.io/v1alpha1/namespaces/{namespace}/{plural}?fieldValidation=Strict"
    done = real_api.kubectl("create", "--raw", path, "-f", str(body), check=False)
    assert done.returncode != 0, f"the server accepted {name}"
    assert REFUSED_BY_THE_SERVER[name] in done.stderr, done.stderr


def test_every_invalid_file_but_the_model_only_one_is_tried_here() -> None:
    # A pluginRef naming no plugin needs a search of lists CEL's cost budget refuses:
    # only the operator's models judge it (docs/operator.md, "What validates what").
    files = {p.name for p in INVALID.glob("*.yaml")} - {"plugin-ref-names-no-plugin.yaml"}
    assert sorted(REFUSED_BY_THE_SERVER) == sorted(files)


def test_kubectl_scale_is_held_to_the_bounds(real_api: RealApi, namespace: str) -> None:
    real_api.kubectl(
        "apply", "-f", str(REPO / "manifests/examples/pd-mock.yaml"), namespace=namespace
    )
    refused = real_api.kubectl(
        "scale", "wp/llama-decode", "--replicas", "9", namespace=namespace, check=False
    )
    assert refused.returncode != 0
    assert "spec.replicas.desired" in refused.stderr, refused.stderr
    real_api.kubectl("scale", "wp/llama-decode", "--replicas", "3", namespace=namespace)
    stored = get(real_api, "wp", "llama-decode", namespace)
    assert stored is not None and stored["spec"]["replicas"]["desired"] == 3
