"""`triskel new-api-key`: a random API key and its entry for the router's keys file."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from triskel.cli.command_support import fail


def new_api_key(
    name: Annotated[str, typer.Option("--name", help="the key's name in logs and metrics")],
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant it acts for")],
) -> None:
    """Print a new random API key and its entry for the router's keys file."""
    from triskel.router.auth.keys_file import ApiKeyEntry, hash_key, new_key

    key = new_key()
    try:
        entry = ApiKeyEntry(name=name, sha256=hash_key(key), tenant=tenant)
    except ValidationError as error:
        issue = error.errors()[0]
        raise fail(f"--{issue['loc'][0]}: {issue['msg']}") from None
    typer.echo(f"API key (give it to the client; only its hash is kept):\n  {key}")
    typer.echo("Entry for the keys file (under `keys:`; add models, maxPriority, rateLimit):")
    typer.echo(f"  - name: {entry.name}\n    sha256: {entry.sha256}\n    tenant: {entry.tenant}")
