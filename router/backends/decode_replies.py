"""A Triskel worker's decode replies as the router's events, read a run at a time.

A worker sends a `DecodeResponse` per engine step, so a router that falls behind (a
busy loop, an instant worker) finds many token messages of one stream waiting. They
become one `TokenEvent` (one chunk to the client): a router behind pays per run, not
per token. The run is parsed in one call through `decode_runs.proto`'s view (the
messages concatenated, their texts kept in order by a repeated field): ~0.2 µs a
message against ~1.2 parsing and reading each (docs/benchmarks.md).
"""

from __future__ import annotations

from triskel.router.types import TokenEvent
from triskel.router.worker_client import DecodeEvent, DecodeFinished, KvPulled
from triskel.v1 import decode_runs_pb2, worker_pb2

# A token message starts with its `tokens` field's tag (field 2, length-delimited):
# `DecodeResponse` holds nothing else, and fields are written in number order. Any
# other start (another event, a newer worker's field first) is parsed on its own.
_TOKENS_TAG = b"\x12"
_parse_response = worker_pb2.DecodeResponse.FromString
_parse_run = decode_runs_pb2.DecodeResponseRun.FromString


def decode_events(payloads: list[bytes]) -> list[DecodeEvent]:
    """The events of consecutive `DecodeResponse` payloads of one stream, in order; a
    run of token messages is one TokenEvent, which says when the finish follows it
    (`TokenEvent.finish_follows`: a front then sends both in one write). Kinds this
    router does not know (a newer worker's) are skipped."""
    if len(payloads) == 1:  # a reader keeping up (a token per step): the plain parse
        event = decode_event(_parse_response(payloads[0]))
        return [] if event is None else [event]
    events: list[DecodeEvent] = []
    run: list[bytes] = []
    for payload in payloads:
        if payload[:1] == _TOKENS_TAG:
            run.append(payload)
            continue
        event = decode_event(_parse_response(payload))
        if event is None:
            continue
        if run:
            events.append(_joined(run, isinstance(event, DecodeFinished)))
            run = []
        events.append(event)
    if run:
        events.append(_joined(run, False))
    return events


def decode_event(response: worker_pb2.DecodeResponse) -> DecodeEvent | None:
    """The message's event; None for a kind this router does not know (a newer worker)."""
    kind = response.WhichOneof("event")
    if kind == "tokens":
        tokens = response.tokens
        return TokenEvent(
            tokens.text,
            tuple(tokens.token_ids),
            tokens.num_cached_tokens if tokens.HasField("num_cached_tokens") else None,
        )
    if kind == "kv_received":
        received = response.kv_received
        return KvPulled(received.num_bytes, received.transfer_ms)
    if kind == "done":
        done = response.done
        return DecodeFinished(done.finish_reason, done.num_generated_tokens, done.num_cached_tokens)
    return None


def _joined(run: list[bytes], finish_follows: bool) -> TokenEvent:
    tokens = _parse_run(run[0] if len(run) == 1 else b"".join(run)).tokens
    return TokenEvent(
        "".join(tokens.text),
        tuple(tokens.token_ids),
        tokens.num_cached_tokens if tokens.HasField("num_cached_tokens") else None,
        finish_follows=finish_follows,
    )
