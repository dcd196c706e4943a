"""Asking a local worker to change role (`triskel.v1.Worker/SwitchRole`), for `up`'s pools."""

from __future__ import annotations

import grpc

from triskel.common.api import Role
from triskel.v1 import worker_pb2, worker_pb2_grpc

# Beyond the worker's own drain bound: the call's own round trip and the switch.
_CALL_SLACK_S = 10.0


class RoleSwitchError(RuntimeError):
    """The worker did not switch (still busy at its drain bound, or unreachable); the
    message is the worker's."""


async def switch_role(address: str, role: Role, drain_timeout_s: float) -> float:
    """Switches the worker at `address` to `role` once its work in flight has ended
    (at most `drain_timeout_s`); the seconds it waited. RoleSwitchError if it did not."""
    request = worker_pb2.SwitchRoleRequest(
        role=str(role), drain_timeout_ms=round(drain_timeout_s * 1000)
    )
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await worker_pb2_grpc.WorkerStub(channel).SwitchRole(
                request, timeout=drain_timeout_s + _CALL_SLACK_S
            )
        except grpc.aio.AioRpcError as error:
            raise RoleSwitchError(error.details() or str(error.code())) from None
    return float(reply.drained_ms) / 1000
