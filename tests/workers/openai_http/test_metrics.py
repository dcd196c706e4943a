"""The worker's metrics under vLLM's names and labels, per app, moving with requests."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from triskel.common.api import Role
from triskel.workers.openai_http.metrics import WorkerHttpMetrics

from support.engines import mock_engine
from support.local_workers import local_worker, mock_pool, post_json, scrape, worker_metric

LABELS = {"model_name": "m", "engine": "0"}
# Every family a vLLM dashboard or router reads, and Triskel's own (no vllm: prefix).
FAMILIES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "triskel_worker_kv_received_bytes": "counter",
    "triskel_worker_kv_exported_requests": "counter",
}


def samples(metrics: WorkerHttpMetrics) -> dict[str, float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = dict(sample.labels)
            reason = labels.pop("finished_reason", None)
            labels.pop("le", None)
            assert labels == LABELS, sample
            found[sample.name + (f"[{reason}]" if reason else "")] = sample.value
    return found


def test_every_family_has_vllms_name_type_and_labels() -> None:
    metrics = WorkerHttpMetrics(mock_engine(Role.UNIFIED, "w"))
    body = metrics.render()[0].decode()
    types = {f.name: f.type for f in text_string_to_metric_families(body)}
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    assert samples(metrics)["vllm:kv_cache_usage_perc"] == 0


def test_a_tracked_request_moves_the_counters() -> None:
    metrics = WorkerHttpMetrics(mock_engine(Role.DECODE, "w"))
    tracker = metrics.track()
    tracker.on_kv_received(4096)
    for _ in range(3):
        tracker.on_tokens(1)
    tracker.on_finished(num_prompt_tokens=40)
    found = samples(metrics)
    assert found["vllm:prompt_tokens_total"] == 40
    assert found["vllm:generation_tokens_total"] == 3
    # The first token is a TTFT, each later one an inter-token gap.
    assert found["vllm:time_to_first_token_seconds_count"] == 1
    assert found["vllm:inter_token_latency_seconds_count"] == 2
    assert found["vllm:e2e_request_latency_seconds_count"] == 1
    assert found["triskel_worker_kv_received_bytes_total"] == 4096
    assert found["triskel_worker_kv_exported_requests_total"] == 0


def test_two_workers_in_one_process_do_not_collide() -> None:
    # The process-global registry would refuse the second set of the same names.
    first = WorkerHttpMetrics(mock_engine(Role.UNIFIED, "a"))
    second = WorkerHttpMetrics(mock_engine(Role.UNIFIED, "b"))
    first.track().on_tokens(5)
    assert samples(second)["vllm:generation_tokens_total"] == 0


@pytest.mark.asyncio
async def test_scrapes_follow_requests_and_the_prefix_cache() -> None:
    async with local_worker(mock_pool("unified"), http_address="127.0.0.1:0") as worker:
        # 64 tokens of prompt: four full 16-token blocks the second request finds cached.
        body = {"prompt": list(range(1000, 1064)), "max_tokens": 4, "ignore_eos": True}
        for _ in range(2):
            status, _ = await post_json(f"{worker.http_url}/v1/completions", body)
            assert status == 200
        found = await scrape(f"{worker.http_url}/metrics")
    assert found[worker_metric("vllm:prompt_tokens_total")] == 128
    assert found[worker_metric("vllm:generation_tokens_total")] == 8
    assert found[worker_metric("vllm:request_success_total", finished_reason="length")] == 2
    assert found[worker_metric("vllm:prefix_cache_queries_total")] >= 128
    assert found[worker_metric("vllm:prefix_cache_hits_total")] >= 48
    assert found[worker_metric("vllm:num_requests_running")] == 0
