"""ServingGraph autoscaling: a kopf daemon per graph with `spec.autoscaling` steps its
autoscaler every interval (the graph's own: a kopf timer's interval is one for all
graphs, and a timer ticking faster would log every tick).

A step reads the graph's pools, fetches the router's /metrics, observes the window
since the previous scrape, steps the graph's autoscaler and acts on each decision
(`autoscaling.pool_actions`): the pool's `status.autoscaling` record, the gauge, and
when the count changes a PATCH of the pool's scale subresource and a Normal `Scaled`
event; for a pool with parallelism.ep > 1, an EP step in the background instead
(`elastic_ep_steps`), and when none runs, one stepping its pods that serve at another
EP size to the pool's. The graph's `ScalingActive` condition says whether it works; a
problem (metrics unreadable, a pool missing, a scale refused) sets it False with one
Warning event and scales nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.common.kube import KubeClient, KubeError, resource_path
from triskel.common.profiles import load_profile
from triskel.common.resources import (
    API_GROUP,
    API_VERSION,
    SERVING_GRAPH,
    WORKER_POOL,
    AutoscalingMode,
    AutoscalingSpec,
    ServingGraphSpec,
)
from triskel.operator.autoscaling import (
    AutoscalingProblem,
    PoolAction,
    PoolReading,
    observation,
    planner_config,
    pool_actions,
    router_load,
    stage_specs,
)
from triskel.operator.conditions import ConditionUpdate, merge_conditions
from triskel.operator.elastic_ep import current_ep_size, ep_target, is_elastic
from triskel.operator.elastic_ep_convergence import may_converge
from triskel.operator.elastic_ep_steps import EpStepOrder, run_convergence, run_step
from triskel.operator.graph_autoscalers import AutoscalingSettings, GraphAutoscaling, GraphKey
from triskel.operator.router_scrape import ScrapeFailed, fetch_metrics
from triskel.operator.runtime import OperatorRuntime
from triskel.operator.validation import describe_error
from triskel.planner.router_metrics import MetricsError, Scrape, model_window

Json = dict[str, Any]
PLURAL = SERVING_GRAPH.plural
SCALING_ACTIVE = "ScalingActive"
# Long enough to write the condition when spec.autoscaling goes; a step cut short by the
# cancellation is simply run again by the next daemon.
CANCELLATION_TIMEOUT_S = 5.0
FILTERS_MISMATCH = kopf.DaemonStoppingReason.FILTERS_MISMATCH
_GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Active:
    """How a step that worked is shown in `ScalingActive=True`."""

    reason: str
    message: str


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    @kopf.daemon(
        API_GROUP,
        API_VERSION,
        PLURAL,
        id="autoscale",
        when=_has_autoscaling,
        cancellation_timeout=CANCELLATION_TIMEOUT_S,
        registry=registry,
    )
    async def servinggraph_autoscale(
        body: kopf.Body, meta: kopf.Meta, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        key = (meta["namespace"], meta["name"])
        try:
            while True:
                try:
                    wait_s = await _round(runtime, body, key)
                except KubeError as error:  # the API server busy or failing: next round
                    _log.warning("ServingGraph %s/%s: autoscaling: %s", *key, error)
                    wait_s = runtime.autoscalers.of(key).interval_s
                # Slept, not `stopped.wait()`: kopf stops async daemons by cancelling them.
                await asyncio.sleep(wait_s)
        except asyncio.CancelledError:
            # Any other exception keeps the state for kopf's restart of the daemon.
            _stop(runtime, key)
            if stopped.reason is not None and FILTERS_MISMATCH in stopped.reason:
                # spec.autoscaling was removed; the graph is still there to say so (unless
                # it went meanwhile: nothing left to tell then).
                with contextlib.suppress(KubeError):
                    await _report(runtime, body, key, False, "NotConfigured", "")
            raise


def _has_autoscaling(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("autoscaling"))


async def _round(runtime: OperatorRuntime, body: kopf.Body, key: GraphKey) -> float:
    """One step of the graph's autoscaler, reported; the seconds until the next one.
    `body` is kopf's live view of the graph: each round reads its current spec."""
    state = runtime.autoscalers.of(key)
    try:
        spec = ServingGraphSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return runtime.options.status_interval_s  # the reconcile reports it
    if spec.autoscaling is None:  # removed; the daemon is about to be stopped
        return runtime.options.status_interval_s
    try:
        active = await _step(runtime, key, spec, spec.autoscaling, state)
        await _report(runtime, body, key, True, active.reason, active.message)
        state.problem = None
    except AutoscalingProblem as problem:
        if problem.message != state.problem:  # one Warning event per new problem
            kopf.warn(body, reason=problem.reason, message=problem.message)
        state.problem = problem.message
        await _report(runtime, body, key, False, problem.reason, problem.message)
    return state.interval_s


async def _step(
    runtime: OperatorRuntime,
    key: GraphKey,
    spec: ServingGraphSpec,
    autoscaling: AutoscalingSpec,
    state: GraphAutoscaling,
) -> Active:
    namespace, name = key
    graph = f"{namespace}/{name}"
    bodies = await _read_pools(runtime.kube, namespace, graph, spec.pools)
    readings = {pool: _reading(graph, pool, body) for pool, body in bodies.items()}
    config = planner_config(spec, autoscaling)
    stages = stage_specs(graph, {pool: reading.spec for pool, reading in readings.items()})
    state.configure(
        AutoscalingSettings(graph, autoscaling.policy, config, stages, autoscaling.interval_s)
    )
    try:
        text = await fetch_metrics(runtime.http, autoscaling.metrics_url)
        # Timed when the text arrived: the window's rates divide by the time between scrapes.
        scrape = Scrape(runtime.clock(), text)
        load = router_load(scrape, spec.model)
    except (ScrapeFailed, MetricsError) as error:
        raise AutoscalingProblem("MetricsUnavailable", f"ServingGraph {graph}: {error}") from None
    previous, state.previous = state.previous, scrape
    if previous is None:
        return Active("FirstScrape", "decides from the next scrape on")
    try:
        window = model_window(previous, scrape, spec.model, config.ttft_quantile)
    except MetricsError as error:
        raise AutoscalingProblem("MetricsUnavailable", f"ServingGraph {graph}: {error}") from None
    autoscaler = state.autoscaler_for(window)
    if autoscaler is None:
        return Active(
            "WaitingForRequests",
            f"{autoscaling.policy} sets its per-replica targets from the first requests",
        )
    decisions = autoscaler.step(observation(scrape.time_s, window, readings, load))
    decided_at = runtime.now()
    elastic = frozenset(pool for pool, reading in readings.items() if reading.ep_size)
    actions = pool_actions(
        name, autoscaling.policy, decisions, decided_at, autoscaling.mode, elastic
    )
    for action in actions:
        await _act(runtime.kube, namespace, graph, bodies[action.pool], action)
        runtime.metrics.set_desired(namespace, action.pool, autoscaling.policy, action.desired)
        if action.pool in elastic and autoscaling.mode is AutoscalingMode.SCALE:
            body = bodies[action.pool]
            _start_ep_step(runtime, state, graph, body, readings[action.pool], action)
    if autoscaling.mode is AutoscalingMode.SCALE:
        for pool in elastic:  # after the decisions: a step they started goes first
            _start_convergence(runtime, state, graph, bodies[pool], readings[pool])
    for gone in state.pools - set(readings):
        runtime.metrics.forget(namespace, gone)
    state.pools = frozenset(readings)
    verb = "decides" if autoscaling.mode is AutoscalingMode.SCALE else "recommends"
    return Active("Decided", f"{autoscaling.policy} {verb} every {state.interval_s:g} s")


async def _read_pools(
    kube: KubeClient, namespace: str, graph: str, names: list[str]
) -> Mapping[str, Json]:
    bodies = {}
    for pool in names:
        path = resource_path(_GROUP_VERSION, WORKER_POOL.kind, namespace, pool)
        try:
            body = await kube.get(path)
        except KubeError as error:
            if error.is_transient:
                raise  # retried next round
            raise AutoscalingProblem(
                "PoolUnreadable", f"ServingGraph {graph}: WorkerPool {pool}: {error.message}"
            ) from None
        if body is None:
            raise AutoscalingProblem(
                "PoolNotFound", f"ServingGraph {graph}: spec.pools: no WorkerPool {pool!r}"
            )
        bodies[pool] = body
    return bodies


def _reading(graph: str, pool: str, body: Json) -> PoolReading:
    try:
        spec = WorkerPoolSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise AutoscalingProblem(
            "InvalidPool", f"ServingGraph {graph}: WorkerPool {pool}: {describe_error(error)}"
        ) from None
    status = body.get("status", {})
    ep_size = current_ep_size(spec, status) if is_elastic(spec) else None
    return PoolReading(spec, int(status.get("readyReplicas", 0)), ep_size)


def _start_ep_step(
    runtime: OperatorRuntime,
    state: GraphAutoscaling,
    graph: str,
    body: Json,
    reading: PoolReading,
    action: PoolAction,
) -> None:
    """Starts the pool's next EP step in the background, unless one runs or the
    decision lands on the size it has."""
    moe = load_profile(reading.spec.profile.name).moe  # `stage_specs` checked it has one
    if moe is None or reading.ep_size is None:
        return
    is_stepping = state.ep_steps.is_running(action.pool)
    target = ep_target(moe, reading.spec, reading.ep_size, action.desired, is_stepping)
    if target is None:
        return
    order = EpStepOrder(graph, body, reading.ep_size, target)
    step = run_step(runtime.kube, runtime.http, order, runtime.clock, runtime.now)
    state.ep_steps.start(action.pool, step)


def _start_convergence(
    runtime: OperatorRuntime, state: GraphAutoscaling, graph: str, body: Json, reading: PoolReading
) -> None:
    """Steps the pool's pods serving at another EP size to its own, in the background,
    unless a step of the pool runs."""
    pool = body["metadata"]["name"]
    if may_converge(reading.spec, state.ep_steps.is_running(pool)):
        step = run_convergence(runtime.kube, runtime.http, graph, body, reading.spec)
        state.ep_steps.start(pool, step)


async def _act(
    kube: KubeClient, namespace: str, graph: str, body: Json, action: PoolAction
) -> None:
    """Scales first: the record then says what the pool was asked for."""
    path = resource_path(_GROUP_VERSION, WORKER_POOL.kind, namespace, action.pool)
    status: Json = {"autoscaling": action.record}
    try:
        if action.scale_to is not None:
            await kube.merge_patch(f"{path}/scale", {"spec": {"replicas": action.scale_to}})
            status["lastScaleTime"] = action.record["decidedAt"]
        await kube.merge_patch(f"{path}/status", {"status": status})
    except KubeError as error:
        raise AutoscalingProblem(
            "ScaleRefused",
            f"ServingGraph {graph}: WorkerPool {action.pool}: the API server refused "
            f"{action.record['currentReplicas']} -> {action.record['desiredReplicas']} "
            f"replicas: {error.message}",
        ) from None
    if action.event is not None:
        pool = kopf.Body(cast(kopf.RawBody, body))
        kopf.event(pool, type="Normal", reason="Scaled", message=action.event)


async def _report(
    runtime: OperatorRuntime,
    body: kopf.Body,
    key: GraphKey,
    is_active: bool,
    reason: str,
    message: str,
) -> None:
    """Writes `ScalingActive` only when it changed: a step every few seconds must not
    patch the graph every few seconds."""
    previous = body.get("status", {}).get("conditions", [])
    wanted = {"type": SCALING_ACTIVE, "status": "True" if is_active else "False"}
    wanted |= {"reason": reason, "message": message}
    if any(all(c.get(k) == v for k, v in wanted.items()) for c in previous):
        return
    conditions = merge_conditions(
        previous,
        [ConditionUpdate(SCALING_ACTIVE, is_active, reason, message)],
        body.get("metadata", {}).get("generation"),
        runtime.now(),
    )
    path = resource_path(_GROUP_VERSION, SERVING_GRAPH.kind, *key)
    await runtime.kube.merge_patch(f"{path}/status", {"status": {"conditions": conditions}})


def _stop(runtime: OperatorRuntime, key: GraphKey) -> None:
    """Forgets the graph's autoscaler and its gauge series."""
    state = runtime.autoscalers.drop(key)
    if state is not None:
        state.ep_steps.cancel_all()
    for pool in state.pools if state is not None else ():
        runtime.metrics.forget(key[0], pool)
