"""vLLM's elastic EP endpoints over the worker's EP group, and the group's metrics.

POST /scale_elastic_ep       {"new_data_parallel_size": N, "drain_timeout": s (optional)}
                             200 {"message"} once the group serves with N ranks; 400 for a
                             size it cannot take (naming the field and the limit), 409
                             while another change runs
POST /is_scaling_elastic_ep  {"is_scaling_elastic_ep": bool}

`drain_timeout` is checked as vLLM checks it (a positive integer) but bounds nothing:
vLLM drains requests before it scales, the mock's old layout serves until the switch.
A worker that is no EP group (a dense profile) answers 400 to both.

Series (labels model_name, engine="0", as the vLLM ones):
    gauges    triskel:ep_size, triskel:ep_scaling (0/1),
              triskel:ep_last_step_seconds (modelled, before the time scale)
    counters  triskel:ep_steps_total, triskel:ep_experts_moved_total,
              triskel:ep_bytes_moved_total
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from triskel.common.moe import EpStep
from triskel.workers.elastic_ep import SIZE_FIELD, ElasticEpGroup, EpScaleError
from triskel.workers.openai_http.errors import ApiError, Json, bad_request
from triskel.workers.openai_http.generation import error_response, json_response, read_json

_LABELS = ("model_name", "engine")
_NOT_A_GROUP = (
    "this worker is no expert-parallel group (its profile has no `moe:` section); "
    "elastic EP needs a MoE profile"
)


class ElasticEpHandlers:
    def __init__(self, group: ElasticEpGroup | None) -> None:
        self._group = group

    async def scale(self, request: web.Request) -> web.Response:
        try:
            new_ranks = parse_scale_request(await read_json(request))
            group = self._require_group()
            step = await group.scale(new_ranks)
        except ApiError as error:
            return error_response(error)
        except EpScaleError as error:
            return error_response(ApiError(error.status, str(error), error.field_name))
        return json_response(
            {
                # vLLM's reply; the step's figures are Triskel's.
                "message": f"Scaled to {step.new_ranks} data parallel engines",
                "step": step_json(step),
            }
        )

    async def is_scaling(self, request: web.Request) -> web.Response:
        try:
            group = self._require_group()
        except ApiError as error:
            return error_response(error)
        return json_response({"is_scaling_elastic_ep": group.is_scaling})

    def _require_group(self) -> ElasticEpGroup:
        if self._group is None:
            raise bad_request(SIZE_FIELD, _NOT_A_GROUP)
        return self._group


def parse_scale_request(body: object) -> int:
    """The new EP size of a `/scale_elastic_ep` body; ApiError (400) naming the field."""
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    new_ranks = body.get(SIZE_FIELD)
    if new_ranks is None:
        raise bad_request(SIZE_FIELD, "is required")
    # JSON true is a Python bool, which is an int: not a size.
    if not isinstance(new_ranks, int) or isinstance(new_ranks, bool) or new_ranks < 1:
        raise bad_request(SIZE_FIELD, f"must be a positive integer, got {new_ranks!r}")
    drain_timeout = body.get("drain_timeout", 120)  # vLLM's default
    if not isinstance(drain_timeout, int) or isinstance(drain_timeout, bool) or drain_timeout < 1:
        raise bad_request(
            "drain_timeout", f"must be a positive integer (seconds), got {drain_timeout!r}"
        )
    return new_ranks


def step_json(step: EpStep) -> Json:
    return {
        "old_size": step.old_ranks,
        "new_size": step.new_ranks,
        "experts_moved": step.experts_moved,
        "bytes_moved": step.bytes_moved,
        "seconds": step.seconds,
    }


def elastic_ep_json(group: ElasticEpGroup) -> Json:
    """The group's state for `/server_info`."""
    in_progress = group.step_in_progress
    sizes = group.spec.sizes
    return {
        "ep_size": group.ranks,
        "is_scaling": group.is_scaling,
        "step_in_progress": step_json(in_progress) if in_progress is not None else None,
        "last_step": step_json(group.last_step) if group.last_step is not None else None,
        "min_ep_size": sizes[0],
        "max_ep_size": sizes[-1],
        "num_experts": group.spec.moe.num_experts,
        "experts_per_rank": [len(held) for held in group.layout],
    }


class ElasticEpCollector(Collector):
    """The group's series, read when Prometheus scrapes."""

    def __init__(self, group: ElasticEpGroup, label_values: list[str]) -> None:
        self._group = group
        self._label_values = label_values

    def collect(self) -> Iterator[Metric]:
        group = self._group
        last_seconds = group.last_step.seconds if group.last_step is not None else 0.0
        gauges = (
            ("triskel:ep_size", "Ranks of the EP group now serving.", group.ranks),
            ("triskel:ep_scaling", "1 while an EP size change runs.", int(group.is_scaling)),
            (
                "triskel:ep_last_step_seconds",
                "Modelled seconds of the last EP size change (before the time scale).",
                last_seconds,
            ),
        )
        for name, doc, gauge_value in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=_LABELS)
            gauge.add_metric(self._label_values, gauge_value)
            yield gauge
        counters = (
            ("triskel:ep_steps", "EP size changes completed.", group.num_steps_total),
            ("triskel:ep_experts_moved", "Experts moved by EP changes.", group.experts_moved_total),
            ("triskel:ep_bytes_moved", "Bytes of experts moved.", group.bytes_moved_total),
        )
        for name, doc, counter_value in counters:
            counter = CounterMetricFamily(name, doc, labels=_LABELS)
            counter.add_metric(self._label_values, counter_value)
            yield counter
