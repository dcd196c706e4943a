"""The declared floor, Kubernetes 1.20, whole: its own CRD server too, which has no CEL.

The hybrid server (tests/realapi/conftest.py) serves CRDs from 1.36. Here a plain 1.20
control plane serves everything: the CRDs install (1.20 drops their
`x-kubernetes-validations`), so what CEL refuses on newer servers is accepted, and the
operator must report it instead: a bound the models check (`InvalidSpec`), or a name a
child cannot carry (the API server refuses the child: `ChildRefused`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.kube_rig import RealApi, start_rig_1_20
from support.realapi_operator import condition, get, operator_process, wait_for, warning_events

pytestmark = pytest.mark.realapi


@pytest.fixture(scope="module")
def plain_1_20(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApi]:
    with start_rig_1_20(tmp_path_factory.mktemp("rig-1.20")) as api:
        yield api


def pool(name: str, replicas: dict[str, int]) -> str:
    return json.dumps(
        {
            "apiVersion": "triskel.io/v1alpha1",
            "kind": "WorkerPool",
            "metadata": {"name": name},
            "spec": {"role": "decode", "model": "m", "replicas": replicas},
        }
    )


def test_what_cel_would_refuse_is_reported_by_the_operator(
    plain_1_20: RealApi, tmp_path: Path
) -> None:
    api = plain_1_20
    assert "v1.20." in api.kubectl("version", "-o", "json").stdout
    namespace = "floor"
    api.kubectl("create", "namespace", namespace)
    args = ["--namespace", namespace, "--router-namespace", namespace]
    with operator_process(api.kubeconfig, [*args, "--status-interval-s", "1"], tmp_path / "op.log"):
        # min > max: refused by CEL from 1.25; here stored, and reported.
        api.kubectl(
            "apply", "-f", "-", input=pool("upside-down", {"min": 3, "max": 2}), namespace=namespace
        )
        # A name with a dot: refused by the CRD's name rule from 1.25; here the
        # Deployment takes it and the Service (a DNS-1035 label) does not.
        api.kubectl(
            "apply", "-f", "-", input=pool("bad.dotted", {"min": 1, "max": 1}), namespace=namespace
        )

        def reason(name: str) -> str:
            return str(condition(get(api, "wp", name, namespace), "Degraded").get("reason", ""))

        wait_for(lambda: reason("upside-down") == "InvalidSpec", what="bounds reported")
        wait_for(lambda: reason("bad.dotted") == "ChildRefused", what="refused child reported")
        upside_down = condition(get(api, "wp", "upside-down", namespace), "Degraded")
        assert "replicas.max (2) < replicas.min (3)" in upside_down["message"]
        dotted = condition(get(api, "wp", "bad.dotted", namespace), "Degraded")
        assert "the API server refused Service bad.dotted" in dotted["message"], dotted
        assert [e["reason"] for e in warning_events(api, namespace, "bad.dotted")] == [
            "ChildRefused"
        ]
        assert get(api, "deployment", "upside-down", namespace) is None
