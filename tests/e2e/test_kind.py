"""Runs e2e/kind.sh where Docker and kind work; anywhere else it says why it cannot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "e2e" / "kind.sh"


def _why_not_runnable() -> str | None:
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (e2e/kind.sh needs docker and kind)"
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        return "docker is installed but its daemon does not answer (`docker info` failed)"
    return None


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_kind_e2e_script_passes() -> None:
    reason = _why_not_runnable()
    if reason is not None:
        pytest.skip(reason)
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_the_script_is_valid_bash() -> None:
    # Runs everywhere: a syntax error in the script is caught before anyone needs it.
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
