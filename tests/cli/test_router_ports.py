"""router_ports: is the router's address free, and what `triskel up` says when not."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from triskel.cli.router_ports import first_unusable, listen_error
from triskel.cli.up_config import RouterSettings

from support.held_address import held_loopback_address


@pytest.fixture
def busy_address() -> Iterator[str]:
    with held_loopback_address() as address:
        yield address


def test_port_0_and_a_free_port_are_usable() -> None:
    assert listen_error("127.0.0.1:0") is None
    with socket.socket() as probe:  # free once closed
        probe.bind(("127.0.0.1", 0))
        free_address = f"127.0.0.1:{probe.getsockname()[1]}"
    assert listen_error(free_address) is None


def test_a_listening_port_is_not(busy_address: str) -> None:
    error = listen_error(busy_address)
    assert error is not None and "in use" in str(error).lower()


@pytest.mark.parametrize(
    ("api", "flag", "field"), [("http", "--http", "router.http"), ("grpc", "--grpc", "router.grpc")]
)
@pytest.mark.parametrize("file", [None, Path("up.yaml")])
def test_the_line_names_the_address_the_api_and_the_flag(
    busy_address: str, api: str, flag: str, field: str, file: Path | None
) -> None:
    settings = RouterSettings.model_validate(
        {"http": "127.0.0.1:0", "grpc": "127.0.0.1:0", api: busy_address}
    )
    line = first_unusable(settings, file)
    assert line is not None and "\n" not in line
    assert busy_address in line and f"{flag} HOST:PORT" in line, line
    # The file's field only when there is a file to edit.
    assert (f"{field} in up.yaml" in line) == (file is not None), line


def test_nothing_to_say_when_both_are_usable() -> None:
    settings = RouterSettings.model_validate({"http": "127.0.0.1:0", "grpc": "127.0.0.1:0"})
    assert first_unusable(settings, None) is None
