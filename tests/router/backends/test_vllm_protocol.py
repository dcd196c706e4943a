"""vLLM's completion bodies and answers, as the router speaks them."""

from __future__ import annotations

import pytest

from triskel.router.backends.vllm_protocol import (
    DecodeStreamState,
    decode_body,
    error_of,
    prefill_body,
    prefill_reply,
)
from triskel.router.types import TokenEvent
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    KvTicket,
    PrefillCall,
    WorkerCallError,
)

PREFILL = PrefillCall("r1", (1, 2, 3), max_tokens=8, kv_hold_ms=1000)
PARAMS = {"do_remote_prefill": True, "remote_engine_id": "p0", "remote_block_ids": [4]}


def answer(params: object, finish_reason: str = "length") -> dict[str, object]:
    return {
        "choices": [{"text": "Hi", "token_ids": [7], "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}},
        "kv_transfer_params": params,
    }


def test_prefill_asks_for_one_token_and_a_kv_export_like_vllms_proxy() -> None:
    body = prefill_body(PREFILL, "m")
    assert (body["prompt"], body["max_tokens"], body["stream"]) == ([1, 2, 3], 1, False)
    assert body["kv_transfer_params"]["do_remote_decode"] is True


def test_a_prefill_that_kept_kv_is_not_finished_and_its_params_go_to_decode() -> None:
    reply = prefill_reply(answer(PARAMS), PREFILL, "nixl")
    # "length" only means the 1-token prefill budget ran out, not the client's.
    assert reply.finish_reason is None
    assert reply.first_token == TokenEvent("Hi", (7,))
    assert reply.num_cached_tokens == 2
    assert reply.decode_repeats_first_token
    assert reply.kv is not None
    decode = decode_body(DecodeCall("r1", (1, 2, 3), 8, False, kv=reply.kv), "m")
    assert decode["kv_transfer_params"] == PARAMS
    assert decode["stream"] is True


@pytest.mark.parametrize(
    ("params", "max_tokens", "reason"),
    [
        (None, 8, "stop"),  # no KV kept: the first token was EOS
        (PARAMS, 1, "length"),  # the client wanted one token: the prefill is the answer
    ],
)
def test_a_prefill_that_is_the_whole_answer_finishes(
    params: object, max_tokens: int, reason: str
) -> None:
    call = PrefillCall("r1", (1, 2, 3), max_tokens, 1000)
    reply = prefill_reply(answer(params, reason), call, "nixl")
    assert (reply.finish_reason, reply.kv) == (reason, None)


def test_a_ticket_from_another_protocol_is_refused() -> None:
    ticket = KvTicket("triskel", "tcp", object())
    with pytest.raises(WorkerCallError, match="cannot be decoded by a vLLM-API worker"):
        decode_body(DecodeCall("r1", (1,), 4, False, kv=ticket), "m")


def test_the_stream_yields_tokens_then_finishes_with_the_usage_counts() -> None:
    state = DecodeStreamState()
    chunks = [
        {"choices": [{"text": "a", "token_ids": [1], "finish_reason": None}]},
        {"choices": [{"text": "b", "token_ids": [2], "finish_reason": "length"}]},
        {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens_details": None}},
    ]
    events = [state.on_data("{}", chunk) for chunk in chunks]
    assert events == [TokenEvent("a", (1,)), TokenEvent("b", (2,)), None]
    assert state.on_data("[DONE]", None) is None and state.is_done
    finished = state.finished()
    assert (finished.finish_reason, finished.num_generated_tokens) == ("length", 2)


def test_without_token_ids_each_chunk_counts_as_one_token() -> None:
    state = DecodeStreamState()
    state.on_data("{}", {"choices": [{"text": "abc", "finish_reason": "stop"}]})
    assert state.finished().num_generated_tokens == 1


def test_a_stream_that_stops_without_a_finish_reason_is_an_error() -> None:
    state = DecodeStreamState()
    state.on_data("{}", {"choices": [{"text": "a", "finish_reason": None}]})
    with pytest.raises(WorkerCallError, match="without finishing"):
        state.finished()


def test_an_error_event_in_the_stream_fails_the_call() -> None:
    with pytest.raises(WorkerCallError, match="engine died"):
        DecodeStreamState().on_data("{}", {"error": {"message": "engine died"}})


@pytest.mark.parametrize(
    ("status", "failure", "field_name"),
    [
        (400, CallFailure.INVALID_ARGUMENT, "max_tokens"),
        # Stale KV params: another worker (or a local prefill) can still serve it.
        (410, CallFailure.UNAVAILABLE, ""),
        (429, CallFailure.UNAVAILABLE, ""),
        (502, CallFailure.UNAVAILABLE, ""),
        (504, CallFailure.TIMEOUT, ""),
    ],
)
def test_http_errors_map_to_the_routers_failure_kinds(
    status: int, failure: CallFailure, field_name: str
) -> None:
    payload = {"error": {"message": "bad", "param": "max_tokens"}}
    error = error_of(status, payload, "http://w/v1/completions")
    assert error.failure is failure
    if field_name:
        assert error.field_name == field_name
