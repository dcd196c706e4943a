"""The Dockerfile's structure (no Docker engine here to build it): base image, Mooncake's
libraries, a plain `pip install .`, a non-root user, and `triskel` as the entrypoint."""

from __future__ import annotations

import json
import re

from support.helm import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    parsed = []
    for line in lines:
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            parsed.append((instruction.upper(), " ".join(arguments.split())))
    return parsed


def _all(instruction: str) -> list[str]:
    return [arguments for name, arguments in _instructions() if name == instruction]


def test_base_image_is_python_3_11_slim() -> None:
    assert _instructions()[0] == ("FROM", "python:3.11-slim")
    assert len(_all("FROM")) == 1


def test_installs_the_mooncake_libraries() -> None:
    (apt,) = [run for run in _all("RUN") if "libibverbs1" in run]
    for library in ("libibverbs1", "librdmacm1", "libnuma1"):
        assert library in apt.split()
    assert "rm -rf /var/lib/apt/lists/*" in apt  # no apt index left in the layer


def test_builds_the_compiled_modules_and_drops_the_compiler() -> None:
    (pip,) = [run for run in _all("RUN") if "pip install" in run]
    # In the same layer: the compiler is there for the build and gone from the image.
    assert pip.index("apt-get install") < pip.index("pip install") < pip.index("apt-get purge")
    assert "gcc" in pip.split("apt-get purge")[1].split("&&")[0]
    # The build fails if an extension did not build (setup.py makes them optional).
    assert "import triskel.router.scheduling.producers._holder_map, " in pip
    assert "triskel.router.scheduling._score_sum" in pip
    assert "rm -rf /var/lib/apt/lists/*" in pip


def test_installs_the_package_without_extras_or_torch() -> None:
    (pip,) = [run for run in _all("RUN") if "pip install" in run]
    # `.` alone: `.[dev]` or `.[nccl]` would pull the test tools or a multi-GB torch.
    assert re.search(r"pip install \.(\s|$)", pip), pip
    assert all("torch" not in run for run in _all("RUN"))


def test_copies_every_folder_the_build_reads_and_dockerignore_lets_them_in() -> None:
    copied = {args.split()[0] for args in _all("COPY")} | {
        name for args in _all("COPY") for name in args.split()[:-1]
    }
    # setup.py maps these component folders into the triskel package.
    components = set(re.findall(r'"triskel\.\w+": "(\w+)"', (ROOT / "setup.py").read_text()))
    assert components == {"operator", "router", "simulator", "workers"}
    needed = {"pyproject.toml", "setup.py", "README.md", "src", *components}
    assert needed <= copied, needed - copied
    allowed = {
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    assert DOCKERIGNORE.read_text().splitlines()[1] == "*"  # allow-list: deny first
    assert needed <= allowed, needed - allowed
    for name in needed:
        assert (ROOT / name).exists(), name


def test_runs_as_a_numeric_non_root_user() -> None:
    instructions = _instructions()
    users = [i for i, (name, _) in enumerate(instructions) if name == "USER"]
    assert users, "no USER: the image would run as root"
    user = instructions[users[-1]][1]
    uid = user.split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it; the chart runs pods as 10001.
    assert uid.isdigit() and int(uid) == 10001
    last_run = max(i for i, (name, _) in enumerate(instructions) if name == "RUN")
    assert users[-1] > last_run, "USER must come after the last RUN (installs need root)"


def test_entrypoint_is_the_triskel_command() -> None:
    (entrypoint,) = _all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["triskel"]  # exec form: signals reach the process
    (cmd,) = _all("CMD")
    assert json.loads(cmd) == ["--help"]
    exposed = {port for args in _all("EXPOSE") for port in args.split()}
    assert exposed == {"8080", "50051"}
