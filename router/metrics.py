"""The router's Prometheus metrics, in a registry of its own, and per-request timing.

`RouterMetrics` owns a private `CollectorRegistry` (never the process-global default),
so several routers in one process (tests, `triskel up`) do not collide. The fronts
measure each request as its events pass through them (`RequestTimer`) and account it
once through a `RequestTracker`; the orchestrator records worker calls and KV transfers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from triskel.router.siblings.metrics import render as merged_exposition
from triskel.router.types import (
    FinishEvent,
    GenerationEvent,
    OverloadedError,
    RequestBlocked,
    RequestError,
    RouteEvent,
    TokenEvent,
)

RequestStatus = Literal["ok", "client_error", "service_error", "rejected", "cancelled"]
Front = Literal["http", "grpc"]
Clock = Callable[[], float]

# LLM latencies span a 1 ms inter-token gap to a minute-long queued prefill.
_LATENCY_BUCKETS_S = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75),
    *(1.0, 1.5, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0),
)
# A scheduling decision takes microseconds; a slow plugin at 1,024 workers, milliseconds.
_DECISION_BUCKETS_S = (
    *(0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005),
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
)
# KV transfers on one host take well under a millisecond; across hosts, seconds.
_TRANSFER_BUCKETS_S = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0, 10.0),
)


M = TypeVar("M", Counter, Gauge, Histogram)


class _Labelled(Generic[M]):
    """A labelled metric whose children are looked up once per label values: prometheus'
    own `labels()` checks and locks on every call (~1 µs), and each request records
    about a dozen. Children are kept as long as prometheus keeps them (forever)."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class RouterMetrics:
    """Every metric the router exports, with typed methods to record them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._siblings: Callable[[], list[str]] | None = None
        registry = self.registry

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, label: str, buckets: tuple[float, ...] = _LATENCY_BUCKETS_S
        ) -> Histogram:
            return Histogram(name, doc, [label], buckets=buckets, registry=registry)

        self._requests = _Labelled(
            counter(
                "triskel_requests_total",
                "Requests answered, by final status.",
                "model",
                "status",
                "front",
            )
        )
        self._ttft_s = _Labelled(histogram("triskel_ttft_seconds", "Time to first token.", "model"))
        self._tpot_s = _Labelled(
            histogram("triskel_tpot_seconds", "Time per output token after the first.", "model")
        )
        self._e2e_s = _Labelled(
            histogram("triskel_e2e_seconds", "Request receipt to last token.", "model")
        )
        self._kv_bytes = counter(
            "triskel_kv_transfer_bytes_total", "KV cache bytes moved between workers.", "connector"
        )
        self._kv_s = histogram(
            "triskel_kv_transfer_seconds",
            "One KV cache transfer.",
            "connector",
            _TRANSFER_BUCKETS_S,
        )
        self._prompt_tokens = _Labelled(
            counter("triskel_prompt_tokens_total", "Prompt tokens of finished requests.", "model")
        )
        self._generation_tokens = _Labelled(
            counter(
                "triskel_generation_tokens_total",
                "Tokens generated for finished requests.",
                "model",
            )
        )
        self._prefix_hit_tokens = _Labelled(
            counter(
                "triskel_prefix_hit_tokens_total",
                "Prompt tokens served from a prefix cache.",
                "model",
            )
        )
        self._worker_requests = _Labelled(
            counter(
                "triskel_worker_requests_total",
                "Router calls to workers.",
                "worker",
                "stage",
                "status",
            )
        )
        self._decisions = _Labelled(
            counter(
                "triskel_router_decisions_total",
                "Scheduling decisions, by stage, the picker's reason and the chosen worker.",
                "stage",
                "reason",
                "worker",
            )
        )
        self._decision_s = _Labelled(
            histogram(
                "triskel_router_decision_seconds",
                "Time to pick a worker (every plugin of the profile).",
                "stage",
                _DECISION_BUCKETS_S,
            )
        )
        self._plugin_s = _Labelled(
            histogram(
                "triskel_router_plugin_seconds",
                "Time spent in one scheduling plugin per decision.",
                "plugin",
                _DECISION_BUCKETS_S,
            )
        )
        self._sibling_drops = counter(
            "triskel_router_sibling_frames_dropped_total",
            "Frames (load shares, picks) a sibling router process did not get: not "
            "connected yet, or reading too slowly (`triskel router --processes N`).",
        )
        self._retries = counter(
            "triskel_router_retries_total",
            "Requests sent to another worker after one failed before the first token.",
            "stage",
        )
        self._migrations = counter(
            "triskel_router_migrations_total",
            "Answers continued on another worker after theirs failed mid-answer.",
            "model",
            "stage",
        )
        self._redis_errors = counter(
            "triskel_redis_errors_total",
            "Shared-state calls that failed and were served from local state instead.",
            "operation",
        )
        self._auth_failures = counter(
            "triskel_auth_failures_total",
            "Requests refused by authentication or authorization (401 / 403), by reason.",
            "reason",
        )
        self._rate_limited = counter(
            "triskel_rate_limited_total",
            "Requests refused by a rate limit (429), by tenant and the bucket that ran dry.",
            "tenant",
            "limit",
        )
        self._priority_capped = counter(
            "triskel_auth_priority_capped_total",
            "Requests whose x-priority was lowered to their key's maxPriority.",
            "tenant",
        )
        self._keys_reloads = counter(
            "triskel_auth_keys_reloads_total",
            "Changes of the API keys file: applied (ok) or refused, old keys kept (invalid).",
            "result",
        )
        self._queue_depth = Gauge(
            "triskel_admission_queue_depth",
            "Requests waiting in the router's admission queue.",
            registry=registry,
        )
        self._admission_in_flight = Gauge(
            "triskel_admission_in_flight_requests",
            "Requests holding an admission slot.",
            registry=registry,
        )
        self._inflight = _Labelled(
            Gauge(
                "triskel_inflight_requests",
                "Requests received, not yet answered.",
                ["model"],
                registry=registry,
            )
        )
        self._held_prefills = Gauge(
            "triskel_router_held_prefills",
            "Prefills the router holds while their worker is busy (routing.prefillHold).",
            ["model"],
            registry=registry,
        )
        self._prefill_places = counter(
            "triskel_router_prefill_placements_total",
            "Disaggregated requests by where they prefilled: on their decode worker (local)"
            " or a prefill worker (remote).",
            "model",
            "place",
        )
        self._prefill_moves = counter(
            "triskel_router_prefill_moves_total",
            "Held prefills moved to their other candidate (DualMap's rebalancing).",
            "model",
        )

    def observe_request(
        self,
        model: str,
        front: Front,
        status: RequestStatus,
        ttft_s: float | None = None,
        tpot_s: float | None = None,
        e2e_s: float | None = None,
    ) -> None:
        """Counts one answered request; each latency is recorded when measured (not None)."""
        self._requests.labels(model, status, front).inc()
        latencies_s = ((self._ttft_s, ttft_s), (self._tpot_s, tpot_s), (self._e2e_s, e2e_s))
        for histogram, value_s in latencies_s:
            if value_s is not None:
                histogram.labels(model).observe(value_s)

    def observe_tokens(
        self, model: str, prompt_tokens: int, generated_tokens: int, cached_tokens: int
    ) -> None:
        self._prompt_tokens.labels(model).inc(prompt_tokens)
        self._generation_tokens.labels(model).inc(generated_tokens)
        self._prefix_hit_tokens.labels(model).inc(cached_tokens)

    def observe_kv_transfer(self, connector: str, num_bytes: int, seconds: float) -> None:
        self._kv_bytes.labels(connector).inc(num_bytes)
        self._kv_s.labels(connector).observe(seconds)

    def observe_worker_call(self, worker: str, stage: str, status: str) -> None:
        """`stage` is encode | prefill | decode | unified; `status` "ok" or an error name."""
        self._worker_requests.labels(worker, stage, status).inc()

    def observe_decision(
        self, stage: str, reason: str, worker: str, plugin_seconds: Mapping[str, float]
    ) -> None:
        self._decisions.labels(stage, reason, worker).inc()
        self._decision_s.labels(stage).observe(sum(plugin_seconds.values()))
        for plugin, seconds in plugin_seconds.items():
            self._plugin_s.labels(plugin).observe(seconds)

    def observe_redis_error(self, operation: str) -> None:
        self._redis_errors.labels(operation).inc()

    def observe_auth_failure(self, reason: str) -> None:
        self._auth_failures.labels(reason).inc()

    def observe_rate_limited(self, tenant: str, limit: str) -> None:
        self._rate_limited.labels(tenant, limit).inc()

    def observe_priority_capped(self, tenant: str) -> None:
        self._priority_capped.labels(tenant).inc()

    def observe_keys_reload(self, ok: bool) -> None:
        self._keys_reloads.labels("ok" if ok else "invalid").inc()

    def watch_workers(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """`triskel_workers{model, role}`, read at scrape time: pools growing and
        shrinking (autoscaling, a drained worker leaving) show on /metrics."""
        self.registry.register(_WorkersCollector(counts))

    def watch_stage_requests(
        self, requests: Callable[[], Mapping[tuple[str, str], tuple[int, int]]]
    ) -> None:
        """`triskel_stage_requests_waiting` / `_running{model, role}`, read at scrape time:
        each stage's queue as its workers report it, for autoscalers that read the router
        (the operator's planner sizes a stage's backlog from it)."""
        self.registry.register(_StageRequestsCollector(requests))

    def watch_admission(self, queue_depth: Callable[[], int], in_flight: Callable[[], int]) -> None:
        """Reads the admission queue's gauges at scrape time."""
        self._queue_depth.set_function(queue_depth)
        self._admission_in_flight.set_function(in_flight)

    def observe_sibling_drops(self, num_frames: int) -> None:
        self._sibling_drops.inc(num_frames)

    def observe_retry(self, stage: str) -> None:
        self._retries.labels(stage).inc()

    def observe_migration(self, model: str, stage: str) -> None:
        self._migrations.labels(model, stage).inc()

    def observe_prefill_placement(self, model: str, is_local: bool) -> None:
        self._prefill_places.labels(model, "local" if is_local else "remote").inc()

    def observe_held_prefills(self, model: str, num_held: int, num_new_moves: int) -> None:
        self._held_prefills.labels(model).set(num_held)
        if num_new_moves:
            self._prefill_moves.labels(model).inc(num_new_moves)

    def track_request(
        self, model: str, front: Front, timer: RequestTimer | None = None
    ) -> RequestTracker:
        """Starts accounting one request (in flight from now); pass `timer` if started earlier."""
        self._inflight.labels(model).inc()
        return RequestTracker(self, model, front, timer or RequestTimer())

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for `GET /metrics`."""
        if self._siblings is not None:
            return merged_exposition(self.registry, self._siblings()), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def add_siblings(self, expositions: Callable[[], list[str]]) -> None:
        """Adds sibling processes' counters to what `render` exports (the first of
        `triskel router --processes N`; triskel.router.siblings.metrics)."""
        self._siblings = expositions

    def _request_done(self, model: str) -> None:
        self._inflight.labels(model).dec()


class RequestTimer:
    """TTFT, TPOT and e2e of one request, measured from creation as its events pass by.

    TTFT is taken at the first TokenEvent, e2e at the FinishEvent, and
    TPOT = (e2e − TTFT) / (completion_tokens − 1) when more than one token was made
    (the usual definition, e.g. DistServe's).
    """

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock
        self._start_s = clock()
        self.ttft_s: float | None = None
        self.tpot_s: float | None = None
        self.e2e_s: float | None = None

    def on_event(self, event: GenerationEvent) -> None:
        if isinstance(event, RouteEvent):
            return
        elapsed_s = self._clock() - self._start_s
        if isinstance(event, TokenEvent):
            if self.ttft_s is None:
                self.ttft_s = elapsed_s
            return
        self.e2e_s = elapsed_s
        if self.ttft_s is not None and event.completion_tokens > 1:
            self.tpot_s = (elapsed_s - self.ttft_s) / (event.completion_tokens - 1)


class RequestTracker:
    """Accounts one request: in flight until `close`, then status, latencies and tokens once."""

    def __init__(
        self, metrics: RouterMetrics, model: str, front: Front, timer: RequestTimer
    ) -> None:
        self._metrics = metrics
        self._model = model
        self._front: Front = front
        self.timer = timer
        self.finish: FinishEvent | None = None
        self._is_closed = False

    def on_event(self, event: GenerationEvent) -> None:
        self.timer.on_event(event)
        if isinstance(event, FinishEvent):
            self.finish = event

    def close(self, status: RequestStatus) -> None:
        """Records the request; later calls do nothing (error paths may overlap)."""
        if self._is_closed:
            return
        self._is_closed = True
        self._metrics._request_done(self._model)
        timer = self.timer
        self._metrics.observe_request(
            self._model, self._front, status, timer.ttft_s, timer.tpot_s, timer.e2e_s
        )
        if self.finish is not None:
            self._metrics.observe_tokens(
                self._model,
                self.finish.prompt_tokens,
                self.finish.completion_tokens,
                self.finish.cached_prompt_tokens,
            )


def model_label(model: object, served: Iterable[str]) -> str:
    """`model` when it is served, else "unknown": clients must not mint label values."""
    return model if isinstance(model, str) and model in set(served) else "unknown"


def status_of(error: BaseException) -> RequestStatus:
    """The metrics status of a request that ended with `error`."""
    if isinstance(error, RequestError | RequestBlocked):
        return "client_error"
    if isinstance(error, OverloadedError):
        return "rejected"
    if isinstance(error, Exception):
        # ServiceError, and our own bugs: both count against the service.
        return "service_error"
    return "cancelled"  # CancelledError, GeneratorExit: the client went away


class _WorkersCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "triskel_workers",
            "Workers the router routes to, per model and role.",
            labels=["model", "role"],
        )
        for (model, role), count in sorted(self._counts().items()):
            family.add_metric([model, role], count)
        yield family


class _StageRequestsCollector(Collector):
    def __init__(self, requests: Callable[[], Mapping[tuple[str, str], tuple[int, int]]]) -> None:
        self._requests = requests

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "role"]
        waiting = GaugeMetricFamily(
            "triskel_stage_requests_waiting",
            "Requests queued on the workers of a model's stage, as the workers report them.",
            labels=labels,
        )
        running = GaugeMetricFamily(
            "triskel_stage_requests_running",
            "Requests in the running batches of a model's stage, as the workers report them.",
            labels=labels,
        )
        for (model, role), (num_waiting, num_running) in sorted(self._requests().items()):
            waiting.add_metric([model, role], num_waiting)
            running.add_metric([model, role], num_running)
        yield waiting
        yield running
