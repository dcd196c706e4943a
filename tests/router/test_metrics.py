from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from triskel.router.metrics import (
    RequestTimer,
    RouterMetrics,
    model_label,
    status_of,
)
from triskel.router.types import FinishEvent, RequestError, ServiceError, TokenEvent


def clock_from(readings_s: list[float]) -> Iterator[float]:
    return iter(readings_s)


def finish(completion_tokens: int) -> FinishEvent:
    return FinishEvent(
        "stop", prompt_tokens=10, completion_tokens=completion_tokens, cached_prompt_tokens=4
    )


def sample(metrics: RouterMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.mark.parametrize(
    ("readings_s", "num_token_events", "completion_tokens", "expected"),
    [
        # Start 0, first token at 0.5 s, finish at 2.5 s with 5 tokens:
        # TPOT = (2.5 − 0.5) / (5 − 1) = 0.5 s.
        ([0.0, 0.5, 2.5], 1, 5, (0.5, 0.5, 2.5)),
        # Later tokens do not move TTFT; 3 tokens over 1.0 s after the first → 0.5 s each.
        ([10.0, 10.2, 10.7, 11.2], 2, 3, (0.2, 0.5, 1.2)),
        # A single token has no "after the first": TPOT stays unmeasured.
        ([0.0, 0.3, 0.3], 1, 1, (0.3, None, 0.3)),
        # Finished without any token: neither TTFT nor TPOT exists.
        ([0.0, 1.0], 0, 0, (None, None, 1.0)),
    ],
)
def test_timer_measures_ttft_tpot_and_e2e(
    readings_s: list[float],
    num_token_events: int,
    completion_tokens: int,
    expected: tuple[float | None, float | None, float | None],
) -> None:
    readings = clock_from(readings_s)
    timer = RequestTimer(clock=lambda: next(readings))
    for i in range(num_token_events):
        timer.on_event(TokenEvent("x", (i,)))
    timer.on_event(finish(completion_tokens))
    assert (timer.ttft_s, timer.tpot_s, timer.e2e_s) == pytest.approx(expected)


def test_tracker_records_a_finished_request_once() -> None:
    metrics = RouterMetrics()
    readings = clock_from([0.0, 0.25, 1.25])
    tracker = metrics.track_request("m", "http", RequestTimer(clock=lambda: next(readings)))
    assert sample(metrics, "triskel_inflight_requests", model="m") == 1
    tracker.on_event(TokenEvent("a", (1,)))
    tracker.on_event(finish(3))
    tracker.close("ok")
    tracker.close("cancelled")  # a later fallback close must not count the request twice
    assert sample(metrics, "triskel_inflight_requests", model="m") == 0
    assert sample(metrics, "triskel_requests_total", model="m", status="ok", front="http") == 1
    assert (
        sample(metrics, "triskel_requests_total", model="m", status="cancelled", front="http")
        is None
    )
    assert sample(metrics, "triskel_ttft_seconds_sum", model="m") == pytest.approx(0.25)
    # (1.25 − 0.25) / (3 − 1)
    assert sample(metrics, "triskel_tpot_seconds_sum", model="m") == pytest.approx(0.5)
    assert sample(metrics, "triskel_e2e_seconds_sum", model="m") == pytest.approx(1.25)
    assert sample(metrics, "triskel_prompt_tokens_total", model="m") == 10
    assert sample(metrics, "triskel_generation_tokens_total", model="m") == 3
    assert sample(metrics, "triskel_prefix_hit_tokens_total", model="m") == 4


def test_cancelled_request_keeps_its_ttft_but_has_no_e2e_or_tokens() -> None:
    metrics = RouterMetrics()
    readings = clock_from([0.0, 0.4])
    tracker = metrics.track_request("m", "grpc", RequestTimer(clock=lambda: next(readings)))
    tracker.on_event(TokenEvent("a", (1,)))
    tracker.close("cancelled")
    assert (
        sample(metrics, "triskel_requests_total", model="m", status="cancelled", front="grpc") == 1
    )
    assert sample(metrics, "triskel_ttft_seconds_count", model="m") == 1
    assert sample(metrics, "triskel_e2e_seconds_count", model="m") is None
    assert sample(metrics, "triskel_generation_tokens_total", model="m") is None


def test_kv_transfer_and_worker_calls_are_counted() -> None:
    metrics = RouterMetrics()
    metrics.observe_kv_transfer("tcp", 1024, 0.002)
    metrics.observe_kv_transfer("tcp", 2048, 0.004)
    metrics.observe_worker_call("w1", "prefill", "ok")
    metrics.observe_worker_call("w1", "prefill", "unavailable")
    assert sample(metrics, "triskel_kv_transfer_bytes_total", connector="tcp") == 3072
    assert sample(metrics, "triskel_kv_transfer_seconds_count", connector="tcp") == 2
    # 2 ms falls in the 2.5 ms bucket, 4 ms does not.
    assert sample(metrics, "triskel_kv_transfer_seconds_bucket", connector="tcp", le="0.0025") == 1
    assert (
        sample(metrics, "triskel_worker_requests_total", worker="w1", stage="prefill", status="ok")
        == 1
    )


def test_latency_buckets_span_one_millisecond_to_a_minute() -> None:
    metrics = RouterMetrics()
    metrics.observe_request("m", "http", "ok", ttft_s=0.0005, e2e_s=59.0)
    assert sample(metrics, "triskel_ttft_seconds_bucket", model="m", le="0.001") == 1
    assert sample(metrics, "triskel_e2e_seconds_bucket", model="m", le="45.0") == 0
    assert sample(metrics, "triskel_e2e_seconds_bucket", model="m", le="60.0") == 1


def test_each_instance_has_its_own_registry_and_renders_it() -> None:
    first, second = RouterMetrics(), RouterMetrics()  # would raise on a shared registry
    first.observe_request("m", "http", "ok")
    body, content_type = first.render()
    assert content_type.startswith("text/plain")
    assert b'triskel_requests_total{front="http",model="m",status="ok"} 1.0' in body
    assert b"triskel_requests_total{" not in second.render()[0]
    assert (
        REGISTRY.get_sample_value(
            "triskel_requests_total", {"model": "m", "status": "ok", "front": "http"}
        )
        is None
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("m", "m"),  # served: kept
        ("made-up", "unknown"),  # any client string would otherwise become a new series
        (42, "unknown"),  # not even a string
        (None, "unknown"),
    ],
)
def test_model_label_only_names_served_models(model: object, expected: str) -> None:
    assert model_label(model, ["m", "n"]) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RequestError("max_tokens", "must be >= 1"), "client_error"),
        (ServiceError("no decode worker"), "service_error"),
        (RuntimeError("a bug"), "service_error"),  # our bugs count against the service
        (asyncio.CancelledError(), "cancelled"),  # the client left
        (GeneratorExit(), "cancelled"),
    ],
)
def test_status_of_errors(error: BaseException, expected: str) -> None:
    assert status_of(error) == expected


def test_workers_per_model_and_role_are_read_at_scrape_time() -> None:
    metrics = RouterMetrics()
    counts = {("llama", "prefill"): 2, ("llama", "decode"): 4}
    metrics.watch_workers(lambda: counts)
    assert sample(metrics, "triskel_workers", model="llama", role="decode") == 4
    counts[("llama", "decode")] = 2  # a scale-in: the next scrape says so
    assert sample(metrics, "triskel_workers", model="llama", role="decode") == 2
    assert b'triskel_workers{model="llama",role="prefill"} 2.0' in metrics.render()[0]


def test_each_stages_waiting_and_running_requests_are_read_at_scrape_time() -> None:
    metrics = RouterMetrics()
    requests = {("llama", "prefill"): (7, 2), ("llama", "decode"): (0, 30)}
    metrics.watch_stage_requests(lambda: requests)
    waiting, running = "triskel_stage_requests_waiting", "triskel_stage_requests_running"
    assert sample(metrics, waiting, model="llama", role="prefill") == 7
    assert sample(metrics, running, model="llama", role="decode") == 30
    requests[("llama", "prefill")] = (0, 4)  # the queue drained
    assert sample(metrics, waiting, model="llama", role="prefill") == 0


def test_repeated_label_values_land_on_one_series_each() -> None:
    # Children are looked up once per label values; every later record still counts.
    metrics = RouterMetrics()
    for worker in ("w0", "w1", "w0"):
        metrics.observe_decision("prefill", "max-score", worker, {"queue": 1e-5, "prefix": 2e-5})
    labels = {"stage": "prefill", "reason": "max-score"}
    assert sample(metrics, "triskel_router_decisions_total", worker="w0", **labels) == 2
    assert sample(metrics, "triskel_router_decisions_total", worker="w1", **labels) == 1
    assert sample(metrics, "triskel_router_plugin_seconds_count", plugin="queue") == 3
    assert sample(metrics, "triskel_router_decision_seconds_count", stage="prefill") == 3
    metrics.track_request("m", "http").close("ok")
    metrics.track_request("m", "http").close("ok")
    assert sample(metrics, "triskel_requests_total", model="m", status="ok", front="http") == 2
    assert sample(metrics, "triskel_inflight_requests", model="m") == 0
