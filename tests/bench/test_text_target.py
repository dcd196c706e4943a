"""bench/text_target.py's probe: prompts distinct from their first KV block on, however
long the tag, so no prefix-aware router sends them all to one worker."""

from __future__ import annotations

from support.bench_scripts import load_bench_script

text_target = load_bench_script("text_target")

BLOCK_TOKENS = 16  # the mock workers' block size: what prefix hashing compares


def test_probe_prompts_differ_in_their_first_block_whatever_the_tag() -> None:
    # A tag longer than a block (a long row label as compare_routers makes tags of them).
    tag = "routedunifiedtriskeltriskelhttpyamlworkersoverframesat200" * 2
    plan = text_target.plan_probe_requests(50, 200.0, 100, 4, tag)
    first_blocks = {tuple(request.prompt_token_ids[:BLOCK_TOKENS]) for request in plan.requests}
    assert len(first_blocks) == 50
    # And the tag still keeps two probes apart.
    other = text_target.plan_probe_requests(50, 200.0, 100, 4, "direct" + tag)
    assert not {tuple(r.prompt_token_ids) for r in plan.requests} & {
        tuple(r.prompt_token_ids) for r in other.requests
    }
