"""The mock "forward pass": how long a scheduled batch takes, and what it samples.

Stands where a GPU model runner would: it reads the batch the scheduler built,
prices it with the profile's latency model (`triskel.common.latency.step_ms`)
and samples one token for every request whose known tokens are now all
computed. A request fed exactly its last token after producing outputs is
decoding; anything else is a prefill chunk (including recomputation after
preemption).

An expert-parallel group of N ranks (`num_ranks`) with data-parallel attention runs
as N engines that step together: each rank prices its own share of the batch with
the per-rank profile, and the group steps at its slowest rank's pace (the expert
all-to-alls of every MoE layer wait for all ranks). Requests are dealt to ranks in
turn, so the busiest rank has ceil(batch / N) of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from triskel.common.kv_tiers import load_ms
from triskel.common.latency import decode_step_ms, step_ms
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.batch import ScheduledBatch
from triskel.workers.engine.request import RequestState
from triskel.workers.engine.sampler import token_for_seed


@dataclass(slots=True)
class ModelRunOutput:
    duration_ms: float
    # Aligned with the batch's requests; None where a prefill chunk ends mid-prompt.
    sampled_token_ids: list[int | None]


class MockModelRunner:
    __slots__ = ("_profile", "num_ranks")

    def __init__(self, profile: LatencyProfile, num_ranks: int = 1) -> None:
        if num_ranks < 1:
            raise ValueError(f"num_ranks: must be >= 1, got {num_ranks}")
        self._profile = profile
        self.num_ranks = num_ranks

    def run(self, batch: ScheduledBatch) -> ModelRunOutput:
        prefill_chunks: list[tuple[int, int]] = []
        decode_context_lens: list[int] = []
        sampled: list[int | None] = []
        for state, num_new in zip(batch.requests, batch.num_new_tokens, strict=True):
            num_computed = state.num_computed_tokens
            num_tokens = len(state.token_ids)
            num_outputs = num_tokens - state.num_prompt_tokens
            if num_new == 1 and num_outputs > 0 and num_computed + 1 == num_tokens:
                decode_context_lens.append(num_tokens)
            else:
                prefill_chunks.append((num_new, num_computed))
            if num_computed + num_new == num_tokens:
                sampled.append(token_for_seed(state.sample_seed, num_outputs))
            else:
                sampled.append(None)
        duration_ms = self._step_ms(prefill_chunks, decode_context_lens)
        if batch.num_loaded_tokens:
            # Loaded before the forward pass that reads it (a synchronous load).
            duration_ms += load_ms(self._profile, batch.num_loaded_tokens)
        return ModelRunOutput(duration_ms, sampled)

    def run_decodes(self, states: list[RequestState]) -> tuple[float, list[int]]:
        """`run` for a batch of pure decodes (each request fed its one newest token): the
        step's duration (ms) and each request's sampled token (a tuple: built every step)."""
        # One loop, no comprehensions: at light load most batches hold a request or two,
        # and a step's fixed costs are what a run spends its time on.
        context_total = 0
        sampled: list[int] = []
        for state in states:
            num_tokens = len(state.token_ids)
            context_total += num_tokens
            sampled.append(token_for_seed(state.sample_seed, num_tokens - state.num_prompt_tokens))
        if self.num_ranks > 1:  # each rank prices its share: the lengths are needed
            context_lens = [len(state.token_ids) for state in states]
            return self._step_ms((), context_lens), sampled
        return decode_step_ms(self._profile, context_total, len(states)), sampled

    def _step_ms(
        self, prefill_chunks: Sequence[tuple[int, int]], decode_context_lens: Sequence[int]
    ) -> float:
        ranks = self.num_ranks
        if ranks == 1:
            return step_ms(self._profile, prefill_chunks, decode_context_lens)
        return max(
            step_ms(self._profile, prefill_chunks[rank::ranks], decode_context_lens[rank::ranks])
            for rank in range(ranks)
        )
