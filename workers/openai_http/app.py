"""The worker's vLLM-compatible aiohttp application: every route, over one `Engine`."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from triskel.common.http_listener import HttpLimits
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import Engine
from triskel.workers.elastic_ep import ElasticEpGroup
from triskel.workers.openai_http.bootstrap import BootstrapClient
from triskel.workers.openai_http.elastic_ep import ElasticEpCollector, ElasticEpHandlers
from triskel.workers.openai_http.flows import Flows
from triskel.workers.openai_http.generation import MAX_BODY_BYTES, GenerationHandlers
from triskel.workers.openai_http.info import InfoHandlers, ServingState
from triskel.workers.openai_http.metrics import WorkerHttpMetrics
from triskel.workers.openai_http.rooms import BootstrapRooms


@dataclass(frozen=True, slots=True)
class HttpApiSettings:
    # How long a prefill keeps the prompt's KV for its decode worker to pull (and how
    # long a published bootstrap room is remembered).
    kv_hold_ms: int = 30_000
    # A decode worker's bound on waiting for its SGLang-style bootstrap room.
    bootstrap_wait_s: float = 300.0
    # Both listeners' timeouts and connection cap.
    limits: HttpLimits = field(default_factory=HttpLimits)


def build_worker_app(
    engine: Engine,
    settings: HttpApiSettings,
    state: ServingState,
    rooms: BootstrapRooms | None = None,
    bootstrap_port: int | None = None,
    elastic_ep: ElasticEpGroup | None = None,
) -> web.Application:
    """The API over `engine`. `rooms` (with this worker's `bootstrap_port`) are where
    it publishes SGLang-style prefills; without them it cannot be an SGLang prefill.
    `elastic_ep`: the EP group the worker simulates (None: a dense model's engine)."""
    tokenizer = MockTokenizer()
    metrics = WorkerHttpMetrics(engine)
    if elastic_ep is not None:
        label_values = [engine.description.model, "0"]
        metrics.registry.register(ElasticEpCollector(elastic_ep, label_values))
    client = BootstrapClient(settings.bootstrap_wait_s)
    flows = Flows(engine, tokenizer, settings.kv_hold_ms, client, rooms, bootstrap_port)
    generation = GenerationHandlers(engine, flows, metrics, tokenizer)
    info = InfoHandlers(engine, metrics, tokenizer, state, bootstrap_port, elastic_ep)
    scaling = ElasticEpHandlers(elastic_ep)

    async def close_client(app: web.Application) -> None:
        await client.close()

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.on_cleanup.append(close_client)
    routes = app.router
    routes.add_post("/v1/completions", generation.completions)
    routes.add_post("/v1/chat/completions", generation.chat_completions)
    routes.add_post("/v1/completions/render", info.render_completion)
    routes.add_post("/v1/chat/completions/render", info.render_chat)
    routes.add_get("/v1/models", info.models)
    routes.add_get("/health", info.health)
    routes.add_get("/metrics", info.metrics)
    routes.add_post("/tokenize", info.tokenize)
    routes.add_post("/detokenize", info.detokenize)
    for path in ("/get_model_info", "/model_info"):
        routes.add_get(path, info.model_info)
    for path in ("/get_server_info", "/server_info"):
        routes.add_get(path, info.server_info)
    routes.add_get("/version", info.version)
    routes.add_post("/scale_elastic_ep", scaling.scale)
    routes.add_post("/is_scaling_elastic_ep", scaling.is_scaling)
    return app
