"""One worker as the router sees it, whatever protocol it speaks.

`WorkerClient` is the seam between orchestration and worker protocols. Two backends
implement it (`triskel.router.backends`): Triskel's own gRPC `triskel.v1.Worker`
(mock workers, future engine adapters) and vLLM's OpenAI-compatible HTTP API (real
vLLM, or mock workers serving it), so one router drives either, per pool.

Every call either returns or raises `WorkerCallError`; nothing protocol-specific
(gRPC statuses, HTTP codes) leaks past a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from triskel.common.api import Role
from triskel.router.scheduling.types import WorkerLoad
from triskel.router.types import ImagePart, TokenEvent

if TYPE_CHECKING:
    from triskel.router.state.kv_direct import KvEventCall


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """What the worker said about itself when the router connected."""

    worker_id: str
    address: str
    role: Role
    model: str
    # The worker's latency profile name (mock engines) or engine name.
    profile: str
    block_size_tokens: int
    max_context_tokens: int
    kv_connector: str
    hash_salt: str


class CallFailure(StrEnum):
    """Why a worker call failed, in the router's terms."""

    # The worker refused the request's content; `field_name` names what.
    INVALID_ARGUMENT = "invalid_argument"
    # No answer within the stage's bound.
    TIMEOUT = "deadline_exceeded"
    # The worker is unreachable, went away, or cannot serve now (retry elsewhere).
    UNAVAILABLE = "unavailable"


class WorkerCallError(Exception):
    """A failed worker call; `details` is the worker's own message."""

    def __init__(self, failure: CallFailure, details: str, field_name: str = "") -> None:
        super().__init__(details)
        self.failure = failure
        self.details = details
        self.field_name = field_name


class WorkerClosed(WorkerCallError):
    """The router closed its client of this worker (the worker left its membership)
    under the call: retriable elsewhere, and nothing to retry or report on this one."""

    def __init__(self) -> None:
        super().__init__(CallFailure.UNAVAILABLE, "the worker left")


@dataclass(frozen=True, slots=True)
class KvTicket:
    """A prefill's KV as its backend describes it; passed, opaque, to the decode call.

    `payload` is the backend's own form (a `worker_pb2.KvHandle`, or vLLM's
    `kv_transfer_params`); only the backend that made it reads it.
    """

    backend: str
    connector: str
    payload: object


@dataclass(frozen=True, slots=True)
class PrefillCall:
    request_id: str
    token_ids: Sequence[int]
    max_tokens: int
    kv_hold_ms: int
    # The client's sampling seed (None: the engine's own); the decode call gets the same.
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class PrefillReply:
    first_token: TokenEvent
    num_cached_tokens: int
    # Set when the first token already finished the request (no KV kept).
    finish_reason: str | None
    kv: KvTicket | None
    # vLLM's protocol: the decode worker samples the first token again and streams it,
    # so the router must not show the prefill's (under sampling the two may differ).
    decode_repeats_first_token: bool = False


@dataclass(frozen=True, slots=True)
class DecodeCall:
    request_id: str
    token_ids: Sequence[int]
    max_tokens: int
    ignore_eos: bool
    # With `kv`, the prompt's KV comes from a prefill worker; without, prefill runs here.
    kv: KvTicket | None = None
    first_token_id: int | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class KvPulled:
    num_bytes: int
    transfer_ms: float


@dataclass(frozen=True, slots=True)
class DecodeFinished:
    finish_reason: str
    # Tokens this call generated (with KV from a prefill: after the prefill's first token,
    # unless the backend's protocol repeats it).
    num_generated_tokens: int
    num_cached_tokens: int


DecodeEvent = TokenEvent | KvPulled | DecodeFinished


class WorkerClient(ABC):
    """One connection to one worker; `connect` learns its identity. Safe to share."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._identity: WorkerIdentity | None = None

    @property
    def identity(self) -> WorkerIdentity:
        if self._identity is None:
            raise RuntimeError(f"worker {self.address} is not connected yet")
        return self._identity

    @property
    def worker_id(self) -> str:
        return self.identity.worker_id

    @property
    @abstractmethod
    def backend(self) -> str:
        """The protocol's name: "triskel" (gRPC) or "vllm" (HTTP)."""

    @property
    @abstractmethod
    def has_kv_events(self) -> bool:
        """Whether `kv_events` works (the precise prefix index needs it)."""

    @abstractmethod
    async def connect(self, timeout_s: float) -> WorkerIdentity:
        """Waits up to `timeout_s` for the worker and learns its identity.

        Raises WorkerCallError (UNAVAILABLE / TIMEOUT) when it does not answer, or
        INVALID_ARGUMENT when what it answered cannot be served.
        """

    @abstractmethod
    async def close(self) -> None:
        """Releases connections; idempotent."""

    @abstractmethod
    async def encode(
        self, request_id: str, images: Sequence[ImagePart], timeout_s: float
    ) -> list[tuple[int, ...]]:
        """Embedding token ids per image, in order."""

    @abstractmethod
    async def prefill(self, call: PrefillCall, timeout_s: float) -> PrefillReply:
        """Computes the prompt's KV and first token, keeping the KV for a decode worker."""

    @abstractmethod
    def decode(self, call: DecodeCall, timeout_s: float) -> AsyncGenerator[DecodeEvent, None]:
        """Streams the generation, ending with one DecodeFinished.

        Closing the iterator early cancels the request on the worker. A stream that
        ends without DecodeFinished raises WorkerCallError (UNAVAILABLE).
        """

    @abstractmethod
    async def cancel(self, request_id: str) -> None:
        """Best effort: frees what the worker holds for `request_id` (e.g. unpulled KV)."""

    @abstractmethod
    def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        """Load reports about every `interval_ms`, until the worker stops answering
        (then WorkerCallError)."""

    def kv_events(self) -> KvEventCall:
        """A new KV event subscription (only when `has_kv_events`); iterating it raises
        WorkerCallError when the stream breaks, WorkerClosed once this client is closed."""
        raise NotImplementedError(f"{self.backend} workers publish no KV events")
