"""Keeping a native transport's listeners on loopback when the worker's KV host is.

Mooncake (0.3.x) binds its handshake and TCP-transport listeners to the wildcard
address with no setting to change it, so under `triskel up` (KV on 127.0.0.1) they
would take connections from the whole network. Right after its engine starts, every
wildcard listener it opened is pinned to the loopback interface (SO_BINDTODEVICE):
the kernel then matches only connections arriving on `lo`, as if bound to 127.0.0.1.

With a routable KV host (a pod IP) the listeners are left as they are: in a pod the
network namespace holds only the pod's interface, and pinning them to it would refuse
same-host peers (their packets arrive on `lo`). NetworkPolicies restrict who reaches
them there (docs/security.md). Linux only, like Mooncake.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_FD_DIR = Path("/proc/self/fd")
_WILDCARD_HOSTS = ("0.0.0.0", "::")
_LOOPBACK_DEVICE = b"lo"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def wildcard_listeners() -> set[int]:
    """Socket inodes of this process's TCP listeners bound to the wildcard address."""
    return {inode for inode, _ in _wildcard_listener_sockets()}


def pin_to_loopback(skip: set[int]) -> int:
    """Pins every wildcard TCP listener of this process not in `skip` (inodes) to
    the loopback interface; returns how many it pinned. OSError if the kernel refuses."""
    num_pinned = 0
    for inode, sock in _wildcard_listener_sockets():
        with sock:
            if inode in skip:
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, _LOOPBACK_DEVICE)
            num_pinned += 1
    return num_pinned


def bound_device(sock: socket.socket) -> str:
    """The interface `sock` is pinned to ("" for none)."""
    name = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
    return name.rstrip(b"\0").decode()


def _wildcard_listener_sockets() -> Iterator[tuple[int, socket.socket]]:
    """(inode, a duplicate of the socket) for each wildcard TCP listener; the caller
    closes the duplicates (the owner's descriptors stay open)."""
    for inode, fd in _socket_fds():
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:  # closed meanwhile by its owner
            continue
        if _is_wildcard_listener(sock):
            yield inode, sock
        else:
            sock.close()


def _is_wildcard_listener(sock: socket.socket) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    with contextlib.suppress(OSError):
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        return bool(listening) and sock.getsockname()[0] in _WILDCARD_HOSTS
    return False


def _socket_fds() -> Iterator[tuple[int, int]]:
    for entry in _FD_DIR.iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            yield int(target[len("socket:[") : -1]), int(entry.name)
