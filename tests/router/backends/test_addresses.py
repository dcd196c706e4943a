"""How a configured worker maps to a protocol."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triskel.common.api import Role
from triskel.router.backends.addresses import WorkerApi, WorkerEndpoint, open_worker
from triskel.router.backends.grpc_worker import GrpcWorkerClient
from triskel.router.backends.vllm_worker import VllmWorkerClient


def test_a_plain_address_is_a_triskel_worker_and_a_url_a_vllm_one() -> None:
    assert WorkerEndpoint(url="127.0.0.1:50051").api is WorkerApi.TRISKEL
    assert WorkerEndpoint(url="http://127.0.0.1:8000").api is WorkerApi.VLLM
    assert isinstance(open_worker("127.0.0.1:50051"), GrpcWorkerClient)
    assert isinstance(open_worker("http://127.0.0.1:8000"), VllmWorkerClient)


def test_a_described_vllm_worker_keeps_its_role() -> None:
    endpoint = WorkerEndpoint.model_validate(
        {"url": "http://127.0.0.1:8000", "api": "vllm", "role": "prefill", "blockSizeTokens": 32}
    )
    assert (endpoint.role, endpoint.block_size_tokens) == (Role.PREFILL, 32)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "127.0.0.1:8000", "api": "vllm"}, "must start with http://"),
        ({"url": "http://127.0.0.1:8000", "api": "triskel"}, "must be host:port"),
        ({"url": "http://127.0.0.1:8000", "role": "leader"}, "role"),
    ],
)
def test_mismatched_urls_are_refused_naming_the_field(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkerEndpoint.model_validate(fields)
