"""Worker clients with a known identity and no server, for pure router tests."""

from __future__ import annotations

from triskel.common.api import Role
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.worker_client import WorkerClient, WorkerIdentity


def fake_worker(
    worker_id: str, role: Role, model: str = "m", block: int = 16, ctx: int = 8192
) -> WorkerClient:
    client = GrpcWorkerClient("127.0.0.1:1")
    client._identity = WorkerIdentity(  # what connect() would have learned
        worker_id=worker_id,
        address="127.0.0.1:1",
        role=role,
        model=model,
        profile="llama-3.1-8b-h100",
        block_size_tokens=block,
        max_context_tokens=ctx,
        kv_connector="tcp",
        hash_salt="",
    )
    return client
