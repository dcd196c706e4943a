"""The `triskel` command: `up` runs Triskel on this machine; `operator`, `router`,
`worker` and `crds` run it in a cluster; `simulate` and `bench` replay traces;
`new-api-key` makes a key for the router's keys file."""

from __future__ import annotations

from importlib.metadata import version as installed_version
from typing import Annotated

import typer

from triskel.cli.cmd_bench import bench
from triskel.cli.cmd_crds import crds
from triskel.cli.cmd_new_api_key import new_api_key
from triskel.cli.cmd_operator import operator_command
from triskel.cli.cmd_router import router
from triskel.cli.cmd_simulate import simulate
from triskel.cli.cmd_up import up
from triskel.cli.cmd_worker import worker
from triskel.cli.help_format import FlagHelpCommand, FlagHelpGroup

app = typer.Typer(cls=FlagHelpGroup, add_completion=False, no_args_is_help=True, help=__doc__)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"triskel {installed_version('triskel')}")
        raise typer.Exit()


@app.callback()
def triskel_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


# `triskel --help` lists the commands in this order.
app.command(cls=FlagHelpCommand)(up)
app.command(cls=FlagHelpCommand)(worker)
app.command(cls=FlagHelpCommand)(router)
app.command("new-api-key", cls=FlagHelpCommand)(new_api_key)
app.command(cls=FlagHelpCommand)(crds)
app.command("operator", cls=FlagHelpCommand)(operator_command)
app.command(cls=FlagHelpCommand)(simulate)
app.command(cls=FlagHelpCommand)(bench)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
