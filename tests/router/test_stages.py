from __future__ import annotations

import pytest

from triskel.common.api import Role
from triskel.common.tokenizer import MockTokenizer, render_chat
from triskel.router.registry import WorkerRegistry
from triskel.router.stages.base import RequestContext
from triskel.router.stages.prepare import PrepareStage
from triskel.router.stages.tokenize import TokenizeStage
from triskel.router.types import ChatMessage, GenerationRequest, ImagePart, RequestError, TextPart

from support.fake_workers import fake_worker as worker

REGISTRY = WorkerRegistry([worker("u0", Role.UNIFIED, ctx=100)])


async def prepared(request: GenerationRequest) -> RequestContext:
    ctx = RequestContext(request)
    await PrepareStage(REGISTRY, MockTokenizer()).run(ctx)
    return ctx


@pytest.mark.asyncio
async def test_chat_text_matches_the_chat_template_and_keeps_images_in_place() -> None:
    image = ImagePart("https://x.test/a.png")
    messages = (
        ChatMessage("system", (TextPart("Be brief."),)),
        ChatMessage("user", (TextPart("Look: "), image, TextPart(" ok?"))),
    )
    ctx = await prepared(GenerationRequest("r", "m", messages=messages, max_tokens=4))
    text = "".join(s for s in ctx.segments if isinstance(s, str))
    # Without the image the segments are exactly the rendered template.
    assert text == render_chat([("system", "Be brief."), ("user", "Look:  ok?")])
    assert ctx.segments.count(image) == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (GenerationRequest("r", "nope", prompt="hi"), "model"),
        (GenerationRequest("r", "m", prompt=""), "prompt"),
        (GenerationRequest("r", "m", prompt="hi", max_tokens=0), "max_tokens"),
        (GenerationRequest("r", "m", messages=()), "messages"),
        (GenerationRequest("r", "m", messages=(ChatMessage("user", ()),)), "messages[0].content"),
        # Too long to fit the window of 100 tokens, found by the length alone (the
        # chat template's own characters count too).
        (GenerationRequest("r", "m", prompt="x" * 793), "prompt"),
        (
            GenerationRequest("r", "m", messages=(ChatMessage("user", (TextPart("x" * 769),)),)),
            "messages",
        ),
    ],
)
@pytest.mark.asyncio
async def test_prepare_refuses_bad_requests_naming_the_field(
    request_: GenerationRequest, field: str
) -> None:
    with pytest.raises(RequestError) as caught:
        await prepared(request_)
    assert caught.value.field_name == field


@pytest.mark.asyncio
async def test_prepare_refuses_text_too_long_to_fit_by_its_length() -> None:
    # Context window 100: 99 prompt tokens of at most 8 characters cannot hold 793.
    with pytest.raises(RequestError) as caught:
        await prepared(GenerationRequest("r", "m", prompt="x" * 793))
    assert "is 793 characters" in caught.value.message
    assert "no text over 792 characters" in caught.value.message


@pytest.mark.asyncio
async def test_token_ids_beyond_the_context_window_are_refused_by_their_count() -> None:
    ctx = await prepared(GenerationRequest("r", "m", prompt_token_ids=(1,) * 100))
    with pytest.raises(RequestError, match="is 100 tokens"):
        await TokenizeStage(MockTokenizer()).run(ctx)


@pytest.mark.asyncio
async def test_tokenize_fills_the_context_window_when_max_tokens_is_absent() -> None:
    ctx = await prepared(GenerationRequest("r", "m", prompt="one two three"))
    await TokenizeStage(MockTokenizer()).run(ctx)
    assert ctx.prompt_token_ids == MockTokenizer().encode("one two three")
    # Context window 100: whatever the prompt leaves is the budget.
    assert ctx.max_tokens == 100 - len(ctx.prompt_token_ids)


@pytest.mark.asyncio
async def test_token_ids_skip_the_tokenizer() -> None:
    ctx = await prepared(GenerationRequest("r", "m", prompt_token_ids=(7, 0, 31999)))
    await TokenizeStage(MockTokenizer()).run(ctx)
    assert ctx.prompt_token_ids == [7, 0, 31999]


@pytest.mark.asyncio
async def test_token_ids_outside_the_vocabulary_are_refused_by_position() -> None:
    vocab_size = MockTokenizer().vocab_size
    request = GenerationRequest("r", "m", prompt_token_ids=(1, vocab_size - 1, vocab_size))
    ctx = await prepared(request)
    with pytest.raises(RequestError) as caught:
        await TokenizeStage(MockTokenizer()).run(ctx)
    # Ids run from 0 to vocab_size - 1, so only the last one is out.
    assert caught.value.field_name == "prompt[2]"


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "field", "fragment"),
    [
        ("word " * 100, None, "prompt", "context window 100"),
        ("one two three", 98, "max_tokens", "at most 97 allowed"),
    ],
)
@pytest.mark.asyncio
async def test_tokenize_enforces_the_context_window(
    prompt: str, max_tokens: int | None, field: str, fragment: str
) -> None:
    ctx = await prepared(GenerationRequest("r", "m", prompt=prompt, max_tokens=max_tokens))
    with pytest.raises(RequestError) as caught:
        await TokenizeStage(MockTokenizer()).run(ctx)
    assert caught.value.field_name == field
    assert fragment in caught.value.message
