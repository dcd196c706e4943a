"""Turn the prompt's images into embedding tokens on an encode worker (EPD's E stage)."""

from __future__ import annotations

from triskel.router.dispatcher import Dispatcher
from triskel.router.scheduling.types import Stage
from triskel.router.stages.base import RequestContext
from triskel.router.types import ImagePart, ServiceError
from triskel.router.unavailable import unavailable
from triskel.router.worker_calls import WorkerCalls


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
            raise ServiceError(
                f"model {pools.model} takes no images here: no image encoder is deployed; "
                "send text only"
            )
        picked = await self._dispatcher.pick(Stage.ENCODE, ctx, pools.encoders)
        self._dispatcher.sent(ctx, picked)
        worker = picked.worker
        timeout_s = self._dispatcher.table.for_model(pools.model).settings.timeouts.encode_s
        async with self._calls.call(worker, Stage.ENCODE) as guard:
            ctx.image_token_ids = await guard.wait(
                worker.encode(ctx.request.request_id, images, timeout_s)
            )
        if len(ctx.image_token_ids) != len(images):
            raise unavailable(
                f"encoding the images for model {pools.model} failed",
                f"worker {worker.worker_id} returned {len(ctx.image_token_ids)} embeddings "
                f"for {len(images)} images",
            )
