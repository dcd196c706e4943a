"""A real `redis-server` on a free loopback port, started and stopped by PID.

`redis_server` lives for the test session (tests keep apart by key prefix);
`private_redis` is a server of a test's own, for tests that stop, pause or restart it;
`password_redis` one that requires `REDIS_PASSWORD` (requirepass).
Requires Debian's `redis-server` package (`apt-get install -y redis-server`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0
REDIS_PASSWORD = "s3cret pass/word"  # a space and a slash: must survive every hop
STOP_TIMEOUT_S = 10.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers_ping(port: int, password: str | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            if password is not None:
                secret = password.encode()
                conn.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret))
                if not conn.recv(64).startswith(b"+OK"):
                    return False
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; `start` again after `stop` reuses the same port."""

    def __init__(self, port: int, work_dir: Path, password: str | None = None) -> None:
        self.port = port
        self.password = password
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._process is not None, "redis-server is not running"
        return self._process.pid

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install -y redis-server")
        log_path = self._work_dir / f"redis-{self.port}.log"
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no"]  # nothing on disk
        command += ["--dir", str(self._work_dir), "--logfile", str(log_path)]
        if self.password is not None:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while not answers_ping(self.port, self.password):
            if self._process.poll() is not None or time.monotonic() > deadline_s:
                log = log_path.read_text() if log_path.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections stay open but nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Awaits `check()` until it is true; AssertionError after `timeout_s`.

    For conditions that take Redis calls to observe (a TTL running out, another
    client's heartbeat), which `support.waiting.wait_until` cannot await.
    """
    loop = asyncio.get_running_loop()
    deadline_s = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline_s:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


def _started_server(work_dir: Path, password: str | None = None) -> RedisServer:
    # Another process may take the probed port before redis binds it: try a few.
    last_error: RuntimeError | None = None
    for _ in range(3):
        server = RedisServer(free_loopback_port(), work_dir, password)
        try:
            server.start()
        except RuntimeError as error:
            last_error = error
            continue
        return server
    raise RuntimeError("could not start redis-server on a free loopback port") from last_error


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="triskel-redis-") as work_dir:
        server = _started_server(Path(work_dir))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = _started_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = _started_server(tmp_path, REDIS_PASSWORD)
    try:
        yield server
    finally:
        server.stop()
