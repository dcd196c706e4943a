"""Starting a router or an operator does not import scikit-learn, SciPy or pandas (~1.5 s
of CPU at every start): the category classifier imports them when one is built."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sklearn", "scipy", "pandas")


def test_the_router_worker_and_operator_start_without_the_heavy_libraries() -> None:
    probe = (
        "import sys\n"
        "import triskel.cli.main, triskel.router.process, triskel.workers.process\n"
        "import triskel.operator.app\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_building_a_category_classifier_still_imports_them_when_needed() -> None:
    probe = (
        "import sys\n"
        "from triskel.router.semantic.signals.category_classifier import new_model\n"
        "new_model()\n"
        "print('sklearn' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True", done.stdout
