"""Planner observations from two scrapes of a real RouterMetrics registry."""

from __future__ import annotations

import pytest

from triskel.planner.router_metrics import MetricsError, Scrape, model_window
from triskel.router.metrics import Front, RouterMetrics


def scrape(metrics: RouterMetrics, time_s: float) -> Scrape:
    body, _ = metrics.render()
    return Scrape(time_s, body.decode())


def test_rate_lengths_and_latency_quantiles_between_two_scrapes() -> None:
    metrics = RouterMetrics()
    metrics.observe_request("m", "http", "ok", ttft_s=0.3, tpot_s=0.02)  # before: not counted
    before = scrape(metrics, 100.0)
    # Ten requests in 5 s: 2 req/s; 1,000 prompt and 100 generated tokens each.
    for index in range(10):
        front: Front = "http" if index % 2 else "grpc"  # summed over fronts
        ttft_s = 0.2 if index < 9 else 2.0  # nine in the (0.15, 0.25] bucket, one slow
        metrics.observe_request("m", front, "ok", ttft_s=ttft_s, tpot_s=0.03)
        metrics.observe_tokens("m", 1000, 100, 0)
    metrics.observe_request("other", "http", "ok", ttft_s=9.0)  # another model
    metrics.observe_request("m", "http", "service_error")  # not an answered request
    window = model_window(before, scrape(metrics, 105.0), "m")
    assert window.rate_rps == pytest.approx(2.0)
    assert window.inputs.mean == pytest.approx(1000.0)
    assert window.outputs.mean == pytest.approx(100.0)
    # p90 of ten: rank 9, the last of the nine in (0.15, 0.25]: its upper edge.
    assert window.ttft_ms == pytest.approx(250.0)
    # All ten TPOTs in (0.025, 0.05]: rank 9 of 10 → 0.025 + 0.025 × 0.9.
    assert window.tpot_ms == pytest.approx(47.5)


def test_an_idle_window_and_bad_input() -> None:
    metrics = RouterMetrics()
    first, second = scrape(metrics, 0.0), scrape(metrics, 10.0)
    window = model_window(first, second, "m")
    assert (window.rate_rps, window.ttft_ms, window.tpot_ms) == (0.0, None, None)
    with pytest.raises(MetricsError, match="later"):
        model_window(second, first, "m")


def test_a_scrape_is_parsed_once_and_bad_text_is_named() -> None:
    metrics = RouterMetrics()
    metrics.observe_request("m", "http", "ok", ttft_s=0.3, tpot_s=0.02)
    parsed = scrape(metrics, 0.0)
    # The same mapping each time: the operator reads a scrape up to three times.
    assert parsed.samples is parsed.samples
    assert (
        parsed.samples[
            ("triskel_requests_total", (("front", "http"), ("model", "m"), ("status", "ok")))
        ]
        == 1.0
    )
    with pytest.raises(MetricsError, match="not Prometheus text"):
        _ = Scrape(0.0, "<html>not metrics</html>\n").samples
