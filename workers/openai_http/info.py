"""The worker's small endpoints: models, health, metrics, tokenizer, and who it is.

GET  /v1/models                     the one model served (vLLM's shape)
GET  /health                        200; 503 once the worker is stopping
GET  /metrics                       Prometheus text (see `metrics`)
POST /tokenize                      {"tokens", "count", "max_model_len"} of a prompt or messages
POST /detokenize                    {"prompt"} of {"tokens"}
POST /v1/completions/render         {"token_ids"} the completion would run on
POST /v1/chat/completions/render    {"token_ids"} the chat completion would run on
GET  /get_model_info, /model_info   SGLang's model info, plus "triskel": WorkerDescription
GET  /get_server_info, /server_info SGLang's server info (smg probes it); an EP group's
                                    size ("ep_size") and steps ("elastic_ep")
GET  /version                       {"version"}
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import time

from aiohttp import web

from triskel.common.api import Role
from triskel.common.tokenizer import MockTokenizer
from triskel.workers.api import Engine
from triskel.workers.elastic_ep import ElasticEpGroup
from triskel.workers.openai_http.elastic_ep import elastic_ep_json
from triskel.workers.openai_http.errors import ApiError, Json
from triskel.workers.openai_http.generation import error_response, json_response, read_json
from triskel.workers.openai_http.metrics import WorkerHttpMetrics
from triskel.workers.openai_http.prompts import encode_prompt
from triskel.workers.openai_http.requests import (
    parse_prompt_input,
    parse_token_ids,
    parse_tokenize_request,
)
from triskel.workers.openai_http.responses import models_json

# SGLang's names for a worker's P/D role ("null": not disaggregated).
_DISAGGREGATION_MODES = {Role.PREFILL: "prefill", Role.DECODE: "decode"}


class ServingState:
    """Whether the worker still takes requests (a stopping one fails its health check)."""

    def __init__(self) -> None:
        self.is_stopping = False


class InfoHandlers:
    def __init__(
        self,
        engine: Engine,
        metrics: WorkerHttpMetrics,
        tokenizer: MockTokenizer,
        state: ServingState,
        bootstrap_port: int | None,
        elastic_ep: ElasticEpGroup | None = None,
    ) -> None:
        self._engine = engine
        self._elastic_ep = elastic_ep
        self._metrics = metrics
        self._tokenizer = tokenizer
        self._state = state
        self._bootstrap_port = bootstrap_port
        self._started_s = int(time.time())

    async def models(self, request: web.Request) -> web.Response:
        d = self._engine.description
        return json_response(models_json(d.model, d.max_context_tokens, self._started_s))

    async def health(self, request: web.Request) -> web.Response:
        if self._state.is_stopping:
            return error_response(ApiError(503, "the worker is stopping"))
        return web.Response()

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def tokenize(self, request: web.Request) -> web.Response:
        try:
            prompt, add_generation_prompt = parse_tokenize_request(await read_json(request))
            max_context_tokens = self._engine.description.max_context_tokens
            token_ids = await encode_prompt(
                prompt, self._tokenizer, max_context_tokens, add_generation_prompt
            )
        except ApiError as error:
            return error_response(error)
        return json_response(
            {
                "count": len(token_ids),
                "max_model_len": self._engine.description.max_context_tokens,
                "tokens": token_ids,
                "token_strs": None,
            }
        )

    async def detokenize(self, request: web.Request) -> web.Response:
        try:
            token_ids = parse_token_ids(await read_json(request), "tokens")
        except ApiError as error:
            return error_response(error)
        return json_response({"prompt": self._tokenizer.decode(token_ids)})

    async def render_completion(self, request: web.Request) -> web.Response:
        return await self._render(request, is_chat=False)

    async def render_chat(self, request: web.Request) -> web.Response:
        return await self._render(request, is_chat=True)

    async def _render(self, request: web.Request, is_chat: bool) -> web.Response:
        try:
            prompt = parse_prompt_input(await read_json(request), is_chat)
            max_context_tokens = self._engine.description.max_context_tokens
            token_ids = await encode_prompt(prompt, self._tokenizer, max_context_tokens)
        except ApiError as error:
            return error_response(error)
        return json_response({"token_ids": token_ids})

    async def model_info(self, request: web.Request) -> web.Response:
        d = self._engine.description
        return json_response(
            {
                "model_path": d.model,
                "tokenizer_path": d.model,
                "is_generation": True,
                "preferred_sampling_params": None,
                "triskel": self._description_json(),
            }
        )

    async def server_info(self, request: web.Request) -> web.Response:
        d = self._engine.description
        load = self._engine.load()
        group = self._elastic_ep
        return json_response(
            {
                "model_path": d.model,
                "tokenizer_path": d.model,
                "served_model_name": d.model,
                "context_length": d.max_context_tokens,
                "page_size": d.block_size_tokens,
                "max_total_num_tokens": d.num_kv_blocks * d.block_size_tokens,
                "tp_size": 1,
                "dp_size": 1,
                "ep_size": group.ranks if group is not None else 1,
                "disaggregation_mode": _DISAGGREGATION_MODES.get(d.role, "null"),
                "disaggregation_bootstrap_port": self._bootstrap_port,
                "disaggregation_transfer_backend": d.kv_connector,
                "internal_states": [
                    {
                        "num_running_reqs": load.num_running_requests,
                        "num_waiting_reqs": load.num_waiting_requests,
                        "token_usage": load.kv_usage,
                    }
                ],
                "version": _version(),
                "triskel": self._description_json(),
                "elastic_ep": elastic_ep_json(group) if group is not None else None,
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        return json_response({"version": _version()})

    def _description_json(self) -> Json:
        description = dataclasses.asdict(self._engine.description)
        description["role"] = str(self._engine.description.role)
        return description


def _version() -> str:
    try:
        return importlib.metadata.version("triskel")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
