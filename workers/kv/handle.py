"""`KvHandle`: everything a decode worker needs to pull a prompt's KV from its exporter.

The prefill worker's connector makes one in `describe`; the router copies it, opaque,
from the prefill response into the decode request (`triskel.v1.worker_pb2.KvHandle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from triskel.v1 import worker_pb2


@dataclass(frozen=True, slots=True)
class KvHandle:
    """Where an exported prompt's KV lives and how to check it.

    `block_checksums` holds one XXH3-64 per block in prompt order; its length is the
    number of blocks. `params` are transport specifics (e.g. a handshake port).
    `capability` is the exporter's token for this export (see `capability`): the
    right to pull it once, before it expires; a secret while it lives.
    """

    request_id: str
    worker_id: str
    connector: str
    # "host:port" of the exporter's control listener.
    address: str
    num_tokens: int
    block_bytes: int
    block_checksums: tuple[int, ...]
    params: Mapping[str, str] = field(default_factory=dict)
    capability: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.num_tokens < 0:
            raise ValueError(f"KvHandle.num_tokens must be >= 0, got {self.num_tokens}")
        if self.block_bytes < 1:
            raise ValueError(f"KvHandle.block_bytes must be >= 1, got {self.block_bytes}")
        # Own copies: a caller mutating its dict or list must not change the handle.
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "block_checksums", tuple(self.block_checksums))

    @property
    def num_blocks(self) -> int:
        return len(self.block_checksums)

    @property
    def total_bytes(self) -> int:
        return self.num_blocks * self.block_bytes

    def to_proto(self) -> worker_pb2.KvHandle:
        return worker_pb2.KvHandle(
            request_id=self.request_id,
            worker_id=self.worker_id,
            connector=self.connector,
            address=self.address,
            num_tokens=self.num_tokens,
            block_bytes=self.block_bytes,
            block_checksums=list(self.block_checksums),
            params=dict(self.params),
            capability=self.capability,
        )

    @classmethod
    def from_proto(cls, msg: worker_pb2.KvHandle) -> KvHandle:
        """Raises ValueError naming the field when the message is not a usable handle."""
        for name in ("request_id", "connector", "address"):
            if not getattr(msg, name):
                raise ValueError(f"KvHandle.{name} is empty")
        return cls(
            request_id=msg.request_id,
            worker_id=msg.worker_id,
            connector=msg.connector,
            address=msg.address,
            num_tokens=msg.num_tokens,
            block_bytes=msg.block_bytes,
            block_checksums=tuple(msg.block_checksums),
            params=dict(msg.params),
            capability=msg.capability,
        )
