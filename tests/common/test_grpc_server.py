"""start_server: a busy address is an OSError, never a port shared with another server."""

from __future__ import annotations

import grpc
import pytest

from triskel.common.grpc_server import start_server

from support.held_address import held_loopback_address


def _no_service(server: grpc.aio.Server) -> None:
    del server


@pytest.mark.asyncio
async def test_a_port_another_grpc_server_holds_is_refused() -> None:
    # gRPC sets SO_REUSEPORT by default: a second server once bound the same port and
    # took half of the first one's connections.
    first, port = await start_server(_no_service, "test.First", "127.0.0.1:0")
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            await start_server(_no_service, "test.Second", f"127.0.0.1:{port}")
    finally:
        await first.stop(None)


@pytest.mark.asyncio
async def test_a_port_a_plain_socket_holds_is_an_oserror() -> None:
    # grpcio raises RuntimeError here; start_server's contract is OSError.
    with held_loopback_address() as address, pytest.raises(OSError, match=address):
        await start_server(_no_service, "test.Server", address)
