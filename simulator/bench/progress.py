"""The bench's progress bar (rich), on stderr so stdout keeps only the report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from triskel.simulator.bench.outcome import Outcome
from triskel.simulator.bench.replay import OnDone


@contextlib.contextmanager
def progress_bar(num_requests: int, description: str, enabled: bool = True) -> Iterator[OnDone]:
    """A bar over `num_requests`; the yielded callback counts one finished request."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[num_failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as progress:
        task = progress.add_task(description, total=num_requests, num_failed=0)
        num_failed = 0

        def on_done(outcome: Outcome) -> None:
            nonlocal num_failed
            num_failed += outcome.error is not None
            progress.update(task, advance=1, num_failed=num_failed)

        yield on_done
