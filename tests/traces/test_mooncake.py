"""Mooncake JSON Lines: parsing, every refusal naming file/line/field, the real trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triskel.traces.errors import TraceError
from triskel.traces.mooncake import BLOCK_TOKENS, load_mooncake

from support.real_traces import MOONCAKE_CONVERSATION, require

GOOD = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}'


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "conversation_trace.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def row(**changes: object) -> str:
    fields: dict[str, object] = json.loads(GOOD)
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not ...})


def test_reads_requests_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD,
        "",  # blank lines are skipped, not errors
        row(timestamp=1500, input_length=512, hash_ids=[0], extra="ignored"),
    )
    trace = load_mooncake(path)
    assert trace.name == "conversation_trace"
    first, second = trace.requests
    assert (first.arrival_s, first.num_input_tokens, first.num_output_tokens) == (0.0, 600, 5)
    assert first.prefix_block_ids == (0, 1)
    assert first.prefix_block_tokens == BLOCK_TOKENS
    assert (second.arrival_s, second.index) == (1.5, 1)  # milliseconds -> seconds
    assert second.session_id is None


def test_limit_stops_reading(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, GOOD, "not json")  # the bad line is never read
    assert load_mooncake(path, limit=2).num_requests == 2


def test_empty_hash_ids_mean_no_prefix(tmp_path: Path) -> None:
    (request,) = load_mooncake(write(tmp_path, row(hash_ids=[]))).requests
    assert (request.prefix_block_ids, request.prefix_block_tokens) == ((), 0)


@pytest.mark.parametrize(
    ("bad_line", "field", "problem"),
    [
        ("{not json", None, "invalid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        (row(timestamp=...), "timestamp", "missing"),
        (row(hash_ids=...), "hash_ids", "missing"),
        (row(timestamp="0"), "timestamp", "must be a number"),
        (row(timestamp=-1), "timestamp", "must be a number of milliseconds >= 0"),
        (row(input_length=-3), "input_length", "must be an integer >= 1, got -3"),
        (row(input_length=1.5), "input_length", "must be an integer >= 1"),
        (row(input_length=True), "input_length", "must be an integer >= 1"),  # bool is no int
        # A request must generate at least one token.
        (row(output_length=0), "output_length", "must be an integer >= 1, got 0"),
        (row(hash_ids="0,1"), "hash_ids", "must be a list"),
        (row(hash_ids=[0, -1]), "hash_ids[1]", "must be an integer >= 0, got -1"),
        (row(hash_ids=[0, "1"]), "hash_ids[1]", "must be an integer >= 0"),
        # 2 ids hold 513..1024 tokens: 512 fits in one block, 1025 needs three.
        (row(input_length=512), "hash_ids", "expected 1 ids"),
        (row(input_length=1025), "hash_ids", "expected 3 ids"),
    ],
)
def test_bad_lines_name_file_line_and_field(
    tmp_path: Path, bad_line: str, field: str | None, problem: str
) -> None:
    path = write(tmp_path, GOOD, "", bad_line)  # line 3: the blank line still counts
    with pytest.raises(TraceError) as caught:
        load_mooncake(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert "conversation_trace.jsonl" in message
    if field is not None:
        assert f":3: {field}: " in message
    assert problem in message


def test_timestamps_going_backwards_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, row(timestamp=20), row(timestamp=20), row(timestamp=10))
    with pytest.raises(TraceError, match=r"jsonl:3: timestamp: goes backwards: 10 after 20"):
        load_mooncake(path)


def test_first_rows_of_the_real_trace() -> None:
    trace = load_mooncake(require(MOONCAKE_CONVERSATION), limit=200)
    assert trace.num_requests == 200
    # The README's first two rows.
    first, second = trace.requests[:2]
    assert (first.num_input_tokens, first.num_output_tokens) == (6758, 500)
    assert first.prefix_block_ids == tuple(range(14))
    assert second.prefix_block_ids[:2] == (0, 14)  # shares block 0 with the first
    assert all(r.prefix_block_tokens == BLOCK_TOKENS for r in trace.requests)
