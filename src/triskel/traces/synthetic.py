"""Seeded synthetic workloads: bursty arrivals, Zipf-shared system prompts, chats.

A workload is a stream of *sessions*. Each session starts with a first turn
whose prompt is an optional shared system prompt plus a user message; each
later turn arrives a think time after the previous one, and its prompt is the
previous prompt + the previous answer + a new message, so its block ids extend
the previous turn's ids (what makes conversations cache-friendly):

    turn 1: [sys0 sys1][u1 u2]               ids  0  1 | 40 41
    turn 2: [sys0 sys1][u1 u2][a1 u3 u4]     ids  0  1 | 40 41 | 42 43 44
            (a1..: previous answer + new message, in fresh blocks)

The last id of a turn may name a partly filled block; the next turn reuses it
whole. That is consistent because a block id always stands for the same fixed
tokens (see prompt_tokens.py), of which a shorter prompt uses a prefix.

Three options shape other workloads: shared prefixes of varied length
(`prefixBlocksMax`: RAG documents of 8k-64k tokens), a tool's output before each
follow-up's new text (`toolOutputTokensMean`: agent sessions), and windows in
which sessions start `factor` times as often (`bursts`). Options left unset draw
nothing from the random stream, so an older spec still gives the same trace.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate

from pydantic import Field, model_validator

from triskel.common.api import ApiModel
from triskel.traces.burst import BurstWindow, check_windows, real_time_s
from triskel.traces.types import Trace, TraceRequest


class ArrivalProcess(StrEnum):
    POISSON = "poisson"
    """Exponential gaps: independent arrivals."""
    GAMMA = "gamma"
    """Gamma gaps with shape < 1: same mean rate, burstier (coefficient of variation > 1)."""


class BurstSpec(ApiModel):
    """A window in which sessions start `factor` times as often as `ratePerS` says."""

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    factor: float = Field(ge=1)


class SyntheticSpec(ApiModel):
    """A synthetic workload; set exactly one of `durationS` and `numRequests`."""

    arrival: ArrivalProcess = ArrivalProcess.POISSON
    """poisson or gamma (bursty)."""
    rate_per_s: float = Field(gt=0)
    """Mean request rate over all turns, requests per second."""
    gamma_shape: float = Field(default=0.5, gt=0, lt=1)
    """Shape of the gamma gaps (gamma only): the smaller, the burstier."""
    duration_s: float | None = Field(default=None, gt=0)
    """Generate arrivals up to this time, seconds."""
    num_requests: int | None = Field(default=None, ge=1)
    """Generate exactly this many requests."""
    input_tokens_mean: float = Field(default=1024, ge=1)
    """Mean tokens of a user message (lognormal), system prompt and history excluded."""
    input_tokens_sigma: float = Field(default=1.0, ge=0)
    """Sigma of the message length's underlying normal (0: every message the mean)."""
    output_tokens_mean: float = Field(default=256, ge=1)
    """Mean generated tokens per turn (lognormal)."""
    output_tokens_sigma: float = Field(default=0.8, ge=0)
    num_prefixes: int = Field(default=0, ge=0)
    """Shared system prompts in the pool (0: first turns start with the user message)."""
    prefix_blocks: int = Field(default=4, ge=1)
    """Blocks of each shared system prompt (the shortest, with prefixBlocksMax)."""
    prefix_blocks_max: int | None = Field(default=None, ge=1)
    """Each shared prompt draws its length uniformly in [prefixBlocks, this] blocks."""
    zipf_s: float = Field(default=1.0, ge=0)
    """Zipf exponent of system prompt popularity (0: uniform)."""
    block_tokens: int = Field(default=512, ge=1)
    """Tokens per prefix block (Mooncake uses 512)."""
    turns_mean: float = Field(default=1.0, ge=1)
    """Mean turns per session (geometric; 1: every request is its own session)."""
    think_time_mean_s: float = Field(default=30.0, gt=0)
    """Mean gap between a turn's arrival and the next turn's (exponential), seconds."""
    max_input_tokens: int | None = Field(default=None, ge=1)
    """A session ends before a turn whose prompt would exceed this (a context limit)."""
    tool_output_tokens_mean: float = Field(default=0, ge=0)
    """Mean tokens (lognormal) a tool returns before each follow-up's new message (0: none)."""
    tool_output_tokens_sigma: float = Field(default=1.0, ge=0)
    bursts: list[BurstSpec] = Field(default_factory=list)
    """Windows (seconds) in which sessions start `factor` times as often; no overlaps."""

    @model_validator(mode="after")
    def _one_stopping_rule(self) -> SyntheticSpec:
        if (self.duration_s is None) == (self.num_requests is None):
            raise ValueError("set exactly one of durationS and numRequests")
        if self.prefix_blocks_max is not None and self.prefix_blocks_max < self.prefix_blocks:
            raise ValueError(
                f"prefixBlocksMax ({self.prefix_blocks_max}) must be >= prefixBlocks"
                f" ({self.prefix_blocks})"
            )
        check_windows(self.burst_windows())
        return self

    def burst_windows(self) -> list[BurstWindow]:
        return [(b.start_s, b.end_s, b.factor) for b in self.bursts]


@dataclass(slots=True)
class _Session:
    session_id: str
    block_ids: tuple[int, ...] = ()
    num_context_tokens: int = 0
    """Previous prompt + previous answer: what the next prompt starts with."""


@dataclass(order=True, slots=True)
class _Event:
    arrival_s: float
    sequence: int
    """Breaks ties in creation order, so equal arrivals keep a deterministic order."""
    session: _Session | None = field(compare=False)
    """None: a new session starts."""


def synthetic_trace(spec: SyntheticSpec, seed: int) -> Trace:
    """The workload `spec` describes; the same (spec, seed) always gives the same trace.

    Session starts follow the arrival process at rate_per_s / turns_mean, so the
    steady-state request rate over all turns is rate_per_s; follow-ups still
    building up at the start, and those cut off by the end or by max_input_tokens,
    make the whole trace's rate lower (exact with turns_mean 1). Inside a burst
    window sessions start `factor` times as often.
    """
    rng = random.Random(seed)
    builder = _Builder(spec, rng)
    session_rate_per_s = spec.rate_per_s / spec.turns_mean
    windows = check_windows(spec.burst_windows())
    # Session starts are drawn on a clock that runs `factor` times faster in bursts.
    start_clock_s = builder.gap_s(session_rate_per_s)
    events = [_Event(real_time_s(start_clock_s, windows), 0, None)]
    sequence = 1
    requests: list[TraceRequest] = []
    while events:
        event = heapq.heappop(events)
        if spec.duration_s is not None and event.arrival_s > spec.duration_s:
            break
        if spec.num_requests is not None and len(requests) >= spec.num_requests:
            break
        session = event.session
        if session is None:
            session = _Session(session_id=f"s{sequence}")
            start_clock_s += builder.gap_s(session_rate_per_s)
            heapq.heappush(events, _Event(real_time_s(start_clock_s, windows), sequence, None))
            sequence += 1
        request = builder.next_turn(session, event.arrival_s, index=len(requests))
        if request is None:
            continue
        requests.append(request)
        if rng.random() < 1 - 1 / spec.turns_mean:
            think_s = rng.expovariate(1 / spec.think_time_mean_s)
            heapq.heappush(events, _Event(event.arrival_s + think_s, sequence, session))
            sequence += 1
    return Trace(name=f"synthetic-{seed}", source="synthetic", requests=tuple(requests))


class _Builder:
    """Draws gaps and lengths and hands out block ids; owns the random stream."""

    def __init__(self, spec: SyntheticSpec, rng: random.Random) -> None:
        self._spec = spec
        self._rng = rng
        # System prompt p owns the next prefix_lengths[p] ids after prompt p - 1's
        # (p * prefix_blocks onwards when all are equal); every other block gets a
        # fresh id after the pool's.
        self._prefix_lengths = [self._prefix_length() for _ in range(spec.num_prefixes)]
        self._prefix_starts = [0, *accumulate(self._prefix_lengths)]
        self._next_block_id = self._prefix_starts[-1]
        weights = [1 / (rank + 1) ** spec.zipf_s for rank in range(spec.num_prefixes)]
        self._prefix_cum_weights = list(accumulate(weights))

    def _prefix_length(self) -> int:
        spec = self._spec
        if spec.prefix_blocks_max is None:
            return spec.prefix_blocks
        return self._rng.randint(spec.prefix_blocks, spec.prefix_blocks_max)

    def gap_s(self, rate_per_s: float) -> float:
        if self._spec.arrival is ArrivalProcess.POISSON:
            return self._rng.expovariate(rate_per_s)
        shape = self._spec.gamma_shape
        # Mean gap shape * scale = 1 / rate: same rate as Poisson, higher variance.
        return self._rng.gammavariate(shape, 1 / (rate_per_s * shape))

    def next_turn(self, session: _Session, arrival_s: float, index: int) -> TraceRequest | None:
        """The session's next request, or None when it would overflow max_input_tokens."""
        spec = self._spec
        block_ids = session.block_ids
        num_input = session.num_context_tokens
        if not block_ids and spec.num_prefixes > 0:
            prefix = self._rng.choices(
                range(spec.num_prefixes), cum_weights=self._prefix_cum_weights
            )[0]
            start, end = self._prefix_starts[prefix], self._prefix_starts[prefix + 1]
            block_ids = tuple(range(start, end))
            num_input = (end - start) * spec.block_tokens
        elif block_ids and spec.tool_output_tokens_mean > 0:
            # A follow-up: the tool's answer to the previous turn's call comes first.
            tool = self._lognormal(spec.tool_output_tokens_mean, spec.tool_output_tokens_sigma)
            num_input += tool
        num_input += self._lognormal(spec.input_tokens_mean, spec.input_tokens_sigma)
        num_output = self._lognormal(spec.output_tokens_mean, spec.output_tokens_sigma)
        if spec.max_input_tokens is not None and num_input > spec.max_input_tokens:
            return None
        num_fresh = math.ceil(num_input / spec.block_tokens) - len(block_ids)
        block_ids += tuple(range(self._next_block_id, self._next_block_id + num_fresh))
        self._next_block_id += num_fresh
        session.block_ids = block_ids
        session.num_context_tokens = num_input + num_output
        return TraceRequest(
            arrival_s=arrival_s,
            num_input_tokens=num_input,
            num_output_tokens=num_output,
            prefix_block_ids=block_ids,
            prefix_block_tokens=spec.block_tokens,
            session_id=session.session_id,
            index=index,
        )

    def _lognormal(self, mean: float, sigma: float) -> int:
        # E[lognormal(mu, sigma)] = exp(mu + sigma^2 / 2): pick mu so the mean is `mean`.
        mu = math.log(mean) - sigma * sigma / 2
        return max(1, round(self._rng.lognormvariate(mu, sigma)))
