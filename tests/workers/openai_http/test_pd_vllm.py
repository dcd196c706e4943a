"""kv_transfer_params ↔ KvHandle: a round trip, and every bad field named by its full path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from triskel.workers.api import PrefillResult
from triskel.workers.kv.handle import KvHandle
from triskel.workers.openai_http.pd_vllm import (
    KvParamsError,
    KvTransferRole,
    RemoteKv,
    kv_transfer_params_json,
    kv_transfer_role,
    parse_remote_kv,
)

HANDLE = KvHandle(
    request_id="req-1",
    worker_id="prefill-0",
    connector="mooncake",
    address="10.0.0.5:7001",
    num_tokens=40,
    block_bytes=4096,
    # XXH3-64 checksums use the whole unsigned 64-bit range.
    block_checksums=(1, 2**64 - 1, 3),
    params={"protocol": "tcp", "segment": "10.0.0.5:7002"},
    capability="v1.123.bm9uY2U.dGFn",
)
RESULT = PrefillResult(
    first_token_id=42,
    first_token_text=" the",
    num_cached_tokens=16,
    kv=HANDLE,
    finish_reason=None,
    elapsed_ms=1.0,
    kv_block_ids=(7, 8, 9),
)


def params() -> dict[str, Any]:
    value = kv_transfer_params_json(RESULT)
    assert value is not None
    return copy.deepcopy(value)


def test_the_prefill_answer_is_what_vllm_router_forwards() -> None:
    value = params()
    assert {k: v for k, v in value.items() if k != "triskel"} == {
        "do_remote_prefill": True,
        "do_remote_decode": False,
        "remote_engine_id": "prefill-0",
        "remote_request_id": "req-1",
        "remote_block_ids": [7, 8, 9],
        "remote_host": "10.0.0.5",
        "remote_port": 7001,
        "tp_size": 1,
    }
    assert value["triskel"]["first_token_id"] == 42


def test_round_trip() -> None:
    # The capability travels too: without it the decode worker's pull is refused.
    assert parse_remote_kv(params()) == RemoteKv(HANDLE, 42)
    assert parse_remote_kv(params()).handle.capability == HANDLE.capability


def test_ipv6_hosts_survive() -> None:
    handle = KvHandle("r", "p", "tcp", "[::1]:7001", 1, 1, (1,))
    v6 = PrefillResult(42, "", 0, handle, None, 1.0, kv_block_ids=(0,))
    value = kv_transfer_params_json(v6)
    assert value is not None and value["remote_host"] == "::1"
    assert parse_remote_kv(value).handle.address == "[::1]:7001"


def test_a_finished_prefill_has_no_params() -> None:
    finished = PrefillResult(42, " the", 0, None, "stop", 1.0)
    assert kv_transfer_params_json(finished) is None


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda p: p.pop("remote_port"), "kv_transfer_params.remote_port"),
        (lambda p: p.update(remote_port=0), "kv_transfer_params.remote_port"),
        (lambda p: p.update(remote_host=None), "kv_transfer_params.remote_host"),
        (lambda p: p.pop("remote_request_id"), "kv_transfer_params.remote_request_id"),
        (lambda p: p.pop("remote_engine_id"), "kv_transfer_params.remote_engine_id"),
        (lambda p: p.update(remote_block_ids=[7, 8]), "kv_transfer_params.remote_block_ids"),
        (
            lambda p: p.update(remote_block_ids=[7, "8", 9]),
            "kv_transfer_params.remote_block_ids[1]",
        ),
        # vllm-router's first-step body: params without the prefill's answer.
        (lambda p: p.pop("triskel"), "kv_transfer_params.triskel"),
        (lambda p: p["triskel"].pop("first_token_id"), "kv_transfer_params.triskel.first_token_id"),
        (lambda p: p["triskel"].update(block_bytes=0), "kv_transfer_params.triskel.block_bytes"),
        (
            lambda p: p["triskel"].update(block_checksums=[2**64]),
            "kv_transfer_params.triskel.block_checksums[0]",
        ),
        (lambda p: p["triskel"].update(params={"a": 1}), "kv_transfer_params.triskel.params"),
        (lambda p: p["triskel"].update(capability=5), "kv_transfer_params.triskel.capability"),
    ],
)
def test_a_bad_field_is_named(edit: Any, field: str) -> None:
    value = params()
    edit(value)
    with pytest.raises(KvParamsError) as raised:
        parse_remote_kv(value)
    assert raised.value.field_name == field
    assert str(raised.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("value", "role"),
    [
        (None, KvTransferRole.NONE),
        ({"do_remote_decode": False, "do_remote_prefill": None}, KvTransferRole.NONE),
        # vllm-router's prefill request.
        ({"do_remote_decode": True, "do_remote_prefill": False}, KvTransferRole.PRODUCE),
        ({"do_remote_prefill": True}, KvTransferRole.CONSUME),
    ],
)
def test_what_the_params_ask_for(value: dict[str, Any] | None, role: KvTransferRole) -> None:
    assert kv_transfer_role(value) is role


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"do_remote_decode": "yes"}, "kv_transfer_params.do_remote_decode"),
        (
            {"do_remote_decode": True, "do_remote_prefill": True},
            "kv_transfer_params.do_remote_decode",
        ),
    ],
)
def test_contradictory_or_malformed_flags_are_named(value: dict[str, Any], field: str) -> None:
    with pytest.raises(KvParamsError) as raised:
        kv_transfer_role(value)
    assert raised.value.field_name == field
