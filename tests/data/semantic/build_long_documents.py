#!/usr/bin/env python3
"""Regenerate the ``long_document`` lines of ``routing_prompts.jsonl``.

The code, math, creative and chat lines of ``routing_prompts.jsonl`` are written
by hand and are kept exactly as they are. The long_document lines are built
here: each line of ``long_document_instructions.jsonl`` pairs one document from
``documents/*.txt`` with an instruction placed before the document, after it, or
both (a lead-in before and the actual question after). The fence around the
document rotates through ``WRAPPERS`` by line index, so output is deterministic.

Instruction lines look like one of::

    {"document": "<stem>", "position": "before" | "after", "instruction": "...", "tags": [...]}
    {"document": "<stem>", "position": "both", "lead": "...", "question": "...", "tags": [...]}

Every generated line also gets the tag "long".

Running the script drops every existing long_document line and appends the
generated ones with ids r1001, r1002, ... in instruction-file order, so ids stay
stable as long as instructions are only appended.

    python tests/data/semantic/build_long_documents.py          # rewrite the file
    python tests/data/semantic/build_long_documents.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
DOCS_DIR = HERE / "documents"
INSTRUCTIONS = HERE / "long_document_instructions.jsonl"
OUT = HERE / "routing_prompts.jsonl"
CATEGORY = "long_document"
FIRST_ID = 1001
MIN_WORDS, MAX_WORDS = 400, 3000
ALLOWED_TAGS = {"typo", "cross", "non_english"}

WRAPPERS = [
    "{doc}",
    '"""\n{doc}\n"""',
    "---\n{doc}\n---",
    "<document>\n{doc}\n</document>",
    "```\n{doc}\n```",
]


def load_documents() -> dict[str, str]:
    docs = {}
    for path in sorted(DOCS_DIR.glob("*.txt")):
        text = path.read_text(encoding="utf-8").strip()
        words = len(text.split())
        if not MIN_WORDS <= words <= MAX_WORDS:
            raise SystemExit(f"{path.name}: {words} words, expected {MIN_WORDS}..{MAX_WORDS}")
        docs[path.stem] = text
    return docs


def load_instructions() -> list[dict[str, Any]]:
    entries = []
    for n, line in enumerate(INSTRUCTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        position = entry.get("position")
        if position in ("before", "after"):
            expected = {"document", "position", "instruction", "tags"}
        elif position == "both":
            expected = {"document", "position", "lead", "question", "tags"}
        else:
            raise SystemExit(f"{INSTRUCTIONS.name}:{n}: unknown position {position!r}")
        if set(entry) != expected:
            raise SystemExit(
                f"{INSTRUCTIONS.name}:{n}: keys {sorted(entry)}, expected {sorted(expected)}"
            )
        if set(entry["tags"]) - ALLOWED_TAGS:
            raise SystemExit(f"{INSTRUCTIONS.name}:{n}: unexpected tags {entry['tags']}")
        entries.append(entry)
    return entries


def build_lines(docs: dict[str, str], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    used = {e["document"] for e in entries}
    missing = used - docs.keys()
    if missing:
        raise SystemExit(f"instructions refer to missing documents: {sorted(missing)}")
    unused = docs.keys() - used
    if unused:
        raise SystemExit(f"documents without instructions: {sorted(unused)}")

    lines = []
    for i, entry in enumerate(entries):
        body = WRAPPERS[i % len(WRAPPERS)].format(doc=docs[entry["document"]])
        if entry["position"] == "before":
            prompt = f"{entry['instruction']}\n\n{body}"
        elif entry["position"] == "after":
            prompt = f"{body}\n\n{entry['instruction']}"
        else:
            prompt = f"{entry['lead']}\n\n{body}\n\n{entry['question']}"
        lines.append(
            {
                "id": f"r{FIRST_ID + i:04d}",
                "category": CATEGORY,
                "prompt": prompt,
                "tags": ["long", *entry["tags"]],
            }
        )
    return lines


def render(existing: list[str], generated: list[dict[str, Any]]) -> str:
    kept = [ln for ln in existing if ln.strip() and json.loads(ln)["category"] != CATEGORY]
    out = kept + [json.dumps(obj, ensure_ascii=False) for obj in generated]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is out of date"
    )
    args = parser.parse_args()

    existing_text = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
    generated = build_lines(load_documents(), load_instructions())
    new_text = render(existing_text.splitlines(), generated)
    if args.check:
        if new_text != existing_text:
            print(f"{OUT.name} is out of date; run {pathlib.Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(new_text, encoding="utf-8")
    print(f"wrote {OUT} ({len(generated)} {CATEGORY} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
