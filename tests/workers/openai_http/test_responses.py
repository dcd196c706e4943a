"""Response bodies as vLLM and OpenAI shape them (the official client parses them end to end
in test_generation; this checks what it does not look at)."""

from __future__ import annotations

import orjson

from triskel.workers.openai_http.responses import (
    SSE_DONE,
    CompletionShape,
    Usage,
    models_json,
    sse_events,
)

USAGE = Usage(num_prompt_tokens=10, num_completion_tokens=3, num_cached_tokens=4)
PARAMS = {"do_remote_prefill": True, "remote_request_id": "r"}


def test_usage_counts_cached_prompt_tokens() -> None:
    assert USAGE.json() == {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_whole_bodies_carry_kv_transfer_params_at_the_top() -> None:
    shape = CompletionShape(is_chat=False, request_id="r1", model="m", created_s=7)
    body = shape.whole("text", "length", USAGE, PARAMS)
    # vllm-router copies exactly this top-level field into the decode request.
    assert body["kv_transfer_params"] == PARAMS
    assert body["id"] == "cmpl-r1" and body["object"] == "text_completion"
    assert body["choices"] == [
        {
            "index": 0,
            "text": "text",
            "logprobs": None,
            "finish_reason": "length",
            "stop_reason": None,
        }
    ]
    chat = CompletionShape(True, "r1", "m", 7).whole("hi", "stop", USAGE, None)
    assert chat["object"] == "chat.completion" and chat["kv_transfer_params"] is None
    assert chat["choices"][0]["message"]["content"] == "hi"  # type: ignore[index]


def test_a_chat_stream_opens_with_the_role_and_closes_with_usage() -> None:
    shape = CompletionShape(True, "r1", "m", 7, include_usage=True)
    (opening,) = shape.opening_chunks()
    assert opening["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    # With include_usage every chunk says "usage": null until the last one.
    assert opening["usage"] is None
    finish, usage = shape.closing_chunks("length", USAGE, PARAMS)
    assert finish["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert finish["kv_transfer_params"] == PARAMS
    assert usage["choices"] == [] and usage["usage"] == USAGE.json()


def test_a_text_stream_has_no_opening_and_no_usage_unless_asked() -> None:
    shape = CompletionShape(False, "r1", "m", 7)
    assert shape.opening_chunks() == []
    assert shape.text_chunk(" word")["choices"][0]["text"] == " word"  # type: ignore[index]
    (finish,) = shape.closing_chunks("stop", USAGE, None)
    assert "usage" not in finish and "kv_transfer_params" not in finish


def test_sse_framing() -> None:
    data = sse_events([{"a": 1}, {"b": 2}]) + SSE_DONE
    events = data.split(b"\n\n")
    assert [orjson.loads(e.removeprefix(b"data: ")) for e in events[:2]] == [{"a": 1}, {"b": 2}]
    assert events[2:] == [b"data: [DONE]", b""]


def test_models_list_the_served_model_with_its_context() -> None:
    cards = models_json("m", 4096, 7)["data"]
    assert isinstance(cards, list) and len(cards) == 1
    assert {k: cards[0][k] for k in ("id", "object", "max_model_len")} == {
        "id": "m",
        "object": "model",
        "max_model_len": 4096,
    }
