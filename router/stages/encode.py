"""Turn the prompt's images into embedding tokens on an encode worker (EPD's E stage)."""

from __future__ import annotations

from triskel.router.dispatcher import Dispatcher
from triskel.router.scheduling.types import Stage
from triskel.router.stages.base import RequestContext
from triskel.router.types import ImagePart, ServiceError
from triskel.router.worker_calls import WorkerCalls
from triskel.v1 import router_pb2, worker_pb2


class EncodeStage:
    name = "encode"

    def __init__(self, dispatcher: Dispatcher, calls: WorkerCalls) -> None:
        self._dispatcher = dispatcher
        self._calls = calls

    async def run(self, ctx: RequestContext) -> None:
        images = [s for s in ctx.segments if isinstance(s, ImagePart)]
        if not images:
            return
        pools = ctx.model_pools
        if not pools.encoders:
            raise ServiceError(f"model {pools.model} has no encode or unified workers for images")
        worker = await self._dispatcher.pick(Stage.ENCODE, ctx, pools.encoders)
        request = worker_pb2.EncodeRequest(
            request_id=ctx.request.request_id,
            images=[
                router_pb2.ImagePart(url=i.url, width_px=i.width_px, height_px=i.height_px)
                for i in images
            ],
        )
        async with self._calls.call(worker, Stage.ENCODE):
            response: worker_pb2.EncodeResponse = await worker.stub.Encode(
                request, timeout=self._calls.timeouts.encode_s
            )
        ctx.image_token_ids = [tuple(image.token_ids) for image in response.images]
        if len(ctx.image_token_ids) != len(images):
            raise ServiceError(
                f"encode worker {worker.worker_id} returned {len(ctx.image_token_ids)} "
                f"embeddings for {len(images)} images"
            )
