from __future__ import annotations

import re

import pytest

from triskel.v1 import worker_pb2
from triskel.workers.kv.handle import KvHandle


def make_handle() -> KvHandle:
    return KvHandle(
        request_id="req-1",
        worker_id="prefill-0",
        connector="mooncake",
        address="127.0.0.1:4000",
        num_tokens=40,
        block_bytes=8192,
        # Full 64-bit checksums must survive the uint64 proto field.
        block_checksums=(0, 2**64 - 1, 12345),
        params={"segment": "127.0.0.1:5000"},
        capability="v1.5.bm9uY2U.dGFn",
    )


def test_proto_round_trip() -> None:
    handle = make_handle()
    wire = worker_pb2.KvHandle.FromString(handle.to_proto().SerializeToString())
    assert KvHandle.from_proto(wire) == handle  # the capability included
    assert handle.num_blocks == 3
    assert handle.total_bytes == 3 * 8192


def test_handle_keeps_its_own_copy_of_params() -> None:
    params = {"a": "1"}
    handle = KvHandle("r", "w", "tcp", "h:1", 1, 64, (1,), params)
    params["a"] = "2"
    assert handle.params == {"a": "1"}


@pytest.mark.parametrize("field", ["request_id", "connector", "address"])
def test_from_proto_names_an_empty_field(field: str) -> None:
    message = make_handle().to_proto()
    message.ClearField(field)
    with pytest.raises(ValueError, match=f"KvHandle.{field} is empty"):
        KvHandle.from_proto(message)


def test_zero_block_bytes_is_refused() -> None:
    message = make_handle().to_proto()
    message.block_bytes = 0
    with pytest.raises(ValueError, match=re.escape("KvHandle.block_bytes must be >= 1, got 0")):
        KvHandle.from_proto(message)


def test_the_capability_stays_out_of_repr() -> None:
    # Handles get logged; the token is the right to pull the KV.
    assert "v1.5." not in repr(make_handle())
