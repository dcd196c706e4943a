"""A prompt's pasted document, told apart from the instruction about it. Pure.

"Summarize this memo in one sentence.\\n\\n<memo>" and "Who is responsible for the
move, according to the memo?\\n\\n<memo>" share nine tenths of their words: compared
whole, by embedding or by word, they look alike whatever is asked. The cache
therefore compares the two halves apart: the document must be the same text (it joins
the exact part of the key), and only the instruction is compared by meaning and by the
lexical guards, where a changed name, negation or "first" / "last" stands out.

A document is a run of lines from the first long line (a paragraph of prose, at least
`MIN_DOCUMENT_LINE_CHARS`) or fenced code block to the last one; the instruction is
what stands before and after it. A prompt on one line, or without an instruction
beside its document, is all instruction: it is compared whole, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

# A line this long is a pasted paragraph rather than a request; requests rarely run
# past two sentences on one line.
MIN_DOCUMENT_LINE_CHARS = 200
_FENCE = "```"


@dataclass(frozen=True, slots=True)
class SplitPrompt:
    instruction: str
    document: str | None  # None: no document beside the instruction


def split_document(text: str) -> SplitPrompt:
    lines = text.split("\n")
    marks = _document_lines(lines)
    if not any(marks):
        return SplitPrompt(text, None)
    first = marks.index(True)
    last = len(marks) - 1 - marks[::-1].index(True)
    instruction = "\n".join(lines[:first] + lines[last + 1 :]).strip()
    if not instruction:
        return SplitPrompt(text, None)
    return SplitPrompt(instruction, "\n".join(lines[first : last + 1]))


def _document_lines(lines: list[str]) -> list[bool]:
    marks: list[bool] = []
    in_fence = False
    for line in lines:
        is_fence = line.lstrip().startswith(_FENCE)
        marks.append(in_fence or is_fence or len(line.strip()) >= MIN_DOCUMENT_LINE_CHARS)
        if is_fence:
            in_fence = not in_fence
    return marks
