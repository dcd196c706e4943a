"""The KV connector interface: how a prompt's KV blocks move between workers' arenas.

Disaggregated serving splits a request: a prefill worker computes the prompt's KV,
a decode worker continues from it. The decode side PULLS:

    prefill worker                          decode worker
    ──────────────                          ─────────────
    describe(request, blocks) ──KvHandle──► (via the router)
                                            receive(handle, dest_blocks)
    control listener ◄── pull request ──────┘
    send(...)  ══ data plane (tcp | mooncake | nccl) ══► dest blocks, checksums verified
    on_export_done(request) fires; the prefill worker frees its blocks

The design follows vLLM's KV connector split (a scheduler-side description of what
to move, a worker-side mover) and Dynamo's NIXL flow (decode pulls with transfer
params the prefill side returned).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.handle import KvHandle


class KvTransferError(Exception):
    """A transfer failed; the message says why.

    Peer gone, checksum mismatch at block i of request r, unknown or expired handle,
    timeout, size mismatch. A failed `receive` never reports success for partial or
    corrupt data (the destination blocks' content is then undefined).
    """


class KvHandleGone(KvTransferError):
    """The exporter no longer has the handle's KV: unknown, expired, withdrawn or already
    pulled. Retrying the same handle cannot succeed; the prompt must be prefilled again."""


class KvConnector(ABC):
    """Moves KV blocks between workers' arenas.

    Contract:
    - `start` once before anything else; `close` last (idempotent). Both ends of a
      transfer use the same `type_name`.
    - Exporter: `describe` registers an export and returns its handle, whose
      capability lets a worker holding the same KV auth key pull it once within
      `ttl_s`; any other pull is refused, saying only "refused". An export is
      single-use: after one successful pull it is gone and every `on_export_done`
      callback has been called once with its request id (the exporter then frees the
      blocks). A failed pull leaves the export in place for a retry. `withdraw`
      forgets it (cancel / TTL); a pull after that fails with
      "unknown or expired KV handle <request_id>" and no callback fires.
    - Exporter blocks must not change between `describe` and the end of the pull
      (or `withdraw`); if they do, the importer sees a checksum mismatch.
    - Importer: `receive` pulls, verifies every block against the handle's checksums,
      and raises KvTransferError on any failure, within `timeout_s`.
    - Callbacks run on the connector's event loop and must not block.
    """

    type_name: ClassVar[str]

    @abstractmethod
    async def start(
        self,
        arena: KvArena,
        worker_id: str,
        host: str = "127.0.0.1",
        auth_key: KvAuthKey | None = None,
        tls: KvTls | None = None,
    ) -> None:
        """Register `arena` with the data plane and bind the control listener on `host`:0.

        `auth_key` signs this worker's capabilities and proves its own pulls; None uses
        a random key of this process (so only connectors in this process can pull).
        `tls`: control connections both ways over mutual TLS (None: plaintext). It
        covers the control channel, and with it tcp's block bytes; Mooncake's and NCCL's
        data planes move bytes on their own transports.
        """

    @property
    @abstractmethod
    def address(self) -> str:
        """ "host:port" of the control listener (after `start`)."""

    @abstractmethod
    def describe(
        self, request_id: str, block_ids: Sequence[int], num_tokens: int, ttl_s: float = 30.0
    ) -> KvHandle:
        """EXPORT `block_ids` (prompt order) for `request_id` and return the pull handle,
        whose capability expires after `ttl_s`.

        Checksums every block now. ValueError for a request id already exported or a
        block id outside the arena; RuntimeError before `start`.
        """

    @abstractmethod
    async def receive(
        self,
        handle: KvHandle,
        dest_block_ids: Sequence[int],
        *,
        skip_blocks: int = 0,
        timeout_s: float = 30.0,
    ) -> int:
        """IMPORT blocks `[skip_blocks:]` of `handle` into `dest_block_ids[skip_blocks:]`.

        Returns the bytes moved. Raises KvTransferError on a checksum mismatch, a peer
        that is gone, an unknown or withdrawn handle, a timeout, or
        `len(dest_block_ids)` differing from the handle's number of blocks.
        """

    @abstractmethod
    def on_export_done(self, callback: Callable[[str], None]) -> None:
        """Call `callback(request_id)` after each export's successful pull."""

    @abstractmethod
    def withdraw(self, request_id: str) -> bool:
        """Forget an export; True if it existed.

        A pull already under way may still succeed (its blocks are checksum-verified
        on arrival), but no `on_export_done` callback fires for a withdrawn export.
        """

    @abstractmethod
    async def close(self) -> None:
        """Stop the listener, unregister the arena, drop peers; idempotent."""
