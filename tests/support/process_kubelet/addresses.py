"""Pod IPs: one loopback address 127.0.0.N per running pod, N from `first` up.

Linux routes all of 127.0.0.0/8 to the loopback device, so every such address can be
bound without configuration. An address is free when no pod of this kubelet holds it
and each TCP port the pod declares can be bound on it (another kubelet or program on
this machine may be listening there already).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

_LAST = 254


class NoAddressLeft(Exception):
    pass


class LoopbackAddresses:
    def __init__(self, first: int = 2) -> None:
        if not 2 <= first <= _LAST:
            raise ValueError(f"first loopback address 127.0.0.{first} is outside 2..{_LAST}")
        self._first = first
        self._held: set[str] = set()

    def allocate(self, ports: Iterable[int]) -> str:
        """The lowest free address whose `ports` are free too; it is held until `release`."""
        wanted = sorted(set(ports))
        for last_octet in range(self._first, _LAST + 1):
            address = f"127.0.0.{last_octet}"
            if address not in self._held and all(_can_bind(address, p) for p in wanted):
                self._held.add(address)
                return address
        raise NoAddressLeft(f"no free 127.0.0.N for ports {wanted} (N {self._first}..{_LAST})")

    def release(self, address: str) -> None:
        self._held.discard(address)


def _can_bind(address: str, port: int) -> bool:
    with socket.socket() as probe:
        # As servers bind: a port in TIME_WAIT from an earlier pod is free to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
        return True
