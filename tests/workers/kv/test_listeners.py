"""Mooncake's listeners stay on loopback when the KV host is (issue 19: they bound
0.0.0.0 even under `triskel up`)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.listeners import (
    bound_device,
    is_loopback,
    pin_to_loopback,
    wildcard_listeners,
)
from triskel.workers.kv.registry import create_connector


def listening_sockets() -> dict[int, tuple[str, str]]:
    """inode -> (bound host, pinned device) of this process's TCP listeners, read
    independently of the module under test."""
    found: dict[int, tuple[str, str]] = {}
    for entry in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(entry)
            sock = socket.socket(fileno=os.dup(int(entry.name)))
        except OSError:
            continue
        with sock:
            if not target.startswith("socket:") or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                found[int(target[8:-1])] = (sock.getsockname()[0], bound_device(sock))
    return found


@pytest.mark.asyncio
async def test_mooncake_listeners_accept_only_loopback_under_a_loopback_kv_host() -> None:
    before = set(listening_sockets())
    arena = KvArena(2, 4096)
    connector = create_connector("mooncake", {})
    await connector.start(arena, "w", "127.0.0.1")
    try:
        opened = {k: v for k, v in listening_sockets().items() if k not in before}
        # The control listener plus Mooncake's handshake and TCP-transport listeners.
        assert len(opened) >= 3, opened
        for host, device in opened.values():
            assert is_loopback(host) or device == "lo", opened
    finally:
        await connector.close()
        arena.close()


def test_pinning_leaves_other_listeners_alone() -> None:
    with socket.create_server(("0.0.0.0", 0)) as theirs:
        before = wildcard_listeners()
        with socket.create_server(("0.0.0.0", 0)) as ours:
            assert pin_to_loopback(skip=before) == 1
            assert bound_device(ours) == "lo" and bound_device(theirs) == ""


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("10.0.0.5", False), ("node-1", False)],
)  # fmt: skip
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
