"""`triskel up`: the router and every pool's workers as local processes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from triskel.cli.command_support import LogLevel, fail, setup_logging


def up(
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="YAML deployment (default: built-in)")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", help="router HTTP host:port (overrides the file)")
    ] = None,
    grpc: Annotated[
        str | None, typer.Option("--grpc", help="router gRPC host:port (overrides the file)")
    ] = None,
    log_level: LogLevel = "warning",
) -> None:
    """Start the router and every pool's workers as local processes."""
    from triskel.cli.router_ports import first_unusable
    from triskel.cli.up import run_up
    from triskel.cli.up_config import UpConfigError, load_up_config, with_router_addresses

    setup_logging(log_level)
    try:
        config, source = load_up_config(file)
        config = with_router_addresses(config, http, grpc)
    except UpConfigError as error:
        raise fail(str(error)) from None
    unusable = first_unusable(config.router, file)
    if unusable is not None:  # before any worker starts
        raise fail(unusable)
    code = asyncio.run(run_up(config, source, typer.echo, log_level))
    raise typer.Exit(code)
