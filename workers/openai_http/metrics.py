"""The worker's Prometheus metrics under vLLM V1's names, so tools built for vLLM read them.

Every series carries `model_name="<model>",engine="0"` (one engine core per worker):

    gauges     vllm:num_requests_running, vllm:num_requests_waiting,
               vllm:kv_cache_usage_perc (0..1)                 read from engine.load()
    counters   vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total (tokens)
                                                               at scrape time
               vllm:request_success_total{finished_reason}     every finished request,
                                                               whatever API it came by
               vllm:prompt_tokens_total, vllm:generation_tokens_total
                                                               requests of the HTTP API
    histograms vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds,
               vllm:e2e_request_latency_seconds
    Triskel's  triskel_worker_kv_received_bytes_total, triskel_worker_kv_exported_requests_total

The registry is the app's own (never the process-global default), so several workers
in one process do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from triskel.workers.api import Engine

_LABELS = ("model_name", "engine")
# A mock at time_scale 0 answers in a millisecond; a long queued prefill takes minutes.
_TTFT_BUCKETS_S = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0),
)
_ITL_BUCKETS_S = (
    *(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3),
    *(0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 80.0),
)
_E2E_BUCKETS_S = (
    *(0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0),
    *(30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0),
)


class _LoadCollector(Collector):
    """Series that are the engine's own state, read when Prometheus scrapes."""

    def __init__(self, engine: Engine, label_values: list[str]) -> None:
        self._engine = engine
        self._label_values = label_values

    def collect(self) -> Iterator[Metric]:
        load = self._engine.load()
        gauges = (
            ("vllm:num_requests_running", "Requests running.", load.num_running_requests),
            ("vllm:num_requests_waiting", "Requests waiting.", load.num_waiting_requests),
            ("vllm:kv_cache_usage_perc", "KV cache usage; 1 means 100 percent.", load.kv_usage),
        )
        for name, doc, gauge_value in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=_LABELS)
            gauge.add_metric(self._label_values, gauge_value)
            yield gauge
        counters = (
            (
                "vllm:prefix_cache_queries",
                "Prompt tokens looked up.",
                load.prefix_query_tokens_total,
            ),
            ("vllm:prefix_cache_hits", "Prompt tokens found cached.", load.prefix_hit_tokens_total),
        )
        for name, doc, counter_value in counters:
            counter = CounterMetricFamily(name, doc, labels=_LABELS)
            counter.add_metric(self._label_values, counter_value)
            yield counter
        # The engine's count, as vLLM's: requests over frames and gRPC are counted too.
        finished = CounterMetricFamily(
            "vllm:request_success",
            "Requests that finished, by finish reason.",
            labels=[*_LABELS, "finished_reason"],
        )
        for reason, count in sorted(load.finished_total.items()):
            finished.add_metric([*self._label_values, reason], count)
        yield finished


class WorkerHttpMetrics:
    """Every metric of one worker's HTTP API, and `track` to time one request."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        label_values = [engine.description.model, "0"]
        registry = self.registry

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _LABELS, registry=registry).labels(*label_values)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            metric = Histogram(name, doc, _LABELS, buckets=buckets, registry=registry)
            return metric.labels(*label_values)

        self.prompt_tokens = counter("vllm:prompt_tokens", "Prompt tokens of finished requests.")
        self.generation_tokens = counter("vllm:generation_tokens", "Tokens generated.")
        self.ttft_s = histogram(
            "vllm:time_to_first_token_seconds", "Request arrival to first token.", _TTFT_BUCKETS_S
        )
        self.inter_token_s = histogram(
            "vllm:inter_token_latency_seconds", "Gap between streamed tokens.", _ITL_BUCKETS_S
        )
        self.e2e_s = histogram(
            "vllm:e2e_request_latency_seconds", "Request arrival to its last token.", _E2E_BUCKETS_S
        )
        self.kv_received_bytes = counter(
            "triskel_worker_kv_received_bytes", "KV bytes pulled from prefill workers."
        )
        self.kv_exported_requests = counter(
            "triskel_worker_kv_exported_requests", "Prefills whose KV was kept for a decode worker."
        )
        registry.register(_LoadCollector(engine, label_values))

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def track(self) -> RequestTracker:
        return RequestTracker(self)


class RequestTracker:
    """Times one request from its arrival; call `on_tokens` per chunk, `on_finished` once."""

    def __init__(self, metrics: WorkerHttpMetrics) -> None:
        self._metrics = metrics
        self._started_s = time.perf_counter()
        self._last_token_s: float | None = None

    def on_tokens(self, num_tokens: int) -> None:
        now_s = time.perf_counter()
        if self._last_token_s is None:
            self._metrics.ttft_s.observe(now_s - self._started_s)
        else:
            self._metrics.inter_token_s.observe(now_s - self._last_token_s)
        self._last_token_s = now_s
        self._metrics.generation_tokens.inc(num_tokens)

    def on_kv_received(self, num_bytes: int) -> None:
        self._metrics.kv_received_bytes.inc(num_bytes)

    def on_kv_exported(self) -> None:
        self._metrics.kv_exported_requests.inc()

    def on_finished(self, num_prompt_tokens: int) -> None:
        self._metrics.e2e_s.observe(time.perf_counter() - self._started_s)
        self._metrics.prompt_tokens.inc(num_prompt_tokens)
