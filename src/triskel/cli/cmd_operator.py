"""`triskel operator`: the Kubernetes operator (WorkerPool, ServingGraph, RoutingPolicy)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from triskel.cli.command_support import LogLevel, fail, setup_logging
from triskel.cli.tls_flags import (
    OperatorWorkerTlsCertFile,
    WorkerTlsCaFile,
    WorkerTlsKeyFile,
    WorkerTlsServerName,
    worker_tls_section,
)


def operator_command(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", help="watch this namespace (repeat; default: all)"),
    ] = None,
    router_namespace: Annotated[
        str,
        typer.Option(
            "--router-namespace",
            envvar="POD_NAMESPACE",
            help="where the router runs and reads its ConfigMap",
        ),
    ] = "default",
    worker_image: Annotated[
        str, typer.Option("--worker-image", envvar="TRISKEL_WORKER_IMAGE", help="mock workers")
    ] = "ghcr.io/triskel-io/triskel:0.1.0",
    drain_timeout_s: Annotated[
        float, typer.Option("--drain-timeout-s", min=0, help="longest wait for in-flight work")
    ] = 120.0,
    liveness: Annotated[
        str | None, typer.Option("--liveness", help="e.g. http://0.0.0.0:8080/healthz")
    ] = None,
    status_interval_s: Annotated[
        float,
        typer.Option(
            "--status-interval-s", min=0.1, help="how often pool and graph status is refreshed"
        ),
    ] = 10.0,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            "--metrics-address",
            help="serve the autoscaler's desired replicas at /metrics here, e.g. 0.0.0.0:9090",
        ),
    ] = None,
    network_policy_router_labels: Annotated[
        str | None,
        typer.Option(
            "--network-policy-router-labels",
            help="k=v,...: the router pods; with the next, a NetworkPolicy per pool",
        ),
    ] = None,
    network_policy_operator_labels: Annotated[
        str | None,
        typer.Option(
            "--network-policy-operator-labels",
            help="k=v,...: this operator's pods (both in --router-namespace)",
        ),
    ] = None,
    worker_tls_secret: Annotated[
        str | None,
        typer.Option(
            "--worker-tls-secret", help="worker pods serve mTLS with this Secret (tls.crt, ...)"
        ),
    ] = None,
    worker_tls_cert_file: OperatorWorkerTlsCertFile = None,
    worker_tls_key_file: WorkerTlsKeyFile = None,
    worker_tls_ca_file: WorkerTlsCaFile = None,
    worker_tls_server_name: WorkerTlsServerName = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the Kubernetes operator (WorkerPool, ServingGraph, RoutingPolicy)."""
    from triskel.common.tls import ClientTlsFiles, TlsFileError
    from triskel.operator.app import run_operator
    from triskel.operator.builders.network_policy import worker_callers
    from triskel.operator.runtime import OperatorOptions

    setup_logging(log_level)
    try:
        callers = worker_callers(
            router_namespace, network_policy_router_labels, network_policy_operator_labels
        )
    except ValueError as error:
        raise fail(f"operator: {error}") from None
    try:
        client_tls = worker_tls_section(
            None,
            worker_tls_cert_file,
            worker_tls_key_file,
            worker_tls_ca_file,
            worker_tls_server_name,
        )
    except ValueError as error:
        raise fail(f"operator: {error}") from None
    options = OperatorOptions(
        worker_image=worker_image,
        namespaces=tuple(namespace or ()),
        router_namespace=router_namespace,
        drain_timeout_s=drain_timeout_s,
        status_interval_s=status_interval_s,
        liveness_endpoint=liveness,
        metrics_address=metrics_address,
        worker_callers=callers,
        worker_tls_secret=worker_tls_secret,
        worker_client_tls=None if client_tls is None else ClientTlsFiles.model_validate(client_tls),
    )
    try:
        asyncio.run(run_operator(options))
    except TlsFileError as error:
        raise fail(f"operator: {error}") from None
