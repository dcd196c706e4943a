"""An expert-parallel group of N ranks run as one mock engine: its capacity. Pure.

A MoE profile describes ONE rank of a wide-EP deployment (vLLM's data-parallel
attention: each rank serves its own sequences and holds their KV; the routed experts
are spread over the ranks). A worker simulates the whole group in one process, so
the group's engine is N ranks side by side:

    max_num_seqs            N x the profile's
    max_num_batched_tokens  N x the profile's (each rank batches its own tokens)
    KV blocks               N x one rank's: what its memory holds after the dense
                            weights and its largest expert share (`kv_tokens_per_rank`),
                            or the pool's `profile.kvCapacityTokens` (per rank) if set
    step time               the busiest rank's step (`MockModelRunner`, num_ep_ranks)

The sizes a group can take are those whose layout fits a rank's memory
(`triskel.common.moe.fits`), up to `max_ranks`: the worker sizes its KV arena for the
largest group up front, because connectors register the arena's address once.
"""

from __future__ import annotations

from dataclasses import dataclass

from triskel.common.moe import MoeSpec, fits, kv_tokens_per_rank, quotas, valid_sizes
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.core import EngineConfig


@dataclass(frozen=True, slots=True)
class EpGroupSpec:
    """An EP group's model: a per-rank MoE profile and the sizes it may take."""

    profile: LatencyProfile
    moe: MoeSpec
    model: str
    max_ranks: int
    kv_capacity_tokens_per_rank: int | None = None

    @property
    def sizes(self) -> list[int]:
        """EP sizes the group may be scaled to, ascending."""
        return valid_sizes(self.moe, 1, self.max_ranks)

    def size_problem(self, ranks: int) -> str | None:
        """Why the group cannot have `ranks` ranks (None: it can); the caller adds the
        field's name."""
        moe = self.moe
        sizes = self.sizes
        valid = f"valid EP sizes for {self.profile.name}: {_span(sizes)}"
        if ranks < 1:
            return f"{ranks} is not a number of ranks ({valid})"
        if ranks > moe.num_experts:
            return f"{ranks} ranks exceed the model's {moe.num_experts} experts ({valid})"
        if not fits(moe, ranks):
            largest_share = max(quotas(moe.num_experts, ranks))
            return (
                f"{ranks} ranks cannot each hold the dense weights, {largest_share} experts "
                f"and a {moe.min_kv_tokens_per_rank}-token KV cache ({valid})"
            )
        if ranks > self.max_ranks:
            return (
                f"{ranks} is above {self.max_ranks}, the largest EP size this worker may "
                f"reach (maxEpSize: its KV arena is sized for it; {valid})"
            )
        return None

    def engine_config(self, ranks: int) -> EngineConfig:
        """The engine of a group of `ranks` ranks; ValueError for a size it cannot take."""
        problem = self.size_problem(ranks)
        if problem is not None:
            raise ValueError(f"ranks: {problem}")
        profile = self.profile
        per_rank_tokens = self.kv_capacity_tokens_per_rank
        if per_rank_tokens is None:
            per_rank_tokens = kv_tokens_per_rank(self.moe, ranks)
        # Each rank pages its own KV: whole blocks per rank.
        num_blocks_per_rank = per_rank_tokens // profile.block_size_tokens
        if num_blocks_per_rank < 1:
            raise ValueError(
                f"kv_capacity_tokens: {per_rank_tokens} tokens per rank is less than one "
                f"block of {profile.block_size_tokens} tokens"
            )
        return EngineConfig(
            model=self.model,
            profile=profile,
            num_kv_blocks=ranks * num_blocks_per_rank,
            block_size_tokens=profile.block_size_tokens,
            max_num_batched_tokens=ranks * profile.max_num_batched_tokens,
            max_num_seqs=ranks * profile.max_num_seqs,
            num_ep_ranks=ranks,
        )

    @property
    def max_num_kv_blocks(self) -> int:
        """The KV blocks of the largest group the worker may become (its arena's size)."""
        return max(self.engine_config(ranks).num_kv_blocks for ranks in self.sizes)


def ep_group_spec(
    profile: LatencyProfile,
    ep: int,
    *,
    model: str | None = None,
    kv_capacity_tokens_per_rank: int | None = None,
    max_ep_size: int | None = None,
) -> EpGroupSpec | None:
    """The EP group a pool with `parallelism.ep` = `ep` runs on `profile`; None for a
    dense model on one engine. ValueError naming `parallelism.ep` (or `maxEpSize`) when
    the profile cannot run as such a group.

    `max_ep_size` None: twice `ep` (elastic steps add a few ranks at a time), within
    what the layout and memory allow."""
    moe = profile.moe
    if moe is None:
        if max_ep_size is not None:
            raise ValueError(
                f"maxEpSize: {profile.name} is a dense model's profile; only an EP group "
                "(a profile with a `moe:` section) changes its EP size"
            )
        if ep > 1:
            raise ValueError(
                f"parallelism.ep: {ep} needs a profile with a `moe:` section; "
                f"{profile.name} has none (a dense model runs on one engine)"
            )
        return None
    if max_ep_size is not None and max_ep_size < ep:
        raise ValueError(f"maxEpSize: {max_ep_size} is below parallelism.ep ({ep})")
    fitting = valid_sizes(moe, 1, moe.num_experts)
    largest = max_ep_size if max_ep_size is not None else min(2 * ep, max(fitting, default=ep))
    spec = EpGroupSpec(profile, moe, model or profile.model, largest, kv_capacity_tokens_per_rank)
    problem = spec.size_problem(ep)
    if problem is not None:
        raise ValueError(f"parallelism.ep: {problem}")
    return spec


def _span(sizes: list[int]) -> str:
    return f"{sizes[0]} to {sizes[-1]}" if sizes else "none"
