"""What the client saw of one request, and the simulator's record made from it. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.records import RequestRecord, RunResult


class RequestFailed(Exception):
    """A request the router refused or broke off; the message says why, on one line."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's result, in seconds from the start of the replay.

    A request that failed has `error` set and no token times.
    """

    first_token_s: float | None
    last_token_s: float | None
    num_output_tokens: int = 0
    # Prompt tokens the router reported as served from a prefix cache.
    num_cached_tokens: int = 0
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls(None, None, error=error)


@dataclass(slots=True)
class StreamTimes:
    """Collects a stream's token arrivals; both targets fill one per request."""

    first_token_s: float | None = None
    last_token_s: float | None = None
    num_tokens: int = 0

    def on_tokens(self, num_tokens: int, now_s: float) -> None:
        if num_tokens <= 0:
            return
        if self.first_token_s is None:
            self.first_token_s = now_s
        self.last_token_s = now_s
        self.num_tokens += num_tokens

    def outcome(self, num_reported_tokens: int | None, num_cached_tokens: int) -> Outcome:
        """The finished stream; the router's own token count wins over the chunks seen.

        RequestFailed when no token came (the stream ended without an answer).
        """
        if self.first_token_s is None or self.last_token_s is None:
            raise RequestFailed("the stream ended without a token")
        num_tokens = self.num_tokens if num_reported_tokens is None else num_reported_tokens
        return Outcome(self.first_token_s, self.last_token_s, num_tokens, num_cached_tokens)


def failure_reason(request: BenchRequest, outcome: Outcome) -> str | None:
    """Why the request counts as failed; None when it got its answer.

    The bench asks for exactly the trace's output length; a shorter or longer
    answer would make its TPOT meaningless, so it counts as failed.
    """
    if outcome.error is not None:
        return outcome.error
    if outcome.num_output_tokens != request.num_output_tokens:
        return (
            f"got {outcome.num_output_tokens} output tokens, asked for exactly "
            f"{request.num_output_tokens}"
        )
    return None


def to_record(request: BenchRequest, outcome: Outcome) -> RequestRecord:
    """The request's record; a failed one has no token times and no cache hits."""
    is_ok = failure_reason(request, outcome) is None
    return RequestRecord(
        index=request.index,
        arrival_s=request.send_at_s,
        num_input_tokens=request.num_input_tokens,
        num_output_tokens=request.num_output_tokens,
        first_token_s=outcome.first_token_s if is_ok else None,
        finish_s=outcome.last_token_s if is_ok else None,
        num_cached_tokens=outcome.num_cached_tokens if is_ok else 0,
    )


def to_result(
    label: str,
    rate_scale: float,
    requests: Sequence[BenchRequest],
    outcomes: Sequence[Outcome],
    wall_s: float,
) -> RunResult:
    """The run as the simulator reports one, without instance records (a client sees none)."""
    records = [to_record(r, o) for r, o in zip(requests, outcomes, strict=True)]
    finishes = [r.finish_s for r in records if r.finish_s is not None]
    duration_s = max(finishes) - min(r.arrival_s for r in records) if finishes else 0.0
    return RunResult(
        policy=label,
        rate_scale=rate_scale,
        requests=records,
        duration_s=duration_s,
        wall_s=wall_s,
    )
