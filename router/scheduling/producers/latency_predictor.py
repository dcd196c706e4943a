"""Predicted TTFT and TPOT of a request on a worker, from its latency profile and load.

Pure functions over an `Endpoint`, used by the SLO-aware scorer and by DualMap.
The model is DistServe's (prefill `a + b·L + c·L²`, decode `a + b·context +
c·batch`) applied to what is ahead of the request:

    TTFT ≈ prefill(tokens already queued for prefill on the worker + this request's
                   uncached tokens)
    TPOT ≈ decode step with the worker's running batch plus this request

Queued work is taken from the router's own accounting (`ActiveLoad`, always
current) or the worker's report (`WorkerLoad`), whichever is larger: the report
also covers other routers' requests, the accounting covers the last stats period.
DualMap's paper uses the linear form `T = t_tok · (queued + pending + uncached
tokens)`; the profile's quadratic term makes long prompts cost what they cost.
"""

from __future__ import annotations

from triskel.common.latency import decode_ms, prefill_ms
from triskel.router.scheduling.types import Endpoint

# A worker with no profile (a real engine that reports none) is predicted with this
# per-token prefill time, so comparisons between such workers still rank by load.
UNKNOWN_PROFILE_MS_PER_TOKEN = 0.1


def queued_prefill_tokens(endpoint: Endpoint) -> int:
    """Prompt tokens ahead of a new request on `endpoint`."""
    return max(endpoint.active.num_prefill_tokens, endpoint.load.num_tokens_in_flight)


def queued_prefill_ms(endpoint: Endpoint) -> float:
    """Time the prefill work queued on `endpoint` takes."""
    queued = queued_prefill_tokens(endpoint)
    profile = endpoint.profile
    if profile is None:
        return queued * UNKNOWN_PROFILE_MS_PER_TOKEN
    # Work ahead runs in chunks of the step budget, each paying the step overhead; its
    # attention (quadratic) cost belongs to other requests of unknown lengths, so only
    # the linear part counts.
    num_steps_ahead = -(-queued // profile.max_num_batched_tokens)
    return num_steps_ahead * profile.prefill.a_ms + profile.prefill.b_ms_per_token * queued


def own_prefill_ms(endpoint: Endpoint, num_tokens: int) -> float:
    """Time one prefill of `num_tokens` takes on `endpoint`, queue aside."""
    if endpoint.profile is None:
        return num_tokens * UNKNOWN_PROFILE_MS_PER_TOKEN
    return prefill_ms(endpoint.profile.prefill, num_tokens)


def predict_ttft_ms(endpoint: Endpoint, num_uncached_tokens: int) -> float:
    """Time until a new request with `num_uncached_tokens` to compute gets its first token."""
    return queued_prefill_ms(endpoint) + own_prefill_ms(endpoint, num_uncached_tokens)


def predict_tpot_ms(endpoint: Endpoint, num_context_tokens: int) -> float:
    """Time per output token once the request decodes alongside the worker's batch."""
    profile = endpoint.profile
    batch = max(endpoint.active.num_requests, endpoint.load.num_running_requests) + 1
    if profile is None:
        return float(batch) * UNKNOWN_PROFILE_MS_PER_TOKEN
    # Other sequences' context is unknown per request: assume they look like this one.
    return decode_ms(profile.decode, num_context_tokens * batch, batch)
