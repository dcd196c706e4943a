"""Builds a KV connector by type name, the way pool specs name one.

Each connector class parses its own typed params (`from_params`) and fails loudly
on an unknown one; nothing heavy (Mooncake, torch) is imported until `start`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from triskel.workers.kv.connector import KvConnector
from triskel.workers.kv.mooncake import MooncakeConnector
from triskel.workers.kv.nccl import NcclConnector
from triskel.workers.kv.tcp import TcpConnector

_FACTORIES: Mapping[str, Callable[[Mapping[str, str]], KvConnector]] = {
    TcpConnector.type_name: TcpConnector.from_params,
    MooncakeConnector.type_name: MooncakeConnector.from_params,
    NcclConnector.type_name: NcclConnector.from_params,
}


def connector_types() -> tuple[str, ...]:
    """The type names `create_connector` accepts."""
    return tuple(_FACTORIES)


# How much of an unknown name a refusal repeats: enough to recognise it, no amplifier.
_MAX_ECHOED_CHARS = 64


def create_connector(type_name: str, params: Mapping[str, str]) -> KvConnector:
    """A new, unstarted connector; ValueError names an unknown type or param."""
    factory = _FACTORIES.get(str(type_name))
    if factory is None:
        raise ValueError(f"kvConnector.type: {connector_type_problem(type_name)}")
    return factory(params)


def connector_type_problem(type_name: str) -> str:
    """Why `type_name` names no connector, or "" when it names one."""
    if str(type_name) in _FACTORIES:
        return ""
    shown = str(type_name)[:_MAX_ECHOED_CHARS]
    return f"unknown connector {shown!r} (known: {', '.join(_FACTORIES)})"
