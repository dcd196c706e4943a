"""One /metrics for sibling processes: what sums, what the first keeps, what is ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from triskel.router.siblings import frames
from triskel.router.siblings.metrics import SiblingExpositions, render

from support.siblings import buses, until


def registry(requests: float, inflight: float, workers: float, ttft_s: float) -> CollectorRegistry:
    made = CollectorRegistry()
    Counter("triskel_requests", "d", ["model"], registry=made).labels("m").inc(requests)
    Gauge("triskel_inflight_requests", "d", ["model"], registry=made).labels("m").set(inflight)
    Gauge("triskel_workers", "d", registry=made).set(workers)
    Histogram("triskel_ttft_seconds", "d", registry=made, buckets=(0.1, 1.0)).observe(ttft_s)
    return made


def samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition.decode())
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_counters_histograms_and_work_gauges_sum_shared_gauges_stay() -> None:
    first = registry(requests=3, inflight=2, workers=4, ttft_s=0.05)
    second = registry(requests=5, inflight=1, workers=4, ttft_s=0.5)
    second_only = CollectorRegistry()
    Counter("triskel_other", "d", registry=second_only).inc(7)
    merged = samples(
        render(first, [generate_latest(second).decode(), generate_latest(second_only).decode()])
    )
    assert merged[("triskel_requests_total", (("model", "m"),))] == 8
    assert merged[("triskel_inflight_requests", (("model", "m"),))] == 3
    assert merged[("triskel_workers", ())] == 4  # every process sees the same workers
    assert merged[("triskel_ttft_seconds_bucket", (("le", "0.1"),))] == 1
    assert merged[("triskel_ttft_seconds_bucket", (("le", "1.0"),))] == 2
    assert merged[("triskel_ttft_seconds_count", ())] == 2
    assert ("triskel_other_total", ()) not in merged  # not a family the first exports


def test_a_label_only_a_sibling_has_is_added() -> None:
    first = registry(requests=1, inflight=0, workers=1, ttft_s=0.1)
    second = CollectorRegistry()
    Counter("triskel_requests", "d", ["model"], registry=second).labels("other").inc(2)
    merged = samples(render(first, [generate_latest(second).decode()]))
    assert merged[("triskel_requests_total", (("model", "m"),))] == 1
    assert merged[("triskel_requests_total", (("model", "other"),))] == 2


@pytest.mark.asyncio
async def test_the_first_keeps_each_siblings_latest_exposition_until_it_goes(
    tmp_path: Path,
) -> None:
    async with buses(tmp_path, 2) as (first, second):
        kept = SiblingExpositions(first)
        second.send_to(0, frames.metrics(b"# one\n"))
        second.send_to(0, frames.metrics(b"# two\n"))
        await until(lambda: kept.texts() == ["# two\n"])
        await second.aclose()
        await until(lambda: kept.texts() == [])
