"""NVIDIA Dynamo's planner in its SLA-driven throughput mode, as v1.0.0 ships it.

The law (ai-dynamo/dynamo v1.0.0, components/src/dynamo/planner/utils/
prefill_planner.py and decode_planner.py; the same formula since v0.4): every
adjustment interval Δ, predict the number of requests N̂ in the next interval and
their mean input / output lengths, then

    prefill replicas = ceil( N̂ · ISL / Δ  /  (τp(ISL) · GPUs per prefill engine) )
    decode replicas  = ceil( N̂ · OSL / Δ  /  (τd · GPUs per decode engine) )

τp(ISL) is the prefill throughput per GPU (tokens/s) the profiler measured at that
input length; τd the highest decode throughput per GPU whose inter-token latency meets
the ITL target at context ISL + OSL/2. Both come from the pool's latency profile here
(the numbers Dynamo's profiler would have measured on our modelled engine): τp =
ISL / prefill_ms(ISL), τd = B / step_ms(B) for the largest batch B whose step meets the
ITL target and fits the KV cache. Then each count is at least `min_endpoint`, and when
the two need more GPUs than `max_gpu_budget`, prefill is scaled down by the budget's
share (floored, so decode keeps its minimum) and decode gets what remains.

v1.0.0 defaults: Δ = 180 s, TTFT 500 ms / ITL 50 ms (the graph's own SLOs are used
here), ARIMA predictor (pmdarima's `auto_arima`, 5 points before it fits; the last value
until then), min_endpoint 1, max_gpu_budget 8, correction factors off (`no_correction`
True). The law is open loop between intervals: no tolerance band, no stabilisation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from triskel.common.latency import prefill_ms
from triskel.common.profiles import LatencyProfile
from triskel.planner.planner import Decision, Observation, StageSpec

ADJUSTMENT_INTERVAL_S = 180.0
MIN_ENDPOINT = 1
MAX_GPU_BUDGET = 8
ARIMA_MIN_POINTS = 5


@dataclass(frozen=True, slots=True)
class DynamoSettings:
    itl_slo_ms: float
    interval_s: float = ADJUSTMENT_INTERVAL_S
    min_endpoint: int = MIN_ENDPOINT
    max_gpu_budget: int = MAX_GPU_BUDGET
    predictor: str = "arima"  # or "constant": the last interval's value


@dataclass(frozen=True, slots=True)
class DynamoState:
    # Requests per interval, mean input and output lengths, oldest first.
    counts: tuple[float, ...] = ()
    inputs: tuple[float, ...] = ()
    outputs: tuple[float, ...] = ()


def prefill_tokens_per_gpu_s(profile: LatencyProfile, input_tokens: float) -> float:
    tokens = max(1, round(input_tokens))
    return tokens / (prefill_ms(profile.prefill, tokens) / 1000.0) / profile.num_gpus


def decode_tokens_per_gpu_s(profile: LatencyProfile, itl_ms: float, context_tokens: float) -> float:
    """The most tokens/s per GPU whose step time meets `itl_ms` at this context."""
    coeffs = profile.decode
    slope_ms = coeffs.b_ms_per_context_token * context_tokens + coeffs.c_ms_per_seq
    by_itl = math.floor((itl_ms - coeffs.a_ms) / slope_ms) if slope_ms > 0 else profile.max_num_seqs
    by_kv = math.floor(profile.kv_capacity_tokens / max(1.0, context_tokens))
    batch = max(1, min(by_itl, by_kv, profile.max_num_seqs))
    step_ms = coeffs.a_ms + slope_ms * batch
    return batch / (step_ms / 1000.0) / profile.num_gpus


def step(
    prefill: StageSpec,
    decode: StageSpec,
    settings: DynamoSettings,
    state: DynamoState,
    observation: Observation,
) -> tuple[DynamoState, tuple[Decision, ...]]:
    """One adjustment interval (call every `settings.interval_s`)."""
    count = observation.rate_rps * settings.interval_s
    state = DynamoState(
        (*state.counts, count),
        (*state.inputs, observation.inputs.mean),
        (*state.outputs, observation.outputs.mean),
    )
    if count <= 0.0:  # no traffic: Dynamo skips the adjustment
        return state, tuple(
            _keep(spec, observation, "no traffic: adjustment skipped") for spec in (prefill, decode)
        )
    next_count = _predict(settings.predictor, state.counts)
    next_input = _predict(settings.predictor, state.inputs)
    next_output = _predict(settings.predictor, state.outputs)
    tau_p = prefill_tokens_per_gpu_s(prefill.profile, next_input)
    tau_d = decode_tokens_per_gpu_s(
        decode.profile, settings.itl_slo_ms, next_input + next_output / 2.0
    )
    gpus_p, gpus_d = prefill.profile.num_gpus, decode.profile.num_gpus
    num_p = math.ceil(next_count * next_input / settings.interval_s / (tau_p * gpus_p))
    num_d = math.ceil(next_count * next_output / settings.interval_s / (tau_d * gpus_d))
    num_p, num_d = max(num_p, settings.min_endpoint), max(num_d, settings.min_endpoint)
    reason = "throughput"
    total = num_p * gpus_p + num_d * gpus_d
    if total > settings.max_gpu_budget:
        share = settings.max_gpu_budget / total
        room_p = (settings.max_gpu_budget - settings.min_endpoint * gpus_d) // gpus_p
        num_p = max(settings.min_endpoint, min(math.floor(num_p * share), room_p))
        num_d = max(
            settings.min_endpoint, math.floor((settings.max_gpu_budget - num_p * gpus_p) / gpus_d)
        )
        reason = f"throughput, scaled to the {settings.max_gpu_budget}-GPU budget"
    numbers: dict[str, float | str] = {
        "predicted_requests": next_count,
        "predicted_isl": next_input,
        "predicted_osl": next_output,
        "prefill_tokens_per_gpu_s": tau_p,
        "decode_tokens_per_gpu_s": tau_d,
    }
    decisions = []
    for spec, desired in ((prefill, num_p), (decode, num_d)):
        current = observation.stage(spec).replicas
        desired = min(max(desired, spec.min_replicas), spec.max_replicas)
        decisions.append(Decision(spec.name, current, desired, reason, numbers))
    return state, tuple(decisions)


def _keep(spec: StageSpec, observation: Observation, reason: str) -> Decision:
    current = observation.stage(spec).replicas
    return Decision(spec.name, current, current, reason, {})


def _predict(predictor: str, history: Sequence[float]) -> float:
    if predictor == "constant" or len(history) < ARIMA_MIN_POINTS:
        return history[-1]
    if predictor != "arima":
        raise ValueError(f"predictor: 'arima' or 'constant', got {predictor!r}")
    import numpy as np
    import pmdarima

    values = np.asarray(history, dtype=np.float64)
    if np.ptp(values) == 0.0:
        return float(values[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pmdarima.auto_arima(values, suppress_warnings=True, error_action="ignore")
        forecast = float(model.predict(1)[0])
    return max(0.0, forecast) if math.isfinite(forecast) else float(values[-1])
