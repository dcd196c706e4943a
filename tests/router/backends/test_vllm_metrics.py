"""A vLLM worker's load from its /metrics text."""

from __future__ import annotations

import pytest

from triskel.router.backends.vllm_metrics import MetricsFormatError, parse_load

# What vLLM V1 exports (two data-parallel engines), trimmed to the lines that matter
# plus neighbours the parser must skip.
TWO_ENGINES = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:num_requests_waiting{engine="1",model_name="m"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.25
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="2048"} 1.0
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0
python_gc_objects_collected_total{generation="0"} 42.0
"""


def test_requests_are_summed_over_engines_and_kv_usage_averaged() -> None:
    load = parse_load(TWO_ENGINES)
    assert (load.num_running_requests, load.num_waiting_requests) == (5, 1)
    assert load.kv_usage == pytest.approx(0.375)
    # From cache_config_info: the router's KV-utilisation math needs the pool size.
    assert load.num_kv_blocks == 2048


def test_the_legacy_gpu_cache_name_and_a_known_block_count() -> None:
    text = (
        "vllm:num_requests_running 1\nvllm:num_requests_waiting 4\nvllm:gpu_cache_usage_perc 0.9\n"
    )
    load = parse_load(text, num_kv_blocks=64)
    assert (load.num_running_requests, load.num_waiting_requests) == (1, 4)
    assert load.kv_usage == pytest.approx(0.9)
    assert load.num_kv_blocks == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Not a vLLM server (e.g. a plain Prometheus exporter): not a load report.
        ("process_cpu_seconds_total 1.0\n", "vllm:num_requests_running or"),
        ('vllm:num_requests_running{engine="0"}\nvllm:num_requests_waiting 0\n', "has no value"),
    ],
)
def test_text_without_the_gauges_is_refused_saying_what_is_missing(text: str, message: str) -> None:
    with pytest.raises(MetricsFormatError, match=message):
        parse_load(text)
