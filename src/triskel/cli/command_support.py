"""What every `triskel` command shares: `--log-level`, logging to stderr, and
failing with exit code 2 and a message that names the flag."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer

LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=2)


def json_config(text: str, option: str = "--config-json") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"{option}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise fail(f"{option}: expected a JSON object")
    return data
