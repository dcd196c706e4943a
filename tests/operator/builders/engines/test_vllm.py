"""`vllm serve` args, ports and env from a pool spec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from triskel.operator.builders.engines.vllm import DEFAULT_IMAGE, vllm_pod

from support.pool_objects import pool_spec


def vllm(**fields: Any) -> Any:
    # Unified unless a test says otherwise: it needs no KV connector.
    fields.setdefault("role", "unified")
    fields.setdefault("resources", {"gpus": 8})
    return vllm_pod(pool_spec(engine={"type": "vllm", **fields.pop("engine", {})}, **fields))


def flag(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_a_prefill_pool_serves_its_model_and_produces_kv() -> None:
    pod = vllm(
        role="prefill",
        model="meta-llama/Llama-3.1-8B-Instruct",
        parallelism={"tp": 2},
        kvConnector={"type": "nixl"},
    )
    assert pod.image == DEFAULT_IMAGE and pod.command == ("vllm", "serve")
    assert pod.args == (
        "meta-llama/Llama-3.1-8B-Instruct",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "2",
        "--kv-transfer-config",
        '{"kv_connector": "NixlConnector", "kv_role": "kv_producer"}',
    )


@pytest.mark.parametrize(
    ("role", "connector", "kv_connector", "kv_role"),
    [
        ("prefill", "nixl", "NixlConnector", "kv_producer"),
        ("decode", "nixl", "NixlConnector", "kv_consumer"),
        ("prefill", "mooncake", "MooncakeConnector", "kv_producer"),
        ("decode", "mooncake", "MooncakeConnector", "kv_consumer"),
        # A unified pool may prefill for itself and for others: both directions.
        ("unified", "nixl", "NixlConnector", "kv_both"),
    ],
)
def test_kv_transfer_config_per_role_and_connector(
    role: str, connector: str, kv_connector: str, kv_role: str
) -> None:
    config = flag(vllm(role=role, kvConnector={"type": connector}).args, "--kv-transfer-config")
    assert config is not None
    assert json.loads(config) == {"kv_connector": kv_connector, "kv_role": kv_role}


def test_a_unified_pool_on_tcp_moves_no_kv() -> None:
    # tcp is the default connector type: a unified vLLM pool simply runs without one.
    pod = vllm(role="unified")
    assert "--kv-transfer-config" not in pod.args
    assert [p.name for p in pod.ports] == ["http"]


def test_connector_params_become_extra_config() -> None:
    pod = vllm(role="decode", kvConnector={"type": "nixl", "params": {"backends": "UCX"}})
    config = json.loads(flag(pod.args, "--kv-transfer-config") or "")
    assert config["kv_connector_extra_config"] == {"backends": "UCX"}


@pytest.mark.parametrize(
    ("role", "connector", "port", "env"),
    [
        # NIXL's handshake listener runs on both sides and must advertise the pod IP,
        # not "localhost".
        *[
            (
                role,
                "nixl",
                5600,
                {"VLLM_NIXL_SIDE_CHANNEL_HOST": "$(POD_IP)", "VLLM_NIXL_SIDE_CHANNEL_PORT": "5600"},
            )
            for role in ("prefill", "decode")
        ],
        # Mooncake's bootstrap server runs where KV is produced only.
        ("prefill", "mooncake", 8998, {"VLLM_MOONCAKE_BOOTSTRAP_PORT": "8998"}),
        ("unified", "mooncake", 8998, {"VLLM_MOONCAKE_BOOTSTRAP_PORT": "8998"}),
        ("decode", "mooncake", None, {}),
    ],
)
def test_kv_port_and_env_per_connector(
    role: str, connector: str, port: int | None, env: dict[str, str]
) -> None:
    pod = vllm(role=role, kvConnector={"type": connector})
    kv_ports = [] if port is None else [("kv", port)]
    assert [(p.name, p.port) for p in pod.ports] == [("http", 8000), *kv_ports]
    assert {e["name"]: e["value"] for e in pod.env} == env


def test_parallel_sizes_above_one_are_passed() -> None:
    pod = vllm(parallelism={"tp": 2, "pp": 2, "dp": 2, "ep": 4})
    sizes = {
        name: flag(pod.args, name)
        for name in ("--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size")
    }
    assert sizes == {
        "--tensor-parallel-size": "2",
        "--pipeline-parallel-size": "2",
        "--data-parallel-size": "2",
    }
    # vLLM's experts spread over tp × dp = 4 ranks, which is what ep asks for.
    assert "--enable-expert-parallel" in pod.args


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"parallelism": {"tp": 2, "ep": 8}}, r"parallelism.ep \(8\) must equal tp × dp \(2\)"),
        ({"parallelism": {"tp": 4, "pp": 2, "dp": 2}}, r"resources.gpus \(8\) < 16"),
        ({"role": "decode", "kvConnector": {"type": "nccl"}}, "kvConnector.type: nccl"),
    ],
)
def test_unrunnable_specs_name_the_field(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        vllm(**fields)


def test_user_args_come_last_and_unexpanded() -> None:
    pod = vllm(engine={"image": "mine/vllm:nightly", "args": ["--max-model-len", "$(LEN)"]})
    assert pod.image == "mine/vllm:nightly"
    # Last, so a user flag overrides ours; `$` doubled, so Kubernetes leaves it alone.
    assert pod.args[-2:] == ("--max-model-len", "$$(LEN)")
