"""The router's gRPC front as a bench target: `triskel.v1.Router/Generate` with token ids.

Each request sends `prompt_token_ids`, `max_tokens` = the trace's output length
and `ignore_eos`; the last message's usage gives the token count and the
prefix-cache hits (`cached_prompt_tokens`).
"""

from __future__ import annotations

import grpc

from triskel.simulator.bench.outcome import Outcome, RequestFailed, StreamTimes
from triskel.simulator.bench.plan import BenchRequest
from triskel.simulator.bench.target import Clock, TargetError
from triskel.v1 import router_pb2, router_pb2_grpc

LIST_MODELS_TIMEOUT_S = 10.0


class GrpcTarget:
    """Implements `Target` over one channel (made on first use, in the running loop)."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._channel: grpc.aio.Channel | None = None
        self._stub: router_pb2_grpc.RouterStub | None = None

    async def list_models(self) -> list[str]:
        try:
            reply = await self._router().ListModels(
                router_pb2.ListModelsRequest(), timeout=LIST_MODELS_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            raise TargetError(
                f"cannot reach the router at grpc://{self._address}: "
                f"{error.code().name}: {error.details()}"
            ) from None
        return [model.name for model in reply.models]

    async def generate(self, request: BenchRequest, model: str, clock: Clock) -> Outcome:
        message = router_pb2.GenerateRequest(
            model=model,
            prompt_token_ids=router_pb2.TokenIds(ids=request.prompt_token_ids),
            max_tokens=request.num_output_tokens,
            ignore_eos=True,
        )
        times = StreamTimes()
        finished: router_pb2.Finished | None = None
        call = self._router().Generate(message)
        try:
            async for response in call:
                now_s = clock()
                if response.HasField("chunk"):
                    times.on_tokens(len(response.chunk.token_ids), now_s)
                else:
                    finished = response.finished
        except grpc.aio.AioRpcError as error:
            raise RequestFailed(f"{error.code().name}: {error.details()}") from None
        finally:
            # A no-op once the stream is done; frees the call when the caller gave up.
            call.cancel()
        if finished is None:
            raise RequestFailed("the stream ended without its Finished message")
        usage = finished.usage
        return times.outcome(usage.completion_tokens, usage.cached_prompt_tokens)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel, self._stub = None, None

    def _router(self) -> router_pb2_grpc.RouterStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self._address)
            self._stub = router_pb2_grpc.RouterStub(self._channel)
        return self._stub
