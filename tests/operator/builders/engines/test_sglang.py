"""`sglang.launch_server` args and ports from a pool spec."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.operator.builders.engines.sglang import DEFAULT_IMAGE, sglang_pod

from support.pool_objects import pool_spec


def sglang(**fields: Any) -> Any:
    # Unified unless a test says otherwise: it needs no KV connector.
    fields.setdefault("role", "unified")
    fields.setdefault("resources", {"gpus": 8})
    return sglang_pod(pool_spec(engine={"type": "sglang", **fields.pop("engine", {})}, **fields))


def flag(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_a_unified_pool_serves_its_model_without_disaggregation() -> None:
    pod = sglang(role="unified", model="Qwen/Qwen2.5-7B-Instruct", parallelism={"tp": 2})
    assert pod.image == DEFAULT_IMAGE
    assert pod.command == ("python3", "-m", "sglang.launch_server")
    assert pod.args == (
        "--model-path",
        "Qwen/Qwen2.5-7B-Instruct",
        "--host",
        "0.0.0.0",
        "--port",
        "30000",
        "--tp-size",
        "2",
        "--enable-metrics",
    )
    assert [(p.name, p.port) for p in pod.ports] == [("http", 30000)]


@pytest.mark.parametrize(
    ("role", "connector", "bootstrap_port"),
    [
        # The prefill server hosts the bootstrap server its decode peers find it through.
        ("prefill", "mooncake", "8998"),
        ("prefill", "nixl", "8998"),
        ("decode", "mooncake", None),
        ("decode", "nixl", None),
    ],
)
def test_disaggregation_flags_per_role(
    role: str, connector: str, bootstrap_port: str | None
) -> None:
    pod = sglang(role=role, kvConnector={"type": connector})
    assert flag(pod.args, "--disaggregation-mode") == role
    assert flag(pod.args, "--disaggregation-transfer-backend") == connector
    assert flag(pod.args, "--disaggregation-bootstrap-port") == bootstrap_port
    kv_ports = [p.port for p in pod.ports if p.name == "kv"]
    assert kv_ports == ([8998] if bootstrap_port else [])


def test_parallel_sizes_above_one_only() -> None:
    # Older images lack some of these flags: a size of 1 is SGLang's default anyway.
    pod = sglang(parallelism={"tp": 4, "pp": 1, "dp": 2, "ep": 4})
    assert [flag(pod.args, f) for f in ("--tp-size", "--pp-size", "--dp-size", "--ep-size")] == [
        "4",
        None,
        "2",
        "4",
    ]


def test_rdma_device_param() -> None:
    pod = sglang(role="prefill", kvConnector={"type": "mooncake", "params": {"device": "mlx5_0"}})
    assert flag(pod.args, "--disaggregation-ib-device") == "mlx5_0"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"role": "prefill"}, "kvConnector.type: tcp cannot move KV between sglang workers"),
        (
            {"role": "decode", "kvConnector": {"type": "nixl", "params": {"speed": "fast"}}},
            "kvConnector.params: unknown param 'speed'",
        ),
        (
            {"resources": {"gpus": 1}, "parallelism": {"tp": 2, "pp": 2}},
            r"resources.gpus \(1\) < 4",
        ),
    ],
)
def test_unrunnable_specs_name_the_field(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        sglang(**fields)
