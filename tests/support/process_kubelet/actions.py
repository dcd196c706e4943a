"""Probe and hook handlers: exec, httpGet, tcpSocket, grpc and sleep, as a kubelet runs them.

- `exec`: the command (translated into host terms, never `$(VAR)`-expanded, as in
  Kubernetes) with the container's environment; success is exit code 0.
- `httpGet`: `scheme://host:port/path` with `httpHeaders`; host defaults to the pod
  IP; success is a status in [200, 400). Redirects are not followed (a kubelet
  follows them only to the same host, and counts any other as success too).
- `tcpSocket`: success is an accepted connection.
- `grpc`: the standard `grpc.health.v1.Health/Check` for `service` (default ""),
  success is SERVING. Kubernetes 1.20 refuses gRPC probes (they came in 1.24), so
  pods on the rig never carry one; it is here for newer servers' objects.
- `sleep` (hooks only, Kubernetes 1.30+): waits `seconds`.

Ports are numbers or the name of one of the container's ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .api import Json
from .env import Unsupported
from .host import HostView
from .process import run_exec


@dataclass(frozen=True, slots=True)
class ActionContext:
    """Where a container's probes and hooks run: its pod's view and its own settings."""

    host: HostView
    env: Mapping[str, str]
    cwd: Path
    ports: Mapping[str, int]  # the container's named ports


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str = ""


_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")


def handler_of(spec: Json) -> str:
    """The one handler a probe or hook names; Unsupported otherwise."""
    named = [key for key in _HANDLERS if key in spec]
    if len(named) != 1:
        raise Unsupported(f"a probe or hook names handlers {named}, needs exactly one")
    return named[0]


async def run_action(spec: Json, context: ActionContext, timeout_s: float) -> Outcome:
    handler = handler_of(spec)
    action = spec[handler]
    if handler == "exec":
        argv = context.host.translate_all(action["command"])
        code, output = await run_exec(argv, context.env, context.cwd, timeout_s)
        return Outcome(code == 0, f"exit code {code}: {output[-500:]}")
    if handler == "sleep":
        await asyncio.sleep(float(action["seconds"]))
        return Outcome(True)
    host = action.get("host") or context.host.pod_ip
    port = _port(action["port"], context.ports)
    try:
        if handler == "httpGet":
            return await asyncio.wait_for(_http_get(action, host, port), timeout_s)
        if handler == "tcpSocket":
            return await asyncio.wait_for(_tcp(host, port), timeout_s)
        return await asyncio.to_thread(_grpc_health, host, port, action, timeout_s)
    except TimeoutError:
        return Outcome(False, f"{handler} {host}:{port}: no answer within {timeout_s} s")
    except (OSError, aiohttp.ClientError) as error:
        return Outcome(False, f"{handler} {host}:{port}: {error}")


def capped_sleep(spec: Json, max_s: float | None) -> Json:
    """`spec` (a hook) with a sleep longer than `max_s` shortened to it: the `sleep`
    handler's seconds, or an exec of `sleep N`. Any other hook is returned as it is."""
    if max_s is None:
        return spec
    if "sleep" in spec and float(spec["sleep"]["seconds"]) > max_s:
        return {**spec, "sleep": {**spec["sleep"], "seconds": max_s}}
    command = spec.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] == "sleep" and float(command[1]) > max_s:
        return {**spec, "exec": {**spec["exec"], "command": ["sleep", f"{max_s:g}"]}}
    return spec


def check_action(spec: Json, ports: Mapping[str, int]) -> None:
    """Unsupported when a probe or hook could never run: no single handler, or a port
    name the container does not declare (a kubelet would fail it at every attempt)."""
    action = spec[handler_of(spec)]
    if isinstance(action, dict) and "port" in action:
        _port(action["port"], ports)


def _port(port: int | str, ports: Mapping[str, int]) -> int:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    if port not in ports:
        raise Unsupported(f"port {port!r} names none of the container's ports")
    return ports[port]


async def _http_get(action: Json, host: str, port: int) -> Outcome:
    scheme = str(action.get("scheme", "HTTP")).lower()
    url = f"{scheme}://{host}:{port}{action.get('path', '/')}"
    headers = {h["name"]: h["value"] for h in action.get("httpHeaders", [])}
    # HTTPS probes do not verify the certificate, as a kubelet's do not.
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, allow_redirects=False, ssl=False) as response,
    ):
        return Outcome(200 <= response.status < 400, f"GET {url}: {response.status}")


async def _tcp(host: str, port: int) -> Outcome:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()
    return Outcome(True)


def _grpc_health(host: str, port: int, action: Json, timeout_s: float) -> Outcome:
    # A blocking channel on a worker thread: grpc.aio binds itself to one event loop,
    # and the test's own loops may use it too.
    request = health_pb2.HealthCheckRequest(service=action.get("service", ""))
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout_s)
        except grpc.RpcError as error:
            return Outcome(False, f"grpc {host}:{port}: {error.code()}")
    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
    return Outcome(serving, f"grpc {host}:{port}: status {answer.status}")
