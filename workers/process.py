"""`triskel worker`: build one worker from its pool spec and serve it until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field, model_validator

from triskel.common.api import Address, ApiModel, EngineType, Role, WorkerPoolSpec
from triskel.common.profiles import load_profile
from triskel.common.tls import ReloadingSslContext, TlsFiles, grpc_server_credentials
from triskel.workers.drain import drain
from triskel.workers.elastic_ep import ElasticEpGroup
from triskel.workers.engine.core import EngineConfig, EngineCore
from triskel.workers.ep_group import ep_group_spec
from triskel.workers.frame_server import FrameServer, start_frame_server
from triskel.workers.kv.arena import KvArena, kv_block_bytes
from triskel.workers.kv.capability import KvAuthKey
from triskel.workers.kv.control_tls import KvTls
from triskel.workers.kv.registry import create_connector
from triskel.workers.mock_engine import MockEngine, MockEngineSettings
from triskel.workers.openai_http.app import HttpApiSettings
from triskel.workers.openai_http.server import WorkerHttpApi, start_worker_http_api
from triskel.workers.server import start_worker_server

_log = logging.getLogger(__name__)

_STOP_GRACE_S = 2.0


class WorkerProcessConfig(ApiModel):
    """Everything one worker process needs; `triskel up` writes it for each replica."""

    worker_id: str = Field(min_length=1)
    pool: WorkerPoolSpec
    # gRPC listen address; port 0 picks a free port.
    grpc_address: Address = "127.0.0.1:0"
    # Decode, Prefill, Cancel, stats and KV events are also served as frames
    # (worker_frames.proto) on this port of the gRPC address's host, advertised in
    # GetInfo; 0 picks a free one. None: no frames (routers call over gRPC only).
    frame_port: int | None = Field(default=0, ge=0, le=65535)
    # On SIGTERM, longest wait for requests in flight before stopping (the pod's
    # terminationGracePeriodSeconds leaves room for it).
    drain_timeout_s: float = Field(default=90.0, ge=0)
    # Address the KV connector binds and advertises to peers.
    kv_host: str = "127.0.0.1"
    # File holding the KV auth key every worker of the graph shares (a mounted Secret
    # in a cluster; `triskel up` writes one per run). None: a random key of this
    # process, so other workers' pulls of this one's KV are refused (and a warning says so).
    kv_auth_key_file: str | None = None
    # TLS on the gRPC server (mTLS with a CA and require_client_cert: the router then
    # calls with its worker_tls) and, with a CA, mutual TLS on the KV control channel.
    tls: TlsFiles | None = None
    # vLLM-compatible HTTP API (OpenAI routes, /metrics, P/D); None serves gRPC only.
    http_address: Address | None = None
    # SGLang-style P/D bootstrap listener (prefill and unified workers, with http_address).
    bootstrap_address: Address | None = None
    # A decode worker's longest wait for the bootstrap room of an SGLang-style request.
    # SGLang's decode waits as long by default (SGLANG_DISAGGREGATION_WAITING_TIMEOUT): a
    # shorter bound turns a long prefill queue into errors a peer router never sees on SGLang.
    bootstrap_wait_s: float = Field(default=300.0, gt=0)
    # An EP group (a MoE profile): the largest EP size `/scale_elastic_ep` may reach; the
    # KV arena is sized for it at start. None: twice parallelism.ep, within what fits.
    max_ep_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check_listeners(self) -> WorkerProcessConfig:
        if self.bootstrap_address is None:
            return self
        if self.http_address is None:
            raise ValueError(
                "bootstrapAddress: needs httpAddress (SGLang-style prefills arrive over HTTP)"
            )
        if self.pool.role not in (Role.PREFILL, Role.UNIFIED):
            raise ValueError(
                f"bootstrapAddress: only prefill and unified workers serve a bootstrap "
                f"listener, this one is {self.pool.role}"
            )
        return self


@dataclass(frozen=True, slots=True)
class WorkerEndpoints:
    """Where a running worker listens ("host:port" each); None: not served."""

    grpc: str
    http: str | None = None
    bootstrap: str | None = None
    frames: str | None = None


@dataclass(frozen=True, slots=True)
class MockWorker:
    """A worker's mock engine, and the EP group it simulates (None: a dense model)."""

    engine: MockEngine
    elastic_ep: ElasticEpGroup | None = None


def build_mock_engine(config: WorkerProcessConfig) -> MockEngine:
    """The mock engine for a pool spec; ValueError names the bad field."""
    return build_mock_worker(config).engine


def build_mock_worker(config: WorkerProcessConfig) -> MockWorker:
    """The mock engine for a pool spec, as an EP group when its profile is a MoE
    model's; ValueError names the bad field."""
    spec = config.pool
    if spec.engine.type is not EngineType.MOCK:
        raise ValueError(
            f"engine.type: {spec.engine.type} workers are not runnable by `triskel worker` yet; "
            "use mock"
        )
    profile = load_profile(spec.profile.name)
    ep = spec.parallelism.ep
    group = ep_group_spec(
        profile,
        ep,
        model=spec.model,
        kv_capacity_tokens_per_rank=spec.profile.kv_capacity_tokens,
        max_ep_size=config.max_ep_size,
    )
    if group is None:
        if spec.profile.host_kv_capacity_tokens and profile.host_link is None:
            raise ValueError(
                f"profile.hostKvCapacityTokens: profile {profile.name} has no host link "
                "to load a host tier over"
            )
        engine_config = EngineConfig.from_profile(
            profile,
            model=spec.model,
            kv_capacity_tokens=spec.profile.kv_capacity_tokens,
            host_kv_capacity_tokens=spec.profile.host_kv_capacity_tokens,
        )
        num_arena_blocks = engine_config.num_kv_blocks
    else:
        engine_config = group.engine_config(ep)
        num_arena_blocks = group.max_num_kv_blocks
    arena = KvArena(
        num_arena_blocks,
        kv_block_bytes(
            profile.geometry.kv_bytes_per_token,
            engine_config.block_size_tokens,
            spec.profile.kv_bytes_scale,
        ),
    )
    connector = create_connector(spec.kv_connector.type, spec.kv_connector.params)
    settings = MockEngineSettings(
        worker_id=config.worker_id,
        role=spec.role,
        time_scale=spec.profile.time_scale,
        kv_host=config.kv_host,
        kv_auth_key=_kv_auth_key(config),
        kv_tls=_kv_tls(config),
    )
    engine = MockEngine(settings, EngineCore(engine_config), arena, connector)
    if group is None:
        return MockWorker(engine)
    return MockWorker(engine, ElasticEpGroup(group, engine, ep, spec.profile.time_scale))


def _kv_auth_key(config: WorkerProcessConfig) -> KvAuthKey | None:
    """ValueError names the key file when it cannot be used."""
    if config.kv_auth_key_file is None:
        _log.warning(
            "worker %s: no kv_auth_key_file, so only workers in this process can pull its KV; "
            "give every worker of a graph the same key file to disaggregate across processes",
            config.worker_id,
        )
        return None
    return KvAuthKey.from_file(config.kv_auth_key_file)


def _kv_tls(config: WorkerProcessConfig) -> KvTls | None:
    """Mutual TLS between workers needs the CA as well; TlsFileError names the flag."""
    if config.tls is None:
        return None
    if config.tls.ca_file is None:
        _log.warning(
            "worker %s: the KV control channel stays plaintext: TLS between workers is "
            "mutual and needs --tls-client-ca-file",
            config.worker_id,
        )
        return None
    return KvTls.from_files(config.tls)


async def run_worker(
    config: WorkerProcessConfig,
    on_ready: Callable[[WorkerEndpoints], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serves the worker until `stop` is set (or SIGTERM / SIGINT when `stop` is None).

    `on_ready` receives the bound addresses once the worker accepts calls.
    """
    worker = build_mock_worker(config)
    engine = worker.engine
    await engine.start()
    host = config.grpc_address.rsplit(":", 1)[0]
    server = None
    frames: FrameServer | None = None
    frame_tls: ReloadingSslContext | None = None
    http_api: WorkerHttpApi | None = None
    try:
        if config.frame_port is not None:
            ssl_context = None
            if config.tls is not None:
                frame_tls = ReloadingSslContext(config.tls)
                frame_tls.start()
                ssl_context = frame_tls.context
            frames = await start_frame_server(
                engine, host.strip("[]"), config.frame_port, ssl_context
            )
        credentials = None if config.tls is None else grpc_server_credentials(config.tls)
        server, port = await start_worker_server(
            engine, config.grpc_address, credentials, frames.port if frames else 0
        )
        if config.http_address is not None:
            http_api = await start_worker_http_api(
                engine,
                config.http_address,
                config.bootstrap_address,
                HttpApiSettings(bootstrap_wait_s=config.bootstrap_wait_s),
                elastic_ep=worker.elastic_ep,
            )
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        on_ready(
            WorkerEndpoints(
                grpc=f"{host}:{port}",
                http=http_api.http_address if http_api else None,
                bootstrap=http_api.bootstrap_address if http_api else None,
                frames=f"{host}:{frames.port}" if frames else None,
            )
        )
        await stop.wait()
        if http_api is not None:
            http_api.mark_stopping()  # /health turns 503: HTTP routers stop sending
        # A pod being removed gets SIGTERM after routers stopped sending to it (the
        # operator drains first; its preStop hook covers discovery lag): let what is
        # already here finish, bounded, before the servers go.
        if not await drain(engine, config.drain_timeout_s):
            _log.warning(
                "stopping with work in flight after a %.0f s drain", config.drain_timeout_s
            )
    finally:
        if http_api is not None:
            await http_api.close()
        # Both at once: neither takes new calls while the other lets its own end.
        await asyncio.gather(
            *([server.stop(_STOP_GRACE_S)] if server is not None else []),
            *([frames.close(_STOP_GRACE_S)] if frames is not None else []),
        )
        if frame_tls is not None:
            await frame_tls.aclose()
        if worker.elastic_ep is not None:
            await worker.elastic_ep.close()
        await engine.close()
