"""Runs mypy over the whole `triskel` namespace.

mypy cannot follow setuptools' editable-install import hook, and the component
folders must not go on sys.path under their own names, so this script builds a
throw-away tree where `triskel/router` etc. are symlinks to the real folders and
type-checks it as one package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENT_FOLDERS = ("operator", "router", "simulator", "workers")


def build_tree(into: Path) -> Path:
    package = into / "triskel"
    package.mkdir()
    for entry in (ROOT / "src" / "triskel").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for folder in COMPONENT_FOLDERS:
        (package / folder).symlink_to(ROOT / folder)
    return package


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="triskel-typecheck-") as tmp:
        build_tree(Path(tmp))
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "triskel",
            *[str(p) for p in (ROOT / "tests", ROOT / "bench", ROOT / "scripts")],
        ]
        # Test helpers are imported as `support.*`, test files named from tests/ down.
        env = {**os.environ, "MYPYPATH": str(ROOT / "tests")}
        return subprocess.call(command, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
