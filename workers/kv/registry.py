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


def create_connector(type_name: str, params: Mapping[str, str]) -> KvConnector:
    """A new, unstarted connector; ValueError names an unknown type or param."""
    factory = _FACTORIES.get(str(type_name))
    if factory is None:
        raise ValueError(
            f"kvConnector.type: unknown connector {str(type_name)!r} "
            f"(known: {', '.join(_FACTORIES)})"
        )
    return factory(params)
