"""The worker's gRPC server: `triskel.v1.Worker` as a thin shell over an `Engine`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from triskel.common.api import Role
from triskel.common.grpc_server import start_server
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers import calls
from triskel.workers.api import (
    SWITCHABLE_ROLES,
    Engine,
    EngineFailure,
    EngineInputError,
    EngineRoleError,
    ImageInput,
    WorkerDescription,
)
from triskel.workers.drain import drain

_SERVICE_NAME = "triskel.v1.Worker"


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    def __init__(self, engine: Engine, frame_port: int = 0) -> None:
        self._engine = engine
        self._frame_port = frame_port

    async def GetInfo(
        self, request: worker_pb2.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.WorkerInfo:
        return _worker_info(self._engine.description, self._frame_port)

    async def SwitchRole(
        self, request: worker_pb2.SwitchRoleRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.SwitchRoleResponse:
        loop = asyncio.get_running_loop()
        started_s = loop.time()
        async with _mapped_errors(context):
            role = _switch_target(request.role)
            if not await drain(self._engine, request.drain_timeout_ms / 1000):
                raise EngineRoleError(
                    f"work still in flight after the {request.drain_timeout_ms} ms drain; "
                    "the role is unchanged"
                )
            # No await between the drain and the switch: nothing can arrive in between.
            description = self._engine.switch_role(role)
        return worker_pb2.SwitchRoleResponse(
            info=_worker_info(description, self._frame_port),
            drained_ms=(loop.time() - started_s) * 1000,
        )

    async def Encode(
        self, request: worker_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.EncodeResponse:
        images = [ImageInput(i.url, i.width_px, i.height_px) for i in request.images]
        async with _mapped_errors(context):
            result = await self._engine.encode(request.request_id, images)
        return worker_pb2.EncodeResponse(
            images=[worker_pb2.EncodedImage(token_ids=ids) for ids in result.token_ids_per_image],
            elapsed_ms=result.elapsed_ms,
        )

    async def Prefill(
        self, request: worker_pb2.PrefillRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.PrefillResponse:
        async with _mapped_errors(context):
            response = await calls.prefill(self._engine, request)
        return response

    async def Decode(
        self, request: worker_pb2.DecodeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.DecodeResponse]:
        # A cancelled call closes the stream too, which aborts the request.
        async with (
            _mapped_errors(context),
            contextlib.aclosing(calls.decode(self._engine, request)) as responses,
        ):
            async for response in responses:
                yield response

    async def Cancel(
        self, request: worker_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.CancelResponse:
        return await calls.cancel(self._engine, request)

    async def StreamStats(
        self, request: worker_pb2.StreamStatsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.WorkerStats]:
        async with contextlib.aclosing(calls.stats(self._engine, request)) as reports:
            async for report in reports:
                yield report

    async def StreamKvEvents(
        self, request: worker_pb2.StreamKvEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.KvEventBatch]:
        async with contextlib.aclosing(calls.kv_events(self._engine)) as batches:
            async for batch in batches:
                yield batch


def _worker_info(d: WorkerDescription, frame_port: int) -> worker_pb2.WorkerInfo:
    return worker_pb2.WorkerInfo(
        worker_id=d.worker_id,
        role=str(d.role),
        model=d.model,
        profile=d.profile,
        block_size_tokens=d.block_size_tokens,
        max_context_tokens=d.max_context_tokens,
        kv_connector=d.kv_connector,
        num_kv_blocks=d.num_kv_blocks,
        hash_salt=d.hash_salt,
        frame_port=frame_port,
    )


def _switch_target(role: str) -> Role:
    """The role asked for; EngineInputError names the field and the choices."""
    for target in SWITCHABLE_ROLES:
        if str(target) == role:
            return target
    names = ", ".join(sorted(str(r) for r in SWITCHABLE_ROLES))
    raise EngineInputError("role", f"must be one of {names}, got {role!r}")


@contextlib.asynccontextmanager
async def _mapped_errors(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    """Engine errors become gRPC statuses with their message; nothing else leaks."""
    try:
        yield
    except EngineInputError as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    except EngineRoleError as error:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
    except EngineFailure as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


async def start_worker_server(
    engine: Engine,
    address: str,
    credentials: grpc.ServerCredentials | None = None,
    frame_port: int = 0,
) -> tuple[grpc.aio.Server, int]:
    """Serves `engine` on `address` (port 0 picks one) with health and reflection, over
    TLS with `credentials` (mTLS when they require client certificates); `frame_port`
    is advertised in GetInfo (0: the worker serves no frames)."""
    servicer = WorkerServicer(engine, frame_port)
    return await start_server(
        lambda server: worker_pb2_grpc.add_WorkerServicer_to_server(servicer, server),
        _SERVICE_NAME,
        address,
        credentials,
    )
