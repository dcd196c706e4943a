"""Reading a streamed /v1/completions answer: token times, the usage chunk, errors."""

from __future__ import annotations

import orjson
import pytest

from triskel.simulator.bench.http_target import CompletionStream
from triskel.simulator.bench.outcome import Outcome, RequestFailed


def chunk(text: str, finish_reason: str | None = None) -> str:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return orjson.dumps({"object": "text_completion", "choices": [choice], "usage": None}).decode()


USAGE = orjson.dumps(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 40,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 32},
        },
    }
).decode()


def read(events: list[tuple[str, float]]) -> Outcome:
    stream = CompletionStream()
    for data, now_s in events:
        stream.on_event(data, now_s)
    return stream.outcome()


def test_a_stream_as_the_router_sends_it() -> None:
    outcome = read(
        [
            (chunk(" the"), 1.0),
            (chunk(" cache"), 1.5),
            (chunk(" router"), 2.0),
            (chunk("", "length"), 2.0),  # the finish chunk carries no token
            (USAGE, 2.0),
            ("[DONE]", 2.0),
        ]
    )
    assert outcome == Outcome(1.0, 2.0, num_output_tokens=3, num_cached_tokens=32)


def test_without_usage_the_text_chunks_are_counted_and_nothing_is_cached() -> None:
    outcome = read([(chunk(" a"), 1.0), (chunk(" b"), 1.25), ("[DONE]", 1.25)])
    assert outcome == Outcome(1.0, 1.25, num_output_tokens=2, num_cached_tokens=0)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        # The router ends a broken stream with an error event, then [DONE].
        (
            [(chunk(" a"), 1.0), ('{"error": {"message": "decode worker d0 failed"}}', 1.1)],
            "error event: decode worker d0 failed",
        ),
        ([("not json", 1.0)], "not JSON"),
        ([("[1, 2]", 1.0)], "not a JSON object"),
    ],
)
def test_bad_events_fail_the_request(events: list[tuple[str, float]], message: str) -> None:
    with pytest.raises(RequestFailed, match=message):
        read(events)


def test_a_stream_cut_before_done_fails_the_request() -> None:
    with pytest.raises(RequestFailed, match=r"before \[DONE\]"):
        read([(chunk(" a"), 1.0)])
