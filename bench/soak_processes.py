"""The processes the soak starts and breaks: a `redis-server` and a `triskel up`.

Everything here is a process this benchmark started, or a child of one (`up`'s router
and workers, found through /proc by their parent's PID); nothing else is signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 30.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisChild:
    """Debian's redis-server on a loopback port; `start` after `stop` reuses the port."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_loopback_port()
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("soak: redis-server not found (apt-get install -y redis-server)")
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self._work_dir)]
        command += ["--logfile", str(self._work_dir / "redis.log")]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _answers(self.port):
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: redis-server did not answer in {_START_TIMEOUT_S} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.kill()  # as a crash would: no goodbye to the routers
        self._process.wait(_STOP_TIMEOUT_S)
        self._process = None


@dataclass(frozen=True, slots=True)
class UpChild:
    """One process `up` started: its PID, what it runs ("router" or "worker") and, for a
    worker, its id."""

    pid: int
    component: str
    worker_id: str = ""


class UpProcess:
    """`triskel up -f <config>` as a child of this process, stopped with SIGINT (Ctrl-C)."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "triskel.cli.main", "up", "-f", str(config_path)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    def children(self) -> list[UpChild]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                if _parent_pid(entry) != self.process.pid:
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                found.append(_describe(int(entry.name), [a.decode() for a in argv if a]))
        return [child for child in found if child is not None]

    def kill_worker(self, worker_id: str) -> bool:
        for child in self.children():
            if child.component == "worker" and child.worker_id == worker_id:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                    return True
        return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def _parent_pid(proc_dir: Path) -> int:
    # The command name (field 2) may hold spaces and parentheses: split after its ')'.
    stat = (proc_dir / "stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _describe(pid: int, argv: list[str]) -> UpChild | None:
    """`python -m triskel.cli.main <component> --config-json <json>` (cli/supervisor.py)."""
    if "triskel.cli.main" not in argv:
        return None
    component = argv[argv.index("triskel.cli.main") + 1]
    worker_id = ""
    if component == "worker" and "--config-json" in argv:
        config = json.loads(argv[argv.index("--config-json") + 1])
        worker_id = str(config.get("workerId", config.get("worker_id", "")))
    return UpChild(pid, component, worker_id)


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
