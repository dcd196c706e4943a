"""How long moving a prefill's KV cache to a decode instance takes.

A transfer costs a fixed setup latency plus its bytes over the link's bandwidth,
the first-order model DistServe and Splitwise use for KV migration. Only the
blocks the decode instance does not already cache move (the engine's `KvLoad`
says how many it has), as the real connectors skip them.
"""

from __future__ import annotations

from dataclasses import dataclass

# One 200 Gb/s RDMA NIC (ConnectX-7 class, one per GPU in H100 servers) moves
# 25 GB/s; a GPUDirect RDMA read completes in tens of microseconds. Both are
# defaults for a well-provisioned cluster; TCP or cross-rack setups are slower.
DEFAULT_BANDWIDTH_BYTES_PER_S = 25e9
DEFAULT_LATENCY_S = 50e-6


@dataclass(frozen=True, slots=True)
class TransferModel:
    bandwidth_bytes_per_s: float = DEFAULT_BANDWIDTH_BYTES_PER_S
    latency_s: float = DEFAULT_LATENCY_S

    def __post_init__(self) -> None:
        if not self.bandwidth_bytes_per_s > 0:
            raise ValueError(
                f"bandwidth_bytes_per_s: must be > 0, got {self.bandwidth_bytes_per_s}"
            )
        if self.latency_s < 0:
            raise ValueError(f"latency_s: must be >= 0, got {self.latency_s}")

    def seconds(self, num_bytes: int) -> float:
        """Seconds to move `num_bytes` (a transfer of nothing still pays the latency)."""
        if num_bytes < 0:
            raise ValueError(f"num_bytes: must be >= 0, got {num_bytes}")
        return self.latency_s + num_bytes / self.bandwidth_bytes_per_s


def kv_bytes(num_tokens: int, kv_bytes_per_token: int) -> int:
    """Bytes of KV cache for `num_tokens` tokens (the profile's geometry, unscaled)."""
    return num_tokens * kv_bytes_per_token
