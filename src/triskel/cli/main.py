"""The `triskel` command: `up`, `worker`, `router`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from triskel.cli.supervisor import announce_ready

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=2)


def _json_config(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(f"--config-json: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise _fail("--config-json: expected a JSON object")
    return data


@app.command()
def up(
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="YAML deployment (default: built-in)")
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Start the router and every pool's workers as local processes."""
    from triskel.cli.up import run_up
    from triskel.cli.up_config import UpConfigError, load_up_config

    _setup_logging(log_level)
    try:
        config, source = load_up_config(file)
    except UpConfigError as error:
        raise _fail(str(error)) from None
    code = asyncio.run(run_up(config, source, typer.echo, log_level))
    raise typer.Exit(code)


@app.command()
def worker(
    config_json: Annotated[str, typer.Option("--config-json", help="WorkerProcessConfig")],
    log_level: LogLevel = "warning",
) -> None:
    """Run one worker (started by `triskel up` or a pod)."""
    from triskel.workers.process import WorkerProcessConfig, run_worker

    _setup_logging(log_level)
    try:
        config = WorkerProcessConfig.model_validate(_json_config(config_json))
    except ValidationError as error:
        raise _fail(f"--config-json: {error}") from None

    def ready(address: str) -> None:
        announce_ready({"worker_id": config.worker_id, "grpc": address})

    try:
        asyncio.run(run_worker(config, ready))
    except ValueError as error:
        raise _fail(f"worker {config.worker_id}: {error}") from None


@app.command()
def router(
    config_json: Annotated[str, typer.Option("--config-json", help="RouterProcessConfig")],
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="share state with other replicas (redis://host:port)"),
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Run the router in front of already running workers."""
    from triskel.router.process import (
        RouterEndpoints,
        RouterProcessConfig,
        RouterStartupError,
        run_router,
    )

    _setup_logging(log_level)
    try:
        config = RouterProcessConfig.model_validate(_json_config(config_json))
    except ValidationError as error:
        raise _fail(f"--config-json: {error}") from None
    if redis_url is not None:
        config = config.model_copy(update={"redis_url": redis_url})

    def ready(endpoints: RouterEndpoints) -> None:
        announce_ready({"http": endpoints.http_address, "grpc": endpoints.grpc_address})

    try:
        asyncio.run(run_router(config, ready))
    except (RouterStartupError, OSError) as error:
        raise _fail(f"router: {error}") from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
