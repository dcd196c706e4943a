"""`triskel simulate --suite FILE`: workloads x policies from a suite file."""

from __future__ import annotations

from pathlib import Path

import typer

from triskel.cli.command_support import fail

# The flags a suite run takes; any other would be overridden by the file.
_SUITE_FLAGS = frozenset({"suite", "jobs", "limit", "seed", "json_path", "plot"})


def simulate_suite(
    ctx: typer.Context,
    path: Path,
    *,
    jobs: int,
    limit: int | None,
    seed: int,
    json_path: Path | None,
    plot: Path | None,
) -> None:
    """Run the suite at `path`; exit 2 if a flag the file sets per workload was given."""
    from triskel.simulator.suite import SuiteOptions, run_suite
    from triskel.simulator.suite_config import SuiteError, load_suite
    from triskel.traces import TraceError

    def given(name: str) -> bool:
        # By name: typer carries its own copy of click's ParameterSource.
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    others = [
        p.opts[0] for p in ctx.command.params if p.name not in _SUITE_FLAGS and given(p.name or "")
    ]
    if others:
        # The file sets them per workload: a flag would be silently overridden.
        raise fail(
            f"--suite: the file sets traces, policies, clusters and SLOs; drop {', '.join(others)}"
        )
    try:
        options = SuiteOptions(
            load_suite(path),
            jobs=jobs,
            limit=limit,
            seed=seed if given("seed") else None,
            json_path=json_path,
            plot_dir=plot,
        )
        run_suite(options, typer.echo)
    except (SuiteError, TraceError) as error:
        raise fail(str(error)) from None
