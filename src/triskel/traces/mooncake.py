"""Reads Mooncake's JSON Lines traces (Qin et al., "Mooncake", FAST 2025).

One request a line:
    {"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, ...]}
`timestamp` is milliseconds from the start of the trace; `hash_ids` name the
prompt's 512-token blocks, so equal leading ids mean an equal prefix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from triskel.traces.errors import TraceError
from triskel.traces.types import Trace, TraceRequest

BLOCK_TOKENS = 512
"""Tokens per `hash_ids` entry in every published Mooncake trace."""

_FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")

_Fail = Callable[[str | None, str], TraceError]
"""Builds the error for one line: (field or None, problem) -> TraceError."""


def load_mooncake(path: str | Path, limit: int | None = None) -> Trace:
    """The first `limit` requests (all when None) of a Mooncake trace, streamed.

    Blank lines are skipped; unknown keys are ignored (a newer release may add
    some). Raises TraceError naming file, line and field for: invalid JSON, a
    missing field, a wrong type, a length below 1 (a request reads at least one
    token and must generate at least one), hash_ids that are not non-negative
    integers or do not match input_length, and timestamps going backwards.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    path = Path(path)
    requests: list[TraceRequest] = []
    previous_ms: float = 0
    with path.open("rb") as lines:
        for line_number, line in enumerate(lines, start=1):
            if limit is not None and len(requests) >= limit:
                break
            if not line.strip():
                continue
            timestamp_ms, request = _parse_line(path, line_number, line, index=len(requests))
            if timestamp_ms < previous_ms:
                raise TraceError(
                    path,
                    line_number,
                    "timestamp",
                    f"goes backwards: {timestamp_ms} after {previous_ms}"
                    " (the trace must be sorted by arrival)",
                )
            previous_ms = timestamp_ms
            requests.append(request)
    return Trace(name=path.stem, source=str(path), requests=tuple(requests))


def _parse_line(
    path: Path, line_number: int, line: bytes, index: int
) -> tuple[float, TraceRequest]:
    def fail(field: str | None, problem: str) -> TraceError:
        return TraceError(path, line_number, field, problem)

    try:
        row: Any = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise fail(None, f"invalid JSON: {error}") from None
    if not isinstance(row, dict):
        raise fail(None, f"expected a JSON object, got {_kind(row)}")
    for field in _FIELDS:
        if field not in row:
            raise fail(field, "missing")

    timestamp = row["timestamp"]
    if not _is_number(timestamp) or not math.isfinite(timestamp) or timestamp < 0:
        raise fail("timestamp", f"must be a number of milliseconds >= 0, got {timestamp!r}")
    num_input = _length(row, "input_length", fail)
    num_output = _length(row, "output_length", fail)
    block_ids = _block_ids(row["hash_ids"], fail)
    # Each id covers up to 512 tokens and only the last block may be partial, so the
    # ids must be exactly ceil(input_length / 512). All 12,031 rows of the published
    # conversation trace satisfy this, so it is enforced rather than relaxed.
    if (
        block_ids
        and not (len(block_ids) - 1) * BLOCK_TOKENS < num_input <= len(block_ids) * BLOCK_TOKENS
    ):
        raise fail(
            "hash_ids",
            f"{len(block_ids)} blocks of {BLOCK_TOKENS} tokens cannot hold input_length"
            f" {num_input} (expected {math.ceil(num_input / BLOCK_TOKENS)} ids)",
        )
    return timestamp, TraceRequest(
        arrival_s=timestamp / 1000.0,
        num_input_tokens=num_input,
        num_output_tokens=num_output,
        prefix_block_ids=block_ids,
        prefix_block_tokens=BLOCK_TOKENS if block_ids else 0,
        session_id=None,
        index=index,
    )


def _length(row: dict[str, Any], field: str, fail: _Fail) -> int:
    value = row[field]
    if not _is_int(value) or value < 1:
        raise fail(field, f"must be an integer >= 1, got {value!r}")
    return int(value)


def _block_ids(value: Any, fail: _Fail) -> tuple[int, ...]:
    # An empty list is accepted as "no prefix information", like Azure rows.
    if not isinstance(value, list):
        raise fail("hash_ids", f"must be a list of integers >= 0, got {_kind(value)}")
    for position, item in enumerate(value):
        if not _is_int(item) or item < 0:
            raise fail(f"hash_ids[{position}]", f"must be an integer >= 0, got {item!r}")
    return tuple(value)


def _is_int(value: Any) -> bool:
    # JSON true/false arrive as Python bools, which are ints: refuse them.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def _kind(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), repr(value))
