"""The engine interface every worker backend implements.

The gRPC worker server is a thin shell over an `Engine`: the CPU mock
implements it today; adapters for real engines (vLLM, SGLang) implement the same
interface later, so the router and the server never know which one runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from triskel.common.api import Role
from triskel.workers.engine.events import KvEvent
from triskel.workers.kv.handle import KvHandle


class EngineInputError(ValueError):
    """The request is invalid for this engine (gRPC INVALID_ARGUMENT).

    `field_name` names the request field; the message gives the value and the limit.
    """

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name


class EngineRoleError(Exception):
    """The worker's role does not serve this call, or cannot change now (gRPC
    FAILED_PRECONDITION)."""


class EngineFailure(Exception):
    """The engine could not serve a valid request, e.g. a KV pull failed (gRPC UNAVAILABLE)."""


class EngineKvPullFailed(EngineFailure):
    """A remote-KV decode could not pull its KV: the exporter is unreachable, timed out,
    or sent blocks that fail their checksums. The message names the exporter's address."""


class EngineKvGone(EngineKvPullFailed):
    """A remote-KV decode's handle is stale: its exporter has no such KV any more
    (unknown, expired, withdrawn or already pulled). The prompt must be prefilled again."""


# The roles a worker may switch between live: the same weights serve all three. An
# encode worker runs another model (the vision encoder), so it never switches.
SWITCHABLE_ROLES = frozenset({Role.PREFILL, Role.DECODE, Role.UNIFIED})


@dataclass(frozen=True, slots=True)
class WorkerDescription:
    worker_id: str
    role: Role
    model: str
    profile: str
    block_size_tokens: int
    max_context_tokens: int
    kv_connector: str
    num_kv_blocks: int
    hash_salt: str


@dataclass(frozen=True, slots=True)
class ImageInput:
    url: str
    width_px: int
    height_px: int


@dataclass(frozen=True, slots=True)
class EncodeResult:
    token_ids_per_image: tuple[tuple[int, ...], ...]
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class PrefillResult:
    first_token_id: int
    first_token_text: str
    num_cached_tokens: int
    # None when the first token already finished the request (no KV is kept).
    kv: KvHandle | None
    finish_reason: str | None
    elapsed_ms: float
    # The exporter's block ids of `kv`, prompt order (vLLM's remote_block_ids); () without KV.
    kv_block_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DecodeParams:
    request_id: str
    prompt_token_ids: Sequence[int]
    max_tokens: int
    ignore_eos: bool
    # With `kv`, the prompt's KV is pulled from a prefill worker and
    # `first_token_id` is the token it generated; without, prefill runs here.
    kv: KvHandle | None = None
    first_token_id: int | None = None
    # The client's sampling seed; the prefill of the same request must be given the same.
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class KvReceived:
    num_bytes: int
    transfer_ms: float
    num_blocks_skipped: int


@dataclass(frozen=True, slots=True)
class Tokens:
    token_ids: tuple[int, ...]
    text: str
    # Prompt tokens found in the prefix cache, on a stream's first Tokens only (a caller
    # that ends the stream at a stop sequence never sees DecodeDone).
    num_cached_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class DecodeDone:
    finish_reason: str
    num_generated_tokens: int
    num_cached_tokens: int


DecodeEvent = KvReceived | Tokens | DecodeDone


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    worker_id: str
    num_waiting_requests: int
    num_running_requests: int
    kv_usage: float
    num_kv_blocks: int
    num_tokens_in_flight: int
    num_kv_holds: int
    timestamp_ms: float
    prefix_query_tokens_total: int
    prefix_hit_tokens_total: int
    # Requests that ran to their end, by finish reason ("stop", "length"), whichever API
    # they came through; a prefill held for its decode counts as "length" (vLLM's).
    finished_total: Mapping[str, int] = field(default_factory=dict)


# KV cache events are the engine core's own event types; every engine emits them.
KvCacheEvent = KvEvent


@dataclass(frozen=True, slots=True)
class KvEventBatch:
    events: tuple[KvCacheEvent, ...]
    is_snapshot: bool


class Engine(Protocol):
    """One worker's engine. All methods are safe to call concurrently."""

    @property
    def description(self) -> WorkerDescription: ...

    async def start(self) -> None:
        """Allocate memory, start the KV connector and the step loop."""

    async def close(self) -> None:
        """Abort everything in flight and release resources; idempotent."""

    async def encode(self, request_id: str, images: Sequence[ImageInput]) -> EncodeResult:
        """Embedding tokens per image (encode / unified roles)."""
        ...

    async def prefill(
        self,
        request_id: str,
        prompt_token_ids: Sequence[int],
        max_tokens: int,
        kv_hold_ms: int,
        seed: int | None = None,
    ) -> PrefillResult:
        """Computes the prompt's KV and first token; keeps the KV for a pull (prefill / unified)."""
        ...

    def decode(self, params: DecodeParams) -> AsyncIterator[DecodeEvent]:
        """Streams tokens (decode / unified). Closing the iterator aborts the request."""
        ...

    async def cancel(self, request_id: str) -> bool:
        """Aborts the request wherever it is and frees its KV; False if unknown."""
        ...

    def load(self) -> LoadSnapshot:
        """The current load."""
        ...

    def kv_events(self) -> AsyncIterator[KvEventBatch]:
        """A snapshot batch of every cached block, then live batches, until closed."""
        ...

    def switch_role(self, role: Role) -> WorkerDescription:
        """Serves as `role` from now on, keeping weights and prefix cache; the new
        description. EngineInputError when `role` is not one of SWITCHABLE_ROLES,
        EngineRoleError when this worker cannot switch or has work in flight."""
        ...
