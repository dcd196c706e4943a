"""What a simulation (or a live benchmark) records: one row per request, one per instance.

Times are seconds on the run's own clock (virtual for the simulator, wall for a
live benchmark), measured from the start of the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestRecord:
    index: int
    arrival_s: float
    num_input_tokens: int
    num_output_tokens: int
    # When the first output token reached the client; None when the request failed.
    first_token_s: float | None
    # When the last output token reached the client; None when the request failed.
    finish_s: float | None
    # Prompt tokens the prefilling instance found in its prefix cache.
    num_cached_tokens: int = 0
    prefill_worker: str | None = None
    decode_worker: str | None = None
    kv_bytes_moved: int = 0

    @property
    def is_finished(self) -> bool:
        return self.first_token_s is not None and self.finish_s is not None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.arrival_s

    @property
    def tpot_s(self) -> float | None:
        """Mean time per output token after the first (0 for one-token answers)."""
        if self.first_token_s is None or self.finish_s is None:
            return None
        if self.num_output_tokens <= 1:
            return 0.0
        return (self.finish_s - self.first_token_s) / (self.num_output_tokens - 1)


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    worker_id: str
    role: str
    # Seconds the instance spent running steps (its engine was not idle).
    busy_s: float
    # When it was started (its GPUs paid for) and ended (None: it ran to the end).
    start_s: float = 0.0
    end_s: float | None = None

    def gpu_seconds(self, until_s: float, num_gpus: int) -> float:
        end_s = until_s if self.end_s is None else min(self.end_s, until_s)
        return max(0.0, end_s - self.start_s) * num_gpus


@dataclass(frozen=True, slots=True)
class RunResult:
    """One run: a policy on a trace at a rate scale."""

    policy: str
    rate_scale: float
    requests: list[RequestRecord]
    instances: list[InstanceRecord] = field(default_factory=list)
    # Simulated (or wall) seconds from the first arrival to the last finish.
    duration_s: float = 0.0
    # Wall-clock seconds the run took to compute (simulator speed).
    wall_s: float = 0.0
