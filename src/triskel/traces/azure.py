"""Reads the Azure LLM inference traces (Patel et al., "Splitwise", ISCA 2024).

CSV with a header:
    TIMESTAMP,ContextTokens,GeneratedTokens
    2023-11-16 18:15:46.6805900,374,44
`TIMESTAMP` is wall-clock time with 100 ns resolution; there is no prefix
information, so requests carry no block ids.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path

from triskel.traces.errors import TraceError
from triskel.traces.types import Trace, TraceRequest

TIMESTAMP, CONTEXT_TOKENS, GENERATED_TOKENS = "TIMESTAMP", "ContextTokens", "GeneratedTokens"
COLUMNS = (TIMESTAMP, CONTEXT_TOKENS, GENERATED_TOKENS)

_TICKS_PER_S = 10_000_000
"""The trace's clock runs in 100 ns ticks; arrivals are computed in whole ticks."""
_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
# datetime parses at most 6 fractional digits and the trace has 7, so the
# fraction is split off and counted in ticks by hand.
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?")
_INTEGER = re.compile(r"[0-9]+")


def load_azure(path: str | Path, limit: int | None = None) -> Trace:
    """The first `limit` requests (all when None) of an Azure trace, streamed.

    Arrivals are seconds after the first row. Raises TraceError naming file, line
    (the header is line 1) and column for: a header that is not exactly the three
    columns, a row with missing or extra cells, a malformed timestamp, a count that
    is not an integer >= 1 (every request reads and generates at least one token),
    and timestamps going backwards.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    path = Path(path)
    requests: list[TraceRequest] = []
    with path.open(newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        positions = _column_positions(path, header)
        first_ticks: int | None = None
        previous_ticks = 0
        for row in reader:
            if limit is not None and len(requests) >= limit:
                break
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(COLUMNS):
                # Name the first column without a cell, in the file's own column order.
                field = header[len(row)] if header and len(row) < len(COLUMNS) else None
                raise TraceError(
                    path, line, field, f"expected {len(COLUMNS)} cells, got {len(row)}"
                )
            ticks = _ticks(path, line, row[positions[TIMESTAMP]])
            if first_ticks is None:
                first_ticks = previous_ticks = ticks
            if ticks < previous_ticks:
                raise TraceError(
                    path,
                    line,
                    TIMESTAMP,
                    f"goes backwards: {row[positions[TIMESTAMP]]!r} is earlier than the"
                    " row before (the trace must be sorted by arrival)",
                )
            previous_ticks = ticks
            requests.append(
                TraceRequest(
                    arrival_s=(ticks - first_ticks) / _TICKS_PER_S,
                    num_input_tokens=_count(path, line, CONTEXT_TOKENS, row, positions),
                    num_output_tokens=_count(path, line, GENERATED_TOKENS, row, positions),
                    prefix_block_ids=(),
                    prefix_block_tokens=0,
                    session_id=None,
                    index=len(requests),
                )
            )
    return Trace(name=path.stem, source=str(path), requests=tuple(requests))


def _column_positions(path: Path, header: list[str] | None) -> dict[str, int]:
    if header is None:
        raise TraceError(path, 1, None, f"empty file: expected the header {','.join(COLUMNS)}")
    for column in COLUMNS:
        if column not in header:
            raise TraceError(path, 1, column, f"missing column (header: {','.join(header)})")
    for column in header:
        if column not in COLUMNS or header.count(column) > 1:
            raise TraceError(
                path, 1, column, f"unexpected column (expected exactly {','.join(COLUMNS)})"
            )
    return {column: header.index(column) for column in COLUMNS}


def _ticks(path: Path, line: int, text: str) -> int:
    """100 ns ticks since 1970 for `YYYY-MM-DD HH:MM:SS[.fffffff]` (naive, as published)."""
    match = _TIMESTAMP.fullmatch(text)
    seconds: datetime | None = None
    if match:
        try:
            seconds = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            seconds = None
    if match is None or seconds is None:
        raise TraceError(
            path, line, TIMESTAMP, f"expected YYYY-MM-DD HH:MM:SS.fffffff, got {text!r}"
        )
    fraction = (match[2] or "").ljust(7, "0")
    whole = (seconds - _EPOCH) // _ONE_SECOND
    return whole * _TICKS_PER_S + int(fraction)


def _count(path: Path, line: int, column: str, row: list[str], positions: dict[str, int]) -> int:
    text = row[positions[column]]
    if not _INTEGER.fullmatch(text) or int(text) < 1:
        raise TraceError(path, line, column, f"must be an integer >= 1, got {text!r}")
    return int(text)
