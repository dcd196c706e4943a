"""Can the router listen where `triskel up` was told to? Asked before any worker starts,
so a busy port costs one line rather than seven workers started and stopped.

The answer can go stale before the router binds (another process may take the port
in between); the router then fails to start and `up` stops what it started.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from triskel.cli.up_config import RouterSettings


@dataclass(slots=True, frozen=True)
class RouterListener:
    """One address the router listens on, and where the user sets it."""

    api: str  # "HTTP" or "gRPC"
    address: str  # host:port
    flag: str  # the `triskel up` flag that overrides it
    field: str  # its field in the `triskel up` file


def router_listeners(settings: RouterSettings) -> list[RouterListener]:
    return [
        RouterListener("HTTP", settings.http, "--http", "router.http"),
        RouterListener("gRPC", settings.grpc, "--grpc", "router.grpc"),
    ]


def listen_error(address: str) -> OSError | None:
    """Why a TCP server could not listen on `address` now (port 0 always can), or None.

    Binds as aiohttp does (SO_REUSEADDR: a port left in TIME_WAIT is free) but without
    SO_REUSEPORT, so a port another gRPC server holds counts as busy too.
    """
    host, _, port_text = address.rpartition(":")
    port = int(port_text)
    if port == 0:
        return None
    try:
        family, kind, proto, _, socket_address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(socket_address)
    except OSError as error:
        return error
    return None


def describe_unusable(listener: RouterListener, error: OSError, file: Path | None) -> str:
    """One line: the address, why, and the flag (or the file's field) that moves it."""
    reason = (error.strerror or str(error)).lower()
    in_file = f", or {listener.field} in {file}" if file is not None else ""
    return (
        f"the router cannot listen on {listener.address} for its {listener.api} API "
        f"({reason}): pick another address with {listener.flag} HOST:PORT "
        f"(port 0: any free one){in_file}"
    )


def first_unusable(settings: RouterSettings, file: Path | None) -> str | None:
    """What `describe_unusable` says of the first address the router cannot listen on."""
    for listener in router_listeners(settings):
        error = listen_error(listener.address)
        if error is not None:
            return describe_unusable(listener, error, file)
    return None
