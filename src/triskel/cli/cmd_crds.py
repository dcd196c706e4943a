"""`triskel crds`: the CustomResourceDefinitions generated from the API models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triskel.cli.command_support import fail


def crds(
    write: Annotated[
        Path | None, typer.Option("--write", help="write one <plural>.triskel.io.yaml per CRD")
    ] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="fail if this folder's CRDs are not current")
    ] = None,
) -> None:
    """Print the CustomResourceDefinitions generated from the API models."""
    from triskel.operator.crd_files import check_folder, render_all, write_folder

    if write is not None and check is not None:
        raise fail("--write and --check: pick one")
    if check is not None:
        drift = check_folder(check)
        if not drift.is_current:
            raise fail(f"{drift.describe(check)}\nregenerate with: triskel crds --write {check}")
        typer.echo(f"{check}: CRDs are current")
    elif write is not None:
        for path in write_folder(write):
            typer.echo(f"wrote {path}")
    else:
        typer.echo(render_all(), nl=False)
