"""A gRPC client for one worker, as the router sees it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from triskel.common.api import Role
from triskel.common.grpc_server import MESSAGE_SIZE_OPTIONS
from triskel.v1 import worker_pb2, worker_pb2_grpc


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


class WorkerClient:
    """One channel and stub per worker; `connect` learns the worker's identity."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel: grpc.aio.Channel | None = None
        self._stub: worker_pb2_grpc.WorkerStub | None = None
        self._identity: WorkerIdentity | None = None

    @property
    def stub(self) -> worker_pb2_grpc.WorkerStub:
        if self._stub is None:
            raise RuntimeError(f"worker {self.address} is not connected yet")
        return self._stub

    @property
    def identity(self) -> WorkerIdentity:
        if self._identity is None:
            raise RuntimeError(f"worker {self.address} is not connected yet")
        return self._identity

    @property
    def worker_id(self) -> str:
        return self.identity.worker_id

    async def connect(self, timeout_s: float = 10.0) -> WorkerIdentity:
        """Waits for the worker and fetches its identity; raises grpc.aio.AioRpcError."""
        if self._channel is None:
            # Created here, not in __init__: a grpc.aio channel binds to the running loop.
            self._channel = grpc.aio.insecure_channel(self.address, options=MESSAGE_SIZE_OPTIONS)
            self._stub = worker_pb2_grpc.WorkerStub(self._channel)
        info: worker_pb2.WorkerInfo = await self.stub.GetInfo(
            worker_pb2.GetInfoRequest(), timeout=timeout_s, wait_for_ready=True
        )
        self._identity = WorkerIdentity(
            worker_id=info.worker_id,
            address=self.address,
            role=Role(info.role),
            model=info.model,
            profile=info.profile,
            block_size_tokens=info.block_size_tokens,
            max_context_tokens=info.max_context_tokens,
            kv_connector=info.kv_connector,
            hash_salt=info.hash_salt,
        )
        return self._identity

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
