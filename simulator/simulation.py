"""The event loop: arrivals, engine steps and KV transfers on one virtual clock.

Requests take the router's walk (`triskel.router.scheduling.walk`, the very one the
live router drives), without retries (simulated workers do not fail). Each walk step
becomes engine work:

    Local    the instance prefills and decodes (unified, or a decode instance)
    Prefill  a prefill-only request; its first token goes to the client, its KV is
             held for the decode
    Decode   the decode instance admits, allocates, starts the pull ─► TransferDone
             ─► the prefill instance frees its hold, the decode streams tokens

The client gets the first token when the prefill instance returns it, as from
the live router, so the transfer delays the second token, not the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from triskel.common.api import Role
from triskel.common.routing_api import RoutingSettings
from triskel.router.scheduling.calibration import Calibration
from triskel.router.scheduling.hold import PrefillHold, runner_up
from triskel.router.scheduling.latency_watch import LatencyWatch
from triskel.router.scheduling.placement import Answer, Budgets, Candidate
from triskel.router.scheduling.plugins.dualmap.rebalance import QueuedRequest
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.scheduler import Scheduler
from triskel.router.scheduling.types import Endpoint, NoEndpointError, SchedulingRequest, Stage
from triskel.router.scheduling.walk import Local, Pick, Prefill, Walk, next_step
from triskel.simulator.cluster import SimCluster
from triskel.simulator.events import Arrival, EventQueue, Ready, StepDone, Tick, TransferDone
from triskel.simulator.fleet import Fleet
from triskel.simulator.flight import Flight
from triskel.simulator.instance import SimInstance
from triskel.simulator.prompts import PromptCache
from triskel.simulator.records import RequestRecord
from triskel.simulator.slo_judge import SloJudge
from triskel.simulator.transfer import TransferModel, kv_bytes
from triskel.traces.types import Trace, TraceRequest
from triskel.workers.engine.core import EngineRequest, RequestOutput


class Controller(Protocol):
    """What an autoscaled run calls: the events it observes, and its tick."""

    @property
    def interval_s(self) -> float: ...

    def arrived(self, request: TraceRequest) -> None: ...

    def first_token(self, now_s: float, ttft_s: float) -> None: ...

    def finished(self, record: RequestRecord) -> None: ...

    def tick(self, now_s: float, simulation: Simulation) -> None: ...


class Simulation:
    """One run; `run()` once, then read `records` (in trace order).

    With a `controller`, the run also ticks every `controller.interval_s`: the controller
    observes (through its `Watcher` calls) and scales the fleet with `grow` / `shrink`.
    With a `judge`, the run stops once the judge finds the SLO target out of reach
    (a goodput probe); `records` then hold None for the requests not yet closed.
    """

    def __init__(
        self,
        trace: Trace,
        cluster: SimCluster,
        routing: RoutingSettings,
        scheduler: Scheduler,
        kv_index: KvBlockIndex,
        events: EventQueue,
        transfer: TransferModel,
        fleet: Fleet | None = None,
        controller: Controller | None = None,
        prompts: PromptCache | None = None,
        judge: SloJudge | None = None,
    ) -> None:
        self._trace = trace
        self._cluster = cluster
        self._routing = routing
        self._scheduler = scheduler
        self._kv_index = kv_index
        self._events = events
        self._transfer = transfer
        self._kv_bytes_per_token = cluster.profile.geometry.kv_bytes_per_token
        self.fleet = fleet or Fleet(cluster.instances, cluster.instances[0].core.config)
        config = cluster.instances[0].core.config
        # Runs of one trace may share the prompts they built (see `PromptCache`).
        self._prompts = prompts or PromptCache(
            config.block_size_tokens, config.model, config.hash_salt, max_tokens=0
        )
        if not self._prompts.is_for(config.block_size_tokens, config.model, config.hash_salt):
            raise ValueError("prompts: a cache built for another block size, model or salt")
        self._controller = controller
        self._judge = judge
        self._is_stopped = False
        self._roles = {
            Stage.UNIFIED: Role.UNIFIED,
            Stage.PREFILL: Role.PREFILL,
            Stage.DECODE: Role.DECODE,
        }
        self._is_unified = bool(self.fleet.routable(Role.UNIFIED))
        # Prefills held for busy instances (routing.prefillHold; None: sent at once).
        max_held = routing.prefill_hold.max_per_worker
        self._prefill_hold = PrefillHold(max_held) if max_held else None
        self._held: dict[str, Flight] = {}
        # Observed ÷ predicted latencies per instance, as the router keeps them.
        self._calibration = Calibration()
        self._instances = {i.worker_id: i for i in self.fleet.instances}
        # One StepDone per instance, reused for all its steps (events are immutable).
        self._step_done_of = {i: StepDone(n) for n, i in enumerate(self.fleet.instances)}
        self.records: list[RequestRecord | None] = [None] * trace.num_requests
        self._in_flight: dict[str, Flight] = {}
        # Draining instances that rejoin in another role once empty: (role, seconds).
        self._switching: dict[str, tuple[Role, float]] = {}

    def run(self) -> None:
        events = self._events
        events.push_many(
            (request.arrival_s, Arrival(position))
            for position, request in enumerate(self._trace.requests)
        )
        if self._controller is not None:  # first after one interval: a window to observe
            events.push(self._controller.interval_s, Tick())
        instances = self.fleet.instances
        pop = events.pop
        while not self._is_stopped:
            try:
                event = pop()
            except IndexError:
                return  # nothing left: every request has finished or failed
            # Most events end a step, so that test comes first.
            if isinstance(event, StepDone):
                self._step_done(instances[event.instance])
            elif isinstance(event, Arrival):
                self._arrive(event.index)
            elif isinstance(event, TransferDone):
                self._transfer_done(self._in_flight[event.request_id])
            elif isinstance(event, Tick):
                self._tick()
            else:
                self.fleet.ready(instances[event.instance], events.now_s)

    # -- scaling ------------------------------------------------------------------

    def grow(self, role: Role, ready_in_s: float | None = None) -> None:
        """Starts an instance of `role`; it serves after `ready_in_s` (default: the
        profile's start-up time)."""
        now_s = self._events.now_s
        instance = self.fleet.start(role, now_s)
        index = len(self.fleet.instances) - 1
        self._instances[instance.worker_id] = instance
        self._step_done_of[instance] = StepDone(index)
        delay_s = self._cluster.profile.startup_s if ready_in_s is None else ready_in_s
        self._events.push(now_s + delay_s, Ready(index))

    @property
    def now_s(self) -> float:
        return self._events.now_s

    def shrink(self, role: Role) -> None:
        """Drains an instance of `role` (see `Fleet.remove`)."""
        self.fleet.remove(role, self._events.now_s)

    def switch(self, from_role: Role, to_role: Role, switch_s: float) -> None:
        """Drains an instance of `from_role`; once empty, its GPU rejoins as `to_role`
        after `switch_s` (no cold start: the weights stay loaded)."""
        victim = self.fleet.remove(from_role, self._events.now_s)
        if victim is None:
            return
        self._switching[victim.worker_id] = (to_role, switch_s)
        if self.fleet.lifetimes[victim.worker_id].end_s is not None:  # was idle
            self._rejoin(victim)

    def _retire_if_idle(self, instance: SimInstance) -> None:
        if self.fleet.retire_if_idle(instance, self._events.now_s):
            self._rejoin(instance)

    def _rejoin(self, instance: SimInstance) -> None:
        pending = self._switching.pop(instance.worker_id, None)
        if pending is not None:
            self.grow(pending[0], ready_in_s=pending[1])

    def _tick(self) -> None:
        assert self._controller is not None
        self._controller.tick(self._events.now_s, self)
        if len(self._events) > 0:  # stop ticking once the run is over
            self._events.push(self._events.now_s + self._controller.interval_s, Tick())

    # -- events -------------------------------------------------------------------

    def _arrive(self, position: int) -> None:
        request = self._trace.requests[position]
        if self._controller is not None:
            self._controller.arrived(request)
        if self._judge is not None:
            self._judge.arrived(position, request.arrival_s)
            self._judge.advance(self._events.now_s)
            self._is_stopped = self._judge.is_out_of_reach
        tokens, hashes = self._prompts.prompt(request)
        flight = Flight(request, position, request.arrival_s, tokens, hashes)
        self._in_flight[flight.request_id] = flight
        try:
            self._route(flight)
        except (NoEndpointError, ValueError):
            # Refused (no worker passed the filters, or the engine cannot hold the prompt):
            # the request fails, as a live router answers it with an error.
            self._close(flight, None)

    def _step_done(self, instance: SimInstance) -> None:
        for output in instance.finish_step():
            # A token mid-stream changes nothing here (see `_deliver`): most outputs are those.
            # A prefill-only request's one output always carries its first token.
            if output.finish_reason is None and not output.is_prefill_done:
                continue
            flight = self._in_flight.get(output.request_id)
            if flight is not None:
                self._deliver(flight, instance, output)
        self._kick(instance)
        self._retire_if_idle(instance)
        self._release_held()

    def _transfer_done(self, flight: Flight) -> None:
        assert flight.prefill is not None and flight.decode is not None
        flight.decode.finish_kv_load(flight.request_id)
        # The prefill worker frees its hold once the pull is done (the connector's export).
        flight.prefill.release_kv(flight.request_id)
        self._kick(flight.decode)
        self._kick(flight.prefill)
        self._retire_if_idle(flight.prefill)

    # -- the walk -------------------------------------------------------------------

    def _route(self, flight: Flight) -> None:
        routing = self._routing
        flight.walk = Walk(
            policy=routing.disaggregation,
            is_unified=self._is_unified,
            answer=Answer(flight.request.num_input_tokens, flight.request.num_output_tokens),
            budgets=Budgets(routing.slo.ttft_ms, routing.slo.tpot_ms),
        )
        self._advance(flight)

    def _advance(self, flight: Flight) -> None:
        """Drives the request's walk (`triskel.router.scheduling.walk`, as the router does)
        until it waits for an engine: a local or remote prefill, or a remote decode."""
        assert flight.walk is not None
        while True:
            step = next_step(flight.walk, self._calibration)
            if isinstance(step, Pick):
                instance = self._pick(step.stage, flight)
                candidate = Candidate(instance.endpoint(), self._uncached_tokens(flight, instance))
                flight.walk = flight.walk.picked(step.stage, candidate)
                continue
            if isinstance(step, (Local, Prefill)) and step.expected is not None:
                flight.watch = LatencyWatch(self._calibration, step.expected, self._clock)
            if isinstance(step, Local):
                self._local(flight, self._instance(step.worker))
            elif isinstance(step, Prefill):
                decode = flight.walk.decode
                flight.decode = None if decode is None else self._instance(decode)
                self._send_prefill(flight, self._instance(step.worker))
            else:
                self._decode_remote(flight, self._instance(step.worker))
            return

    def _sent(self, request: SchedulingRequest | None, instance: SimInstance) -> None:
        """Tells the scheduler's learning plugins where the request went (as the router
        does once it calls the worker, not when it merely compared a pick)."""
        assert request is not None  # every send follows its stage's pick
        self._scheduler.sent(request, instance.endpoint())

    def _local(self, flight: Flight, instance: SimInstance) -> None:
        """Prefill and decode on `instance` (the router counts it as prefilling throughout)."""
        self._sent(flight.asked_decode, instance)
        flight.asked_decode = flight.asked_prefill = None
        flight.prefill = flight.decode = instance
        flight.charge(instance, self._uncached_tokens(flight, instance), 0)
        instance.add(
            EngineRequest(
                flight.request_id,
                flight.prompt_token_ids,
                flight.request.num_output_tokens,
                ignore_eos=True,
                prompt_block_hashes=flight.block_hashes,
            )
        )
        flight.prompt_token_ids = []
        self._kick(instance)

    def _send_prefill(self, flight: Flight, prefill: SimInstance) -> None:
        """Sends the prefill, or holds it while `prefill` is busy (`routing.prefillHold`)."""
        hold = self._prefill_hold
        second = flight.second_prefill
        if hold is not None and second is not None:
            here, there = prefill.worker_id, second.worker_id
            uncached = (
                self._uncached_tokens(flight, prefill),
                self._uncached_tokens(flight, second),
            )
            request = QueuedRequest(flight.request_id, here, (here, there), uncached)
            if hold.offer(request, _Endpoints(self._instances)):
                self._held[flight.request_id] = flight
                self._release_held()  # a move may have sent one to a worker with room
                return
        self._prefill_remote(flight, prefill)

    def _release_held(self) -> None:
        hold = self._prefill_hold
        if hold is None or not len(hold):
            return
        for request in hold.ready(_Endpoints(self._instances)):
            flight = self._held.pop(request.request_id)
            try:
                self._prefill_remote(flight, self._instances[request.worker_id])
            except ValueError:
                # Refused by the engine (the prompt cannot fit): this request fails alone,
                # as when it is sent at once.
                self._close(flight, None)

    def _prefill_remote(self, flight: Flight, prefill: SimInstance) -> None:
        """Prefill only on `prefill`, its KV held for the decode."""
        self._sent(flight.asked_prefill, prefill)
        flight.asked_prefill = None
        watch = flight.watch
        if watch is not None and watch.prefill_worker_id != prefill.worker_id:
            flight.watch = None  # moved off a hotspot: not the prediction's worker
        flight.prefill = prefill
        flight.charge(prefill, self._uncached_tokens(flight, prefill), 0)
        prefill.add(
            EngineRequest(
                flight.request_id,
                flight.prompt_token_ids,
                flight.request.num_output_tokens,
                ignore_eos=True,
                prefill_only=True,
                prompt_block_hashes=flight.block_hashes,
            )
        )
        self._kick(prefill)

    def _decode_remote(self, flight: Flight, decode: SimInstance) -> None:
        """After the prefill: `decode` pulls its KV."""
        self._sent(flight.asked_decode, decode)
        flight.asked_decode = None
        flight.decode = decode
        block_size = decode.core.config.block_size_tokens
        flight.charge(decode, 0, -(-flight.request.num_input_tokens // block_size))
        decode.add(
            EngineRequest(
                flight.request_id,
                flight.prompt_token_ids,
                flight.request.num_output_tokens,
                ignore_eos=True,
                remote_kv=True,
                first_token_id=flight.first_token_id,
                prompt_block_hashes=flight.block_hashes,
            )
        )
        flight.prompt_token_ids = []
        self._kick(decode)

    def _deliver(self, flight: Flight, instance: SimInstance, output: RequestOutput) -> None:
        now_s = self._events.now_s
        if output.is_prefill_done:
            flight.first_token_s = now_s
            flight.first_token_id = output.new_token_ids[0]
            flight.num_cached_tokens = output.num_cached_tokens
            if self._controller is not None:
                self._controller.first_token(now_s, now_s - flight.arrival_s)
            if self._judge is not None:
                self._judge.first_token(flight.position)
            if flight.watch is not None:
                flight.watch.first_token()
        if instance is flight.prefill and instance is not flight.decode:
            self._prefill_done(flight, instance, output)
        elif output.finish_reason is not None:
            self._close(flight, now_s)

    def _prefill_done(self, flight: Flight, prefill: SimInstance, output: RequestOutput) -> None:
        """A prefill-only request returned its first token; its KV is held for the decode."""
        flight.discharge(prefill)
        if output.finish_reason is not None:
            # A one-token answer: nothing to decode, so free the hold now.
            prefill.release_kv(flight.request_id)
            self._close(flight, self._events.now_s)
            return
        assert flight.walk is not None
        flight.walk = flight.walk.prefilled()
        try:
            self._advance(flight)
        except (NoEndpointError, ValueError):
            prefill.release_kv(flight.request_id)
            self._close(flight, None)

    def _close(self, flight: Flight, finish_s: float | None) -> None:
        """Records the request (finish_s None: it failed) and forgets it."""
        if finish_s is not None and flight.watch is not None:
            flight.watch.finished(flight.request.num_output_tokens)
        record = flight.close(finish_s)
        self.records[flight.position] = record
        del self._in_flight[flight.request_id]
        if self._controller is not None:
            self._controller.finished(record)
        if self._judge is not None:
            self._judge.closed(flight.position, record)
            self._is_stopped = self._judge.is_out_of_reach

    # -- helpers ------------------------------------------------------------------

    def _kick(self, instance: SimInstance) -> None:
        """Starts the instance's next step if it is idle and has work."""
        started = instance.start_step()
        if started is None:
            return
        now_s = self._events.now_s
        self._events.push(now_s + started.duration_s, self._step_done_of[instance])
        if not started.kv_loads:
            return
        block_size = instance.core.config.block_size_tokens
        for load in started.kv_loads:
            # Only the blocks the decode instance lacks move (the connector skips the rest).
            num_tokens = load.num_prompt_tokens - load.num_cached_blocks * block_size
            num_bytes = kv_bytes(num_tokens, self._kv_bytes_per_token)
            self._in_flight[load.request_id].kv_bytes_moved = num_bytes
            done_s = now_s + self._transfer.seconds(num_bytes)
            self._events.push(done_s, TransferDone(load.request_id))

    def _pick(self, stage: Stage, flight: Flight) -> SimInstance:
        role = self._roles[stage]
        candidates: Sequence[SimInstance] = self.fleet.routable(role)
        slo = self._routing.slo
        request = SchedulingRequest(
            request_id=flight.request_id,
            model=self._cluster.instances[0].core.config.model,
            stage=stage,
            token_ids=flight.prompt_token_ids,
            block_hashes=flight.block_hashes,
            max_tokens=flight.request.num_output_tokens,
            ttft_slo_ms=slo.ttft_ms,
            tpot_slo_ms=slo.tpot_ms,
            ring_members=self.fleet.members(role),
        )
        decision = self._scheduler.choose(request, [i.endpoint() for i in candidates])
        worker_id = decision.endpoint.worker_id
        if stage is Stage.PREFILL:
            flight.asked_prefill = request
            if self._prefill_hold is not None:  # where a held prefill may move
                second = runner_up(decision)
                flight.second_prefill = None if second is None else self._instances[second]
        else:
            flight.asked_decode = request
        return next(i for i in candidates if i.worker_id == worker_id)

    def _instance(self, candidate: Candidate) -> SimInstance:
        return self._instances[candidate.endpoint.worker_id]

    def _clock(self) -> float:
        return self._events.now_s

    def _uncached_tokens(self, flight: Flight, instance: SimInstance) -> int:
        """Prompt tokens `instance` lacks, per the KV index (as the router estimates it)."""
        num_blocks = self._kv_index.match_lengths(flight.block_hashes, [instance.worker_id])[0]
        block_size = instance.core.config.block_size_tokens
        return flight.request.num_input_tokens - num_blocks * block_size


class _Endpoints(Mapping[str, Endpoint]):
    """Instances' endpoints by worker id, built only for the ids asked."""

    __slots__ = ("_instances",)

    def __init__(self, instances: Mapping[str, SimInstance]) -> None:
        self._instances = instances

    def __getitem__(self, worker_id: str) -> Endpoint:
        return self._instances[worker_id].endpoint()

    def __iter__(self) -> Iterator[str]:
        return iter(self._instances)

    def __len__(self) -> int:
        return len(self._instances)
