"""One module per engine, each turning a pool spec into its container (`EnginePod`)."""

from __future__ import annotations

from triskel.common.api import EngineType, WorkerPoolSpec
from triskel.operator.builders.engines.base import EnginePod, NamedPort
from triskel.operator.builders.engines.mock import mock_pod
from triskel.operator.builders.engines.sglang import sglang_pod
from triskel.operator.builders.engines.vllm import vllm_pod

__all__ = ["EnginePod", "NamedPort", "engine_pod", "engine_ports"]


def engine_pod(spec: WorkerPoolSpec, worker_image: str) -> EnginePod:
    """The pool's container; `worker_image` (the Triskel image) runs mock workers.

    ValueError names the spec field an engine cannot run as written.
    """
    if spec.engine.type is EngineType.MOCK:
        return mock_pod(spec, worker_image)
    if spec.engine.type is EngineType.VLLM:
        return vllm_pod(spec)
    return sglang_pod(spec)


def engine_ports(spec: WorkerPoolSpec) -> tuple[NamedPort, ...]:
    """The ports the pool's pods listen on (the image plays no part in them)."""
    return engine_pod(spec, worker_image="").ports
