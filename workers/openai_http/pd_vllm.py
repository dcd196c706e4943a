"""vLLM-style P/D: `kv_transfer_params` ↔ `KvHandle`. Pure, no I/O.

A proxy (vllm-router, Triskel's vllm backend) sends the prefill worker the request with
`kv_transfer_params.do_remote_decode: true`, copies the TOP-LEVEL `kv_transfer_params`
of its answer verbatim into the decode request, and the decode worker pulls the KV:

    {"do_remote_prefill": true, "do_remote_decode": false,
     "remote_engine_id": "<prefill worker id>", "remote_request_id": "<its request id>",
     "remote_block_ids": [<exporter block ids>], "remote_host": "<KV control host>",
     "remote_port": <KV control port>, "tp_size": 1,
     "triskel": {"connector": "tcp", "num_tokens": n, "block_bytes": b,
                 "block_checksums": [...], "first_token_id": t, "params": {...},
                 "capability": "<token>"}}

The vLLM fields say where the KV is (as NIXL's would); `triskel` carries the rest of the
handle and the prefill's first token, which real vLLM would ignore. `capability` is the
right to pull that KV once (see `triskel.workers.kv.capability`): the proxy passes it on
like the rest and must not log it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from triskel.workers.api import PrefillResult
from triskel.workers.kv.control import format_address, parse_address
from triskel.workers.kv.handle import KvHandle
from triskel.workers.openai_http.errors import Json
from triskel.workers.openai_http.fields import shown

_MAX_PORT = 65535


class KvParamsError(ValueError):
    """`kv_transfer_params` cannot be used; `field_name` is the full path of the bad field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name


class KvTransferRole(Enum):
    """What a request's `kv_transfer_params` asks of the worker."""

    NONE = "none"  # absent, null or both flags off: serve the request here
    PRODUCE = "produce"  # do_remote_decode: prefill, keep the KV for a decode worker to pull
    CONSUME = "consume"  # do_remote_prefill: pull the KV a prefill worker kept, then decode


@dataclass(frozen=True, slots=True)
class RemoteKv:
    """A prompt's KV on a prefill worker, and the first token that prefill sampled."""

    handle: KvHandle
    first_token_id: int


def kv_transfer_role(params: Json | None, field: str = "kv_transfer_params") -> KvTransferRole:
    """KvParamsError when a flag is not a boolean or both flags are on."""
    if params is None:
        return KvTransferRole.NONE
    produce = _flag(params, "do_remote_decode", field)
    consume = _flag(params, "do_remote_prefill", field)
    if produce and consume:
        raise KvParamsError(
            f"{field}.do_remote_decode", "and do_remote_prefill cannot both be true"
        )
    if produce:
        return KvTransferRole.PRODUCE
    return KvTransferRole.CONSUME if consume else KvTransferRole.NONE


def kv_transfer_params_json(result: PrefillResult) -> Json | None:
    """A prefill's answer to `do_remote_decode`; None when its first token finished it."""
    kv = result.kv
    if kv is None:
        return None
    host, port = parse_address(kv.address)
    return {
        "do_remote_prefill": True,
        "do_remote_decode": False,
        "remote_engine_id": kv.worker_id,
        "remote_request_id": kv.request_id,
        "remote_block_ids": list(result.kv_block_ids),
        "remote_host": host,
        "remote_port": port,
        "tp_size": 1,
        "triskel": {
            "connector": kv.connector,
            "num_tokens": kv.num_tokens,
            "block_bytes": kv.block_bytes,
            "block_checksums": list(kv.block_checksums),
            "first_token_id": result.first_token_id,
            "params": dict(kv.params),
            "capability": kv.capability,
        },
    }


def parse_remote_kv(params: Json, field: str = "kv_transfer_params") -> RemoteKv:
    """The handle in a `do_remote_prefill` request; KvParamsError names the bad field."""
    ours = params.get("triskel")
    if not isinstance(ours, dict):
        raise KvParamsError(
            f"{field}.triskel",
            "must be the object a Triskel prefill worker returned in its kv_transfer_params",
        )
    checksums = _int_list(ours, "block_checksums", f"{field}.triskel", 2**64 - 1)
    block_ids = _int_list(params, "remote_block_ids", field, 2**63 - 1)
    if len(block_ids) != len(checksums):
        raise KvParamsError(
            f"{field}.remote_block_ids",
            f"has {len(block_ids)} block ids but triskel.block_checksums has {len(checksums)}",
        )
    port = _int(params, "remote_port", field, 1, _MAX_PORT)
    kv_params = ours.get("params", {})
    if not isinstance(kv_params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in kv_params.items()
    ):
        raise KvParamsError(f"{field}.triskel.params", "must map strings to strings")
    handle = KvHandle(
        request_id=_str(params, "remote_request_id", field),
        worker_id=_str(params, "remote_engine_id", field),
        connector=_str(ours, "connector", f"{field}.triskel"),
        address=format_address(_str(params, "remote_host", field), port),
        num_tokens=_int(ours, "num_tokens", f"{field}.triskel", 1),
        block_bytes=_int(ours, "block_bytes", f"{field}.triskel", 1),
        block_checksums=tuple(checksums),
        params=kv_params,
    )
    capability = ours.get("capability", "")
    if not isinstance(capability, str):
        # Absent or empty is left to the exporter, which refuses the pull.
        raise KvParamsError(f"{field}.triskel.capability", "must be a string")
    handle = dataclasses.replace(handle, capability=capability)
    first_token_id = _int(ours, "first_token_id", f"{field}.triskel", 0)
    return RemoteKv(handle, first_token_id)


def _flag(params: Json, name: str, field: str) -> bool:
    value = params.get(name)
    if value is not None and not isinstance(value, bool):
        raise KvParamsError(f"{field}.{name}", f"must be true, false or null, got {shown(value)}")
    return bool(value)


def _str(params: Json, name: str, field: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise KvParamsError(f"{field}.{name}", f"must be a non-empty string, got {shown(value)}")
    return value


def _int(params: Json, name: str, field: str, low: int, high: int = 2**63 - 1) -> int:
    value = params.get(name)
    # JSON's true is not a number, though Python's bool is an int.
    if type(value) is not int or not low <= value <= high:
        raise KvParamsError(
            f"{field}.{name}", f"must be an integer in [{low}, {high}], got {shown(value)}"
        )
    return value


def _int_list(params: Json, name: str, field: str, high: int) -> list[int]:
    values = params.get(name)
    if not isinstance(values, list) or not values:
        raise KvParamsError(f"{field}.{name}", f"must be a non-empty array, got {shown(values)}")
    for index, value in enumerate(values):
        if type(value) is not int or not 0 <= value <= high:
            raise KvParamsError(
                f"{field}.{name}[{index}]", f"must be an integer in [0, {high}], got {shown(value)}"
            )
    return list(values)
