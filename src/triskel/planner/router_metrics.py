"""What the planner observed, read from two scrapes of the router's Prometheus endpoint.
Pure: the caller fetches the text (the operator on its timer, `triskel up`, a test).

Between the scrapes at t0 and t1, for one model:

    rate_rps          Δ triskel_requests_total{status="ok"} / (t1 − t0)
    input, output     Δ triskel_prompt_tokens_total / Δ requests, and the same for
                      triskel_generation_tokens_total: means only (the router exports no
                      length histogram), so the mean stands for the spread as well
    TTFT, TPOT        the quantile of Δ triskel_ttft_seconds / triskel_tpot_seconds
                      buckets, interpolated linearly inside the bucket as Prometheus'
                      histogram_quantile does

Parsing is prometheus_client's own text parser, not hand-written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from prometheus_client.parser import text_string_to_metric_families

from triskel.planner.sizing import Lengths

# (sample name, sorted labels) → value
Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)  # no slots: `samples` is cached on the instance
class Scrape:
    time_s: float
    text: str

    @cached_property
    def samples(self) -> Samples:
        """The text parsed, once however many readers it has (the operator reads a
        scrape's load, then uses it as a window's end and the next window's start).
        MetricsError when the text is not Prometheus exposition."""
        return _samples(self.text)


@dataclass(frozen=True, slots=True)
class ModelWindow:
    rate_rps: float
    inputs: Lengths
    outputs: Lengths
    ttft_ms: float | None  # at `quantile`; None without a request in the window
    tpot_ms: float | None


class MetricsError(ValueError):
    """The scrapes cannot be compared (out of order, or not the router's)."""


def model_window(before: Scrape, after: Scrape, model: str, quantile: float = 0.9) -> ModelWindow:
    seconds = after.time_s - before.time_s
    if seconds <= 0:
        raise MetricsError(f"scrapes: the second must be later, got {seconds:.3f} s apart")
    old, new = before.samples, after.samples
    ok = {"model": model, "status": "ok"}
    requests = _delta(old, new, "triskel_requests_total", ok)
    prompt = _delta(old, new, "triskel_prompt_tokens_total", {"model": model})
    generated = _delta(old, new, "triskel_generation_tokens_total", {"model": model})
    mean_in = prompt / requests if requests > 0 else 0.0
    mean_out = generated / requests if requests > 0 else 0.0
    return ModelWindow(
        rate_rps=requests / seconds,
        inputs=Lengths(mean_in, mean_in * mean_in, mean_in),
        outputs=Lengths(mean_out, mean_out * mean_out, mean_out),
        ttft_ms=_quantile_ms(old, new, "triskel_ttft_seconds", model, quantile),
        tpot_ms=_quantile_ms(old, new, "triskel_tpot_seconds", model, quantile),
    )


def _samples(text: str) -> Samples:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    except ValueError as error:
        raise MetricsError(f"scrape: not Prometheus text ({error})") from None
    return samples


def _sum(samples: Samples, name: str, labels: Mapping[str, str]) -> float:
    """Summed over the label values not given (e.g. every front)."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def _delta(old: Samples, new: Samples, name: str, labels: Mapping[str, str]) -> float:
    # A counter that went down was reset (the router restarted): count from zero.
    now, before = _sum(new, name, labels), _sum(old, name, labels)
    return now - before if now >= before else now


def _quantile_ms(
    old: Samples, new: Samples, name: str, model: str, quantile: float
) -> float | None:
    buckets: dict[float, float] = {}
    for (sample, labels), _ in new.items():
        label_map = dict(labels)
        if sample != f"{name}_bucket" or label_map.get("model") != model:
            continue
        bound = float(label_map["le"])
        buckets[bound] = _delta(old, new, sample, label_map)
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]  # +Inf: every observation
    if total <= 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound * 1000.0  # beyond the last bucket: its lower edge
            within = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return (lower_bound + (bound - lower_bound) * within) * 1000.0
        lower_bound, lower_count = bound, count
    return lower_bound * 1000.0
