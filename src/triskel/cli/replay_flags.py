"""The flags `triskel simulate` and `triskel bench` share: both replay a trace and
judge it against the same SLOs, so they take these the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TraceLimit = Annotated[int | None, typer.Option("--limit", min=1, help="first N requests")]
RateScale = Annotated[float, typer.Option("--rate-scale", min=0.0001, help="replay K times faster")]
TtftMs = Annotated[float, typer.Option("--ttft-ms", min=0.001, help="TTFT SLO")]
TpotMs = Annotated[float, typer.Option("--tpot-ms", min=0.001, help="TPOT SLO")]
JsonPath = Annotated[Path | None, typer.Option("--json", help="write results")]
