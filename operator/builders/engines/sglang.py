"""The SGLang engine's container: `sglang.launch_server` in SGLang's image.

    python3 -m sglang.launch_server --model-path <model> --host 0.0.0.0 --port 30000
        --tp-size <tp> [--pp-size <pp>] [--dp-size <dp>] [--ep-size <ep>] --enable-metrics
        [--disaggregation-mode prefill|decode --disaggregation-transfer-backend mooncake|nixl
         [--disaggregation-bootstrap-port 8998]  (prefill)
         [--disaggregation-ib-device <kvConnector.params.device>]]
        [engine.args ...]

Sizes above 1 only are passed, so images that predate a flag still start.
A prefill server runs the bootstrap server its decode peers connect to first
(the `kv` port); unified pools move no KV and take no disaggregation flags.
"""

from __future__ import annotations

from triskel.common.api import ConnectorType, Role, WorkerPoolSpec
from triskel.operator.builders.engines.base import (
    EnginePod,
    NamedPort,
    escape_expansion,
    gpus_needed,
    http_health_check,
    user_args,
)

DEFAULT_IMAGE = "lmsysorg/sglang:latest"
HTTP_PORT = 30000
BOOTSTRAP_PORT = 8998
# Downloading and loading weights, then capturing CUDA graphs, can take many minutes.
_STARTUP_BUDGET_S = 1800

_BACKENDS = (ConnectorType.MOONCAKE, ConnectorType.NIXL)
_KNOWN_PARAMS = ("device",)


def sglang_pod(spec: WorkerPoolSpec) -> EnginePod:
    """ValueError names the field when SGLang cannot run the spec as written."""
    if spec.role is Role.ENCODE:
        raise ValueError("role: encode pools run engine.type mock (sglang has no encode-only mode)")
    par = spec.parallelism
    # dp replicas share the tp GPUs with --enable-dp-attention, so tp × pp is the floor.
    gpus_needed(spec, par.tp * par.pp, "tp × pp GPUs")
    args = ["--model-path", spec.model, "--host", "0.0.0.0", "--port", str(HTTP_PORT)]
    args += ["--tp-size", str(par.tp)]
    for flag, size in (("--pp-size", par.pp), ("--dp-size", par.dp), ("--ep-size", par.ep)):
        if size > 1:
            args += [flag, str(size)]
    args.append("--enable-metrics")
    ports = [NamedPort("http", HTTP_PORT)]
    if spec.role in (Role.PREFILL, Role.DECODE):
        args += _disaggregation_args(spec)
        if spec.role is Role.PREFILL:
            ports.append(NamedPort("kv", BOOTSTRAP_PORT))
    return EnginePod(
        image=spec.engine.image or DEFAULT_IMAGE,
        command=("python3", "-m", "sglang.launch_server"),
        args=tuple(escape_expansion(a) for a in args) + user_args(spec),
        ports=tuple(ports),
        health_check=http_health_check(),
        startup_budget_s=_STARTUP_BUDGET_S,
        metrics_port=HTTP_PORT,
        needs_shared_memory=True,
    )


def _disaggregation_args(spec: WorkerPoolSpec) -> list[str]:
    connector = spec.kv_connector
    if connector.type not in _BACKENDS:
        raise ValueError(
            f"kvConnector.type: {connector.type} cannot move KV between sglang workers; "
            f"use {' or '.join(_BACKENDS)}"
        )
    unknown = sorted(set(connector.params) - set(_KNOWN_PARAMS))
    if unknown:
        raise ValueError(
            f"kvConnector.params: unknown param {unknown[0]!r} for sglang "
            f"(known: {', '.join(_KNOWN_PARAMS)})"
        )
    args = ["--disaggregation-mode", str(spec.role)]
    args += ["--disaggregation-transfer-backend", str(connector.type)]
    if spec.role is Role.PREFILL:
        args += ["--disaggregation-bootstrap-port", str(BOOTSTRAP_PORT)]
    if "device" in connector.params:
        args += ["--disaggregation-ib-device", connector.params["device"]]
    return args
