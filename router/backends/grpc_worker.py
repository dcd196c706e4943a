"""Triskel's own worker protocol (`triskel.v1.Worker` over gRPC) behind `WorkerClient`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from typing import Generic, TypeVar

import grpc

from triskel.common.api import Role, split_address
from triskel.common.grpc_server import MESSAGE_SIZE_OPTIONS
from triskel.router.backends.decode_replies import decode_event, decode_events
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.backends.frame_channel import FrameChannel, FrameStream
from triskel.router.scheduling.types import WorkerLoad
from triskel.router.state.kv_direct import KvEventCall
from triskel.router.types import ImagePart, TokenEvent
from triskel.router.worker_client import (
    CallFailure,
    DecodeCall,
    DecodeEvent,
    DecodeFinished,
    KvTicket,
    PrefillCall,
    PrefillReply,
    WorkerCallError,
    WorkerClient,
    WorkerClosed,
    WorkerIdentity,
)
from triskel.v1 import router_pb2, worker_frames_pb2, worker_pb2, worker_pb2_grpc

_log = logging.getLogger(__name__)

BACKEND = "triskel"
_CANCEL_TIMEOUT_S = 2.0
# A channel replaced after a certificate renewal closes once its calls end, or after
# this long (a long generation's stream; the stats streams reopen on the new channel).
_OLD_CHANNEL_GRACE_S = 300.0


class GrpcWorkerClient(WorkerClient):
    """One channel and stub per worker, and its frame channel when it serves frames
    (Decode, Prefill, Cancel, load and KV events then go there); over TLS with
    `dialing`'s (mTLS with its certificate).

    gRPC channels keep their credentials for every reconnect, so when the TLS files
    are renewed the next call opens a new channel with them and the old one closes
    once its calls end; frame connections opened after a renewal use the new files.
    """

    def __init__(self, address: str, dialing: WorkerDialing | None = None) -> None:
        super().__init__(address)
        self._dialing = dialing or WorkerDialing()
        self._tls = self._dialing.grpc_tls
        self._frames: FrameChannel | None = None
        self._closed = False
        self._tls_generation = 0
        self._channel: grpc.aio.Channel | None = None
        self._stub: worker_pb2_grpc.WorkerStub | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def has_kv_events(self) -> bool:
        return True

    @property
    def serves_frames(self) -> bool:
        """Decode, Prefill, Cancel, load and KV events go to the worker as frames (else
        over gRPC)."""
        return self._frames is not None

    @property
    def stub(self) -> worker_pb2_grpc.WorkerStub:
        if self._stub is None:
            raise RuntimeError(f"worker {self.address} is not connected yet")
        if self._tls is not None and self._tls.credentials()[0] != self._tls_generation:
            self._renew_channel()
        return self._stub

    async def connect(self, timeout_s: float) -> WorkerIdentity:
        if self._channel is None:
            # Created here, not in __init__: a grpc.aio channel binds to the running loop.
            self._channel = self._open_channel()
            self._stub = worker_pb2_grpc.WorkerStub(self._channel)
        with _mapped():
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
        if info.frame_port and self._dialing.frames and self._frames is None:
            self._frames = await self._frame_channel(info.frame_port, timeout_s)
        return self._identity

    async def _frame_channel(self, port: int, timeout_s: float) -> FrameChannel | None:
        host = split_address(self.address)[0].strip("[]")
        channel = FrameChannel(host, port, self._dialing.frame_tls)
        try:
            await channel.connect(timeout_s)
        except WorkerCallError:
            # A worker whose frame port is not reachable (a NetworkPolicy written
            # before frames, a proxy in between) is still served, over gRPC.
            _log.warning(
                "worker %s: its frame port cannot be reached; calling it over gRPC only",
                self.identity.worker_id,
            )
            return None
        return channel

    async def close(self) -> None:
        self._closed = True
        if self._frames is not None:
            await self._frames.close()
        for task in self._closing:
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()

    def _open_channel(self) -> grpc.aio.Channel:
        if self._tls is None:
            return grpc.aio.insecure_channel(self.address, options=MESSAGE_SIZE_OPTIONS)
        self._tls_generation, credentials = self._tls.credentials()
        options = (*MESSAGE_SIZE_OPTIONS, *self._tls.channel_options())
        return grpc.aio.secure_channel(self.address, credentials, options=options)

    def _renew_channel(self) -> None:
        old = self._channel
        self._channel = self._open_channel()
        self._stub = worker_pb2_grpc.WorkerStub(self._channel)
        if old is not None:
            task = asyncio.create_task(old.close(_OLD_CHANNEL_GRACE_S))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def encode(
        self, request_id: str, images: Sequence[ImagePart], timeout_s: float
    ) -> list[tuple[int, ...]]:
        request = worker_pb2.EncodeRequest(
            request_id=request_id,
            images=[
                router_pb2.ImagePart(url=i.url, width_px=i.width_px, height_px=i.height_px)
                for i in images
            ],
        )
        with _mapped():
            response: worker_pb2.EncodeResponse = await self.stub.Encode(request, timeout=timeout_s)
        return [tuple(image.token_ids) for image in response.images]

    async def prefill(self, call: PrefillCall, timeout_s: float) -> PrefillReply:
        request = worker_pb2.PrefillRequest(
            request_id=call.request_id,
            token_ids=call.token_ids,
            max_tokens=call.max_tokens,
            kv_hold_ms=call.kv_hold_ms,
        )
        if call.seed is not None:
            request.seed = call.seed
        if self._frames is not None:
            payload = await self._frame_reply(
                worker_frames_pb2.FrameCall(prefill=request), timeout_s
            )
            response = worker_pb2.PrefillResponse.FromString(payload)
        else:
            with _mapped():
                response = await self.stub.Prefill(request, timeout=timeout_s)
        has_kv = response.HasField("kv")
        return PrefillReply(
            first_token=TokenEvent(response.first_token_text, (response.first_token_id,)),
            num_cached_tokens=response.num_cached_tokens,
            finish_reason=response.finish_reason or None,
            kv=KvTicket(BACKEND, response.kv.connector, response.kv) if has_kv else None,
        )

    def decode(self, call: DecodeCall, timeout_s: float) -> AsyncGenerator[DecodeEvent, None]:
        # The transport's own generator, not one wrapping it: no extra hop per event.
        if self._frames is not None:
            return self._decode_frames(call, timeout_s)
        return self._decode_grpc(call, timeout_s)

    async def _decode_grpc(
        self, call: DecodeCall, timeout_s: float
    ) -> AsyncGenerator[DecodeEvent, None]:
        request = _decode_request(call)
        with _mapped():
            stream = self.stub.Decode(request, timeout=timeout_s)
        try:
            with _mapped():
                async for response in stream:
                    event = decode_event(response)
                    if event is not None:
                        yield event
                    if isinstance(event, DecodeFinished):
                        return
            raise WorkerCallError(CallFailure.UNAVAILABLE, "decode ended without finishing")
        finally:
            stream.cancel()

    async def _decode_frames(
        self, call: DecodeCall, timeout_s: float
    ) -> AsyncGenerator[DecodeEvent, None]:
        request = worker_frames_pb2.FrameCall()
        _fill_decode_request(request.decode, call)  # in place: a message passed is copied
        stream = await self._frame_call(request, timeout_s)
        try:
            while True:
                # With the replies that arrived while the last ones were relayed: their
                # tokens go on as one event (decode_replies).
                for event in decode_events([await _reply(stream), *stream.take_ready()]):
                    if isinstance(event, DecodeFinished):
                        stream.finished()
                        yield event
                        return
                    yield event
        finally:
            stream.close()  # before the end: the worker aborts the request

    async def _frame_call(
        self, call: worker_frames_pb2.FrameCall, timeout_s: float | None
    ) -> FrameStream:
        if self._frames is None or self._closed:
            # Closed under the call: the worker left between its pick and this call.
            raise WorkerClosed()
        return await self._frames.call(call, timeout_s)

    async def _frame_reply(self, call: worker_frames_pb2.FrameCall, timeout_s: float) -> bytes:
        """The one reply of a unary call (prefill, cancel)."""
        stream = await self._frame_call(call, timeout_s)
        try:
            payload = await _reply(stream)
            stream.finished()
            return payload
        finally:
            stream.close()

    async def cancel(self, request_id: str) -> None:
        request = worker_pb2.CancelRequest(request_id=request_id)
        if self._frames is not None:
            with contextlib.suppress(WorkerCallError):
                await self._frame_reply(
                    worker_frames_pb2.FrameCall(cancel=request), _CANCEL_TIMEOUT_S
                )
            return
        with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
            await self.stub.Cancel(request, timeout=_CANCEL_TIMEOUT_S)

    async def watch_load(self, interval_ms: int) -> AsyncIterator[WorkerLoad]:
        request = worker_pb2.StreamStatsRequest(interval_ms=interval_ms)
        reports = self._subscribe(
            worker_frames_pb2.FrameCall(stats=request),
            worker_pb2.WorkerStats.FromString,
            lambda: self.stub.StreamStats(request),
        )
        try:
            async for stats in reports:
                yield WorkerLoad(
                    num_waiting_requests=stats.num_waiting_requests,
                    num_running_requests=stats.num_running_requests,
                    kv_usage=stats.kv_usage,
                    num_tokens_in_flight=stats.num_tokens_in_flight,
                    num_kv_blocks=stats.num_kv_blocks,
                )
        finally:
            reports.cancel()
        raise WorkerCallError(CallFailure.UNAVAILABLE, "the stats stream ended")

    def kv_events(self) -> KvEventCall:
        request = worker_pb2.StreamKvEventsRequest()
        return self._subscribe(
            worker_frames_pb2.FrameCall(kv_events=request),
            worker_pb2.KvEventBatch.FromString,
            lambda: self.stub.StreamKvEvents(request),
        )

    def _subscribe(
        self,
        call: worker_frames_pb2.FrameCall,
        parse: Callable[[bytes], _M],
        open_grpc: Callable[[], grpc.aio.UnaryStreamCall],
    ) -> _Subscription[_M]:
        if self._frames is not None:
            return _FrameSubscription(lambda: self._frame_call(call, None), parse)
        return GrpcSubscription(open_grpc)


_M = TypeVar("_M")


class _Subscription(ABC, Generic[_M]):
    """Reports or batches until the worker ends the stream, over either transport;
    opened when first iterated, errors as WorkerCallError (WorkerClosed once the client
    is closed); `cancel` ends it on the worker. kv_direct.py's KvEventCall."""

    def __aiter__(self) -> AsyncIterator[_M]:
        return self._iterate()

    @abstractmethod
    def _iterate(self) -> AsyncIterator[_M]: ...

    @abstractmethod
    def cancel(self) -> bool: ...


class _FrameSubscription(_Subscription[_M]):
    def __init__(
        self, open_stream: Callable[[], Awaitable[FrameStream]], parse: Callable[[bytes], _M]
    ) -> None:
        self._open, self._parse = open_stream, parse
        self._stream: FrameStream | None = None

    async def _iterate(self) -> AsyncIterator[_M]:
        stream = self._stream = await self._open()
        try:
            while (payload := await stream.next()) is not None:
                yield self._parse(payload)
        finally:
            stream.close()

    def cancel(self) -> bool:
        if self._stream is not None:
            self._stream.close()  # a RESET, unless the worker ended it
        return True


class GrpcSubscription(_Subscription[_M]):
    def __init__(self, open_call: Callable[[], grpc.aio.UnaryStreamCall]) -> None:
        self._open = open_call
        self._call: grpc.aio.UnaryStreamCall | None = None

    async def _iterate(self) -> AsyncIterator[_M]:
        with _mapped():
            self._call = self._open()
            async for message in self._call:
                yield message

    def cancel(self) -> bool:
        return self._call.cancel() if self._call is not None else True


async def _reply(stream: FrameStream) -> bytes:
    payload = await stream.next()
    if payload is None:
        raise WorkerCallError(CallFailure.UNAVAILABLE, "the worker ended the call without a reply")
    return payload


def _decode_request(call: DecodeCall) -> worker_pb2.DecodeRequest:
    """The call as its message; WorkerCallError (INVALID_ARGUMENT) for another backend's KV."""
    request = worker_pb2.DecodeRequest()
    _fill_decode_request(request, call)
    return request


def _fill_decode_request(request: worker_pb2.DecodeRequest, call: DecodeCall) -> None:
    request.request_id = call.request_id
    request.token_ids.extend(call.token_ids)
    request.max_tokens = call.max_tokens
    request.ignore_eos = call.ignore_eos
    if call.seed is not None:
        request.seed = call.seed
    if call.kv is not None:
        request.kv.CopyFrom(_handle_of(call.kv))
        request.first_token_id = call.first_token_id or 0


def _handle_of(ticket: KvTicket) -> worker_pb2.KvHandle:
    if ticket.backend != BACKEND or not isinstance(ticket.payload, worker_pb2.KvHandle):
        raise WorkerCallError(
            CallFailure.INVALID_ARGUMENT,
            f"a {ticket.backend} prefill's KV cannot be decoded by a Triskel-protocol worker",
            "kv",
        )
    return ticket.payload


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise _call_error(error) from None
    except grpc.aio.UsageError:
        # The channel was closed under the call: the worker left (scale-in, a failed
        # health check) between its pick and this call. Retriable, as a worker that is
        # gone is, before the first token.
        raise WorkerClosed() from None


def _call_error(error: grpc.aio.AioRpcError) -> WorkerCallError:
    code = error.code()
    details = error.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        # The worker knows limits the router could not check (its own context window).
        field_name, _, message = details.partition(": ")
        if message:
            return WorkerCallError(CallFailure.INVALID_ARGUMENT, message, field_name)
        return WorkerCallError(CallFailure.INVALID_ARGUMENT, details, "request")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return WorkerCallError(CallFailure.TIMEOUT, details)
    return WorkerCallError(CallFailure.UNAVAILABLE, details)
