"""`triskel router`: connect to the workers, serve HTTP and gRPC until stopped."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from pydantic import Field, field_validator, model_validator

from triskel.common.api import Address, ApiModel, Role, split_address
from triskel.common.http_listener import HttpLimits, start_http_listener
from triskel.common.kube import (
    Credentials,
    KubeClient,
    in_cluster_credentials,
    kubeconfig_credentials,
)
from triskel.common.metrics_listener import MetricsListener
from triskel.common.router_cluster import RouterClusterConfig
from triskel.common.routing_api import RoutingSettings
from triskel.common.tls import (
    ClientTlsFiles,
    ReloadingSslContext,
    TlsFileError,
    TlsFiles,
    TlsFlags,
    grpc_server_credentials,
)
from triskel.router.admission import admission_for
from triskel.router.auth.authenticator import Authenticator
from triskel.router.auth.config import AuthConfig
from triskel.router.auth.setup import AuthRedis, AuthSetupError, open_authenticator
from triskel.router.backends.addresses import WorkerEndpoint, as_endpoint, open_worker
from triskel.router.backends.dialing import WorkerDialing, worker_dialing
from triskel.router.cluster import ClusterView
from triskel.router.discovery.membership import (
    MEMBERSHIP_POLL_S,
    MembershipFile,
    MembershipFileError,
)
from triskel.router.discovery.semantic_sync import SemanticSync
from triskel.router.discovery.sources import ConfigFile, fetch_endpoints
from triskel.router.discovery.sync import ClusterSync, run_sync
from triskel.router.dispatcher import Dispatcher
from triskel.router.grpc_api import RouterServicer, start_grpc_server
from triskel.router.http_api import build_http_app
from triskel.router.metrics import RouterMetrics
from triskel.router.orchestrator import Orchestrator
from triskel.router.pick_warmer import PickWarmer
from triskel.router.registry import WorkerRegistry
from triskel.router.routing_table import ModelRouting, RoutingTable
from triskel.router.scheduling.builtin import default_registry
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.producers.holders import implementation as holder_maps
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.score_sum import implementation as score_sums
from triskel.router.semantic.embedding import DEFAULT_EMBEDDING_DIM
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.metrics import SemanticMetrics
from triskel.router.semantic.setup import EmbedderCache, load_semantic
from triskel.router.semantic.stage import LoadedSemantic, SemanticStage
from triskel.router.semantic_cache.factory import OpenedCache, open_semantic_cache
from triskel.router.semantic_cache.guards import LanguageDetector
from triskel.router.semantic_cache.metrics import watch_cache
from triskel.router.semantic_cache.request_path import RequestCache, model_pressure
from triskel.router.siblings import SiblingBus, SiblingsConfig, SiblingState, frames
from triskel.router.siblings.frames import SharedPick
from triskel.router.siblings.metrics import SiblingExpositions, send_expositions
from triskel.router.state.config import StateConfig
from triskel.router.state.factory import open_kv_relay, open_state, read_password_file
from triskel.router.worker_calls import WorkerCalls
from triskel.router.worker_client import WorkerCallError, WorkerClient

_STOP_GRACE_S = 2.0
_YOUNG_COLLECTION_ALLOCATIONS = 10_000
_SIBLING_LINK_S = 5.0
_log = logging.getLogger(__name__)


class RouterProcessConfig(ApiModel):
    http_address: Address = "127.0.0.1:8080"
    grpc_address: Address = "127.0.0.1:50051"
    # Serve /metrics here, and no longer on http_address (a port Prometheus alone needs).
    metrics_address: Address | None = None
    # Workers: "host:port" (Triskel's gRPC protocol: each tells its role and model) or
    # "http://host:port" / {url, api: vllm, role, ...} for vLLM's HTTP API.
    workers: list[str | WorkerEndpoint] = Field(default_factory=list)
    # In a cluster instead: the operator's router config (the mounted ConfigMap). Workers
    # come from the WorkerPools' status and policies reload without a restart.
    cluster_config: Path | None = None
    # The Kubernetes API for cluster_config (default: the pod's service account); e.g.
    # `kubectl proxy`'s http://127.0.0.1:8001 to run a router outside the cluster.
    kube_api_url: str | None = None
    # Without a cluster (`triskel up`): the file its supervisor rewrites as workers start
    # and drain (triskel.common.local_membership). Workers join and leave without a
    # restart; routing stays `routing`.
    membership_file: Path | None = None
    connect_timeout_s: float = Field(default=30.0, gt=0)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    # With a Redis URL, router replicas share load, membership and prefix history.
    redis_url: str | None = None
    # A file holding Redis' password (requirepass), e.g. a mounted Secret's key; read
    # once at start. Kept out of the URL, so it shows in no argument list or config.
    redis_password_file: Path | None = None
    # Bounds each shared-state Redis call on the request path; a slower call serves
    # from memory until Redis answers again. Raise it for a Redis across a slow network.
    redis_call_timeout_s: float = Field(default=0.05, gt=0, le=10)
    # Names this replica in shared state (defaults to the gRPC address and process id).
    router_id: str | None = None
    # The HTTP listener's timeouts and connection cap (docs/routing.md, "Limits").
    http_limits: HttpLimits = Field(default_factory=HttpLimits)
    # API keys and/or JWTs, tenants, rate limits (docs/security.md). None: open to anyone
    # who can reach the listeners, and the router says so at start.
    auth: AuthConfig | None = None
    # HTTPS and gRPC TLS on the API listeners (same files; renewals reloaded). With a
    # CA and require_client_cert, clients need a certificate it signed. /metrics stays
    # plaintext on its own port (docs/security.md, "TLS").
    tls: TlsFiles | None = None
    # The router's client certificate for workers that require one (mTLS), and the CA
    # their certificates chain to; Triskel-protocol (gRPC) workers only.
    worker_tls: ClientTlsFiles | None = None
    # Decode, Prefill, Cancel, load reports and KV events as frames to Triskel-protocol
    # workers that serve them
    # (proto/triskel/v1/worker_frames.proto: a fraction of a gRPC call's CPU); false:
    # every call over gRPC.
    worker_frames: bool = True
    # After this long without a pick, a dry pick every 5 ms for the model picked last,
    # so a light load's picks find their caches warm (router/pick_warmer.py; ~1% of a
    # core while idle at four workers, docs/routing.md). Past the gaps between requests
    # under load: dry picks then would only delay them. 0: off.
    warm_picks_idle_ms: float = Field(default=20.0, ge=0, le=60_000)
    # Set by `triskel router --processes N` for each of its processes, never by hand:
    # this process's place among them and where they talk (triskel.router.siblings).
    siblings: SiblingsConfig | None = None

    @field_validator("workers", mode="after")
    @classmethod
    def _checked_addresses(cls, value: list[str | WorkerEndpoint]) -> list[str | WorkerEndpoint]:
        # A plain string is checked (and its protocol chosen) like {url: <string>}.
        return [as_endpoint(item) for item in value]

    @model_validator(mode="after")
    def _password_needs_a_url(self) -> RouterProcessConfig:
        if self.redis_password_file is not None and self.redis_url is None:
            raise ValueError("redis_password_file: needs redis_url (a password for no Redis)")
        return self

    @model_validator(mode="after")
    def _siblings_share_auth_through_redis(self) -> RouterProcessConfig:
        if self.siblings is not None and self.auth is not None and self.redis_url is None:
            raise ValueError(
                "auth: with several router processes it needs redis_url (each process "
                "would otherwise keep its own rate-limit buckets and key grants)"
            )
        return self

    @model_validator(mode="after")
    def _one_source_of_workers(self) -> RouterProcessConfig:
        discovered = self.cluster_config is not None or self.membership_file is not None
        if not discovered and not self.workers:
            raise ValueError(
                "workers: give at least one worker address, cluster_config or membership_file"
            )
        if self.cluster_config is not None and self.membership_file is not None:
            raise ValueError("membership_file: not with cluster_config (one source of workers)")
        if discovered and self.workers:
            source = "cluster_config" if self.cluster_config is not None else "membership_file"
            raise ValueError(f"workers: not with {source} (workers are discovered)")
        return self


@dataclass(frozen=True, slots=True)
class RouterEndpoints:
    http_address: str
    grpc_address: str
    metrics_address: str | None = None


class RouterStartupError(RuntimeError):
    """The router cannot start (a worker unreachable, an unservable deployment)."""


async def connect_workers(
    workers: list[str | WorkerEndpoint], timeout_s: float, dialing: WorkerDialing | None = None
) -> list[WorkerClient]:
    clients = [open_worker(worker, dialing) for worker in workers]
    try:
        await asyncio.gather(*(client.connect(timeout_s) for client in clients))
    except WorkerCallError as error:
        for client in clients:
            await client.close()
        if error.field_name:  # it answered, but not what the router can serve
            raise RouterStartupError(f"workers: {error.details}") from None
        raise RouterStartupError(f"cannot reach a worker: {error.details}") from None
    return clients


async def run_router(
    config: RouterProcessConfig,
    on_ready: Callable[[RouterEndpoints], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serves until `stop` is set (or SIGTERM / SIGINT when `stop` is None)."""
    listener_tls = _listener_tls(config)
    dialing = _worker_dialing(config)
    membership = None
    workers = config.workers
    if config.membership_file is not None:
        # The workers listed now are connected before serving, as given ones would be:
        # `triskel up` is ready only when its router can serve.
        membership = MembershipFile(config.membership_file)
        try:
            listed = membership.load()
        except MembershipFileError as error:
            raise RouterStartupError(str(error)) from None
        workers = [address for pool in listed.pools for address in pool.endpoints]
    clients = await connect_workers(workers, config.connect_timeout_s, dialing)
    try:
        registry = WorkerRegistry(clients)
    except ValueError as error:
        raise RouterStartupError(str(error)) from None
    kv_index = KvBlockIndex()
    context = PluginContext(kv_index=kv_index, clock=time.monotonic, rng=random.Random())
    try:
        scheduler = build_scheduler(config.routing.scheduling(), default_registry(), context)
    except PluginConfigError as error:
        raise RouterStartupError(f"routing: {error}") from None
    metrics = RouterMetrics()
    router_id = config.router_id or f"{config.grpc_address}/{os.getpid()}"
    redis_password = _redis_password(config)
    siblings = (
        None
        if config.siblings is None
        else SiblingBus(config.siblings, on_dropped=metrics.observe_sibling_drops)
    )
    state_config = StateConfig(call_timeout_s=config.redis_call_timeout_s)
    try:
        state = (
            SiblingState(siblings, state_config)
            if siblings is not None and config.redis_url is None
            else open_state(
                config.redis_url,
                router_id=router_id,
                config=state_config,
                on_redis_error=metrics.observe_redis_error,
                password=redis_password,
            )
        )
    except ValueError as error:
        raise RouterStartupError(f"redis_url: {error}") from None
    exposing: asyncio.Task[None] | None = None
    if siblings is not None:
        # One /metrics for all: the first process adds the others' counters to its own.
        if siblings.config.index == 0:
            metrics.add_siblings(SiblingExpositions(siblings).texts)
        else:
            exposing = asyncio.create_task(send_expositions(siblings, metrics.registry))
        await siblings.start()
        # Siblings start in index order: the ones before us listen already, and picks
        # we make before our links to them are up would be lost to them.
        await siblings.linked(_SIBLING_LINK_S, below=siblings.config.index)
    await state.start()
    # Its own Redis client: blocking stream reads must not hold the shared state's.
    kv_relay = open_kv_relay(
        config.redis_url,
        router_id=router_id,
        index=kv_index,
        on_redis_error=metrics.observe_redis_error,
        password=redis_password,
    )
    if kv_relay is not None:
        await kv_relay.start()
    cluster = ClusterView(clients, kv_index, state, kv_relay)
    await cluster.announce_workers()
    cluster.start()
    calls = WorkerCalls(metrics)
    admission = admission_for(config.routing.admission, _process_count(config))
    metrics.watch_admission(lambda: admission.queue_depth, lambda: admission.in_flight)
    metrics.watch_workers(registry.worker_counts)
    metrics.watch_stage_requests(cluster.stage_requests)
    table = RoutingTable(ModelRouting(scheduler, config.routing, admission))
    cluster.watch_silence(
        lambda model: table.for_model(model).settings.timeouts.worker_silence_s,
        calls.end_calls_to,
    )
    dispatcher = Dispatcher(
        cluster,
        table,
        metrics,
        context.history,
        share_prefix_history=config.redis_url is not None,
        share_pick=None if siblings is None else _pick_sender(siblings),
    )
    if siblings is not None:
        siblings.on_pick(lambda _sibling, pick: dispatcher.learn(pick))
    semantic_metrics = SemanticMetrics(metrics.registry)
    semantic = _semantic_stage(config, registry, semantic_metrics)
    opened_cache = _open_cache(config, redis_password)
    request_cache = None
    if opened_cache is not None:
        await opened_cache.start()
        watch_cache(metrics.registry, opened_cache.cache)
        request_cache = RequestCache(
            opened_cache.cache,
            LanguageDetector(),
            _pressure_of(registry, cluster, table),
            semantic_metrics,
        )
    orchestrator = Orchestrator(registry, dispatcher, calls, semantic=semantic, cache=request_cache)
    authenticator = _open_auth(config, redis_password, metrics, orchestrator)
    if holder_maps() == "python" or score_sums() == "numpy":
        _log.warning(
            "the prefix indexes and the scheduler's score sum run in Python: their "
            "compiled modules were not built (install with a C compiler); picks cost "
            "more at fleet scale"
        )
    grpc_server, grpc_port = await start_grpc_server(
        RouterServicer(orchestrator, metrics, authenticator),
        config.grpc_address,
        None if listener_tls is None else listener_tls.grpc,
        reuse_port=siblings is not None,
    )
    http_host, http_port = split_address(config.http_address)
    try:
        runner, bound_http_port = await start_http_listener(
            build_http_app(
                orchestrator,
                metrics,
                serves_metrics=config.metrics_address is None,
                authenticator=authenticator,
            ),
            http_host,
            http_port,
            config.http_limits,
            ssl_context=None if listener_tls is None else listener_tls.https.context,
            reuse_port=siblings is not None,
        )
    except OSError:
        # Stopped here, not left to the garbage collector, which would print a traceback
        # after the loop closes, below the one line that says why.
        await grpc_server.stop(None)
        raise
    metrics_listener = MetricsListener(metrics.render)
    # Among sibling processes the first alone serves the metrics port, with the others'
    # counters added (siblings/metrics.py).
    if config.metrics_address is not None and (
        config.siblings is None or config.siblings.index == 0
    ):
        try:
            await metrics_listener.start(config.metrics_address)
        except OSError:
            await grpc_server.stop(None)
            await runner.cleanup()
            raise
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    parent_fd = _stop_with_parent(stop) if siblings is not None else None
    warming = None
    if config.warm_picks_idle_ms > 0:
        warmer = PickWarmer(registry, dispatcher, context, config.warm_picks_idle_ms / 1000)
        warming = asyncio.create_task(warmer.run(stop))
    discovery: _Discovery | None
    if membership is not None:
        discovery = _start_membership_sync(membership, registry, cluster, table, stop, dialing)
    else:
        discovery = _start_discovery(
            config, registry, cluster, table, context, semantic, stop, dialing
        )
    if listener_tls is not None:
        listener_tls.https.start()
    if authenticator is not None:
        authenticator.start()
    # What exists now lives as long as the router: keep it out of every later collection,
    # so full collections stay short (they pause the event loop, i.e. every request).
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    # The young generation collected every 10,000 net allocations, not CPython's 700: a
    # request's objects mostly die before then, so collections fall from ~160 to ~2 a
    # second under load and their time from ~5% of the router's CPU to ~1%, with fewer
    # loop pauses over a millisecond (docs/benchmarks.md, "Fewer collections").
    gc.set_threshold(_YOUNG_COLLECTION_ALLOCATIONS, *thresholds[1:])
    try:
        on_ready(
            RouterEndpoints(
                http_address=f"{http_host}:{bound_http_port}",
                grpc_address=f"{split_address(config.grpc_address)[0]}:{grpc_port}",
                metrics_address=metrics_listener.address,
            )
        )
        await stop.wait()
    finally:
        gc.set_threshold(*thresholds)  # a router run inside another program leaves its own
        if discovery is not None:
            await discovery.aclose()
        await grpc_server.stop(_STOP_GRACE_S)
        await runner.cleanup()
        if listener_tls is not None:
            await listener_tls.https.aclose()
        await metrics_listener.stop()
        if authenticator is not None:
            await authenticator.aclose()
        if request_cache is not None:
            await request_cache.aclose()
        if opened_cache is not None:
            await opened_cache.aclose()
        await cluster.close()
        if kv_relay is not None:
            await kv_relay.aclose()
        await state.aclose()
        if exposing is not None:
            exposing.cancel()
        if warming is not None:
            warming.cancel()
        if parent_fd is not None:
            asyncio.get_running_loop().remove_reader(parent_fd)
            os.close(parent_fd)
        if siblings is not None:
            await siblings.aclose()
        for client in clients:
            await client.close()


def _stop_with_parent(stop: asyncio.Event) -> int | None:
    """One of `--processes N` ends with the process that started it, even one killed
    outright (left running, it would go on serving the port with what it last knew): a
    pidfd of the parent turns readable when it exits. Its fd, to close at the end."""
    try:
        parent_fd = os.pidfd_open(os.getppid())
    except ProcessLookupError:  # gone already
        stop.set()
        return None

    def parent_exited() -> None:
        _log.warning("the router's parent process is gone: stopping this process")
        stop.set()

    asyncio.get_running_loop().add_reader(parent_fd, parent_exited)
    return parent_fd


def _process_count(config: RouterProcessConfig) -> int:
    """The router processes this one is among (`--processes N`)."""
    return 1 if config.siblings is None else config.siblings.count


def _pick_sender(siblings: SiblingBus) -> Callable[[SharedPick], None]:
    def send(pick: SharedPick) -> None:
        siblings.send(frames.shared_pick(pick))

    return send


def _semantic_stage(
    config: RouterProcessConfig, registry: WorkerRegistry, metrics: SemanticMetrics
) -> SemanticStage:
    """The semantic stage of `routing.semantic` (a pass-through without one)."""

    def is_served(model: str) -> bool:
        return registry.pools(model) is not None

    spec = config.routing.semantic
    if spec is None:
        return SemanticStage({}, is_served, metrics)
    # Targets are checked against the models served now: a fixed deployment (`up`).
    served = {card.name for card in registry.model_cards()}
    targets = Targets(models=None if config.cluster_config is not None else served)
    try:
        policy, embedder = load_semantic(spec, targets, EmbedderCache(), "routing.semantic")
    except SemanticConfigError as error:
        raise RouterStartupError(str(error)) from None
    loaded = LoadedSemantic(policy, embedder, config.routing.cache)
    return SemanticStage({policy.alias: loaded}, is_served, metrics)


@dataclass(frozen=True, slots=True)
class _ListenerTls:
    """The API listeners' TLS: one reloading context for HTTPS, credentials for gRPC."""

    https: ReloadingSslContext
    grpc: grpc.ServerCredentials


_WORKER_TLS_FLAGS = TlsFlags(
    cert="--worker-tls-cert-file", key="--worker-tls-key-file", ca="--worker-tls-ca-file"
)


def _listener_tls(config: RouterProcessConfig) -> _ListenerTls | None:
    if config.tls is None:
        return None
    try:
        return _ListenerTls(ReloadingSslContext(config.tls), grpc_server_credentials(config.tls))
    except TlsFileError as error:
        raise RouterStartupError(str(error)) from None


def _worker_dialing(config: RouterProcessConfig) -> WorkerDialing:
    try:
        return worker_dialing(config.worker_tls, _WORKER_TLS_FLAGS, frames=config.worker_frames)
    except TlsFileError as error:
        raise RouterStartupError(str(error)) from None


def _open_auth(
    config: RouterProcessConfig,
    redis_password: str | None,
    metrics: RouterMetrics,
    orchestrator: Orchestrator,
) -> Authenticator | None:
    if config.auth is None:
        _log.warning(
            "authentication is off: the HTTP and gRPC APIs serve anyone who can reach "
            "them (set auth, e.g. --api-keys-file, to require keys)"
        )
        return None
    redis = None
    if config.redis_url is not None:
        redis = AuthRedis(
            config.redis_url,
            redis_password,
            config.redis_call_timeout_s,
            metrics.observe_redis_error,
        )
    try:
        return open_authenticator(config.auth, redis, metrics, orchestrator.models)
    except AuthSetupError as error:
        raise RouterStartupError(str(error)) from None


def _redis_password(config: RouterProcessConfig) -> str | None:
    if config.redis_password_file is None:
        return None
    try:
        return read_password_file(config.redis_password_file)
    except ValueError as error:
        raise RouterStartupError(f"redis_password_file: {error}") from None


def _open_cache(config: RouterProcessConfig, redis_password: str | None) -> OpenedCache | None:
    """The semantic cache when a policy may use it: `routing.cache`, or any in a cluster
    (policies arrive later). Entries in Redis with `redis_url`, else in memory."""
    if config.routing.cache is None and config.cluster_config is None:
        return None
    try:
        return open_semantic_cache(config.redis_url, DEFAULT_EMBEDDING_DIM, redis_password)
    except ValueError as error:
        raise RouterStartupError(f"redis_url: {error}") from None


def _pressure_of(
    registry: WorkerRegistry, cluster: ClusterView, table: RoutingTable
) -> Callable[[str, int], float]:
    """How loaded a model is: its prefill workers' best predicted TTFT over its SLO."""

    def pressure(model: str, prompt_tokens: int) -> float:
        pools = registry.pools(model)
        if pools is None:
            return math.nan
        workers = pools.of(Role.PREFILL) or pools.of(Role.UNIFIED)
        slo_ttft_ms = table.for_model(model).settings.slo.ttft_ms
        return model_pressure(cluster.candidates(workers), prompt_tokens, slo_ttft_ms)

    return pressure


class _Discovery:
    """The sync loop and the API client it uses (none for the membership file)."""

    def __init__(self, task: asyncio.Task[None], kube: KubeClient | None = None) -> None:
        self._task, self._kube = task, kube

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._kube is not None:
            await self._kube.close()


def _start_membership_sync(
    membership: MembershipFile,
    registry: WorkerRegistry,
    cluster: ClusterView,
    table: RoutingTable,
    stop: asyncio.Event,
    dialing: WorkerDialing,
) -> _Discovery:
    """Workers follow the membership file; routing stays the router's own (no factory)."""
    sync = ClusterSync(registry, cluster, table, None, membership.fetch_endpoints, dialing=dialing)
    task = run_sync(sync, membership.read_config, stop, interval_s=MEMBERSHIP_POLL_S)
    return _Discovery(asyncio.create_task(task))


def _start_discovery(
    config: RouterProcessConfig,
    registry: WorkerRegistry,
    cluster: ClusterView,
    table: RoutingTable,
    context: PluginContext,
    semantic: SemanticStage,
    stop: asyncio.Event,
    dialing: WorkerDialing,
) -> _Discovery | None:
    if config.cluster_config is None:
        return None
    credentials = (
        Credentials(server=config.kube_api_url)
        if config.kube_api_url is not None
        else in_cluster_credentials() or kubeconfig_credentials()
    )
    if credentials is None:
        raise RouterStartupError(
            "cluster_config: no Kubernetes service account and no kubeconfig here; run in "
            "a pod, set KUBECONFIG, or set kube_api_url (e.g. kubectl proxy's "
            "http://127.0.0.1:8001)"
        )
    kube = KubeClient(credentials)
    config_file = ConfigFile(config.cluster_config)

    def read_config() -> RouterClusterConfig:
        config_file.refresh()
        return config_file.config

    sync = ClusterSync(
        registry,
        cluster,
        table,
        lambda settings: build_scheduler(settings.scheduling(), default_registry(), context),
        lambda pools: fetch_endpoints(kube, pools),
        SemanticSync(semantic),
        dialing,
        processes=_process_count(config),
    )
    return _Discovery(asyncio.create_task(run_sync(sync, read_config, stop)), kube)
