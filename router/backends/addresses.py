"""Which protocol a worker speaks, from how the router was told about it.

"127.0.0.1:50051"                       Triskel's gRPC worker protocol
"http://127.0.0.1:8000"                 vLLM's HTTP API (role: asked of the worker)
{url: "http://…", api: vllm, role: prefill, model: …, blockSizeTokens: 16}
                                        vLLM's HTTP API, described by the router's config
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from triskel.common.api import ApiModel, Role
from triskel.router.backends.dialing import WorkerDialing
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.backends.vllm_worker import VllmWorkerClient
from triskel.router.worker_client import WorkerClient

_HTTP_SCHEMES = ("http://", "https://")


class WorkerApi(StrEnum):
    # triskel.v1.Worker over gRPC: mock workers and Triskel's engine adapters.
    TRISKEL = "triskel"
    # vLLM's OpenAI-compatible HTTP API with kv_transfer_params for P/D.
    VLLM = "vllm"


class WorkerEndpoint(ApiModel):
    """One worker the router drives, and how."""

    url: Annotated[str, Field(min_length=1)]
    """host:port for the Triskel protocol; http://host:port for vLLM's API."""
    api: WorkerApi = WorkerApi.TRISKEL
    """Default: vllm for http:// URLs, triskel otherwise."""
    role: Role | None = None
    """vLLM does not report its role: give it (mock workers report theirs)."""
    model: str | None = None
    """Default: what the worker reports."""
    block_size_tokens: Annotated[int, Field(ge=1)] | None = None
    """KV block size for prefix hashing; default: reported, else vLLM's 16."""

    @model_validator(mode="before")
    @classmethod
    def _api_from_url(cls, data: object) -> object:
        if isinstance(data, dict) and "api" not in data:
            url = data.get("url")
            if isinstance(url, str) and url.startswith(_HTTP_SCHEMES):
                return {**data, "api": WorkerApi.VLLM}
        return data

    @model_validator(mode="after")
    def _url_fits_api(self) -> WorkerEndpoint:
        is_http = self.url.startswith(_HTTP_SCHEMES)
        if self.api is WorkerApi.VLLM and not is_http:
            raise ValueError(f"url: {self.url!r} must start with http:// for a vllm worker")
        if self.api is WorkerApi.TRISKEL and ("://" in self.url or ":" not in self.url):
            raise ValueError(f"url: {self.url!r} must be host:port for a triskel worker")
        return self


def as_endpoint(worker: str | WorkerEndpoint) -> WorkerEndpoint:
    return worker if isinstance(worker, WorkerEndpoint) else WorkerEndpoint(url=worker)


def open_worker(worker: str | WorkerEndpoint, dialing: WorkerDialing | None = None) -> WorkerClient:
    """A client, not connected yet, for the worker's protocol; Triskel-protocol workers
    are called as `dialing` says (TLS, frames; vLLM's HTTP API takes an https:// URL)."""
    endpoint = as_endpoint(worker)
    if endpoint.api is WorkerApi.VLLM:
        return VllmWorkerClient(
            endpoint.url, endpoint.role, endpoint.model, endpoint.block_size_tokens
        )
    return GrpcWorkerClient(endpoint.url, dialing)
