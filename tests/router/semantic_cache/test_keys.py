"""Cache keys: what must match exactly, what may match by meaning."""

from __future__ import annotations

import dataclasses

import pytest

from triskel.common.semantic_api import CacheCategory
from triskel.router.semantic_cache.keys import (
    CacheKey,
    EndpointKind,
    cache_key,
    is_replayable,
    normalize_text,
)
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, TextPart

SYSTEM = "You are a helpful assistant."


def chat(*turns: tuple[str, str]) -> GenerationRequest:
    messages = tuple(ChatMessage(role, (TextPart(text),)) for role, text in turns)
    return GenerationRequest(request_id="r1", model="auto", messages=messages)


def key_of(
    request: GenerationRequest,
    tenant: str = "acme",
    model: str = "llama-8b",
    endpoint: EndpointKind = "chat",
    max_query_chars: int = 2000,
) -> CacheKey:
    return cache_key(
        request,
        category="general",
        tenant=tenant,
        model=model,
        endpoint=endpoint,
        max_query_chars=max_query_chars,
    )


BASE = chat(("system", SYSTEM), ("user", "List red fruits."))


def test_a_system_prompt_change_changes_the_context_only() -> None:
    other = chat(("system", "You are a pirate."), ("user", "List red fruits."))
    base, changed = key_of(BASE), key_of(other)
    assert changed.context_hash != base.context_hash
    assert changed.exact_hash != base.exact_hash  # the exact hash covers the context
    assert changed.partition == base.partition
    assert changed.query_text == base.query_text == "List red fruits."


@pytest.mark.parametrize(
    "text",
    [
        "  List red fruits.  ",  # surrounding spaces
        "List  red\n\tfruits.",  # inner runs of any whitespace
        "List red fruits.\n",
    ],
)
def test_whitespace_changes_keep_the_exact_hash(text: str) -> None:
    assert key_of(chat(("system", SYSTEM), ("user", text))).exact_hash == key_of(BASE).exact_hash


def test_unicode_forms_are_one_text() -> None:
    composed, decomposed = "Qu'est-ce qu'un café ?", "Qu'est-ce qu'un cafe\u0301 ?"
    assert composed != decomposed
    assert (
        key_of(chat(("user", composed))).exact_hash == key_of(chat(("user", decomposed))).exact_hash
    )


@pytest.mark.parametrize(
    "text",
    [
        "list red fruits.",  # case is kept: only whitespace and Unicode forms are normalised
        "List red fruits",  # punctuation is kept
        "List red fruits!",
    ],
)
def test_other_changes_change_the_exact_hash(text: str) -> None:
    changed = key_of(chat(("system", SYSTEM), ("user", text)))
    assert changed.exact_hash != key_of(BASE).exact_hash
    assert changed.context_hash == key_of(BASE).context_hash


@pytest.mark.parametrize(
    "changed",
    [
        # Another temperature: the answer is drawn differently.
        dataclasses.replace(BASE, sampling=(("temperature", "0.7"),)),
        # A seed: another draw.
        dataclasses.replace(BASE, sampling=(("seed", "42"),)),
        # A length cap cuts the answer elsewhere.
        dataclasses.replace(BASE, max_tokens=16),
        # Reasoning on: another kind of answer.
        dataclasses.replace(BASE, enable_thinking=True),
        dataclasses.replace(BASE, reasoning_effort="high"),
    ],
)
def test_answer_changing_parameters_change_the_partition(changed: GenerationRequest) -> None:
    assert key_of(changed).partition != key_of(BASE).partition


def test_tenant_model_and_endpoint_change_the_partition() -> None:
    base = key_of(BASE)
    assert key_of(BASE, tenant="globex").partition != base.partition
    assert key_of(BASE, model="qwen-32b").partition != base.partition
    assert key_of(BASE, endpoint="completion").partition != base.partition
    # Different partitions never share an exact hash either.
    assert key_of(BASE, tenant="globex").exact_hash != base.exact_hash


def test_earlier_turns_are_context() -> None:
    first = chat(("user", "Hi"), ("assistant", "Hello!"), ("user", "List red fruits."))
    second = chat(("user", "Hi"), ("assistant", "Hey!"), ("user", "List red fruits."))
    assert key_of(first).context_hash != key_of(second).context_hash
    assert key_of(first).query_text == "List red fruits."


def test_the_last_user_message_is_the_query_even_before_an_assistant_prefill() -> None:
    request = chat(("user", "Name a red fruit."), ("assistant", "Sure:"))
    assert key_of(request).query_text == "Name a red fruit."
    # The prefill is context: without it the context differs.
    assert key_of(request).context_hash != key_of(chat(("user", "Name a red fruit."))).context_hash


def image_request(url: str, *, in_last_message: bool) -> GenerationRequest:
    look = ChatMessage("user", (TextPart("What is in this picture?"), ImagePart(url)))
    messages: tuple[ChatMessage, ...] = (look,)
    if not in_last_message:
        messages += (ChatMessage("assistant", (TextPart("A cat."),)),)
        messages += (ChatMessage("user", (TextPart("What colour is it?"),)),)
    return GenerationRequest(request_id="r1", model="auto", messages=messages)


@pytest.mark.parametrize("in_last_message", [True, False])
def test_image_urls_are_context(in_last_message: bool) -> None:
    # Same words about another picture: no neighbour may answer, wherever the image is.
    cat = key_of(image_request("https://img/cat.png", in_last_message=in_last_message))
    dog = key_of(image_request("https://img/dog.png", in_last_message=in_last_message))
    assert cat.context_hash != dog.context_hash
    assert cat.query_text == dog.query_text


def test_a_completion_prompt_is_the_query() -> None:
    request = GenerationRequest(request_id="r1", model="auto", prompt=" Once upon a time ")
    key = key_of(request, endpoint="completion")
    assert key.query_text == "Once upon a time"
    assert key.is_semantic


def test_token_ids_match_exactly_only() -> None:
    ids = GenerationRequest(request_id="r1", model="auto", prompt_token_ids=(1, 2, 3))
    key = key_of(ids, endpoint="completion")
    assert key.query_text is None and not key.is_semantic
    other = dataclasses.replace(ids, prompt_token_ids=(1, 2, 4))
    assert key_of(other, endpoint="completion").exact_hash != key.exact_hash
    assert key_of(ids, endpoint="completion").exact_hash == key.exact_hash


def test_a_message_without_text_matches_exactly_only() -> None:
    request = GenerationRequest(
        request_id="r1",
        model="auto",
        messages=(ChatMessage("user", (ImagePart("https://img/cat.png"),)),),
    )
    assert not key_of(request).is_semantic


def test_a_long_message_is_bounded_and_its_unseen_middle_must_match() -> None:
    head, tail = "Summarise this report. " + "a" * 300, "b" * 300 + " Thanks."
    first = chat(("user", head + " middle one " + tail))
    second = chat(("user", head + " middle two " + tail))
    first_key, second_key = key_of(first, max_query_chars=200), key_of(second, max_query_chars=200)
    assert first_key.query_text is not None and len(first_key.query_text) == 200
    # The embedding sees the same head and tail...
    assert first_key.query_text == second_key.query_text
    # ...so the middle it cannot see goes in the context, which must match exactly.
    assert first_key.context_hash != second_key.context_hash


PARAGRAPH = "Kellhaven was founded in 1782 by salt traders who needed a harbour. " * 4


def test_a_pasted_document_must_match_exactly_and_only_the_instruction_is_embedded() -> None:
    first = key_of(chat(("user", f"Who founded Kellhaven?\n\n{PARAGRAPH}")))
    reworded = key_of(chat(("user", f"{PARAGRAPH}\nWho were Kellhaven's founders?")))
    other_document = key_of(chat(("user", f"Who founded Kellhaven?\n\n{PARAGRAPH} Or not.")))
    assert first.query_text == "Who founded Kellhaven?"
    assert reworded.query_text == "Who were Kellhaven's founders?"
    assert first.context_hash == reworded.context_hash
    assert first.context_hash != other_document.context_hash
    assert len({first.exact_hash, reworded.exact_hash, other_document.exact_hash}) == 3


def test_normalize_text() -> None:
    assert normalize_text("  a \n\n b\tc  ") == "a b c"


@pytest.mark.parametrize(
    ("temperature", "replay_sampled", "expected"),
    [
        (0.0, False, True),  # greedy: the model would say the same again
        (None, False, False),  # not sent: OpenAI's default is 1.0, a sampled answer
        (0.7, False, False),  # sampled
        (None, True, True),  # the category accepts replaying sampled answers
        (1.2, True, True),
    ],
)
def test_is_replayable(temperature: float | None, replay_sampled: bool, expected: bool) -> None:
    request = dataclasses.replace(BASE, temperature=temperature)
    category = CacheCategory(name="general", replay_sampled=replay_sampled)
    assert is_replayable(request, category) is expected
