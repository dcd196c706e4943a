"""What the handlers share while the operator runs: options and the API client.

Built once per `run_operator` call and captured by the handlers' closures, so
two operators in one process (tests) never share state.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import kopf

from triskel.common.kube import Credentials, KubeClient
from triskel.common.tls import ClientTlsFiles, GrpcClientTls, TlsFlags
from triskel.operator.builders.network_policy import WorkerCallers
from triskel.operator.builders.server_features import ServerFeatures, ServerVersionError
from triskel.operator.drain import WorkProbe
from triskel.operator.graph_autoscalers import GraphAutoscalers
from triskel.operator.metrics import MetricsServer, OperatorMetrics
from triskel.operator.policy_check import PolicyJudge
from triskel.operator.pool_reconciler import PoolReconciler, PoolSettings
from triskel.operator.router_config_sync import publish_router_config
from triskel.operator.worker_probe import work_in_flight

DEFAULT_WORKER_IMAGE = "ghcr.io/triskel-io/triskel:0.1.0"


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    # The image mock workers run (the operator's own image, in a helm install).
    worker_image: str = DEFAULT_WORKER_IMAGE
    # Namespaces to watch; empty: all of them.
    namespaces: tuple[str, ...] = ()
    # Where the router runs and reads its ConfigMap (the helm release's namespace).
    router_namespace: str = "default"
    # Longest wait for a pod's in-flight work before it is removed anyway.
    drain_timeout_s: float = 120.0
    # How often pool and graph status is refreshed from what runs.
    status_interval_s: float = 10.0
    # kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz.
    liveness_endpoint: str | None = None
    # host:port serving the operator's /metrics (desired replicas per pool); None: off.
    metrics_address: str | None = None
    # The router and operator pods (in router_namespace) that may call workers: each pool
    # then gets a NetworkPolicy (builders/network_policy.py); None: none.
    worker_callers: WorkerCallers | None = None
    # The Secret every worker pod mounts for mTLS (builders/tls.py); None: plaintext.
    worker_tls_secret: str | None = None
    # The operator's client certificate for its drain probes of mTLS workers.
    worker_client_tls: ClientTlsFiles | None = None


_CLIENT_TLS_FLAGS = TlsFlags(
    cert="--worker-tls-cert-file", key="--worker-tls-key-file", ca="--worker-tls-ca-file"
)


def _work_probe(files: ClientTlsFiles | None) -> WorkProbe:
    """How drains ask workers for their work in flight: over mTLS with `files`
    (TlsFileError naming the flag when they cannot be used)."""
    if files is None:
        return work_in_flight
    tls = GrpcClientTls(files, _CLIENT_TLS_FLAGS)

    async def probe(address: str) -> int | None:
        return await work_in_flight(address, tls=tls)

    return probe


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OperatorRuntime:
    def __init__(
        self,
        options: OperatorOptions,
        now: Callable[[], str] = utc_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.now = now
        # Seconds, for scrape windows and autoscaling intervals (never jumps).
        self.clock = clock
        self._kube: KubeClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._features: ServerFeatures | None = None
        # Handlers of every kind publish the router config; one at a time, so two
        # never race to create the ConfigMap (the loser's 409 would cost a retry).
        self._publishing = asyncio.Lock()
        # Remembers verdicts: judging a semantic section trains its classifier.
        self.judge = PolicyJudge()
        self.autoscalers = GraphAutoscalers()
        self.metrics = OperatorMetrics()
        # Started by `run_operator` when `options.metrics_address` is set.
        self.metrics_server = MetricsServer(self.metrics)
        self._probe = _work_probe(options.worker_client_tls)

    def logged_in(self, credentials: Credentials) -> None:
        self._kube = KubeClient(credentials)

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            # kopf logs in before any handler runs; retry shortly if that ever races.
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self._kube

    @property
    def http(self) -> aiohttp.ClientSession:
        """For the routers' metrics: no API server credentials ride along."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def pools(self) -> PoolReconciler:
        settings = PoolSettings(
            self.options.worker_image,
            await self.server_features(),
            self.options.drain_timeout_s,
            self.options.worker_callers,
            self.options.worker_tls_secret,
        )
        return PoolReconciler(self.kube, settings, self.now, self._probe)

    async def server_features(self) -> ServerFeatures:
        """What the API server accepts, read from its /version once per run."""
        if self._features is None:
            version = await self.kube.get("/version")
            try:
                self._features = ServerFeatures.from_version(version or {})
            except ServerVersionError as error:
                raise kopf.PermanentError(str(error)) from None
        return self._features

    async def publish_router_config(self, without: tuple[str, str] | None = None) -> None:
        async with self._publishing:
            await publish_router_config(
                self.kube,
                self.options.router_namespace,
                self.judge,
                self.options.namespaces,
                without,
            )

    async def close(self) -> None:
        await self.metrics_server.stop()
        if self._kube is not None:
            await self._kube.close()
        if self._http is not None:
            await self._http.close()
