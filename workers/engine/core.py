"""The engine core: `schedule → run → postprocess`, one step per call. Pure and synchronous.

The caller owns time: `step()` returns the modelled duration of the forward
pass it just "ran"; an async runtime sleeps that long before delivering the
outputs, a discrete-event simulator advances its virtual clock by it. Nothing
here does I/O or reads a clock. The loop reads like nano-vllm's LLMEngine.step:

    batch   = scheduler.schedule()              # who runs, how many tokens each
    run     = model_runner.run(batch)           # modelled duration + sampled tokens
    outputs = scheduler.postprocess(batch, run) # advance, cache blocks, finish / hold

Moves between steps (aborts, releases of held KV, remote-KV loads) go to the
request queues the scheduler schedules from (`RequestQueues`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from triskel.common.hashing import BlockHash
from triskel.common.kv_tiers import KvMedium, should_load
from triskel.common.profiles import LatencyProfile
from triskel.workers.engine.block_pool import BlockPool
from triskel.workers.engine.events import KvEvent
from triskel.workers.engine.host_tier import HostTier
from triskel.workers.engine.kv_cache_manager import KvCacheManager
from triskel.workers.engine.model_runner import MockModelRunner
from triskel.workers.engine.outputs import EngineStats, KvLoad, RequestOutput, StepResult
from triskel.workers.engine.request import EngineRequest, FinishReason, RequestState, RequestStatus
from triskel.workers.engine.request_queues import RequestQueues
from triskel.workers.engine.sampler import natural_length_tokens, prompt_seed, with_request_seed
from triskel.workers.engine.scheduler import Scheduler
from triskel.workers.engine.validation import validate_request

__all__ = [
    "EngineConfig",
    "EngineCore",
    "EngineRequest",
    "EngineStats",
    "KvLoad",
    "RequestOutput",
    "StepResult",
]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model: str
    profile: LatencyProfile
    num_kv_blocks: int
    block_size_tokens: int
    max_num_batched_tokens: int
    max_num_seqs: int
    hash_salt: str = ""
    # Ranks of an expert-parallel group that step together, each running its share
    # of the batch with the per-rank profile (see `MockModelRunner`); 1: one engine.
    num_ep_ranks: int = 1
    # Blocks of the host-memory KV tier that GPU evictions go to (`host_tier`); 0: none.
    # Needs the profile's host_link, which prices loading them back.
    num_host_kv_blocks: int = 0
    # False: a step outputs a request's first token and its last, not those between. The
    # simulator reads nothing else, and an output per token of every answer cost it a
    # fifth of its decode steps; a worker streaming to clients keeps the default.
    streams_tokens: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("model: must not be empty")
        counts = {
            "num_kv_blocks": self.num_kv_blocks,
            "block_size_tokens": self.block_size_tokens,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_num_seqs": self.max_num_seqs,
            "num_ep_ranks": self.num_ep_ranks,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if self.num_host_kv_blocks < 0:
            raise ValueError(f"num_host_kv_blocks: must be >= 0, got {self.num_host_kv_blocks}")
        if self.num_host_kv_blocks and self.profile.host_link is None:
            raise ValueError(
                f"num_host_kv_blocks: profile {self.profile.name} has no host_link to "
                "load a host tier over"
            )

    @classmethod
    def from_profile(
        cls,
        profile: LatencyProfile,
        model: str | None = None,
        kv_capacity_tokens: int | None = None,
        host_kv_capacity_tokens: int = 0,
    ) -> EngineConfig:
        """The profile's deployment; `kv_capacity_tokens` overrides its KV capacity, and
        `host_kv_capacity_tokens` adds a host tier of that many tokens."""
        capacity = profile.kv_capacity_tokens if kv_capacity_tokens is None else kv_capacity_tokens
        num_blocks = capacity // profile.block_size_tokens
        if num_blocks < 1:
            raise ValueError(
                f"kv_capacity_tokens: {capacity} tokens is less than one block of "
                f"{profile.block_size_tokens} tokens"
            )
        return cls(
            model=model or profile.model,
            profile=profile,
            num_kv_blocks=num_blocks,
            block_size_tokens=profile.block_size_tokens,
            max_num_batched_tokens=profile.max_num_batched_tokens,
            max_num_seqs=profile.max_num_seqs,
            num_host_kv_blocks=host_kv_capacity_tokens // profile.block_size_tokens,
        )


class EngineCore:
    """One worker's engine state. Not thread-safe: call it from one task or thread."""

    __slots__ = (
        "_is_stalled",
        "_pending_outputs",
        "_pool",
        "_queues",
        "_runner",
        "_scheduler",
        "config",
    )

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        host = None
        if config.num_host_kv_blocks:
            load_choice = functools.partial(should_load, config.profile)
            host = HostTier(config.num_host_kv_blocks, load_choice)
        self._pool = BlockPool(config.num_kv_blocks, host)
        kv = KvCacheManager(self._pool, config.block_size_tokens, config.model, config.hash_salt)
        self._queues = RequestQueues(kv)
        self._scheduler = Scheduler(
            kv,
            self._queues,
            config.max_num_batched_tokens,
            config.max_num_seqs,
            config.streams_tokens,
        )
        self._runner = MockModelRunner(config.profile, config.num_ep_ranks)
        self._pending_outputs: list[RequestOutput] = []
        # Set when a step could schedule nothing; cleared by anything that frees
        # blocks or adds work, so a blocked engine does not spin on empty steps.
        self._is_stalled = False

    def reconfigure(self, config: EngineConfig) -> None:
        """Serves with `config`'s capacity (KV blocks, batching limits, EP ranks) from
        the next step on, dropping nothing: what runs past a smaller capacity keeps
        running and admission waits until it fits (see `BlockPool.resize`,
        `Scheduler.set_limits`). ValueError when `config` serves another model or lays
        out KV differently."""
        kept = ("model", "profile", "block_size_tokens", "hash_salt", "streams_tokens")
        for name in (*kept, "num_host_kv_blocks"):
            if getattr(config, name) != getattr(self.config, name):
                raise ValueError(f"{name}: a reconfigured engine keeps its {name}")
        self._pool.resize(config.num_kv_blocks)
        self._scheduler.set_limits(config.max_num_batched_tokens, config.max_num_seqs)
        self._runner.num_ranks = config.num_ep_ranks
        self.config = config
        self._is_stalled = False  # more room may let waiting requests in

    # -- requests ---------------------------------------------------------------

    def add_request(self, request: EngineRequest) -> None:
        """Queues `request`; ValueError("<field>: ...") when it cannot be served."""
        token_ids = validate_request(request, self.config, self._queues.requests)
        num_prompt_tokens = len(token_ids)
        seed = with_request_seed(prompt_seed(token_ids, self.config.model), request.seed)
        if request.remote_kv and request.first_token_id is not None:
            token_ids.append(request.first_token_id)
        block_hashes = request.prompt_block_hashes
        state = RequestState(
            request=request,
            token_ids=token_ids,
            num_prompt_tokens=num_prompt_tokens,
            sample_seed=seed,
            natural_length_tokens=natural_length_tokens(seed),
            needs_remote_kv=request.remote_kv,
            block_hashes=[] if block_hashes is None else list(block_hashes),
        )
        self._queues.add(state)
        self._is_stalled = False

    def has_unfinished_work(self) -> bool:
        """True when a `step()` can advance something (outputs to deliver or requests to run)."""
        if self._pending_outputs:
            return True
        if self._is_stalled:
            return False
        queues = self._queues  # asked before every step: no property call
        return bool(queues.running or queues.waiting or queues.loaded)

    def step(self) -> StepResult:
        """Runs one engine step and returns its modelled duration and outputs."""
        scheduler = self._scheduler
        decodes = scheduler.schedule_decodes()
        if decodes is not None:
            # Most steps only decode the running batch: the same three stages, minus the
            # bookkeeping a general batch needs (see `Scheduler.schedule_decodes`).
            duration_ms, sampled = self._runner.run_decodes(decodes)
            outputs = scheduler.postprocess_decodes(decodes, sampled)
            num_preempted = 0
        else:
            batch = scheduler.schedule()
            run = self._runner.run(batch)
            duration_ms = run.duration_ms
            outputs = scheduler.postprocess(batch, run.sampled_token_ids)
            num_preempted = batch.num_preempted
            if batch.is_empty and num_preempted == 0:
                self._is_stalled = True
        if self._pending_outputs:
            outputs = self._pending_outputs + outputs
            self._pending_outputs = []
        return StepResult(duration_ms, outputs, num_preempted)

    def abort(self, request_id: str) -> bool:
        """Drops the request wherever it is and frees its blocks; False if unknown."""
        state = self._queues.requests.get(request_id)
        if state is None:
            return False
        self._queues.abort(state)
        self._is_stalled = False
        return True

    # -- prefill holds and remote KV ----------------------------------------------

    def held_block_ids(self, request_id: str) -> list[int]:
        """The blocks of a held prefill, in prompt order (the last may be partial)."""
        return list(self._held(request_id).block_ids)

    def release_kv(self, request_id: str) -> None:
        """Unreferences a held prefill's blocks (they stay cached); no-op if already gone."""
        state = self._queues.requests.get(request_id)
        if state is None:
            return  # aborted or released already (a race the runtime may lose)
        self._queues.release(self._held(request_id))
        self._is_stalled = False

    def _held(self, request_id: str) -> RequestState:
        state = self._queues.held.get(request_id)
        if state is None:
            raise ValueError(f"request_id: {request_id!r} holds no prefilled KV")
        return state

    def take_kv_loads(self) -> list[KvLoad]:
        """Remote KV pulls to start, queued by steps since the last call."""
        return self._queues.take_kv_loads()

    def finish_kv_load(self, request_id: str, ok: bool) -> None:
        """Reports a pull's result: ok → decoding starts at output index 1; not ok → the
        request is freed and reported with finish_reason "error" by the next step.

        Unknown ids (aborted meanwhile) are ignored.
        """
        state = self._queues.requests.get(request_id)
        if state is None:
            return
        if state.status is not RequestStatus.WAITING_FOR_KV:
            raise ValueError(f"request_id: {request_id!r} is not waiting for KV")
        self._queues.finish_kv_load(state, ok)
        if not ok:
            self._pending_outputs.append(
                RequestOutput(
                    request_id=request_id,
                    new_token_ids=[],
                    finish_reason=FinishReason.ERROR,
                    num_cached_tokens=state.num_cached_tokens,
                    num_prompt_tokens=state.num_prompt_tokens,
                )
            )
        self._is_stalled = False

    # -- observability --------------------------------------------------------------

    def stats(self) -> EngineStats:
        scheduler = self._scheduler
        queues = self._queues
        return EngineStats(
            num_waiting_requests=len(queues.waiting) + len(queues.loaded) + len(queues.kv_waiting),
            num_running_requests=len(queues.running),
            num_kv_holds=len(queues.held),
            kv_usage=self._pool.usage,
            num_kv_blocks=self._pool.num_blocks,
            num_free_kv_blocks=self._pool.num_free_blocks,
            num_tokens_in_flight=queues.num_tokens_in_flight(),
            prefix_query_tokens_total=scheduler.prefix_query_tokens_total,
            prefix_hit_tokens_total=scheduler.prefix_hit_tokens_total,
            num_preemptions_total=scheduler.num_preemptions_total,
            host_hit_tokens_total=scheduler.host_hit_tokens_total,
            finished_total=dict(scheduler.finished_total),
        )

    def drain_kv_events(self) -> list[KvEvent]:
        return self._pool.drain_events()

    def num_cached_prefix_blocks(self, block_hashes: Sequence[BlockHash]) -> int:
        """Leading blocks of `block_hashes` in the prefix cache (what this engine's KV
        events, applied in order, tell an index it holds)."""
        return self._pool.num_cached_prefix(block_hashes)

    @property
    def num_cached_blocks(self) -> int:
        """Blocks in the prefix cache (stored by KV events and not removed since)."""
        return self._pool.num_cached_blocks

    @property
    def num_host_blocks(self) -> int:
        """Blocks in the host tier (0 without one)."""
        host = self._pool.host
        return 0 if host is None else len(host)

    def num_host_prefix_blocks(self, block_hashes: Sequence[BlockHash]) -> int:
        """Leading blocks of `block_hashes` in the host tier (0 without one)."""
        host = self._pool.host
        return 0 if host is None else host.num_prefix(block_hashes)

    def cached_block_chains(self, medium: KvMedium = KvMedium.GPU) -> list[list[BlockHash]]:
        """Every block `medium` holds as root-to-leaf hash chains (a snapshot for new
        subscribers)."""
        if medium is KvMedium.GPU:
            return self._pool.cached_block_chains()
        host = self._pool.host
        return [] if host is None else host.chains()
