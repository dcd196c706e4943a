"""`triskel worker`: one worker, started by `triskel up` or a pod."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from triskel.cli.command_support import LogLevel, fail, json_config, setup_logging
from triskel.cli.supervisor import announce_ready
from triskel.cli.tls_flags import TlsKeyFile, tls_section


def worker(
    config_json: Annotated[
        str | None, typer.Option("--config-json", help="WorkerProcessConfig (triskel up)")
    ] = None,
    pool_json: Annotated[
        str | None, typer.Option("--pool-json", help="WorkerPoolSpec (a pod's args)")
    ] = None,
    worker_id: Annotated[str | None, typer.Option("--worker-id")] = None,
    grpc_address: Annotated[
        str | None, typer.Option("--grpc-address", help="host:port to serve on (port 0: any)")
    ] = None,
    frame_port: Annotated[
        int | None,
        typer.Option(
            "--frame-port",
            help="port (on the gRPC host) serving the data plane as frames (0: any)",
        ),
    ] = None,
    kv_host: Annotated[
        str | None, typer.Option("--kv-host", help="address KV listeners bind and advertise")
    ] = None,
    kv_auth_key_file: Annotated[
        str | None,
        typer.Option(
            "--kv-auth-key-file",
            help="file with the KV auth key every worker of the graph shares (32+ bytes)",
        ),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option("--tls-cert-file", help="serve gRPC over TLS with this certificate"),
    ] = None,
    tls_key_file: TlsKeyFile = None,
    tls_client_ca_file: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-ca-file",
            help="require callers' and KV peers' certificates from this CA (mTLS)",
        ),
    ] = None,
    http_address: Annotated[
        str | None,
        typer.Option(
            "--http-address", help="host:port of the vLLM-compatible HTTP API (port 0: any)"
        ),
    ] = None,
    bootstrap_address: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-address",
            help="host:port of the SGLang-style P/D bootstrap listener (prefill / unified)",
        ),
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Run one worker (started by `triskel up` or a pod).

    Either `--config-json` or `--pool-json` with `--worker-id`; a flag overrides
    the same field of `--config-json`.
    """
    from triskel.workers.process import WorkerEndpoints, WorkerProcessConfig, run_worker

    setup_logging(log_level)
    fields = json_config(config_json, "--config-json") if config_json is not None else {}
    if pool_json is not None:
        fields["pool"] = json_config(pool_json, "--pool-json")
    flags = {
        "worker_id": worker_id,
        "grpc_address": grpc_address,
        "frame_port": frame_port,
        "kv_host": kv_host,
        "kv_auth_key_file": kv_auth_key_file,
        "http_address": http_address,
        "bootstrap_address": bootstrap_address,
    }
    for name, value in flags.items():
        if value is not None:
            # The field may be spelled either way in --config-json; the flag replaces both.
            fields.pop(WorkerProcessConfig.model_fields[name].alias or name, None)
            fields[name] = value
    try:
        tls = tls_section(fields.get("tls"), tls_cert_file, tls_key_file, tls_client_ca_file)
    except ValueError as error:
        raise fail(f"worker: {error}") from None
    if tls is not None:
        fields["tls"] = tls
    try:
        config = WorkerProcessConfig.model_validate(fields)
    except ValidationError as error:
        raise fail(f"worker config: {error}") from None

    def ready(endpoints: WorkerEndpoints) -> None:
        announce_ready(
            {
                "worker_id": config.worker_id,
                "grpc": endpoints.grpc,
                "http": endpoints.http,
                "bootstrap": endpoints.bootstrap,
                "frames": endpoints.frames,
            }
        )

    try:
        asyncio.run(run_worker(config, ready))
    except (ValueError, OSError) as error:  # OSError: an address it cannot listen on
        raise fail(f"worker {config.worker_id}: {error}") from None
