"""A worker's decode replies read a run at a time: the same events as reading each
message and joining consecutive tokens, however the replies are batched."""

from __future__ import annotations

import random

import pytest

from triskel.router.backends.decode_replies import decode_event, decode_events
from triskel.router.types import TokenEvent
from triskel.router.worker_client import DecodeEvent, DecodeFinished
from triskel.v1 import decode_runs_pb2, worker_pb2


def tokens(ids: list[int], text: str, cached: int | None = None) -> bytes:
    message = worker_pb2.DecodeTokens(token_ids=ids, text=text)
    if cached is not None:
        message.num_cached_tokens = cached
    return worker_pb2.DecodeResponse(tokens=message).SerializeToString()


def done(reason: str, generated: int, cached: int) -> bytes:
    finished = worker_pb2.DecodeDone(
        finish_reason=reason, num_generated_tokens=generated, num_cached_tokens=cached
    )
    return worker_pb2.DecodeResponse(done=finished).SerializeToString()


def kv_received(num_bytes: int) -> bytes:
    received = worker_pb2.KvReceived(num_bytes=num_bytes, transfer_ms=1.5)
    return worker_pb2.DecodeResponse(kv_received=received).SerializeToString()


def one_by_one(payloads: list[bytes]) -> list[DecodeEvent]:
    """The reference: each message parsed alone, consecutive tokens joined (the first
    cached count kept), a run followed by the finish marked so."""
    events: list[DecodeEvent] = []
    for payload in payloads:
        event = decode_event(worker_pb2.DecodeResponse.FromString(payload))
        if event is None:
            continue
        last = events[-1] if events else None
        if isinstance(event, TokenEvent) and isinstance(last, TokenEvent):
            cached = last.cached_prompt_tokens
            if cached is None:
                cached = event.cached_prompt_tokens
            events[-1] = TokenEvent(
                last.text + event.text, last.token_ids + event.token_ids, cached
            )
            continue
        if isinstance(event, DecodeFinished) and isinstance(last, TokenEvent):
            events[-1] = TokenEvent(
                last.text, last.token_ids, last.cached_prompt_tokens, finish_follows=True
            )
        events.append(event)
    return events


def random_stream(rng: random.Random) -> list[bytes]:
    """A well-formed decode: maybe a KV pull, token messages (texts empty or not, odd
    characters, several ids, the cached count on the first), then `done`."""
    stream = [kv_received(rng.randrange(1, 10**9))] if rng.random() < 0.3 else []
    num_generated = 0
    for index in range(rng.randrange(0, 40)):
        ids = [rng.randrange(2**32) for _ in range(rng.choice([0, 1, 1, 1, 3]))]
        text = rng.choice(["", " the", "é", "\x00", "日本", " ,\n", "a" * 200])
        cached = rng.randrange(0, 5000) if index == 0 else None
        stream.append(tokens(ids, text, cached))
        num_generated += len(ids)
    stream.append(done(rng.choice(["stop", "length"]), num_generated, rng.randrange(5000)))
    return stream


@pytest.mark.parametrize("seed", range(200))
def test_any_batching_reads_as_the_messages_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    stream = random_stream(rng)
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randrange(len(stream))))
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        batch = stream[start:end]
        assert decode_events(batch) == one_by_one(batch)


def test_a_run_of_tokens_is_one_event_with_every_text_in_order() -> None:
    run = [tokens([1], " a", cached=7), tokens([2, 3], ""), tokens([4], " b")]
    assert decode_events([*run, done("length", 4, 7)]) == [
        TokenEvent(" a b", (1, 2, 3, 4), 7, finish_follows=True),
        DecodeFinished("length", 4, 7),
    ]
    assert decode_events(run) == [TokenEvent(" a b", (1, 2, 3, 4), 7)]


def test_a_kind_this_router_does_not_know_is_skipped_and_tokens_around_it_join() -> None:
    unknown = b"\x22\x00"  # field 4, empty: an event a newer worker may send
    assert decode_events([tokens([1], "x"), unknown, tokens([2], "y")]) == [
        TokenEvent("xy", (1, 2), None)
    ]


def test_a_token_message_not_starting_with_its_tokens_field_is_read_alone() -> None:
    # A newer worker's field 5 written before the tokens field (parsers take fields in
    # any order): still a token message, read on its own.
    reordered = b"\x28\x01" + tokens([5], "z")  # field 5 varint, then the tokens field
    assert decode_events([tokens([4], "w"), reordered]) == [
        TokenEvent("w", (4,), None),
        TokenEvent("z", (5,), None),
    ]


def test_the_run_view_keeps_the_wire_layout_of_the_token_messages() -> None:
    """decode_runs.proto mirrors worker.proto's DecodeResponse.tokens and DecodeTokens
    field for field (numbers and types; only `text` is repeated there)."""
    view = decode_runs_pb2.DecodeResponseRun.DESCRIPTOR.fields_by_name["tokens"]
    real = worker_pb2.DecodeResponse.DESCRIPTOR.fields_by_name["tokens"]
    assert (view.number, view.type) == (real.number, real.type)
    view_fields = decode_runs_pb2.DecodeTokensRun.DESCRIPTOR.fields_by_name
    real_fields = worker_pb2.DecodeTokens.DESCRIPTOR.fields_by_name
    assert set(view_fields) == set(real_fields)
    for name, field in real_fields.items():
        assert (view_fields[name].number, view_fields[name].type) == (field.number, field.type)
    assert view_fields["text"].is_repeated and not real_fields["text"].is_repeated
