"""Trace requests as text prompts, and a bench target that sends them as text.

`triskel bench` sends prompts as token ids; smg refuses that (its `prompt` is a string
or a list of strings), and a prefix-aware peer matches prompts by their text or by
the ids its workers return for the text. So each trace request's deterministic
token ids are drawn from the mock tokenizer's word vocabulary, where
`decode` then `encode` gives the same ids back: every router and worker sees the
text, and the workers cache exactly the blocks the trace shares.

    trace request ──prompt_token_ids(vocab = words)──► ids ──decode──► " the of may ..."
    worker: encode(text) == ids, so shared prefix blocks hash alike on every worker
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triskel.common.tokenizer import MockTokenizer
from triskel.simulator.bench.http_target import HttpTarget
from triskel.simulator.bench.outcome import Outcome
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.target import Clock, Target
from triskel.traces.prompt_tokens import prompt_token_ids
from triskel.traces.types import Trace


@dataclass(frozen=True, slots=True)
class TextPlan:
    """What to send: the requests (times, lengths, ids) and each one's prompt text."""

    requests: list[BenchRequest]
    texts: Mapping[int, str]


def plan_text_requests(trace: Trace, rate_scale: float = 1.0, salt: str = "") -> TextPlan:
    """The trace's requests with word-vocabulary prompts, arrivals divided by `rate_scale`.

    Built before the clock starts, like `plan_requests`, so building never delays a send.
    """
    tokenizer = MockTokenizer()
    requests, texts = [], {}
    for request in trace.scaled(rate_scale).requests:
        ids = prompt_token_ids(request, vocab_size=tokenizer.num_word_tokens, salt=salt)
        requests.append(
            BenchRequest(
                index=request.index,
                send_at_s=request.arrival_s,
                prompt_token_ids=ids,
                num_output_tokens=request.num_output_tokens,
            )
        )
        texts[request.index] = tokenizer.decode(ids)
    return TextPlan(requests, texts)


def plan_probe_requests(
    count: int, rate_per_s: float, num_words: int, num_output_tokens: int, tag: str
) -> TextPlan:
    """`count` small distinct prompts at a fixed rate: the router-added-latency probe.

    `tag` keeps one probe's prompts apart from another's (no prefix-cache hits between).
    The first request leaves one gap after the start: sent right after an earlier
    response on the same kept-alive connection, smg answers ~40 ms late.
    """
    tokenizer = MockTokenizer()
    requests, texts = [], {}
    for index in range(count):
        # The index first: a long tag (a row's label) spans whole 16-token blocks, and
        # prompts sharing their first block would all go to one worker by prefix.
        text = f" {index} {tag}" + " the" * num_words
        ids = tokenizer.encode(text)
        requests.append(BenchRequest(index, (index + 1) / rate_per_s, ids, num_output_tokens))
        texts[index] = text
    return TextPlan(requests, texts)


class SpreadTarget:
    """Several targets taken in turn by request index: a probe sent straight to a fleet's
    workers at the rate a router would spread over them (not all on one)."""

    def __init__(self, targets: Sequence[Target]) -> None:
        if not targets:
            raise ValueError("SpreadTarget needs at least one target")
        self._targets = tuple(targets)

    async def list_models(self) -> list[str]:
        return await self._targets[0].list_models()

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        target = self._targets[request.index % len(self._targets)]
        return await target.generate(request, model, clock)

    async def close(self) -> None:
        for target in self._targets:
            await target.close()


class TextCompletionTarget(HttpTarget):
    """`triskel bench`'s HTTP target with text prompts: streamed `/v1/completions`, exactly
    the planned output length (`ignore_eos`), usage asked for."""

    def __init__(self, base_url: str, texts: Mapping[int, str]) -> None:
        super().__init__(base_url)
        # The prompt of each request index; replaceable between replays on one session.
        self.texts = texts

    def _prompt(self, request: BenchRequest) -> object:
        return self.texts[request.index]
