"""The CPU mock engine: the pure `EngineCore` driven in real time, with real KV bytes.

One asyncio task runs the engine loop, `step → wait the modelled time → deliver`,
exactly as a GPU engine would run its forward passes. Requests talk to the loop
through one queue each. KV bytes live in a `KvArena`; a prefill writes its
blocks there and exports them through the connector, a remote-KV decode pulls
them into its own blocks before it joins the running batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from triskel.common.api import Role
from triskel.common.articles import with_article
from triskel.common.hashing import BlockHash, hash_block, hash_blocks, root_hash
from triskel.common.kv_tiers import KvMedium
from triskel.common.latency import encode_ms
from triskel.common.request_limits import ImageSize, LimitError, check_image_sizes
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import (
    SWITCHABLE_ROLES,
    DecodeDone,
    DecodeEvent,
    DecodeParams,
    EncodeResult,
    EngineFailure,
    EngineInputError,
    EngineKvGone,
    EngineKvPullFailed,
    EngineRoleError,
    ImageInput,
    KvEventBatch,
    KvReceived,
    LoadSnapshot,
    PrefillResult,
    Tokens,
    WorkerDescription,
)
from triskel.workers.drain import work_in_flight
from triskel.workers.engine.core import EngineConfig, EngineCore, KvLoad, RequestOutput
from triskel.workers.engine.encoder import image_token_ids
from triskel.workers.engine.request import EngineRequest
from triskel.workers.engine.validation import KvCapacityError
from triskel.workers.kv.arena import KvArena
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.connector import KvConnector, KvHandleGone, KvTransferError
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv_events import KvEventHub

log = logging.getLogger(__name__)

_PREFILL_ROLES = (Role.PREFILL, Role.UNIFIED)
# How late a step may start and still be timed from where the previous step ended
# (timer overshoot plus the core's own CPU time); see _run_loop.
_MAX_STEP_LAG_S = 0.005
_DECODE_ROLES = (Role.DECODE, Role.UNIFIED)
_ENCODE_ROLES = (Role.ENCODE, Role.UNIFIED)


@dataclass(frozen=True, slots=True)
class MockEngineSettings:
    worker_id: str
    role: Role
    # Wall-clock seconds per modelled second (0.1 = ten times faster than the GPU).
    time_scale: float = 1.0
    default_kv_hold_ms: int = 30_000
    # Address the KV connector binds and advertises to peers (a pod's IP in a cluster).
    kv_host: str = "127.0.0.1"
    # The graph's KV key (capabilities and pull proofs); None: a key of this process only.
    kv_auth_key: KvAuthKey | None = None
    # Mutual TLS on KV control connections (None: plaintext).
    kv_tls: KvTls | None = None


class _Failed:
    """A failure delivered through a request's queue."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_QueueItem = RequestOutput | KvReceived | _Failed


class MockEngine:
    """Implements `triskel.workers.api.Engine` over the mock `EngineCore`."""

    def __init__(
        self,
        settings: MockEngineSettings,
        core: EngineCore,
        arena: KvArena,
        connector: KvConnector,
        tokenizer: MockTokenizer | None = None,
    ) -> None:
        self._settings = settings
        self._core = core
        self._arena = arena
        self._connector = connector
        self._tokenizer = tokenizer or MockTokenizer()
        self._queues: dict[str, asyncio.Queue[_QueueItem]] = {}
        self._hold_timers: dict[str, asyncio.TimerHandle] = {}
        self._pull_tasks: set[asyncio.Task[None]] = set()
        self._kv_handles: dict[str, DecodeParams] = {}
        self._events = KvEventHub()
        self._wakeup = asyncio.Event()
        self._encode_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        # Requests that left the running batch in the step being modelled (see _run_loop).
        self._leaving_batch: set[str] = set()
        self._prefill_ids: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def description(self) -> WorkerDescription:
        config = self._core.config
        return WorkerDescription(
            worker_id=self._settings.worker_id,
            role=self._settings.role,
            model=config.model,
            profile=config.profile.name,
            block_size_tokens=config.block_size_tokens,
            max_context_tokens=self._max_context_tokens,
            kv_connector=self._connector.type_name,
            num_kv_blocks=config.num_kv_blocks,
            hash_salt=config.hash_salt,
        )

    @property
    def _max_context_tokens(self) -> int:
        """The longest prompt plus completion this worker can hold: the model's window, or
        less when one sequence's KV share is smaller (vLLM refuses to start then; the mock
        serves the shorter window and says so, so routers refuse longer prompts up front
        instead of prefilling them for a decode worker that cannot take them)."""
        config = self._core.config
        per_sequence_blocks = config.num_kv_blocks // config.num_ep_ranks
        return min(
            config.profile.max_context_tokens, per_sequence_blocks * config.block_size_tokens
        )

    async def start(self) -> None:
        settings = self._settings
        await self._connector.start(
            self._arena,
            settings.worker_id,
            settings.kv_host,
            auth_key=settings.kv_auth_key,
            tls=settings.kv_tls,
        )
        self._connector.on_export_done(self._release_export)
        self._loop_task = asyncio.create_task(self._run_loop(), name="engine-loop")

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in list(self._pull_tasks):
            task.cancel()
        for timer in self._hold_timers.values():
            timer.cancel()
        self._hold_timers.clear()
        for queue in self._queues.values():
            queue.put_nowait(_Failed(EngineFailure("worker shutting down")))
        self._events.close()
        await self._connector.close()
        self._arena.close()

    # -- the engine loop --------------------------------------------------------

    async def _run_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # Where the previous step ended on the modelled timeline; None after idling.
        step_end_s: float | None = None
        while True:
            if not self._core.has_unfinished_work():
                self._wakeup.clear()
                await self._wakeup.wait()
                step_end_s = None
                continue
            # A step that follows another starts where that one ended, not when this
            # loop got round to it: sleeps overshoot (asyncio rounds timeouts up to the
            # millisecond) and the core's CPU time would otherwise add ~1 ms to every
            # ~8 ms decode step. A lag past the slack (a starved CPU) is not caught up.
            now_s = loop.time()
            if step_end_s is None or now_s - step_end_s > _MAX_STEP_LAG_S:
                step_end_s = now_s
            result = self._core.step()
            step_end_s += result.duration_ms / 1000 * self._settings.time_scale
            # The core finishes a step at once; a GPU takes the modelled time. Until the
            # outputs are delivered, requests that finished (or finished prefill and now
            # hold KV) in this step still count as running.
            self._leaving_batch = {
                o.request_id
                for o in result.outputs
                if o.finish_reason is not None or o.request_id in self._prefill_ids
            }
            self._start_kv_pulls(self._core.take_kv_loads())
            self._publish_kv_events()
            await asyncio.sleep(max(0.0, step_end_s - loop.time()))
            self._leaving_batch = set()
            for output in result.outputs:
                queue = self._queues.get(output.request_id)
                if queue is not None:
                    queue.put_nowait(output)

    def _submit(self, request: EngineRequest) -> asyncio.Queue[_QueueItem]:
        try:
            self._core.add_request(request)
        except ValueError as error:
            if isinstance(error, KvCapacityError):
                log.info("refused %s: %s", request.request_id, error.detail)
            field_name, _, message = str(error).partition(": ")
            raise EngineInputError(field_name, message or str(error)) from error
        queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._queues[request.request_id] = queue
        self._wakeup.set()
        return queue

    def _wake_after_kv_change(self) -> None:
        """After blocks were freed (release, abort, failed pull) or a pull finished:
        publishes the KV events and wakes the loop. A loop that found nothing to
        schedule sleeps until woken, so without this, requests waiting for blocks a
        hold just gave back would wait for the next request to arrive, or forever."""
        self._publish_kv_events()
        self._wakeup.set()

    def _publish_kv_events(self) -> None:
        events = self._core.drain_kv_events()
        if events:
            self._events.publish(events)

    # -- encode -----------------------------------------------------------------

    async def encode(self, request_id: str, images: Sequence[ImageInput]) -> EncodeResult:
        self._require_role(_ENCODE_ROLES, "Encode")
        if not images:
            raise EngineInputError("images", "at least one image is required")
        sizes = [ImageSize(f"images[{i}]", x.width_px, x.height_px) for i, x in enumerate(images)]
        try:  # before any hashing: a huge image would take seconds and gigabytes
            check_image_sizes(sizes, "images")
        except LimitError as error:
            raise EngineInputError(error.field_name, error.message) from None
        started = time.perf_counter()
        coefficients = self._core.config.profile.encode
        per_image = tuple(
            tuple(image_token_ids(image.url, image.width_px, image.height_px, coefficients))
            for image in images
        )
        num_tokens = sum(len(tokens) for tokens in per_image)
        # One vision encoder per worker: images are encoded one request at a time.
        async with self._encode_lock:
            await asyncio.sleep(encode_ms(coefficients, num_tokens) / 1000 * self._time_scale)
        return EncodeResult(per_image, (time.perf_counter() - started) * 1000)

    # -- prefill ----------------------------------------------------------------

    async def prefill(
        self,
        request_id: str,
        prompt_token_ids: Sequence[int],
        max_tokens: int,
        kv_hold_ms: int,
        seed: int | None = None,
    ) -> PrefillResult:
        self._require_role(_PREFILL_ROLES, "Prefill")
        started = time.perf_counter()
        request = EngineRequest(
            request_id=request_id,
            prompt_token_ids=list(prompt_token_ids),
            max_tokens=max_tokens,
            prefill_only=True,
            seed=seed,
        )
        queue = self._submit(request)
        self._prefill_ids.add(request_id)
        try:
            output = await self._next_output(queue)
        except BaseException:
            self._abort(request_id)
            raise
        finally:
            self._queues.pop(request_id, None)
            self._prefill_ids.discard(request_id)
        if not output.is_prefill_done or not output.new_token_ids:
            self._abort(request_id)
            raise EngineFailure(f"prefill of {request_id} ended without a first token")
        first_token = output.new_token_ids[0]
        handle = None
        block_ids: tuple[int, ...] = ()
        if output.finish_reason is None:
            block_ids = tuple(self._core.held_block_ids(request_id))
            handle = self._export_kv(request, kv_hold_ms or self._settings.default_kv_hold_ms)
        else:
            self._core.release_kv(request_id)
            self._wake_after_kv_change()
        return PrefillResult(
            first_token_id=first_token,
            first_token_text=self._tokenizer.decode([first_token]),
            num_cached_tokens=output.num_cached_tokens,
            kv=handle,
            finish_reason=output.finish_reason,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            kv_block_ids=block_ids,
        )

    def _export_kv(self, request: EngineRequest, hold_ms: int) -> KvHandle:
        block_ids = self._core.held_block_ids(request.request_id)
        seeds = self._block_seeds(request.prompt_token_ids, len(block_ids))
        for block_id, seed in zip(block_ids, seeds, strict=True):
            self._arena.fill_block(block_id, seed)
        # The capability lives as long as the hold: a pull after it finds nothing anyway.
        handle = self._connector.describe(
            request.request_id, block_ids, len(request.prompt_token_ids), ttl_s=hold_ms / 1000
        )
        loop = asyncio.get_running_loop()
        self._hold_timers[request.request_id] = loop.call_later(
            hold_ms / 1000, self._expire_export, request.request_id
        )
        return handle

    def _block_seeds(self, token_ids: Sequence[int], num_blocks: int) -> list[BlockHash]:
        """Content seeds per block: a block's KV depends on every token up to its end."""
        config = self._core.config
        size = config.block_size_tokens
        seeds = hash_blocks(token_ids, size, config.model, config.hash_salt)
        if len(seeds) < num_blocks:  # a partial last block
            parent = seeds[-1] if seeds else root_hash(config.model, config.hash_salt)
            seeds.append(hash_block(parent, token_ids[len(seeds) * size :]))
        return seeds

    def _release_export(self, request_id: str) -> None:
        timer = self._hold_timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()
        self._core.release_kv(request_id)
        self._wake_after_kv_change()

    def _expire_export(self, request_id: str) -> None:
        self._hold_timers.pop(request_id, None)
        if self._connector.withdraw(request_id):
            log.warning("KV of %s was not pulled in time; freed", request_id)
            self._core.release_kv(request_id)
            self._wake_after_kv_change()

    # -- decode -----------------------------------------------------------------

    async def decode(self, params: DecodeParams) -> AsyncIterator[DecodeEvent]:
        self._require_role(_DECODE_ROLES, "Decode")
        if params.kv is not None and params.first_token_id is None:
            raise EngineInputError("first_token_id", "required when a KV handle is given")
        request = EngineRequest(
            request_id=params.request_id,
            prompt_token_ids=list(params.prompt_token_ids),
            max_tokens=params.max_tokens,
            ignore_eos=params.ignore_eos,
            remote_kv=params.kv is not None,
            first_token_id=params.first_token_id,
            seed=params.seed,
        )
        if params.kv is not None:
            self._kv_handles[params.request_id] = params
        queue = self._submit(request)
        num_generated = 0
        finished = False
        held: _QueueItem | None = None  # taken while coalescing, not of the tokens
        try:
            while True:
                item = held if held is not None else await queue.get()
                held = None
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, KvReceived):
                    yield item
                    continue
                if item.finish_reason == "error":
                    raise EngineFailure(f"request {params.request_id} failed in the engine")
                num_cached_tokens = item.num_cached_tokens
                token_ids = list(item.new_token_ids)
                # Tokens the engine made while the last ones were being sent go out as
                # one event (one message, one chunk), as vLLM's stream does per step.
                while item.finish_reason is None and not queue.empty():
                    following = queue.get_nowait()
                    if isinstance(following, (_Failed, KvReceived)):
                        held = following
                        break
                    if following.finish_reason == "error":
                        held = following
                        break
                    token_ids += following.new_token_ids
                    item = following
                if token_ids:
                    is_first = num_generated == 0
                    num_generated += len(token_ids)
                    yield Tokens(
                        tuple(token_ids),
                        self._tokenizer.decode(token_ids),
                        num_cached_tokens if is_first else None,
                    )
                if item.finish_reason is not None:
                    finished = True
                    yield DecodeDone(item.finish_reason, num_generated, item.num_cached_tokens)
                    return
        finally:
            self._queues.pop(params.request_id, None)
            self._kv_handles.pop(params.request_id, None)
            if not finished:
                self._abort(params.request_id)

    def _start_kv_pulls(self, loads: list[KvLoad]) -> None:
        for load in loads:
            task = asyncio.create_task(self._pull_kv(load), name=f"kv-pull-{load.request_id}")
            self._pull_tasks.add(task)
            task.add_done_callback(self._pull_tasks.discard)

    async def _pull_kv(self, load: KvLoad) -> None:
        params = self._kv_handles.get(load.request_id)
        queue = self._queues.get(load.request_id)
        if params is None or params.kv is None or queue is None:
            self._core.finish_kv_load(load.request_id, ok=False)
            self._wake_after_kv_change()
            return
        started = time.perf_counter()
        try:
            num_bytes = await self._connector.receive(
                params.kv, load.block_ids, skip_blocks=load.num_cached_blocks
            )
        except KvTransferError as error:
            self._core.finish_kv_load(load.request_id, ok=False)
            kind = EngineKvGone if isinstance(error, KvHandleGone) else EngineKvPullFailed
            queue.put_nowait(_Failed(kind(f"KV transfer failed: {error}")))
        else:
            self._core.finish_kv_load(load.request_id, ok=True)
            transfer_ms = (time.perf_counter() - started) * 1000
            queue.put_nowait(KvReceived(num_bytes, transfer_ms, load.num_cached_blocks))
        self._wake_after_kv_change()

    # -- control ----------------------------------------------------------------

    async def cancel(self, request_id: str) -> bool:
        queue = self._queues.get(request_id)
        if queue is not None:
            queue.put_nowait(_Failed(EngineFailure(f"request {request_id} was cancelled")))
        withdrawn = self._connector.withdraw(request_id)
        timer = self._hold_timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()
        return self._abort(request_id) or withdrawn

    def _abort(self, request_id: str) -> bool:
        self._leaving_batch.discard(request_id)
        found = self._core.abort(request_id)
        self._wake_after_kv_change()
        return found

    def reconfigure(self, config: EngineConfig) -> None:
        """Serves with `config`'s capacity from the next engine step on (an elastic EP
        group's switch; see `EngineCore.reconfigure`). ValueError when its KV blocks
        would not fit the arena, which connectors registered at its start size."""
        if config.num_kv_blocks > self._arena.num_blocks:
            raise ValueError(
                f"num_kv_blocks: {config.num_kv_blocks} blocks do not fit the KV arena's "
                f"{self._arena.num_blocks}"
            )
        self._core.reconfigure(config)
        self._publish_kv_events()  # a smaller cache evicts blocks
        self._wakeup.set()  # more room may let waiting requests in

    def load(self) -> LoadSnapshot:
        stats = self._core.stats()
        leaving = self._leaving_batch
        now_holding = len(leaving & self._prefill_ids)
        return LoadSnapshot(
            worker_id=self._settings.worker_id,
            num_waiting_requests=stats.num_waiting_requests,
            num_running_requests=stats.num_running_requests + len(leaving),
            kv_usage=stats.kv_usage,
            num_kv_blocks=stats.num_kv_blocks,
            num_tokens_in_flight=stats.num_tokens_in_flight,
            num_kv_holds=stats.num_kv_holds - now_holding,
            timestamp_ms=time.time() * 1000,
            prefix_query_tokens_total=stats.prefix_query_tokens_total,
            prefix_hit_tokens_total=stats.prefix_hit_tokens_total,
            finished_total=stats.finished_total,
        )

    def kv_events(self) -> AsyncIterator[KvEventBatch]:
        return self._events.subscribe(
            {medium: self._core.cached_block_chains(medium) for medium in KvMedium}
        )

    def switch_role(self, role: Role) -> WorkerDescription:
        # Only the role's gate changes: the core, its prefix cache and the KV connector
        # serve every switchable role alike (a connector both exports and pulls).
        if role not in SWITCHABLE_ROLES:
            raise EngineInputError(
                "role", f"a worker switches between prefill, decode and unified, not to {role}"
            )
        if self._settings.role not in SWITCHABLE_ROLES:
            raise EngineRoleError(f"{with_article(self._settings.role)} worker cannot change role")
        in_flight = work_in_flight(self.load())
        if in_flight > 0:
            raise EngineRoleError(
                f"{in_flight} requests or KV holds are still in flight; drain them first"
            )
        self._settings = replace(self._settings, role=role)
        return self.description

    # -- helpers ----------------------------------------------------------------

    @property
    def _time_scale(self) -> float:
        return self._settings.time_scale

    def _require_role(self, roles: tuple[Role, ...], call: str) -> None:
        if self._settings.role not in roles:
            raise EngineRoleError(
                f"{call} is not served by {with_article(self._settings.role)} worker "
                f"({self._settings.worker_id}); roles that serve it: "
                + ", ".join(str(role) for role in roles)
            )

    async def _next_output(self, queue: asyncio.Queue[_QueueItem]) -> RequestOutput:
        while True:
            item = await queue.get()
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, RequestOutput):
                if item.finish_reason == "error":
                    raise EngineFailure("request failed in the engine")
                return item
