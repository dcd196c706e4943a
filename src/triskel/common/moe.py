"""Mixture-of-experts pools: expert layouts over EP ranks, and what changing EP costs.

Pure functions shared by the mock engine's `/scale_elastic_ep`, the simulator and the
planner, so all three agree on which EP sizes are valid, which experts move and how
long a step takes.

Layout. Rank r of an EP group of N ranks holds ⌊E/N⌋ or ⌈E/N⌉ of the E routed
experts (the first E mod N ranks one more; vLLM's EPLB evens uneven splits with
redundant experts, which this does not model). Changing N keeps every expert that can
stay where it is: a rank that remains keeps up to its new quota of the experts it
had, and only the rest move, to ranks under their quota (new ranks first). No layout
with the same quotas moves fewer experts: each remaining rank keeps all it can.

Step time (ElasticMoE's goal: scale by a few ranks in seconds, the old layout serving
until the new one is ready). Scaling up, the new ranks start (process, CUDA context,
their non-expert weights) while the old ranks serve; then experts move to them, pulled
from peer ranks over the interconnect (or loaded cold from storage when no peer has
them), and every rank reconfigures (communicators, CUDA graphs) before the switch.
Scaling down, only the moves and the reconfiguration. Calibrated so one step of
DeepSeek-V2-Lite reproduces vLLM's measured elastic EP figures (~31 s up, ~7 s down).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

Layout = tuple[tuple[int, ...], ...]  # experts held by each rank, in rank order


class MoeSpec(BaseModel):
    """An MoE model on its ranks (a profile's `moe:` section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_experts: int = Field(gt=0)  # routed experts per MoE layer
    top_k: int = Field(gt=0)
    expert_bytes: int = Field(gt=0)  # one expert across all MoE layers
    dense_bytes: int = Field(gt=0)  # attention, shared experts, embeddings: on every rank
    hbm_bytes_per_rank: int = Field(gt=0)  # usable for weights and KV
    kv_bytes_per_token: int = Field(gt=0)
    min_kv_tokens_per_rank: int = Field(default=4096, gt=0)  # a rank below is useless
    rank_start_s: float = Field(ge=0)  # a new rank's process, CUDA and dense weights
    reconfigure_s: float = Field(ge=0)  # every rank: communicators, CUDA graphs
    interconnect_bytes_per_s: float = Field(gt=0)  # peer-to-peer expert pulls
    storage_bytes_per_s: float = Field(gt=0)  # cold loads


@dataclass(frozen=True, slots=True)
class EpStep:
    """One change of EP size: the new layout and what it costs."""

    old_ranks: int
    new_ranks: int
    layout: Layout
    experts_moved: int
    bytes_moved: int
    seconds: float


def quotas(num_experts: int, ranks: int) -> list[int]:
    base, extra = divmod(num_experts, ranks)
    return [base + (1 if rank < extra else 0) for rank in range(ranks)]


def initial_layout(num_experts: int, ranks: int) -> Layout:
    """Contiguous blocks: rank 0 holds experts 0…q₀−1, and so on."""
    layout, start = [], 0
    for quota in quotas(num_experts, ranks):
        layout.append(tuple(range(start, start + quota)))
        start += quota
    return tuple(layout)


def relayout(previous: Layout, num_experts: int, ranks: int) -> tuple[Layout, int]:
    """The layout for `ranks` that moves the fewest experts from `previous`, and how
    many move. Ranks keep their indices; removed ranks are the last ones."""
    if ranks < 1 or ranks > num_experts:
        raise ValueError(f"ep: {ranks} ranks for {num_experts} experts (1 to {num_experts})")
    wanted = quotas(num_experts, ranks)
    kept: list[list[int]] = []
    homeless: list[int] = []
    for rank in range(ranks):
        held = list(previous[rank]) if rank < len(previous) else []
        kept.append(held[: wanted[rank]])
        homeless.extend(held[wanted[rank] :])
    for rank in range(ranks, len(previous)):
        homeless.extend(previous[rank])
    moved = len(homeless)
    # New ranks (empty) fill first, then remaining ranks under their quota.
    for rank in sorted(range(ranks), key=lambda r: (len(kept[r]) > 0, r)):
        while len(kept[rank]) < wanted[rank]:
            kept[rank].append(homeless.pop())
    return tuple(tuple(sorted(held)) for held in kept), moved


def fits(spec: MoeSpec, ranks: int) -> bool:
    """A rank holds the dense weights, its largest expert share and a useful KV cache."""
    if not 1 <= ranks <= spec.num_experts:
        return False
    largest = max(quotas(spec.num_experts, ranks))
    weights = spec.dense_bytes + largest * spec.expert_bytes
    return (
        spec.hbm_bytes_per_rank - weights >= spec.min_kv_tokens_per_rank * spec.kv_bytes_per_token
    )


def valid_sizes(spec: MoeSpec, low: int, high: int) -> list[int]:
    """EP sizes in [low, high] whose layout fits every rank's memory."""
    return [ranks for ranks in range(max(1, low), high + 1) if fits(spec, ranks)]


def nearest_valid_size(spec: MoeSpec, desired: float, low: int, high: int) -> int | None:
    """The valid EP size in [low, high] nearest `desired` ranks, the larger on a tie
    (a step that falls short of the load costs more than a rank too many); None when no
    size in the range fits."""
    sizes = valid_sizes(spec, low, high)
    if not sizes:
        return None
    return min(sizes, key=lambda ranks: (abs(ranks - desired), -ranks))


def kv_tokens_per_rank(spec: MoeSpec, ranks: int) -> int:
    largest = max(quotas(spec.num_experts, ranks))
    free = spec.hbm_bytes_per_rank - spec.dense_bytes - largest * spec.expert_bytes
    return max(0, free // spec.kv_bytes_per_token)


def plan_step(spec: MoeSpec, previous: Layout, ranks: int, *, cold: bool = False) -> EpStep:
    """Changing from `previous` to `ranks`: the new layout, the experts and bytes moved,
    and the seconds it takes (`cold`: experts load from storage, not from peers)."""
    if not fits(spec, ranks):
        raise ValueError(
            f"ep: {ranks} ranks do not fit (dense weights, experts and a "
            f"{spec.min_kv_tokens_per_rank}-token KV cache per rank)"
        )
    layout, moved = relayout(previous, spec.num_experts, ranks)
    bytes_moved = moved * spec.expert_bytes
    rate = spec.storage_bytes_per_s if cold else spec.interconnect_bytes_per_s
    seconds = spec.reconfigure_s + bytes_moved / rate
    if ranks > len(previous):
        seconds += spec.rank_start_s
    return EpStep(len(previous), ranks, layout, moved, bytes_moved, seconds)
