"""Adaptive disaggregation's choice: prefill on the request's decode worker, or on a
prefill worker. Pure: the live router and the simulator decide alike (`walk.py`).

Each choice gets an `Outlook` from the step-latency model the engines share
(`triskel.common.latency`, DistServe's forms) and the endpoints' load:

    local   TTFT   the decode worker's queued prefill work, this prefill, and the
                   decode steps its chunks ride along with (chunked prefill);
            TPOT   the decode worker's step with this request in its batch, plus the
                   prefill work queued there and this prefill spread over the answer:
                   every running decode waits through each chunk (Sarathi-Serve's
                   interference, which a local prefill adds and a remote one does not);
            delay  this TTFT plus what the running decodes lose: batch × this prefill.
    remote  TTFT   the prefill worker's queue and this prefill (`predict_ttft_ms`);
            TPOT   as local without this prefill (the KV arrives by transfer);
            delay  this TTFT (the transfer delays the second token, not the first, and
                   at RDMA speeds it is small beside a prefill).

The choice (`prefers_local`): a choice that meets both budgets (the routing's SLO;
an axis without one always meets it) beats one that does not; between two that both
meet them, or both miss, the lower total delay wins, and ties go to the prefill pool.
DistServe and Splitwise place prefill and decode apart to keep this interference off
the decodes; semi-PD and P/D-Serve mix them when one pool is the bottleneck. Choosing
per request against both budgets gets both.

Predictions are scaled per worker by `Calibration` (observed ÷ predicted, learnt from
the TTFTs and TPOTs the router sees), so a worker slower than its profile, or one
reporting no profile, is judged by what it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.router.scheduling.calibration import Calibration, Kind
from triskel.router.scheduling.producers.latency_predictor import (
    own_prefill_ms,
    predict_tpot_ms,
    predict_ttft_ms,
    queued_prefill_ms,
    queued_prefill_tokens,
)
from triskel.router.scheduling.types import Endpoint


@dataclass(frozen=True, slots=True)
class Budgets:
    """The SLO a choice should meet; None: that axis is not constrained."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Expected:
    """A choice's predictions before calibration scaled them: what the driver compares
    with the TTFT and TPOT it then observes (`Calibration.observe`)."""

    prefill_worker_id: str
    ttft_ms: float
    decode_worker_id: str
    tpot_ms: float


@dataclass(frozen=True, slots=True)
class Outlook:
    """What one choice is predicted to cost."""

    ttft_ms: float
    """This request's time to its first token."""
    tpot_ms: float
    """The decode worker's time per output token while this answer decodes."""
    delay_ms: float
    """This TTFT plus the time the choice adds to other requests' answers."""
    expected: Expected

    def meets(self, budgets: Budgets) -> bool:
        return (budgets.ttft_ms is None or self.ttft_ms <= budgets.ttft_ms) and (
            budgets.tpot_ms is None or self.tpot_ms <= budgets.tpot_ms
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A picked worker and the prompt tokens it lacks."""

    endpoint: Endpoint
    num_uncached_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    """The request's shape as the choice needs it."""

    num_prompt_tokens: int
    max_tokens: int


def local_outlook(decode: Candidate, answer: Answer, calibration: Calibration) -> Outlook:
    """Prefilling on the decode worker."""
    endpoint = decode.endpoint
    worker_id = endpoint.worker_id
    own_ms = own_prefill_ms(endpoint, decode.num_uncached_tokens)
    step_ms = predict_tpot_ms(endpoint, answer.num_prompt_tokens)
    # The prefill's chunks share steps with the running decodes: each step of the
    # queued and new prefill tokens also pays one decode step.
    num_tokens = queued_prefill_tokens(endpoint) + decode.num_uncached_tokens
    decodes_ms = _decodes_during_prefill_ms(endpoint, num_tokens, step_ms)
    ttft_ms = predict_ttft_ms(endpoint, decode.num_uncached_tokens) + decodes_ms
    horizon = max(1, answer.max_tokens)
    tpot_ms = step_ms + (queued_prefill_ms(endpoint) + own_ms) / horizon
    ttft_factor = calibration.factor(worker_id, Kind.TTFT)
    return Outlook(
        ttft_ms=ttft_ms * ttft_factor,
        tpot_ms=tpot_ms * calibration.factor(worker_id, Kind.TPOT),
        delay_ms=(ttft_ms + _batch(endpoint) * own_ms) * ttft_factor,
        expected=Expected(worker_id, ttft_ms, worker_id, tpot_ms),
    )


def remote_outlook(
    decode: Candidate, prefill: Candidate, answer: Answer, calibration: Calibration
) -> Outlook:
    """Prefilling on the prefill worker, the KV moving to the decode worker."""
    endpoint = decode.endpoint
    step_ms = predict_tpot_ms(endpoint, answer.num_prompt_tokens)
    tpot_ms = step_ms + queued_prefill_ms(endpoint) / max(1, answer.max_tokens)
    prefill_id = prefill.endpoint.worker_id
    ttft_ms = predict_ttft_ms(prefill.endpoint, prefill.num_uncached_tokens)
    scaled_ttft_ms = ttft_ms * calibration.factor(prefill_id, Kind.TTFT)
    return Outlook(
        ttft_ms=scaled_ttft_ms,
        tpot_ms=tpot_ms * calibration.factor(endpoint.worker_id, Kind.TPOT),
        delay_ms=scaled_ttft_ms,
        expected=Expected(prefill_id, ttft_ms, endpoint.worker_id, tpot_ms),
    )


def prefers_local(local: Outlook, remote: Outlook, budgets: Budgets) -> bool:
    """Whether the local prefill is the better choice (see the module docstring)."""
    local_meets = local.meets(budgets)
    if local_meets != remote.meets(budgets):
        return local_meets
    return local.delay_ms < remote.delay_ms


def _decodes_during_prefill_ms(endpoint: Endpoint, num_tokens: int, step_ms: float) -> float:
    """What the running decodes add to the steps that prefill `num_tokens`: each step
    pays their part of `step_ms` (its fixed cost is paid once per pass, by the prefill)."""
    profile = endpoint.profile
    if profile is None or num_tokens == 0:
        return 0.0  # a flat per-token guess has no steps to count
    # Each running decode takes one token of the step's budget.
    budget = max(1, profile.max_num_batched_tokens - _batch(endpoint))
    num_steps = -(-num_tokens // budget)
    return num_steps * max(0.0, step_ms - profile.decode.a_ms)


def _batch(endpoint: Endpoint) -> int:
    """Requests running on the worker (the router's count or the worker's, the larger)."""
    return max(endpoint.active.num_requests, endpoint.load.num_running_requests)
