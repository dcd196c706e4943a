"""How many replicas a stage needs for its SLO at a given load. Pure functions.

Prefill (TTFT). A prefill replica serves prompts one after another; a prompt of L
tokens takes S(L) = `prefill_ms(L)` of the pool's latency profile. Arrivals split
evenly over c replicas make each an M/G/1 queue (Poisson arrivals, general service):
the Pollaczek–Khinchine formula gives the mean wait,

    ρ = λ/c · E[S],   E[Wq] = λ/c · E[S²] / (2 (1 − ρ)),

and the wait's tail is taken as exponential given a wait (Kingman's heavy-traffic
approximation): P(Wq > t) ≈ ρ · exp(−t ρ / E[Wq]). A prompt's TTFT is its wait plus
its own prefill plus a fixed overhead (KV transfer and the first decode step,
`overhead_ms`); TTFT's q-quantile is taken over the mix of prompt lengths (a wait is
independent of the prompt's own length): the t with mean over lengths of P(Wq > t −
S(L)) = 1 − q. Adding the wait's and the prompt's quantiles instead would size for a
far higher quantile, and explode whenever the long prompts alone come near the SLO.
Sizing for throughput alone (ρ < 1) is what lets bursts break TTFT: the queue grows
long before ρ reaches 1.

Decode (TPOT). A request holds a decode slot for its O output tokens, one step each;
a step for B sequences of mean context C̄ takes `a + (b·C̄ + c)·B` (the decode
coefficients). With per-replica arrivals λ/c, Little's law gives the batch
B = λ/c · O · t(B), which solves in closed form:

    B = (λ/c · O · a) / (1 − λ/c · O · (b·C̄ + c))    (when the denominator is > 0)

The replica count is the smallest c whose batch keeps t(B) within the TPOT SLO, fits
the KV cache (B · (I + O) tokens at most `kv_target` of capacity: a sequence ends
holding its whole context) and `max_num_seqs`.

The forms are DistServe's (Zhong et al., OSDI 2024), which sizes prefill and decode
instances separately with queueing models, as Splitwise (Patel et al., ISCA 2024)
does by phase. Everything is in milliseconds and requests per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

from triskel.common.latency import decode_ms, prefill_ms
from triskel.common.profiles import LatencyProfile

# No stage is sized past this: a load that needs more is reported, not planned for.
MAX_REPLICAS = 4096


@dataclass(frozen=True, slots=True)
class Lengths:
    """Token lengths of recent requests: mean, mean of squares (for E[S²]), a high
    quantile, and `points`: equally likely representatives of the distribution (the
    5th, 15th, …, 95th percentiles) when the samples are known. With points, TTFT's
    quantile is that of wait + own prefill over the whole length mix; without (only
    summary statistics, e.g. from histograms), of the wait plus the quantile prompt."""

    mean: float
    mean_square: float
    quantile: float
    points: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: list[int] | tuple[int, ...], q: float = 0.9) -> Lengths:
        if not samples:
            raise ValueError("lengths: need at least one sample")
        ordered = sorted(samples)
        return cls(
            mean=sum(ordered) / len(ordered),
            mean_square=sum(x * x for x in ordered) / len(ordered),
            quantile=_nearest_rank(ordered, q),
            points=tuple(
                _nearest_rank(ordered, (i + 0.5) / LENGTH_POINTS) for i in range(LENGTH_POINTS)
            ),
        )


LENGTH_POINTS = 10


def _nearest_rank(ordered: list[int], q: float) -> float:
    index = min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)
    return float(ordered[max(index, 0)])


@dataclass(frozen=True, slots=True)
class PrefillEstimate:
    replicas: int
    ttft_ms: float  # predicted at the quantile, with that many replicas
    utilization: float  # ρ per replica
    meets_slo: bool = True


@dataclass(frozen=True, slots=True)
class DecodeEstimate:
    replicas: int
    tpot_ms: float  # predicted step time at that many replicas (at the batch's quantile)
    batch: float  # predicted sequences per replica (mean)
    kv_fraction: float  # of KV capacity they hold at the end of their outputs (quantile)
    meets_slo: bool = True


def prefill_ttft_ms(
    profile: LatencyProfile,
    rate_rps: float,
    inputs: Lengths,
    replicas: int,
    quantile: float,
    overhead_ms: float,
) -> tuple[float, float]:
    """(TTFT at `quantile`, utilisation) of `replicas` prefill replicas; TTFT is
    infinite when they cannot keep up (ρ ≥ 1)."""
    wait = _wait(profile, rate_rps, inputs, replicas)
    if wait is None:
        return math.inf, math.inf if replicas <= 0 else rate_rps / replicas
    rho, mean_wait_ms = wait
    tail = 1.0 - quantile
    if not inputs.points:
        own_ms = prefill_ms(profile.prefill, max(1, round(inputs.quantile))) + overhead_ms
        return own_ms + _wait_quantile_ms(rho, mean_wait_ms, tail), rho
    owns = _own_ms(profile, inputs, overhead_ms)
    # The smallest t with P(wait + own > t) <= tail, by bisection (P falls as t grows).
    low, high = 0.0, max(owns) + _wait_quantile_ms(rho, mean_wait_ms, tail / len(owns)) + 1.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if _miss_probability(rho, mean_wait_ms, owns, middle) <= tail:
            high = middle
        else:
            low = middle
    return high, rho


def prefill_replicas(
    profile: LatencyProfile,
    rate_rps: float,
    inputs: Lengths,
    ttft_slo_ms: float,
    quantile: float = 0.9,
    overhead_ms: float = 0.0,
) -> PrefillEstimate:
    """The fewest prefill replicas (at least one) whose predicted TTFT at `quantile`
    meets the SLO.

    Prompts whose own prefill alone is over the SLO miss it whatever the count. With the
    length mix known, the count keeps the share of the others that miss at 1 − quantile
    (the misses allowed: hopeless + (1 − quantile) × the rest). With only summary
    statistics: when the quantile prompt is hopeless the count is sized for the mean
    prompt, and when that one is too, for a wait no longer than its own prefill. Either
    way `meets_slo` is False."""
    tail = 1.0 - quantile
    if inputs.points:
        owns = _own_ms(profile, inputs, overhead_ms)
        hopeless = sum(1 for own in owns if own > ttft_slo_ms) / len(owns)
        allowed = hopeless + tail * (1.0 - hopeless)
        for replicas in range(1, MAX_REPLICAS + 1):
            wait = _wait(profile, rate_rps, inputs, replicas)
            if wait is None:
                continue
            if _miss_probability(*wait, owns, ttft_slo_ms) <= allowed + 1e-12:
                ttft, rho = prefill_ttft_ms(
                    profile, rate_rps, inputs, replicas, quantile, overhead_ms
                )
                return PrefillEstimate(replicas, ttft, rho, meets_slo=hopeless == 0.0)
        ttft, rho = prefill_ttft_ms(profile, rate_rps, inputs, MAX_REPLICAS, quantile, overhead_ms)
        return PrefillEstimate(MAX_REPLICAS, ttft, rho, meets_slo=False)
    sized = inputs
    budget_ms = ttft_slo_ms
    if _wait_free_ttft(profile, inputs, overhead_ms) > ttft_slo_ms:
        sized = replace(inputs, quantile=inputs.mean)
        own_ms = _wait_free_ttft(profile, sized, overhead_ms)
        if own_ms > ttft_slo_ms:
            budget_ms = 2.0 * own_ms
    for replicas in range(1, MAX_REPLICAS + 1):
        ttft, rho = prefill_ttft_ms(profile, rate_rps, sized, replicas, quantile, overhead_ms)
        if ttft <= budget_ms:
            return PrefillEstimate(
                replicas, ttft, rho, meets_slo=sized is inputs and ttft <= ttft_slo_ms
            )
    ttft, rho = prefill_ttft_ms(profile, rate_rps, sized, MAX_REPLICAS, quantile, overhead_ms)
    return PrefillEstimate(MAX_REPLICAS, ttft, rho, meets_slo=False)


def _wait(
    profile: LatencyProfile, rate_rps: float, inputs: Lengths, replicas: int
) -> tuple[float, float] | None:
    """(ρ, E[Wq] in ms) of one of `replicas` M/G/1 queues; None when they cannot keep up."""
    if replicas <= 0:
        return None
    per_replica_rps = rate_rps / replicas
    rho = per_replica_rps * _mean_prefill_ms(profile, inputs) / 1000.0
    if rho >= 1.0:
        return None
    if rho <= 0.0:
        return 0.0, 0.0
    mean_square_s = _mean_square_prefill_ms(profile, inputs)
    return rho, per_replica_rps * mean_square_s / 1000.0 / (2.0 * (1.0 - rho))


def _wait_quantile_ms(rho: float, mean_wait_ms: float, tail: float) -> float:
    # P(Wq > t) = ρ·exp(−tρ/E[Wq]): the quantile is 0 when ρ ≤ the tail.
    if rho <= tail or mean_wait_ms <= 0.0:
        return 0.0
    return mean_wait_ms / rho * math.log(rho / tail)


def _miss_probability(rho: float, mean_wait_ms: float, owns: list[float], t_ms: float) -> float:
    """P(wait + own > t) over equally likely own prefill times."""
    total = 0.0
    for own in owns:
        slack = t_ms - own
        if slack < 0.0:
            total += 1.0
        elif rho > 0.0 and mean_wait_ms > 0.0:
            total += rho * math.exp(-slack * rho / mean_wait_ms)
    return total / len(owns)


def _own_ms(profile: LatencyProfile, inputs: Lengths, overhead_ms: float) -> list[float]:
    return [prefill_ms(profile.prefill, max(1, round(p))) + overhead_ms for p in inputs.points]


def decode_batch(
    profile: LatencyProfile, rate_rps: float, inputs: Lengths, outputs: Lengths, replicas: int
) -> float:
    """Sequences decoding at once on each of `replicas` (Little's law); infinite when
    the replicas cannot keep up."""
    if replicas <= 0:
        return math.inf
    per_replica_rps = rate_rps / replicas
    if per_replica_rps <= 0.0:
        return 0.0
    coeffs = profile.decode
    mean_context = inputs.mean + outputs.mean / 2.0
    slope_ms = coeffs.b_ms_per_context_token * mean_context + coeffs.c_ms_per_seq
    work = per_replica_rps * outputs.mean / 1000.0  # slot-seconds per ms of step
    denominator = 1.0 - work * slope_ms
    if denominator <= 0.0:
        return math.inf
    return work * coeffs.a_ms / denominator


def decode_replicas(
    profile: LatencyProfile,
    rate_rps: float,
    inputs: Lengths,
    outputs: Lengths,
    tpot_slo_ms: float,
    kv_target: float = 0.9,
    quantile: float | None = None,
) -> DecodeEstimate:
    """The fewest decode replicas (at least one) whose batch keeps the step within the
    TPOT SLO, in the KV cache (at most `kv_target` of it) and within `max_num_seqs`.

    The batch is Little's law's mean; with a `quantile`, its quantile instead: sequences
    in decode are an M/G/∞ population, Poisson-distributed around that mean, so the
    q-quantile is about B + z_q·√B (normal approximation). Sizing for the mean leaves the
    batch over the KV cache half the time, and an overfull cache queues or preempts.
    When a lone sequence already misses the SLO, the fewest that fit the cache and
    `max_num_seqs`, with `meets_slo` False."""
    z = 0.0 if quantile is None else NormalDist().inv_cdf(quantile)
    context_tokens = inputs.mean + outputs.mean
    reachable = _step_ms(profile, 1.0, inputs, outputs) <= tpot_slo_ms
    for replicas in range(1, MAX_REPLICAS + 1):
        batch = decode_batch(profile, rate_rps, inputs, outputs, replicas)
        if math.isinf(batch):
            continue
        high = batch + z * math.sqrt(batch)
        tpot = _step_ms(profile, high, inputs, outputs)
        kv_fraction = high * context_tokens / profile.kv_capacity_tokens
        fits = kv_fraction <= kv_target and high <= profile.max_num_seqs
        if fits and (tpot <= tpot_slo_ms or not reachable):
            return DecodeEstimate(replicas, tpot, batch, kv_fraction, tpot <= tpot_slo_ms)
    batch = decode_batch(profile, rate_rps, inputs, outputs, MAX_REPLICAS)
    high = batch + z * math.sqrt(batch)
    tpot = _step_ms(profile, high, inputs, outputs)
    kv_fraction = high * context_tokens / profile.kv_capacity_tokens
    return DecodeEstimate(MAX_REPLICAS, tpot, batch, kv_fraction, meets_slo=False)


def _step_ms(profile: LatencyProfile, batch: float, inputs: Lengths, outputs: Lengths) -> float:
    if batch <= 0.0:  # an idle replica: what the next sequence's first step costs
        return decode_ms(profile.decode, round(inputs.mean), 1)
    coeffs = profile.decode
    mean_context = inputs.mean + outputs.mean / 2.0
    return (
        coeffs.a_ms + (coeffs.b_ms_per_context_token * mean_context + coeffs.c_ms_per_seq) * batch
    )


def _mean_prefill_ms(profile: LatencyProfile, inputs: Lengths) -> float:
    # E[a + bL + cL²] = a + b·E[L] + c·E[L²]
    coeffs = profile.prefill
    return (
        coeffs.a_ms
        + coeffs.b_ms_per_token * inputs.mean
        + coeffs.c_ms_per_token2 * (inputs.mean_square)
    )


def _mean_square_prefill_ms(profile: LatencyProfile, inputs: Lengths) -> float:
    """E[S²], with S's spread taken from L's (Var S ≈ (b + 2c·E[L])² Var L)."""
    mean_ms = _mean_prefill_ms(profile, inputs)
    coeffs = profile.prefill
    variance_length = max(0.0, inputs.mean_square - inputs.mean * inputs.mean)
    slope = coeffs.b_ms_per_token + 2.0 * coeffs.c_ms_per_token2 * inputs.mean
    return mean_ms * mean_ms + slope * slope * variance_length


def _wait_free_ttft(profile: LatencyProfile, inputs: Lengths, overhead_ms: float) -> float:
    return prefill_ms(profile.prefill, max(1, round(inputs.quantile))) + overhead_ms
