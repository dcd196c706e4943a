"""Assembles and runs the operator: one kopf registry per run, no module-level handlers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import kopf

from triskel.common.kube import credentials_of
from triskel.operator.handlers import autoscaling, routingpolicy, servinggraph, workerpool
from triskel.operator.runtime import OperatorOptions, OperatorRuntime

_log = logging.getLogger(__name__)

# Deletion waits on this finalizer until the pool is drained.
FINALIZER = "triskel.io/drain"

LoginFn = Callable[[], kopf.ConnectionInfo]
StopFlag = threading.Event | Any


def build_registry(runtime: OperatorRuntime, login: LoginFn | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def triskel_login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        info = login() if login is not None else _cluster_login(settings)
        runtime.logged_in(credentials_of(info))
        return info

    workerpool.register(registry, runtime)
    servinggraph.register(registry, runtime)
    autoscaling.register(registry, runtime)
    routingpolicy.register(registry, runtime)
    return registry


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    # Events for warnings only: an event per reconcile would drown the real ones.
    settings.posting.level = logging.WARNING
    # One replica (the chart's Deployment uses Recreate); no peering objects needed.
    settings.peering.standalone = True
    return settings


async def run_operator(
    options: OperatorOptions,
    stop_flag: StopFlag | None = None,
    login: LoginFn | None = None,
    settings: kopf.OperatorSettings | None = None,
    runtime: OperatorRuntime | None = None,
) -> None:
    """Runs until `stop_flag` is set. `runtime`: one built by the caller (tests read its
    metrics); it must be built with the same `options`."""
    runtime = runtime or OperatorRuntime(options)
    if options.metrics_address is not None:
        address = await runtime.metrics_server.start(options.metrics_address)
        _log.info("operator metrics on http://%s/metrics", address)
    try:
        await kopf.operator(
            registry=build_registry(runtime, login),
            settings=settings or operator_settings(),
            standalone=True,
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            liveness_endpoint=options.liveness_endpoint,
            stop_flag=stop_flag,
        )
    finally:
        await runtime.close()


def _cluster_login(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """In a pod: its service account; elsewhere: the user's kubeconfig."""
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account and no kubeconfig to reach the API server")
    return info
