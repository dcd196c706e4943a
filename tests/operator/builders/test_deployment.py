"""The pool's Deployment: schema-valid for every engine, role and connector, and shaped
the way the operator's drain and the router rely on."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.builders.deployment import (
    PRE_STOP_SLEEP_S,
    TERMINATION_GRACE_S,
    build_deployment,
)
from triskel.operator.builders.kv_key import KV_KEY_MOUNT_DIR, KV_KEY_VOLUME, kv_key_secret_name
from triskel.operator.builders.server_features import ServerFeatures

from support.pool_objects import FEATURES, OWNER, pool_spec, referenced_vars, validate

IMAGE = "registry.example/triskel:1.2.3"
GPU = {"resources": {"gpus": 1}}

# (engine, role, connector) combinations each engine can run.
CASES: dict[str, dict[str, Any]] = {
    "mock-decode-tcp": {"role": "decode"},
    "mock-prefill-mooncake": {"role": "prefill", "kvConnector": {"type": "mooncake"}},
    "mock-encode-nccl": {"role": "encode", "kvConnector": {"type": "nccl"}},
    "mock-unified": {"role": "unified"},
    "vllm-prefill-nixl": {
        "role": "prefill",
        "engine": {"type": "vllm"},
        "kvConnector": {"type": "nixl"},
        **GPU,
    },
    "vllm-decode-mooncake": {
        "role": "decode",
        "engine": {"type": "vllm"},
        "kvConnector": {"type": "mooncake"},
        **GPU,
    },
    "vllm-unified-tcp": {"role": "unified", "engine": {"type": "vllm"}, **GPU},
    "sglang-prefill-mooncake": {
        "role": "prefill",
        "engine": {"type": "sglang"},
        "kvConnector": {"type": "mooncake"},
        **GPU,
    },
    "sglang-decode-nixl": {
        "role": "decode",
        "engine": {"type": "sglang"},
        "kvConnector": {"type": "nixl"},
        **GPU,
    },
    "sglang-unified": {"role": "unified", "engine": {"type": "sglang"}, **GPU},
}


def deployment(**fields: Any) -> dict[str, Any]:
    return build_deployment("p1", "ns", pool_spec(**fields), IMAGE, OWNER, FEATURES)


def container_of(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


@pytest.mark.parametrize("fields", CASES.values(), ids=CASES.keys())
def test_every_deployment_fits_the_kubernetes_schema(fields: dict[str, Any]) -> None:
    validate(deployment(**fields))


@pytest.mark.parametrize("fields", CASES.values(), ids=CASES.keys())
def test_selector_picks_the_template_pods_and_spreads_them(fields: dict[str, Any]) -> None:
    obj = deployment(**fields)
    selector = obj["spec"]["selector"]["matchLabels"]
    assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
    affinity = obj["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    # Anti-affinity to the pool's own pods, per node.
    assert term == {
        "labelSelector": {"matchLabels": selector},
        "topologyKey": "kubernetes.io/hostname",
    }


@pytest.mark.parametrize("fields", CASES.values(), ids=CASES.keys())
def test_every_var_reference_is_defined_earlier_in_env(fields: dict[str, Any]) -> None:
    container = container_of(deployment(**fields))
    defined: set[str] = set()
    for entry in container["env"]:
        # Kubernetes expands an env value only with variables defined above it.
        assert referenced_vars(entry.get("value", "")) <= defined, entry
        defined.add(entry["name"])
    for arg in container["args"]:
        assert referenced_vars(arg) <= defined, arg
    assert [e["name"] for e in container["env"][:2]] == ["POD_NAME", "POD_IP"]


def test_owner_name_and_namespace() -> None:
    obj = deployment()
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    # Named after the pool: the operator finds its children by the pool's name.
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("p1", "ns")


@pytest.mark.parametrize(
    ("replicas", "expected"),
    [
        ({"min": 2, "max": 5}, 2),  # no desired yet: the minimum
        ({"min": 2, "max": 5, "desired": 4}, 4),  # the scale subresource's value
        ({"min": 0, "max": 3}, 0),  # scaled to zero
    ],
)
def test_replicas_are_desired_else_min(replicas: dict[str, int], expected: int) -> None:
    assert deployment(replicas=replicas)["spec"]["replicas"] == expected


def test_scaling_leaves_the_pod_template_alone() -> None:
    # Otherwise every scale event would restart every pod of the pool.
    small = deployment(replicas={"min": 1, "max": 8, "desired": 2})
    large = deployment(replicas={"min": 1, "max": 8, "desired": 7})
    assert small["spec"]["template"] == large["spec"]["template"]


def test_rolling_update_never_dips_below_the_replica_count() -> None:
    strategy = deployment()["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        # Nothing asked: no resources block (best effort, like a laptop mock pool).
        ({}, None),
        (
            {"cpu": "2", "memory": "4Gi"},
            {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        ),
        # GPUs are an extended resource: limits only, as the string the API server returns.
        (
            {"gpus": 4, "memory": "64Gi"},
            {"requests": {"memory": "64Gi"}, "limits": {"memory": "64Gi", "nvidia.com/gpu": "4"}},
        ),
    ],
)
def test_resources_follow_the_spec(
    resources: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    obj = deployment(resources=resources)
    assert container_of(obj).get("resources") == expected
    tolerations = obj["spec"]["template"]["spec"].get("tolerations")
    assert (tolerations is not None) == bool(resources.get("gpus"))


@pytest.mark.parametrize(
    ("fields", "action", "metrics_port"),
    [
        # The mock's gRPC server serves grpc.health.v1, which kubelet's gRPC probe asks.
        (CASES["mock-decode-tcp"], {"grpc": {"port": 50051}}, None),
        (CASES["vllm-prefill-nixl"], {"httpGet": {"path": "/health", "port": "http"}}, "8000"),
        (CASES["sglang-unified"], {"httpGet": {"path": "/health", "port": "http"}}, "30000"),
    ],
)
def test_probes_and_scraping_per_engine(
    fields: dict[str, Any], action: dict[str, Any], metrics_port: str | None
) -> None:
    obj = deployment(**fields)
    container = container_of(obj)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert {k: v for k, v in container[probe].items() if k in action} == action
    annotations = obj["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/port") == metrics_port


def test_gpu_engines_get_a_long_startup_and_shared_memory() -> None:
    vllm = container_of(deployment(**CASES["vllm-decode-mooncake"]))
    mock = container_of(deployment(**CASES["mock-decode-tcp"]))
    budget = {
        name: c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
        for name, c in (("vllm", vllm), ("mock", mock))
    }
    # Weights and CUDA graphs take many minutes; a mock is up in seconds.
    assert budget == {"vllm": 1800, "mock": 60}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in vllm["volumeMounts"]
    assert "dshm" not in [m["name"] for m in mock["volumeMounts"]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_triskel_workers_mount_their_models_kv_key_and_others_do_not(case: str) -> None:
    obj = deployment(**CASES[case])
    pod, container = obj["spec"]["template"]["spec"], container_of(obj)
    volumes = [v for v in pod.get("volumes", []) if v["name"] == KV_KEY_VOLUME]
    mounts = [m for m in container.get("volumeMounts", []) if m["name"] == KV_KEY_VOLUME]
    if not case.startswith("mock"):
        # vLLM and SGLang move KV with their own connectors: no Triskel key.
        assert (volumes, mounts) == ([], [])
        assert "--kv-auth-key-file" not in container["args"]
        return
    # pool_spec's model: every pool of it, whatever its role, mounts the same Secret.
    assert volumes == [
        {
            "name": KV_KEY_VOLUME,
            "secret": {
                "secretName": kv_key_secret_name(pool_spec().model),
                "items": [{"key": "key", "path": "key"}],
                "defaultMode": 0o444,
            },
        }
    ]
    assert mounts == [{"name": KV_KEY_VOLUME, "mountPath": KV_KEY_MOUNT_DIR, "readOnly": True}]
    # The file the worker is told to read is the item's path under the mount.
    args = container["args"]
    assert args[args.index("--kv-auth-key-file") + 1] == f"{KV_KEY_MOUNT_DIR}/key"


def test_pods_drain_before_they_are_killed() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"] == {
        "preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_S}}
    }
    # The grace period counts from deletion, preStop included: time must remain after it.
    assert pod["terminationGracePeriodSeconds"] == TERMINATION_GRACE_S > PRE_STOP_SLEEP_S + 60
    # No service links: a Service named "vllm" would inject VLLM_PORT into the engine.
    assert pod["enableServiceLinks"] is False


# Each field newer than the server gets the fallback older servers take (1.20 refuses
# the newer handlers outright: "must specify a handler type").
@pytest.mark.parametrize(
    ("minor", "pre_stop", "mock_probe"),
    [
        (30, {"sleep": {"seconds": PRE_STOP_SLEEP_S}}, {"grpc": {"port": 50051}}),
        (29, {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_S)]}}, {"grpc": {"port": 50051}}),
        (
            23,
            {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_S)]}},
            {"tcpSocket": {"port": 50051}},
        ),
        (
            20,
            {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_S)]}},
            {"tcpSocket": {"port": 50051}},
        ),
    ],
)
def test_older_servers_get_the_handlers_they_know(
    minor: int, pre_stop: dict[str, Any], mock_probe: dict[str, Any]
) -> None:
    features = ServerFeatures(minor)
    mock = container_of(build_deployment("p1", "ns", pool_spec(), IMAGE, OWNER, features))
    assert mock["lifecycle"] == {"preStop": pre_stop}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert {k: v for k, v in mock[probe].items() if k in ("grpc", "tcpSocket")} == mock_probe
    # HTTP probes (vLLM, SGLang) work on every version.
    vllm_spec = pool_spec(**CASES["vllm-unified-tcp"])
    vllm = container_of(build_deployment("p1", "ns", vllm_spec, IMAGE, OWNER, features))
    assert "httpGet" in vllm["readinessProbe"]


def test_results_share_no_mutable_state() -> None:
    first = deployment(**CASES["vllm-prefill-nixl"])
    container_of(first)["env"][0]["name"] = "CHANGED"
    container_of(first)["readinessProbe"]["httpGet"]["path"] = "/changed"
    assert deployment(**CASES["vllm-prefill-nixl"]) != first


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        # vLLM and SGLang cannot run without a GPU.
        ({"engine": {"type": "vllm"}}, r"resources.gpus \(0\) < 1"),
        (
            {"engine": {"type": "sglang"}, "parallelism": {"tp": 2}, **GPU},
            r"resources.gpus \(1\) < 2",
        ),
        # tcp is the mock's own connector; vLLM workers cannot speak it.
        ({"role": "prefill", "engine": {"type": "vllm"}, **GPU}, "kvConnector.type: tcp"),
        ({"role": "encode", "engine": {"type": "sglang"}, **GPU}, "role: encode"),
    ],
)
def test_unrunnable_specs_name_the_field(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        deployment(**fields)
