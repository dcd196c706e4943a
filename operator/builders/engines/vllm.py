"""The vLLM engine's container: `vllm serve` in vLLM's OpenAI server image.

    vllm serve <model> --host 0.0.0.0 --port 8000 --tensor-parallel-size <tp>
        [--pipeline-parallel-size <pp>] [--data-parallel-size <dp>] [--enable-expert-parallel]
        [--kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_producer"}']
        [engine.args ...]

KV moves through vLLM's own connectors: `nixl` is NixlConnector, `mooncake` is
MooncakeConnector (vLLM's name for its Mooncake point-to-point connector; vLLM
images older than the connector need `engine.image` set to one that has it, or
a `--kv-transfer-config` of their own in `engine.args`, which wins as the last
flag). Prefill pools produce KV, decode pools consume it, unified pools do both.
"""

from __future__ import annotations

import json

from triskel.common.api import ConnectorType, Role, WorkerPoolSpec
from triskel.operator.builders.engines.base import (
    POD_IP_ENV,
    EnginePod,
    Json,
    NamedPort,
    escape_expansion,
    gpus_needed,
    http_health_check,
    user_args,
)

DEFAULT_IMAGE = "vllm/vllm-openai:v0.11.0"
HTTP_PORT = 8000
# Where NixlConnector's handshake listener and Mooncake's bootstrap server listen.
NIXL_SIDE_CHANNEL_PORT = 5600
MOONCAKE_BOOTSTRAP_PORT = 8998
# Downloading and loading weights, then capturing CUDA graphs, can take many minutes.
_STARTUP_BUDGET_S = 1800

_CONNECTORS = {ConnectorType.NIXL: "NixlConnector", ConnectorType.MOONCAKE: "MooncakeConnector"}
_KV_ROLES = {Role.PREFILL: "kv_producer", Role.DECODE: "kv_consumer", Role.UNIFIED: "kv_both"}


def vllm_pod(spec: WorkerPoolSpec) -> EnginePod:
    """ValueError names the field when vLLM cannot run the spec as written."""
    if spec.role is Role.ENCODE:
        raise ValueError("role: encode pools run engine.type mock (vllm has no encode-only mode)")
    par = spec.parallelism
    gpus_needed(spec, par.tp * par.pp * par.dp, "tp × pp × dp GPUs")
    args = [spec.model, "--host", "0.0.0.0", "--port", str(HTTP_PORT)]
    args += ["--tensor-parallel-size", str(par.tp)]
    if par.pp > 1:
        args += ["--pipeline-parallel-size", str(par.pp)]
    if par.dp > 1:
        args += ["--data-parallel-size", str(par.dp)]
    if par.ep > 1:
        # vLLM has no EP size of its own: experts spread over every tp × dp rank.
        if par.ep != par.tp * par.dp:
            raise ValueError(
                f"parallelism.ep ({par.ep}) must equal tp × dp ({par.tp * par.dp}) for vllm, "
                "whose expert-parallel group is all tp × dp ranks"
            )
        args.append("--enable-expert-parallel")
    ports = [NamedPort("http", HTTP_PORT)]
    env: list[Json] = []
    connector = _kv_connector(spec)
    if connector is not None:
        config: Json = {"kv_connector": connector, "kv_role": _KV_ROLES[spec.role]}
        if spec.kv_connector.params:
            config["kv_connector_extra_config"] = dict(spec.kv_connector.params)
        args += ["--kv-transfer-config", json.dumps(config, sort_keys=True)]
        if _listens_for_kv(spec):
            ports.append(NamedPort("kv", _kv_port(spec)))
            env += _kv_env(spec)
    return EnginePod(
        image=spec.engine.image or DEFAULT_IMAGE,
        command=("vllm", "serve"),
        args=tuple(escape_expansion(a) for a in args) + user_args(spec),
        ports=tuple(ports),
        health_check=http_health_check(),
        startup_budget_s=_STARTUP_BUDGET_S,
        env=tuple(env),
        metrics_port=HTTP_PORT,
        needs_shared_memory=True,
    )


def _kv_connector(spec: WorkerPoolSpec) -> str | None:
    """vLLM's connector class; None for a unified pool that moves no KV."""
    connector = _CONNECTORS.get(spec.kv_connector.type)
    if connector is None and spec.role is not Role.UNIFIED:
        raise ValueError(
            f"kvConnector.type: {spec.kv_connector.type} cannot move KV between vllm workers; "
            f"use {' or '.join(_CONNECTORS)}"
        )
    return connector


def _listens_for_kv(spec: WorkerPoolSpec) -> bool:
    """NIXL runs its handshake listener on every instance; Mooncake's bootstrap server
    runs on the instances that produce KV only."""
    return spec.kv_connector.type is ConnectorType.NIXL or spec.role is not Role.DECODE


def _kv_port(spec: WorkerPoolSpec) -> int:
    if spec.kv_connector.type is ConnectorType.NIXL:
        return NIXL_SIDE_CHANNEL_PORT
    return MOONCAKE_BOOTSTRAP_PORT


def _kv_env(spec: WorkerPoolSpec) -> list[Json]:
    if spec.kv_connector.type is ConnectorType.NIXL:
        # The side channel otherwise advertises "localhost", which peers cannot reach.
        return [
            {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "value": f"$({POD_IP_ENV})"},
            {"name": "VLLM_NIXL_SIDE_CHANNEL_PORT", "value": str(NIXL_SIDE_CHANNEL_PORT)},
        ]
    return [{"name": "VLLM_MOONCAKE_BOOTSTRAP_PORT", "value": str(MOONCAKE_BOOTSTRAP_PORT)}]
