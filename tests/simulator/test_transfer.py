"""The KV transfer model: latency plus bytes over bandwidth."""

from __future__ import annotations

import pytest

from triskel.simulator.transfer import TransferModel, kv_bytes


@pytest.mark.parametrize(
    ("num_bytes", "expected_s"),
    [
        # Nothing to move still pays the setup latency.
        (0, 1e-3),
        # 10 GB over 10 GB/s is one second, plus the millisecond of latency.
        (10_000_000_000, 1.001),
    ],
)
def test_seconds(num_bytes: int, expected_s: float) -> None:
    model = TransferModel(bandwidth_bytes_per_s=10e9, latency_s=1e-3)
    assert model.seconds(num_bytes) == pytest.approx(expected_s)


def test_default_is_rdma_class() -> None:
    # 1 GB at 25 GB/s = 40 ms, + 50 us.
    assert TransferModel().seconds(1_000_000_000) == pytest.approx(0.04005)


def test_kv_bytes_is_tokens_times_bytes_per_token() -> None:
    # Llama-3.1-8B: 131,072 bytes per token, so 1,024 tokens are 128 MiB.
    assert kv_bytes(1024, 131_072) == 128 * 2**20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bandwidth_bytes_per_s": 0.0}, "bandwidth_bytes_per_s: must be > 0"),
        ({"latency_s": -1.0}, "latency_s: must be >= 0"),
    ],
)
def test_refuses_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransferModel(**kwargs)


def test_refuses_negative_bytes() -> None:
    with pytest.raises(ValueError, match="num_bytes: must be >= 0"):
        TransferModel().seconds(-1)
