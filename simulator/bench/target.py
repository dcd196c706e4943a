"""A running router as the bench sees it, and which protocol a `--url` names.

http://127.0.0.1:8080[/v1]   the OpenAI front: POST /v1/completions, streamed
grpc://127.0.0.1:50051       triskel.v1.Router/Generate
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from triskel.simulator.bench.outcome import Outcome
from triskel.simulator.bench.plan import BenchRequest

Clock = Callable[[], float]
"""Seconds since the start of the replay."""


class TargetError(ValueError):
    """The router cannot be benchmarked (bad URL, unreachable, no such model); one line."""


class Wire(StrEnum):
    HTTP = "http"
    GRPC = "grpc"


@dataclass(frozen=True, slots=True)
class TargetAddress:
    wire: Wire
    # http: the URL up to the port (no /v1); grpc: host:port.
    address: str
    url: str


class Target(Protocol):
    """One router over one protocol. Call `close` when done."""

    async def list_models(self) -> list[str]:
        """The models the router serves; TargetError when it cannot be reached."""
        ...

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        """Sends `request` (exactly its token ids, exactly its output length) and times it.

        Raises RequestFailed with a one-line reason when the router refuses or breaks
        off the request; the caller bounds the time it may take.
        """
        ...

    async def close(self) -> None: ...


def parse_target_url(url: str) -> TargetAddress:
    """Which protocol and address `url` names; TargetError for anything else."""
    parts = urlsplit(url)
    expected = "expected http://HOST:PORT or grpc://HOST:PORT"
    try:
        port = parts.port
    except ValueError:
        raise TargetError(f"--url {url}: bad port; {expected}") from None
    if parts.scheme not in ("http", "https", "grpc") or not parts.hostname or port is None:
        raise TargetError(f"--url {url}: {expected}")
    if parts.scheme == "grpc":
        if parts.path.strip("/"):
            raise TargetError(f"--url {url}: a gRPC address has no path; {expected}")
        return TargetAddress(Wire.GRPC, parts.netloc, url)
    # `triskel up` prints the OpenAI base URL, .../v1: accept it as given.
    if parts.path.rstrip("/") not in ("", "/v1"):
        raise TargetError(f"--url {url}: expected the router's root or its /v1 base URL")
    return TargetAddress(Wire.HTTP, f"{parts.scheme}://{parts.netloc}", url)
