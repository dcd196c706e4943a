from __future__ import annotations

import subprocess
import sys

import pytest

from triskel.workers.kv.mooncake import MooncakeConnector
from triskel.workers.kv.nccl import NcclConnector
from triskel.workers.kv.registry import connector_types, create_connector
from triskel.workers.kv.tcp import TcpConnector


@pytest.mark.parametrize(
    ("type_name", "params", "kind"),
    [
        ("tcp", {}, TcpConnector),
        ("mooncake", {"protocol": "rdma", "device": "mlx5_0"}, MooncakeConnector),
        ("nccl", {"backend": "gloo", "timeout_s": "5"}, NcclConnector),
    ],
)
def test_known_types_build(type_name: str, params: dict[str, str], kind: type) -> None:
    connector = create_connector(type_name, params)
    assert isinstance(connector, kind)
    assert connector.type_name == type_name


@pytest.mark.parametrize(
    ("type_name", "params", "message"),
    [
        ("nixl", {}, "unknown connector 'nixl' \\(known: tcp, mooncake, nccl\\)"),
        ("tcp", {"port": "1"}, "unknown param 'port' for tcp"),
        ("mooncake", {"protcol": "tcp"}, "unknown param 'protcol' for mooncake"),
        ("mooncake", {"protocol": "udp"}, "params.protocol: 'udp' is not one of"),
        ("nccl", {"backend": "mpi"}, "params.backend: 'mpi' is not one of"),
        ("nccl", {"timeout_s": "soon"}, "params.timeout_s: 'soon' is not a number"),
        ("nccl", {"timeout_s": "0"}, "params.timeout_s: must be > 0, got 0.0"),
        ("nccl", {"rank": "0"}, "unknown param 'rank' for nccl"),
    ],
)
def test_bad_config_is_named(type_name: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_connector(type_name, params)


def test_connector_types() -> None:
    assert connector_types() == ("tcp", "mooncake", "nccl")


def test_building_connectors_imports_neither_torch_nor_mooncake() -> None:
    # A fresh interpreter: this test process may already have imported both.
    code = (
        "import sys\n"
        "from triskel.workers.kv.registry import create_connector\n"
        "for name in ('tcp', 'mooncake', 'nccl'):\n"
        "    create_connector(name, {})\n"
        "print(sorted(m for m in ('torch', 'mooncake') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
