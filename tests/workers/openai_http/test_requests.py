"""Request bodies → typed requests: what routers and clients send, and 400s naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.workers.openai_http.errors import ApiError
from triskel.workers.openai_http.requests import (
    BootstrapParams,
    PromptInput,
    parse_generate_request,
    parse_prompt_input,
    parse_token_ids,
    parse_tokenize_request,
)

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "m", "prompt": "hello"}


def test_fields_routers_add_are_ignored() -> None:
    # What smg adds to a chat request and vllm-router to a P/D prefill: none changes
    # what the mock generates, so none may be refused.
    body = {
        **CHAT,
        "no_stop_trim": True,
        "ignore_eos": False,
        "continue_final_message": False,
        "skip_special_tokens": True,
        "separate_reasoning": True,
        "stream_reasoning": True,
        "return_hidden_states": False,
        "logprobs": False,
        "min_tokens": 1,
        "temperature": 0.7,
        "something_new": {"nested": [1]},
    }
    request = parse_generate_request(body, is_chat=True)
    assert request.prompt == PromptInput(messages=(("user", ("hi",)),))
    assert request.max_tokens is None and not request.stream and request.bootstrap is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),  # the endpoint's default applies later
        ({"max_tokens": 7}, 7),
        ({"max_completion_tokens": 5}, 5),
        # vLLM: OpenAI's newer name wins when both are sent.
        ({"max_tokens": 7, "max_completion_tokens": 5}, 5),
    ],
)
def test_max_completion_tokens_is_max_tokens(fields: dict[str, Any], expected: int | None) -> None:
    assert parse_generate_request({**CHAT, **fields}, is_chat=True).max_tokens == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("hello", PromptInput(text="hello")),
        ([5, 6, 7], PromptInput(token_ids=(5, 6, 7))),
        # A batch of one, as some clients always send.
        (["hello"], PromptInput(text="hello")),
        ([[5, 6]], PromptInput(token_ids=(5, 6))),
    ],
)
def test_a_prompt_is_text_or_token_ids(prompt: object, expected: PromptInput) -> None:
    assert parse_generate_request({"prompt": prompt}, is_chat=False).prompt == expected


def test_stream_options_and_kv_transfer_params() -> None:
    body = {
        **COMPLETION,
        "stream": True,
        "stream_options": {"include_usage": True},
        "kv_transfer_params": {"do_remote_decode": True},
    }
    request = parse_generate_request(body, is_chat=False)
    assert request.stream and request.include_usage
    assert request.kv_transfer_params == {"do_remote_decode": True}


def test_sglang_bootstrap_fields() -> None:
    body = {**CHAT, "bootstrap_host": "10.0.0.1", "bootstrap_port": 8998, "bootstrap_room": 2**63}
    bootstrap = parse_generate_request(body, is_chat=True).bootstrap
    assert bootstrap == BootstrapParams("10.0.0.1", 8998, 2**63)
    assert bootstrap.address == "10.0.0.1:8998"
    # Without a room the request is not disaggregated, whatever else is set.
    body = {**CHAT, "bootstrap_host": "10.0.0.1", "bootstrap_port": None, "bootstrap_room": None}
    assert parse_generate_request(body, is_chat=True).bootstrap is None


@pytest.mark.parametrize(
    ("is_chat", "fields", "param"),
    [
        (False, {"max_tokens": -1}, "max_tokens"),
        (False, {"max_tokens": 0}, "max_tokens"),
        (False, {"max_tokens": True}, "max_tokens"),  # JSON true is not a count
        (True, {"max_completion_tokens": "5"}, "max_completion_tokens"),
        (False, {"prompt": 5}, "prompt"),
        (False, {"prompt": ""}, "prompt"),
        (False, {"prompt": None}, "prompt"),
        (False, {"prompt": [1, -2]}, "prompt[1]"),
        (False, {"prompt": ["a", "b"]}, "prompt"),
        (True, {"messages": None}, "messages"),
        (True, {"messages": []}, "messages"),
        (True, {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (True, {"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        (
            True,
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
        (False, {"stream": "yes"}, "stream"),
        (False, {"stream_options": {"include_usage": True}}, "stream_options"),
        (
            False,
            {"stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
        (False, {"n": 2}, "n"),
        (False, {"echo": True}, "echo"),
        (True, {"logprobs": True}, "logprobs"),
        (False, {"model": ""}, "model"),
        (False, {"kv_transfer_params": [1]}, "kv_transfer_params"),
        (False, {"ignore_eos": "no"}, "ignore_eos"),
        (
            False,
            {"bootstrap_room": 7, "bootstrap_host": "h", "bootstrap_port": None},
            "bootstrap_port",
        ),
        (False, {"bootstrap_room": 7, "bootstrap_port": 1}, "bootstrap_host"),
        (
            False,
            {"bootstrap_room": -1, "bootstrap_host": "h", "bootstrap_port": 1},
            "bootstrap_room",
        ),
    ],
)
def test_bad_fields_are_400s_naming_the_field(
    is_chat: bool, fields: dict[str, Any], param: str
) -> None:
    body = {**(CHAT if is_chat else COMPLETION), **fields}
    with pytest.raises(ApiError) as raised:
        parse_generate_request(body, is_chat)
    assert raised.value.status == 400
    assert raised.value.param == param
    assert raised.value.message.startswith(f"{param}: ")


def test_a_body_that_is_not_an_object_is_named() -> None:
    with pytest.raises(ApiError, match="body: must be a JSON object, got an array"):
        parse_generate_request([1], is_chat=False)


def test_render_and_tokenize_bodies() -> None:
    assert parse_prompt_input(CHAT) == PromptInput(messages=(("user", ("hi",)),))
    assert parse_prompt_input(COMPLETION) == PromptInput(text="hello")
    # The chat render endpoint insists on messages even when a prompt is there.
    with pytest.raises(ApiError, match="messages: must be a non-empty array"):
        parse_prompt_input(COMPLETION, is_chat=True)
    assert parse_tokenize_request({**CHAT, "add_generation_prompt": False})[1] is False
    assert parse_tokenize_request(CHAT)[1] is True
    assert parse_token_ids({"tokens": [1, 2]}, "tokens") == (1, 2)
    with pytest.raises(ApiError, match=r"tokens\[0\]: a token id must be an integer >= 0"):
        parse_token_ids({"tokens": ["a"]}, "tokens")
