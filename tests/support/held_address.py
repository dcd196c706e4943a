"""A loopback address a listening socket holds: what a busy port looks like."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_loopback_address() -> Iterator[str]:
    """`127.0.0.1:PORT`, listened on until the block ends."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield f"127.0.0.1:{holder.getsockname()[1]}"
