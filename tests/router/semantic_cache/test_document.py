"""A pasted document is told apart from the instruction about it."""

from __future__ import annotations

from triskel.router.semantic_cache.document import (
    MIN_DOCUMENT_LINE_CHARS,
    SplitPrompt,
    split_document,
)

PARAGRAPH = "The support team moves to the fourth floor on Monday. " * 6
assert len(PARAGRAPH) >= MIN_DOCUMENT_LINE_CHARS


def test_an_instruction_before_a_document() -> None:
    text = f"Summarize this memo.\n\n{PARAGRAPH}\n{PARAGRAPH}"
    assert split_document(text) == SplitPrompt("Summarize this memo.", f"{PARAGRAPH}\n{PARAGRAPH}")


def test_an_instruction_after_a_document_and_short_lines_inside_it() -> None:
    text = f"{PARAGRAPH}\nHeading\n{PARAGRAPH}\n\nWho moves?"
    assert split_document(text) == SplitPrompt("Who moves?", f"{PARAGRAPH}\nHeading\n{PARAGRAPH}")


def test_instructions_on_both_sides_are_one_instruction() -> None:
    text = f"Read this:\n{PARAGRAPH}\nThen list the floors."
    assert split_document(text).instruction == "Read this:\nThen list the floors."


def test_a_fenced_code_block_is_a_document() -> None:
    text = "Why does this fail?\n```python\nx = [1, 2]\nprint(x[2])\n```"
    split = split_document(text)
    assert split.instruction == "Why does this fail?"
    assert split.document == "```python\nx = [1, 2]\nprint(x[2])\n```"


def test_a_prompt_without_a_document_or_without_an_instruction_is_compared_whole() -> None:
    for text in ("How do I sort a list?", PARAGRAPH, f"{PARAGRAPH}\n\n{PARAGRAPH}", "a\nb"):
        assert split_document(text) == SplitPrompt(text, None)
