"""Which flow a request runs: a decode worker without params prefills itself, a prefill
worker refuses plain generation, a unified worker is the SGLang prefill side when the
request names its bootstrap port, and params that do not fit are 400s naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from support.local_workers import local_worker, mock_pool, post_json, scrape
from support.pd_workers import (
    COMPLETION,
    KV_EXPORTED,
    PROMPT,
    Cluster,
    cluster,
    prefill_for_vllm,
    reference_text,
    sglang_body,
    text_of,
)


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[Cluster]:
    async with cluster() as started:
        yield started


@pytest.mark.asyncio
async def test_a_decode_worker_without_params_prefills_itself(workers: Cluster) -> None:
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", COMPLETION)
    assert status == 200
    assert text_of(reply) == await reference_text(workers, COMPLETION)


@pytest.mark.parametrize(
    ("edit", "param"),
    [
        (lambda p: p.pop("remote_port"), "kv_transfer_params.remote_port"),
        (lambda p: p.pop("remote_host"), "kv_transfer_params.remote_host"),
        (lambda p: p.pop("triskel"), "kv_transfer_params.triskel"),
        (lambda p: p["triskel"].update(connector="nccl"), "kv_transfer_params.triskel.connector"),
        (lambda p: p.update(do_remote_decode=True), "kv_transfer_params.do_remote_decode"),
    ],
)
@pytest.mark.asyncio
async def test_missing_or_malformed_params_are_400s_naming_the_field(
    workers: Cluster, edit: Any, param: str
) -> None:
    params = (await prefill_for_vllm(workers, COMPLETION))["kv_transfer_params"]
    edit(params)
    body = {**COMPLETION, "kv_transfer_params": params}
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
    assert status == 400, reply
    assert reply["error"]["param"] == param


@pytest.mark.asyncio
async def test_params_for_another_prompt_are_a_400(workers: Cluster) -> None:
    params = (await prefill_for_vllm(workers, COMPLETION))["kv_transfer_params"]
    body = {**COMPLETION, "prompt": PROMPT + " twice", "kv_transfer_params": params}
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
    assert status == 400
    assert reply["error"]["param"] == "kv_transfer_params.triskel.num_tokens"


@pytest.mark.asyncio
async def test_a_prefill_worker_refuses_to_generate_on_its_own(workers: Cluster) -> None:
    status, reply = await post_json(workers.prefill.http_url + "/v1/completions", COMPLETION)
    assert status == 400
    assert reply["error"]["param"] == "kv_transfer_params"
    assert "do_remote_decode" in reply["error"]["message"]
    assert "bootstrap_room" in reply["error"]["message"]


@pytest.mark.asyncio
async def test_sglang_decode_without_a_bootstrap_port_is_a_400(workers: Cluster) -> None:
    # smg sends null when it was given the prefill worker without a bootstrap port.
    body = sglang_body(COMPLETION, None)
    status, reply = await post_json(workers.decode.http_url + "/v1/completions", body)
    assert status == 400
    assert reply["error"]["param"] == "bootstrap_port"


@pytest.mark.asyncio
async def test_a_unified_worker_whose_bootstrap_port_is_named_is_the_prefill_side(
    workers: Cluster,
) -> None:
    async with local_worker(
        mock_pool("unified"),
        "unified-1",
        http_address="127.0.0.1:0",
        bootstrap_address="127.0.0.1:0",
    ) as unified:
        assert unified.endpoints.bootstrap is not None
        port = int(unified.endpoints.bootstrap.rsplit(":", 1)[1])
        both = sglang_body(COMPLETION, port)
        (prefill_status, _), (status, reply) = await asyncio.gather(
            post_json(unified.http_url + "/v1/completions", both),
            post_json(workers.decode.http_url + "/v1/completions", both),
        )
        assert (prefill_status, status) == (200, 200)
        assert text_of(reply) == await reference_text(workers, COMPLETION)
        exported = await scrape(f"{unified.http_url}/metrics")
        assert exported[KV_EXPORTED] == 1
