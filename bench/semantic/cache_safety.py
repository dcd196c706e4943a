"""Semantic cache safety: paraphrases that should hit, near misses that must not.

    python bench/semantic/cache_safety.py                       # the evaluation pairs
    python bench/semantic/cache_safety.py --data tests/data/semantic_tuning/cache_pairs_tuning.jsonl

For each pair (a, b) a fresh cache (the router's own `SemanticCache` over a memory
store) holds a's answer; b is looked up through the router's own path: its key, its
embedding, its guards, at each similarity threshold. A paraphrase that hits is a
saved request; a near miss that hits is a wrong answer served. Prints, per threshold,
the paraphrase hit rate and the near-miss wrong-hit rate (with the lexical guards and
without), and both per category and per near-miss kind at the policy's own
thresholds (`routing.cache` of the built-in `triskel up` file, or `-f`).

Last, one cache shared by every pair, as a router holds it: every distinct `a` is
stored with its own answer, then every `b` is looked up at the shipped thresholds. A
hit is right only for a paraphrase that gets its own pair's answer; a near miss that
hits, or any hit with another question's answer, is a wrong answer served. This shows
what the per-pair walk cannot: a neighbour that is not the pair's own question.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
from pathlib import Path
from typing import Any

from triskel.cli.up_config import load_up_config
from triskel.router.semantic.embedding import Embedder, load_embedder
from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.content import content_text
from triskel.router.semantic_cache.entries import CachedAnswer
from triskel.router.semantic_cache.guards import Guard, LanguageDetector, guard_of
from triskel.router.semantic_cache.index import Vector
from triskel.router.semantic_cache.keys import CacheKey, cache_key
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.types import CacheStatus, ChatMessage, GenerationRequest, TextPart

DATA = Path(__file__).resolve().parents[2] / "tests/data/semantic/cache_pairs.jsonl"
THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
# A guard no text ever fails: the same walk with the lexical guards switched off.
_OPEN_GUARD = Guard((), (), (), None, (), frozenset(), ())


async def hits(
    pair: dict[str, Any],
    threshold: float,
    embedder: Embedder,
    detector: LanguageDetector,
    guarded: bool,
) -> bool:
    cache = SemanticCache(MemoryCacheStore())
    effective = Effective(threshold, 3600, 1000)
    keys, vectors, guards = [], [], []
    for text in (pair["a"], pair["b"]):
        message = ChatMessage("user", (TextPart(text),))
        request = GenerationRequest(pair["id"], "m", messages=(message,), temperature=0.0)
        key = cache_key(request, category=pair["category"], tenant="t", model="m", endpoint="chat")
        assert key.query_text is not None
        keys.append(key)
        vectors.append(embedder.embed([content_text(key.query_text)])[0])
        guards.append(guard_of(key.query_text, detector) if guarded else _OPEN_GUARD)
    answer = CachedAnswer(("cached answer",), "stop", 10, 3)
    await cache.store(keys[0], vectors[0], guards[0], answer, effective)
    found = await cache.lookup(keys[1], vectors[1], guards[1], effective)
    return found.status is CacheStatus.HIT


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("-f", "--file", type=Path, default=None, help="a `triskel up` file")
    args = parser.parse_args()
    pairs = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    embedder, detector = load_embedder(), LanguageDetector()
    paraphrases = [p for p in pairs if p["same_answer"]]
    near_misses = [p for p in pairs if not p["same_answer"]]
    print(f"pairs: {args.data} ({len(paraphrases)} paraphrases, {len(near_misses)} near misses)")
    print("\nthreshold   paraphrase hits   near-miss wrong hits   (without guards: hits / wrong)")
    for threshold in THRESHOLDS:
        rates = []
        for guarded in (True, False):
            for group in (paraphrases, near_misses):
                found = [await hits(p, threshold, embedder, detector, guarded) for p in group]
                rates.append(sum(found) / len(group))
        print(
            f"  {threshold:.2f}      {rates[0]:6.1%}            {rates[1]:6.1%}"
            f"                 {rates[2]:6.1%} / {rates[3]:6.1%}"
        )
    config, source = load_up_config(args.file)
    if config.routing.cache is None:
        return
    thresholds = {c.name: c.similarity_threshold for c in config.routing.cache.categories}
    print(f"\nat the thresholds of {source} (categories it caches):")
    shipped: dict[str, list[bool]] = collections.defaultdict(list)
    for pair in pairs:
        shipped_threshold = thresholds.get(pair["category"])
        if shipped_threshold is None:
            continue
        hit = await hits(pair, shipped_threshold, embedder, detector, guarded=True)
        kind = "paraphrase" if pair["same_answer"] else "near miss"
        shipped[f"{pair['category']} {kind} (t={shipped_threshold})"].append(hit)
        shipped[f"all {kind}"].append(hit)
        if not pair["same_answer"]:
            shipped[f"  kind {pair['kind']}"].append(hit)
    for name, found in sorted(shipped.items()):
        print(f"  {name:<40} hit {sum(found) / len(found):6.1%}  ({sum(found)}/{len(found)})")
    await shared_cache(pairs, thresholds, embedder, detector)


async def shared_cache(
    pairs: list[dict[str, Any]],
    thresholds: dict[str, float],
    embedder: Embedder,
    detector: LanguageDetector,
) -> None:
    cache = SemanticCache(MemoryCacheStore())
    cached = [p for p in pairs if p["category"] in thresholds]
    for text, category in dict.fromkeys((p["a"], p["category"]) for p in cached):
        key, vector, guard = _prepared(text, category, embedder, detector)
        answer = CachedAnswer((f"answer to: {text}",), "stop", 10, 3)
        await cache.store(key, vector, guard, answer, _effective(thresholds[category]))
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for pair in cached:
        key, vector, guard = _prepared(pair["b"], pair["category"], embedder, detector)
        found = await cache.lookup(key, vector, guard, _effective(thresholds[pair["category"]]))
        kind = "paraphrase" if pair["same_answer"] else "near miss"
        if found.status is not CacheStatus.HIT or found.entry is None:
            outcomes[kind]["miss"] += 1
        elif pair["same_answer"] and found.entry.answer.text == f"answer to: {pair['a']}":
            outcomes[kind]["right hit"] += 1
        else:
            outcomes[kind]["wrong answer"] += 1
    distinct = len({p["a"] for p in cached})
    print(f"\none shared cache ({distinct} questions stored), each b looked up:")
    for kind, counts in sorted(outcomes.items()):
        total = sum(counts.values())
        shares = ", ".join(
            f"{name} {counts[name] / total:6.1%} ({counts[name]})"
            for name in ("right hit", "wrong answer", "miss")
        )
        print(f"  {kind:<11} {shares}")


def _prepared(
    text: str, category: str, embedder: Embedder, detector: LanguageDetector
) -> tuple[CacheKey, Vector, Guard]:
    message = ChatMessage("user", (TextPart(text),))
    request = GenerationRequest("q", "m", messages=(message,), temperature=0.0)
    key = cache_key(request, category=category, tenant="t", model="m", endpoint="chat")
    assert key.query_text is not None
    vector = embedder.embed([content_text(key.query_text)])[0]
    return key, vector, guard_of(key.query_text, detector)


def _effective(threshold: float) -> Effective:
    return Effective(threshold, 3600, 100_000)


if __name__ == "__main__":
    asyncio.run(main())
