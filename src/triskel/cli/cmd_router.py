"""`triskel router`: the router in front of running workers, or of a cluster's pools."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from triskel.cli.command_support import LogLevel, fail, json_config, setup_logging
from triskel.cli.supervisor import announce_ready
from triskel.cli.tls_flags import (
    RouterWorkerTlsCertFile,
    TlsKeyFile,
    WorkerTlsCaFile,
    WorkerTlsKeyFile,
    WorkerTlsServerName,
    tls_section,
    worker_tls_section,
)


def router(
    config_json: Annotated[
        str | None, typer.Option("--config-json", help="RouterProcessConfig")
    ] = None,
    cluster_config: Annotated[
        Path | None,
        typer.Option(
            "--cluster-config",
            help="the operator's router config file (in a cluster: the mounted ConfigMap)",
        ),
    ] = None,
    http_address: Annotated[
        str | None, typer.Option("--http-address", help="HTTP listen host:port")
    ] = None,
    grpc_address: Annotated[
        str | None, typer.Option("--grpc-address", help="gRPC listen host:port")
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option("--metrics-address", help="serve /metrics here only, not on --http-address"),
    ] = None,
    kube_api_url: Annotated[
        str | None,
        typer.Option("--kube-api-url", help="Kubernetes API outside a pod (kubectl proxy)"),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="share state with other replicas (redis://host:port)"),
    ] = None,
    redis_password_file: Annotated[
        Path | None,
        typer.Option("--redis-password-file", help="a file holding Redis' password"),
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option("--tls-cert-file", help="serve HTTPS and gRPC TLS with this certificate"),
    ] = None,
    tls_key_file: TlsKeyFile = None,
    tls_client_ca_file: Annotated[
        Path | None,
        typer.Option("--tls-client-ca-file", help="require client certificates from this CA"),
    ] = None,
    worker_tls_cert_file: RouterWorkerTlsCertFile = None,
    worker_tls_key_file: WorkerTlsKeyFile = None,
    worker_tls_ca_file: WorkerTlsCaFile = None,
    worker_tls_server_name: WorkerTlsServerName = None,
    api_keys_file: Annotated[
        Path | None,
        typer.Option("--api-keys-file", help="require API keys from this file (re-read)"),
    ] = None,
    jwt_issuer: Annotated[
        str | None, typer.Option("--jwt-issuer", help="accept bearer JWTs from this issuer")
    ] = None,
    jwt_audience: Annotated[
        str | None, typer.Option("--jwt-audience", help="the `aud` JWTs must carry")
    ] = None,
    jwt_jwks_url: Annotated[
        str | None, typer.Option("--jwt-jwks-url", help="the issuer's public keys (JWKS)")
    ] = None,
    jwt_public_key_file: Annotated[
        Path | None,
        typer.Option("--jwt-public-key-file", help="or one PEM public key for JWTs"),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=0,
            help="router processes serving the same ports (0: one per core it may use)",
        ),
    ] = 1,
    log_level: LogLevel = "warning",
) -> None:
    """Run the router in front of running workers, or of a cluster's pools."""
    from triskel.cli.router_processes import RouterProcesses, available_cores
    from triskel.cli.supervisor import ChildFailedError
    from triskel.router.process import (
        RouterEndpoints,
        RouterProcessConfig,
        RouterStartupError,
        run_router,
    )
    from triskel.router.siblings.config import MAX_PROCESSES

    setup_logging(log_level)
    data = json_config(config_json) if config_json is not None else {}
    overrides = {
        "clusterConfig": None if cluster_config is None else str(cluster_config),
        "httpAddress": http_address,
        "grpcAddress": grpc_address,
        "metricsAddress": metrics_address,
        "kubeApiUrl": kube_api_url,
        "redisUrl": redis_url,
        "redisPasswordFile": None if redis_password_file is None else str(redis_password_file),
    }
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        tls = tls_section(data.get("tls"), tls_cert_file, tls_key_file, tls_client_ca_file)
        worker_tls = worker_tls_section(
            data.get("workerTls"),
            worker_tls_cert_file,
            worker_tls_key_file,
            worker_tls_ca_file,
            worker_tls_server_name,
        )
    except ValueError as error:
        raise fail(f"router: {error}") from None
    data.update({key: value for key, value in (("tls", tls), ("workerTls", worker_tls)) if value})
    auth = _auth_flags(
        data.get("auth"),
        api_keys_file,
        {
            "issuer": jwt_issuer,
            "audience": jwt_audience,
            "jwksUrl": jwt_jwks_url,
            "publicKeyFile": None if jwt_public_key_file is None else str(jwt_public_key_file),
        },
    )
    if auth is not None:
        data["auth"] = auth
    count = processes or available_cores()
    if count > MAX_PROCESSES:
        raise fail(f"router: --processes: {count} is above the limit ({MAX_PROCESSES})")
    # Checked as each of `count` processes will run it (auth needs Redis among several).
    siblings = {"index": 0, "count": count, "directory": "."}
    checked = {**data, "siblings": siblings} if count > 1 else data
    try:
        config = RouterProcessConfig.model_validate(checked)
    except ValidationError as error:
        raise fail(f"router: {error}") from None
    if count > 1:
        try:
            asyncio.run(RouterProcesses(data, count, log_level).run(announce_ready))
        except (ChildFailedError, OSError) as error:
            raise fail(f"router: {error}") from None
        return

    def ready(endpoints: RouterEndpoints) -> None:
        ready = {"http": endpoints.http_address, "grpc": endpoints.grpc_address}
        if endpoints.metrics_address is not None:
            ready["metrics"] = endpoints.metrics_address
        announce_ready(ready)

    try:
        asyncio.run(run_router(config, ready))
    except (RouterStartupError, OSError) as error:
        raise fail(f"router: {error}") from None


def _auth_flags(configured: Any, api_keys_file: Path | None, jwt: dict[str, str | None]) -> Any:
    """The `auth` section with the flags laid over `--config-json`'s (a flag wins)."""
    given = {key: value for key, value in jwt.items() if value is not None}
    if api_keys_file is None and not given:
        return configured
    auth = dict(configured) if isinstance(configured, dict) else {}
    if api_keys_file is not None:
        auth["apiKeysFile"] = str(api_keys_file)
    if given:
        current = auth.get("jwt")
        auth["jwt"] = (dict(current) if isinstance(current, dict) else {}) | given
    return auth
