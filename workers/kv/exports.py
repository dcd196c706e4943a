"""The exporter's bookkeeping: which requests' blocks may be pulled, and by whom now.

Pure state, no I/O. An export goes

    add ──► available ──claim──► in flight ──complete──► gone (done callbacks fire)
                ▲                    │
                └─────release────────┘        withdraw: gone from either state

so a failed pull can be retried, two pulls of one export never run at once, and a
withdrawn export never reports done (its owner has already freed the blocks).
Each export keeps its capability's nonce: a claim must name it, so a token minted
for an earlier export of the same request id claims nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


class ExportUnavailable(Exception):
    """The export cannot be pulled now; the message names the request id and why."""


@dataclass(slots=True)
class Export:
    request_id: str
    block_ids: tuple[int, ...]
    block_checksums: tuple[int, ...]
    capability_nonce: bytes
    is_in_flight: bool = False

    @property
    def num_blocks(self) -> int:
        return len(self.block_ids)


class ExportTable:
    """Exports by request id, plus the callbacks fired when one completes."""

    def __init__(self) -> None:
        self._exports: dict[str, Export] = {}
        self._done_callbacks: list[Callable[[str], None]] = []

    def __len__(self) -> int:
        return len(self._exports)

    def add(
        self,
        request_id: str,
        block_ids: Sequence[int],
        block_checksums: Sequence[int],
        capability_nonce: bytes,
    ) -> Export:
        if request_id in self._exports:
            raise ValueError(f"request_id {request_id!r} is already exported")
        if len(block_ids) != len(block_checksums):
            raise ValueError(
                f"{len(block_ids)} block ids but {len(block_checksums)} checksums "
                f"for request {request_id!r}"
            )
        export = Export(request_id, tuple(block_ids), tuple(block_checksums), capability_nonce)
        self._exports[request_id] = export
        return export

    def claim(self, request_id: str, capability_nonce: bytes) -> Export:
        """Mark the export in flight for one pull; ExportUnavailable if it cannot be."""
        export = self._exports.get(request_id)
        if export is None:
            raise ExportUnavailable(f"unknown or expired KV handle {request_id}")
        if export.capability_nonce != capability_nonce:
            raise ExportUnavailable(f"KV handle {request_id} is for an earlier export")
        if export.is_in_flight:
            raise ExportUnavailable(f"KV handle {request_id} is already being pulled")
        export.is_in_flight = True
        return export

    def release(self, export: Export) -> None:
        """The pull failed: make the export available again (unless withdrawn)."""
        export.is_in_flight = False

    def complete(self, export: Export) -> bool:
        """The pull succeeded: drop the export and fire the callbacks.

        Returns False (and fires nothing) when the export was withdrawn meanwhile.
        """
        if self._exports.get(export.request_id) is not export:
            return False
        del self._exports[export.request_id]
        for callback in list(self._done_callbacks):
            try:
                callback(export.request_id)
            except Exception:
                # One broken listener must not stop the others from freeing blocks.
                log.exception("export-done callback failed for %s", export.request_id)
        return True

    def withdraw(self, request_id: str) -> bool:
        return self._exports.pop(request_id, None) is not None

    def on_done(self, callback: Callable[[str], None]) -> None:
        self._done_callbacks.append(callback)

    def clear(self) -> None:
        self._exports.clear()
