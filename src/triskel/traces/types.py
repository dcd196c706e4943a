"""What a workload is once read: requests sorted by arrival, whatever the source."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a workload.

    `prefix_block_ids` name the prompt's blocks of `prefix_block_tokens` tokens in
    order (the last one may be partly filled): two requests whose lists start with
    the same k ids share their first k * prefix_block_tokens prompt tokens. Traces
    without prefix information leave the tuple empty and the block size 0.
    """

    arrival_s: float
    """Seconds from the start of the trace."""
    num_input_tokens: int
    num_output_tokens: int
    prefix_block_ids: tuple[int, ...]
    prefix_block_tokens: int
    session_id: str | None
    """Turns of one conversation share it; None when the source has no sessions."""
    index: int
    """0-based position of the request in its trace (file order for real traces)."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A named workload; `requests` is sorted by arrival (ValueError otherwise)."""

    name: str
    source: str
    """Where it came from: a file path or `synthetic:<spec file>`."""
    requests: tuple[TraceRequest, ...]

    def __post_init__(self) -> None:
        for before, after in pairwise(self.requests):
            if after.arrival_s < before.arrival_s:
                raise ValueError(
                    f"trace {self.name}: request {after.index} arrives at {after.arrival_s} s,"
                    f" before request {before.index} at {before.arrival_s} s"
                )

    @property
    def num_requests(self) -> int:
        return len(self.requests)

    @property
    def duration_s(self) -> float:
        """Seconds from the trace start to the last arrival (0 for an empty trace)."""
        return self.requests[-1].arrival_s if self.requests else 0.0

    def scaled(self, rate_scale: float) -> Trace:
        """The same requests replayed `rate_scale` times faster (arrivals / rate_scale)."""
        if not rate_scale > 0:
            raise ValueError(f"rate_scale must be > 0, got {rate_scale}")
        requests = tuple(replace(r, arrival_s=r.arrival_s / rate_scale) for r in self.requests)
        return Trace(name=self.name, source=self.source, requests=requests)

    def head(self, n: int) -> Trace:
        """The first `n` requests (all of them when the trace is shorter)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return Trace(name=self.name, source=self.source, requests=self.requests[:n])
