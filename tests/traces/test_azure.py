"""Azure CSV: 100 ns timestamps, the exact header, refusals naming file/line/column."""

from __future__ import annotations

from pathlib import Path

import pytest

from triskel.traces.azure import load_azure
from triskel.traces.errors import TraceError

from support.real_traces import AZURE_CONVERSATION, require

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
GOOD = "2023-11-16 18:15:46.6805900,374,44"


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "AzureLLMInferenceTrace_conv.csv"
    path.write_text("\n".join(lines))  # like the published file: no final newline
    return path


def test_arrivals_are_relative_to_the_first_row_to_the_tick(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        GOOD,
        "2023-11-16 18:15:50.9951690,396,109",
        "2023-11-16 18:15:50.9951691,5,1",  # one 100 ns tick later
        "2023-11-17 00:00:00,6,2",  # no fraction, next day
    )
    trace = load_azure(path)
    arrivals = [r.arrival_s for r in trace.requests]
    # 50.9951690 - 46.6805900 = 4.314579 s; integer ticks keep the 1e-7 step exact.
    assert arrivals[:3] == [0.0, 4.314579, 4.3145791]
    # Midnight is 5 h 44 min 13.31941 s after 18:15:46.68059.
    assert arrivals[3] == pytest.approx(5 * 3600 + 44 * 60 + 13.31941, abs=1e-6)
    assert [(r.num_input_tokens, r.num_output_tokens) for r in trace.requests[:2]] == [
        (374, 44),
        (396, 109),
    ]
    assert all(r.prefix_block_ids == () and r.prefix_block_tokens == 0 for r in trace.requests)


def test_columns_may_come_in_any_order_and_limit_stops_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "GeneratedTokens,TIMESTAMP,ContextTokens", "44," + GOOD[:27] + ",374")
    (request,) = load_azure(path, limit=1).requests
    assert (request.num_input_tokens, request.num_output_tokens) == (374, 44)


@pytest.mark.parametrize(
    ("header", "field", "problem"),
    [
        ("TIMESTAMP,ContextTokens", "GeneratedTokens", "missing column"),
        ("TIMESTAMP,Context,GeneratedTokens", "ContextTokens", "missing column"),
        (HEADER + ",Model", "Model", "unexpected column"),
        (HEADER + ",TIMESTAMP", "TIMESTAMP", "unexpected column"),  # duplicated
    ],
)
def test_bad_headers_name_the_column(tmp_path: Path, header: str, field: str, problem: str) -> None:
    path = write(tmp_path, header, GOOD)
    with pytest.raises(TraceError, match=rf"_conv\.csv:1: {field}: {problem}"):
        load_azure(path)


@pytest.mark.parametrize(
    ("bad_row", "field", "problem"),
    [
        ("2023-11-16 18:15:47.0,374", "GeneratedTokens", "expected 3 cells, got 2"),
        ("2023-11-16 18:15:47.0,374,44,1", None, "expected 3 cells, got 4"),
        ("2023-11-16T18:15:47,374,44", "TIMESTAMP", "expected YYYY-MM-DD"),
        ("2023-11-16 18:15:47.12345678,374,44", "TIMESTAMP", "expected YYYY-MM-DD"),
        ("2023-13-16 18:15:47,374,44", "TIMESTAMP", "expected YYYY-MM-DD"),  # month 13
        ("2023-11-16 18:15:47,-3,44", "ContextTokens", "must be an integer >= 1, got '-3'"),
        ("2023-11-16 18:15:47,abc,44", "ContextTokens", "must be an integer >= 1"),
        ("2023-11-16 18:15:47,374,0", "GeneratedTokens", "must be an integer >= 1, got '0'"),
        ("2023-11-16 18:15:47,374,4.5", "GeneratedTokens", "must be an integer >= 1"),
        ("2023-11-16 18:15:40,374,44", "TIMESTAMP", "goes backwards"),
    ],
)
def test_bad_rows_name_file_line_and_field(
    tmp_path: Path, bad_row: str, field: str | None, problem: str
) -> None:
    path = write(tmp_path, HEADER, GOOD, bad_row)  # line 3: the header is line 1
    with pytest.raises(TraceError) as caught:
        load_azure(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    if field is not None:
        assert f":3: {field}: " in message
    assert problem in message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"_conv\.csv:1: empty file"):
        load_azure(write(tmp_path))


def test_first_rows_of_the_real_trace() -> None:
    trace = load_azure(require(AZURE_CONVERSATION), limit=200)
    assert trace.num_requests == 200
    # The README's first two rows: 18:15:46.6805900 then 18:15:50.9951690.
    assert trace.requests[1].arrival_s == pytest.approx(4.314579)
    assert (trace.requests[1].num_input_tokens, trace.requests[1].num_output_tokens) == (396, 109)
