"""Semantic routing accuracy on the labelled prompt set (tests/data/semantic/).

    python bench/semantic/accuracy.py                 # the built-in `triskel up` policy
    python bench/semantic/accuracy.py -f my-up.yaml   # the `routing.semantic` of a file

Each prompt goes through the router's own path (bounded text, every signal once, the
decisions by priority) as a single user message to `model: auto`; the decision's
category is compared with the prompt's label. Prints overall accuracy, accuracy per
category and per tag, and the confusion matrix (rows: label, columns: decision).

Design choices of the default policy were compared on the even-numbered prompts only
("dev"); the odd-numbered half ("held out") was not looked at while choosing, and its
accuracy is printed apart.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

from triskel.cli.up_config import load_up_config
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.request_text import signal_input
from triskel.router.semantic.setup import EmbedderCache, load_semantic
from triskel.router.types import ChatMessage, GenerationRequest, TextPart

DATA = Path(__file__).resolve().parents[2] / "tests/data/semantic/routing_prompts.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--file", type=Path, default=None, help="a `triskel up` file")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    config, source = load_up_config(args.file)
    spec = config.routing.semantic
    if spec is None:
        raise SystemExit(f"{source}: no routing.semantic section")
    models = {pool.model for pool in config.pools}
    policy, embedder = load_semantic(spec, Targets(models=models), EmbedderCache())
    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    confusion: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    by_tag: dict[str, list[bool]] = collections.defaultdict(list)
    by_half: dict[str, list[bool]] = collections.defaultdict(list)
    errors = []
    started = time.perf_counter()
    for row in rows:
        message = ChatMessage("user", (TextPart(row["prompt"]),))
        request = GenerationRequest(row["id"], spec.alias, messages=(message,))
        inputs = signal_input(request, policy.max_classify_chars, lambda t: embedder.embed([t])[0])
        chosen = policy.decide(inputs).action.category
        confusion[row["category"]][chosen] += 1
        correct = chosen == row["category"]
        for tag in row.get("tags") or ["(none)"]:
            by_tag[tag].append(correct)
        half = "dev" if int(row["id"].lstrip("r")) % 2 == 0 else "held out"
        by_half[half].append(correct)
        if not correct:
            errors.append((row["id"], row["category"], chosen, row["prompt"][:90]))
    elapsed = time.perf_counter() - started
    total = sum(sum(c.values()) for c in confusion.values())
    right = sum(confusion[label][label] for label in confusion)
    print(f"policy: {source}; prompts: {args.data.name} ({total})")
    per_prompt_ms = elapsed / total * 1e3
    print(
        f"overall accuracy: {right / total:.1%} ({right}/{total}); {per_prompt_ms:.2f} ms a prompt"
    )
    for half, results in sorted(by_half.items()):
        print(f"  {half}: {sum(results) / len(results):.1%} ({sum(results)}/{len(results)})")
    labels = sorted(confusion)
    columns = sorted({c for counter in confusion.values() for c in counter} | set(labels))
    print("\nper category:")
    for label in labels:
        count = sum(confusion[label].values())
        print(f"  {label:<14} {confusion[label][label] / count:6.1%}  ({count})")
    print("\nper tag:")
    for tag, results in sorted(by_tag.items()):
        print(f"  {tag:<14} {sum(results) / len(results):6.1%}  ({len(results)})")
    print("\nconfusion (rows: label, columns: decision's category):")
    print(" " * 15 + "".join(f"{c[:12]:>13}" for c in columns))
    for label in labels:
        print(f"{label:<15}" + "".join(f"{confusion[label][c]:>13}" for c in columns))
    if args.show_errors:
        print("\nerrors:")
        for error in errors:
            print("  ", *error)


if __name__ == "__main__":
    main()
