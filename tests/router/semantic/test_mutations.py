"""A decision's changes to a request: model, system prompt, reasoning switch, token cap."""

from __future__ import annotations

import pytest

from triskel.common.semantic_api import (
    Reasoning,
    ReasoningEffort,
    SystemPrompt,
    SystemPromptMode,
)
from triskel.router.semantic.mutations import apply_action
from triskel.router.semantic.policy import RouteAction
from triskel.router.types import ChatMessage, GenerationRequest, TextPart


def chat(*turns: tuple[str, str], max_tokens: int | None = None) -> GenerationRequest:
    messages = tuple(ChatMessage(role, (TextPart(text),)) for role, text in turns)
    return GenerationRequest("r", "auto", messages=messages, max_tokens=max_tokens)


def texts(request: GenerationRequest) -> list[tuple[str, str]]:
    assert request.messages is not None
    return [
        (m.role, " ".join(p.text for p in m.parts if isinstance(p, TextPart)))
        for m in request.messages
    ]


def test_the_model_is_set_and_nothing_else_changes_without_mutations() -> None:
    request = chat(("user", "hi"), max_tokens=50)
    routed = apply_action(request, RouteAction("chat"), "small")
    assert routed.model == "small" and routed.messages == request.messages
    assert routed.max_tokens == 50 and routed.enable_thinking is None


def test_prepend_keeps_the_clients_system_prompt_after_ours() -> None:
    request = chat(("system", "be brief"), ("user", "hi"))
    action = RouteAction("chat", system_prompt=SystemPrompt(text="you are a tutor"))
    assert texts(apply_action(request, action, "m")) == [
        ("system", "you are a tutor"),
        ("system", "be brief"),
        ("user", "hi"),
    ]


def test_replace_drops_the_clients_system_and_developer_prompts() -> None:
    request = chat(("system", "be brief"), ("developer", "x"), ("user", "hi"))
    prompt = SystemPrompt(text="you are a tutor", mode=SystemPromptMode.REPLACE)
    routed = apply_action(request, RouteAction("chat", system_prompt=prompt), "m")
    assert texts(routed) == [("system", "you are a tutor"), ("user", "hi")]


def test_a_completion_prompt_gets_the_text_in_front() -> None:
    request = GenerationRequest("r", "auto", prompt="2+2=")
    action = RouteAction("math", system_prompt=SystemPrompt(text="Answer with a number."))
    assert apply_action(request, action, "m").prompt == "Answer with a number.\n\n2+2="


def test_reasoning_sets_the_switch_and_the_effort() -> None:
    action = RouteAction("math", reasoning=Reasoning(enabled=True, effort=ReasoningEffort.HIGH))
    routed = apply_action(chat(("user", "integrate x")), action, "m")
    assert (routed.enable_thinking, routed.reasoning_effort) == (True, "high")


@pytest.mark.parametrize(
    ("client", "cap", "expected"),
    [
        (None, 100, 100),  # no client value: the cap applies
        (500, 100, 100),  # more than the cap: cut to it
        (50, 100, 50),  # a smaller client value stays
    ],
)
def test_max_tokens_is_capped(client: int | None, cap: int, expected: int) -> None:
    routed = apply_action(
        chat(("user", "x"), max_tokens=client), RouteAction("c", max_tokens=cap), "m"
    )
    assert routed.max_tokens == expected
