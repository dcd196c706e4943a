"""The published workload traces, as tests read them: their first 200 requests.

`tests/data/traces/` holds those rows byte for byte (with their sources and
licences), so the tests run on any clone. `TRISKEL_TRACES_DIR` points them at the
full files instead (e.g. `../shared/traces`).
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "traces"
_FULL_DIR = os.environ.get("TRISKEL_TRACES_DIR")

if _FULL_DIR:
    MOONCAKE_CONVERSATION = Path(_FULL_DIR) / "mooncake" / "conversation_trace.jsonl"
    AZURE_CONVERSATION = Path(_FULL_DIR) / "azure" / "AzureLLMInferenceTrace_conv.csv"
else:
    MOONCAKE_CONVERSATION = SAMPLES_DIR / "mooncake_conversation_head200.jsonl"
    AZURE_CONVERSATION = SAMPLES_DIR / "azure_conv_head200.csv"


def require(path: Path) -> Path:
    """`path`; an AssertionError naming it when it is missing (never a silent skip)."""
    assert path.is_file(), f"trace not found: {path}"
    return path
