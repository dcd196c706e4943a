"""A request as the engine receives it, and the per-request state the scheduler tracks.

Token bookkeeping follows vLLM v1: `token_ids` is the prompt followed by every
output token; `num_computed_tokens` counts the leading tokens whose KV exists.
Each step feeds `num_tokens - num_computed_tokens` tokens (capped by the step's
budget); once every known token is computed the model samples the next one. A
request waiting for its first decode therefore has one uncomputed token: the
token it sampled last.

    prompt  [p0 p1 ... pL-1] outputs [o0 o1 o2]
    computed ─────────────────────────────┘      (o2 is fed next step, then o3 sampled)
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum, auto

from triskel.common.hashing import BlockHash


@dataclass(slots=True)
class EngineRequest:
    """What the caller asks for.

    `prefill_only`: compute the prompt's KV and the first token, then finish and
    HOLD the KV blocks until `release_kv` (the prefill role of P/D serving).
    `remote_kv`: the prompt's KV is pulled from a prefill worker; `first_token_id`
    (required then) is the request's first output token, which this engine does
    not emit again.
    `prompt_block_hashes`: the prompt's full-block hashes (`hash_blocks` with this
    engine's block size, model and salt) when the caller has them already, as the
    router and the simulator do; the engine then does not hash the prompt again.
    """

    request_id: str
    prompt_token_ids: Sequence[int]
    max_tokens: int
    ignore_eos: bool = False
    prefill_only: bool = False
    remote_kv: bool = False
    first_token_id: int | None = None
    prompt_block_hashes: Sequence[BlockHash] | None = None
    # The client's sampling seed (OpenAI's `seed`); None: the prompt's own.
    seed: int | None = None


class RequestStatus(Enum):
    WAITING = auto()  # queued, no KV blocks (new, or loaded remote KV ready to decode)
    WAITING_FOR_KV = auto()  # blocks allocated, remote KV being pulled
    RUNNING = auto()  # in the running batch
    PREEMPTED = auto()  # blocks freed under memory pressure; recomputed when readmitted
    HOLDING_KV = auto()  # prefill-only request done; its blocks stay referenced
    FINISHED = auto()  # done; blocks released


class FinishReason(StrEnum):
    STOP = "stop"  # the request reached its natural end (its EOS)
    LENGTH = "length"  # max_tokens reached
    ERROR = "error"  # the remote KV pull failed


@dataclass(slots=True, eq=False)
class RequestState:
    """The scheduler's view of one request (compared by identity)."""

    request: EngineRequest
    # Packed as unsigned 32-bit ids: hashing reads the buffer, and no int object per token.
    token_ids: array[int]
    num_prompt_tokens: int
    sample_seed: int
    natural_length_tokens: int
    status: RequestStatus = RequestStatus.WAITING
    num_computed_tokens: int = 0
    # Prefix-cache hit found at the first admission (tokens).
    num_cached_tokens: int = 0
    was_admitted: bool = False
    # True until the remote KV of a remote_kv request has arrived.
    needs_remote_kv: bool = False
    block_ids: list[int] = field(default_factory=list)
    # Hashes of this request's full blocks, extended as tokens become known.
    block_hashes: list[BlockHash] = field(default_factory=list)
    # Leading blocks already offered to the prefix cache.
    num_registered_blocks: int = 0
    finish_reason: FinishReason | None = None

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def num_uncomputed_tokens(self) -> int:
        return len(self.token_ids) - self.num_computed_tokens

    @property
    def is_prefill_only(self) -> bool:
        return self.request.prefill_only

    @property
    def is_running(self) -> bool:
        return self.status is RequestStatus.RUNNING

    @property
    def is_finished(self) -> bool:
        return self.status is RequestStatus.FINISHED
