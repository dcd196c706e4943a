"""A decision's changes to a request: target model, system prompt, reasoning, token cap.

Pure: returns a new `GenerationRequest`, the client's own left untouched.
"""

from __future__ import annotations

import dataclasses

from triskel.common.semantic_api import SystemPrompt, SystemPromptMode
from triskel.router.semantic.policy import RouteAction
from triskel.router.types import ChatMessage, GenerationRequest, TextPart

_SYSTEM_ROLES = ("system", "developer")


def apply_action(request: GenerationRequest, action: RouteAction, model: str) -> GenerationRequest:
    messages, prompt = request.messages, request.prompt
    if action.system_prompt is not None and messages is not None:
        messages = with_system_prompt(messages, action.system_prompt)
    if action.system_prompt is not None and prompt is not None:
        # A plain completion has no roles: the text goes in front of the prompt.
        prompt = f"{action.system_prompt.text}\n\n{prompt}"
    thinking, effort = request.enable_thinking, request.reasoning_effort
    if action.reasoning is not None:
        thinking = action.reasoning.enabled
        if action.reasoning.effort is not None:
            effort = action.reasoning.effort.value
    max_tokens = request.max_tokens
    if action.max_tokens is not None and (max_tokens is None or max_tokens > action.max_tokens):
        max_tokens = action.max_tokens
    return dataclasses.replace(
        request,
        model=model,
        messages=messages,
        prompt=prompt,
        enable_thinking=thinking,
        reasoning_effort=effort,
        max_tokens=max_tokens,
    )


def with_system_prompt(
    messages: tuple[ChatMessage, ...], prompt: SystemPrompt
) -> tuple[ChatMessage, ...]:
    """prepend: a system message before everything (the client's own system prompt
    follows); replace: the client's system / developer messages give way to it."""
    ours = ChatMessage("system", (TextPart(prompt.text),))
    if prompt.mode is SystemPromptMode.REPLACE:
        return (ours, *(m for m in messages if m.role not in _SYSTEM_ROLES))
    return (ours, *messages)
