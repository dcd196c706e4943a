"""One pod on the process kubelet, from its binding to its deletion.

    bound ─► prepare: a pod IP, volume folders, ServiceAccount kubeconfig
             (waits, as ContainerCreating, for missing ConfigMaps, Secrets or tokens)
          ─► every container runs (container.py); status written as it changes
          ─► deletionTimestamp: each container's preStop, SIGTERM, SIGKILL after the
             grace period ─► final status ─► DELETE (gracePeriodSeconds 0, this uid)
             ─► the pod IP is free again

A pod that asks for what the process kubelet cannot do stays Pending until deleted,
its containers waiting with reason CreateContainerConfigError and a message naming
what. A pod first seen
already deleting is only finished, never started. Logs: `logs/<container>.log` in
the pod's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .actions import ActionContext, check_action
from .addresses import LoopbackAddresses, NoAddressLeft
from .api import ApiClient, ApiError, Json
from .config import KubeletConfig
from .container import ContainerRunner, ContainerState, RunSettings, now_rfc3339
from .credentials import TokenMissing, kubeconfig_for
from .env import Unsupported, container_argv, container_env
from .host import HostView, container_mounts
from .process import Launch, ProcessTable
from .status import OWN_CONDITIONS, PodPlace, StatusReporter, pod_status
from .volumes import PodVolumes, SourceMissing

log = logging.getLogger(__name__)
HOST_IP = "127.0.0.1"
_DEFAULT_GRACE_S = 30.0
_PREPARE_RETRY_S = 0.5


@dataclass(frozen=True, slots=True)
class KubeletParts:
    """What every pod worker of one kubelet shares."""

    config: KubeletConfig
    api: ApiClient
    addresses: LoopbackAddresses
    processes: ProcessTable


def pod_folder(work_dir: Path, pod: Json) -> Path:
    metadata = pod["metadata"]
    return work_dir / "pods" / f"{metadata['namespace']}_{metadata['name']}_{metadata['uid'][:8]}"


class PodWorker:
    def __init__(self, pod: Json, parts: KubeletParts) -> None:
        self._pod = pod
        self._parts = parts
        metadata = pod["metadata"]
        self.name = f"{metadata['namespace']}/{metadata['name']}"
        self._path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}"
        self.folder = pod_folder(parts.config.work_dir, pod)
        self._deleting = asyncio.Event()
        self._gone = False
        self._place: PodPlace | None = None
        self._waiting = [ContainerState(c["name"], c.get("image", "")) for c in self._containers]
        self._runners: list[ContainerRunner] = []
        self._conditions = {c["type"]: c for c in pod.get("status", {}).get("conditions", [])}
        self._reporter = StatusReporter(parts.api, self._path, self._status)
        self.update(pod)

    @property
    def _containers(self) -> list[Json]:
        containers: list[Json] = self._pod["spec"]["containers"]
        return containers

    def update(self, pod: Json) -> None:
        """A newer version of the pod from the API server."""
        self._pod = pod
        for condition in pod.get("status", {}).get("conditions", []):
            if condition["type"] not in OWN_CONDITIONS or condition["type"] == "PodScheduled":
                self._conditions[condition["type"]] = condition
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    def forget(self, pod: Json) -> None:
        """The pod is gone from the API server (force-deleted): stop its containers now."""
        self._gone = True
        self.update(pod)
        self._deleting.set()

    async def run(self) -> None:
        reporting = asyncio.create_task(self._reporter.run_forever())
        try:
            # A pod that ended before this kubelet saw it (an earlier run's) stays ended.
            ended = self._pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            if not self._deleting.is_set() and not ended:
                await self._run_until_deleted()
            await self._deleting.wait()
            await self._finish()
        finally:
            reporting.cancel()
            if self._place is not None:
                self._parts.addresses.release(self._place.pod_ip)

    async def _run_until_deleted(self) -> None:
        try:
            prepared = await self._prepare()
            if prepared is None:
                return  # deleted while it waited for what it needs
            volumes, kubeconfig = prepared
            self._runners = [self._runner(c, volumes, kubeconfig) for c in self._containers]
        except Unsupported as error:
            self._wait_all("CreateContainerConfigError", str(error))
            return
        self._reporter.changed()
        tasks = {asyncio.create_task(runner.run()) for runner in self._runners}
        refreshing = asyncio.create_task(volumes.refresh_forever())
        deleting = asyncio.create_task(self._deleting.wait())
        try:
            running = set(tasks)
            while running and not self._deleting.is_set():
                done, _ = await asyncio.wait(
                    [*running, deleting], return_when=asyncio.FIRST_COMPLETED
                )
                running -= done
            if self._deleting.is_set():
                grace_s = self._grace_s()
                await asyncio.gather(*(runner.stop(grace_s) for runner in self._runners))
            await asyncio.gather(*tasks)
        finally:
            for task in (*tasks, refreshing, deleting):
                task.cancel()
            self._reporter.changed()

    async def _prepare(self) -> tuple[PodVolumes, Path | None] | None:
        """The pod IP, volumes and credentials; waits (ContainerCreating) for what is
        missing. None when the pod was deleted before it had all."""
        parts = self._parts
        if self._pod["spec"].get("initContainers"):
            raise Unsupported("initContainers")
        volumes = PodVolumes(self._pod, self.folder / "volumes", parts.api)
        self.folder.mkdir(parents=True, exist_ok=True)
        while not self._deleting.is_set():
            try:
                if self._place is None:
                    self._place = self._allocate()
                await volumes.prepare()
                kubeconfig = await kubeconfig_for(
                    parts.api, parts.config.login, self._pod, self.folder / "kubeconfig"
                )
                return volumes, kubeconfig
            except (SourceMissing, TokenMissing, NoAddressLeft) as missing:
                self._wait_all("ContainerCreating", str(missing))
            except (TimeoutError, ApiError, aiohttp.ClientError) as error:
                log.warning("pod %s: preparing: %s", self.name, error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._deleting.wait(), _PREPARE_RETRY_S)
        return None

    def _allocate(self) -> PodPlace:
        if self._pod["spec"].get("hostNetwork"):
            pod_ip = HOST_IP
        else:
            ports = [
                int(port["containerPort"])
                for container in self._containers
                for port in container.get("ports", [])
                if port.get("protocol", "TCP") == "TCP"
            ]
            pod_ip = self._parts.addresses.allocate(ports)
        log.info("pod %s: pod IP %s", self.name, pod_ip)
        return PodPlace(host_ip=HOST_IP, pod_ip=pod_ip, start_time=now_rfc3339())

    def _runner(
        self, container: Json, volumes: PodVolumes, kubeconfig: Path | None
    ) -> ContainerRunner:
        """Unsupported when the container cannot run here as written."""
        config = self._parts.config
        assert self._place is not None
        pod_ip = self._place.pod_ip
        host = HostView(pod_ip, container_mounts(container, volumes.folders))
        own_env = container_env(self._pod, container, pod_ip, HOST_IP)
        argv = host.translate_all(
            container_argv(container, config.entrypoint_for(container.get("image", "")), own_env)
        )
        home = self.folder / "home"
        home.mkdir(parents=True, exist_ok=True)
        base_env = {
            "PATH": f"{config.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "HOSTNAME": self._pod["metadata"]["name"],
            # Logs reach the file as they are written, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
            **({} if kubeconfig is None else {"KUBECONFIG": str(kubeconfig)}),
            **config.extra_env,
        }
        env = base_env | {name: host.translate(value) for name, value in own_env.items()}
        ports = {
            port["name"]: int(port["containerPort"])
            for port in container.get("ports", [])
            if "name" in port
        }
        for key in ("startupProbe", "readinessProbe", "livenessProbe"):
            if key in container:
                check_action(container[key], ports)
        pre_stop = container.get("lifecycle", {}).get("preStop")
        if pre_stop is not None:
            check_action(pre_stop, ports)
        working_dir = container.get("workingDir")
        cwd = Path(host.translate(working_dir)) if working_dir else home
        if not cwd.is_dir():
            cwd = home  # the image's folder, which only a container would have
        name = container["name"]
        grace_s = float(self._pod["spec"].get("terminationGracePeriodSeconds", _DEFAULT_GRACE_S))
        return ContainerRunner(
            spec=container,
            launch=Launch(argv, env, cwd, self.folder / "logs" / f"{name}.log"),
            context=ActionContext(host=host, env=env, cwd=cwd, ports=ports),
            settings=RunSettings(
                restart_policy=self._pod["spec"].get("restartPolicy", "Always"),
                max_probe_period_s=config.max_probe_period_s,
                max_pre_stop_sleep_s=config.max_pre_stop_sleep_s,
                termination_grace_s=grace_s,
            ),
            table=self._parts.processes,
            on_change=self._reporter.changed,
        )

    def _grace_s(self) -> float:
        grace = self._pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self._pod["spec"].get("terminationGracePeriodSeconds", _DEFAULT_GRACE_S)
        return max(float(grace), 0.0)

    def _wait_all(self, reason: str, message: str) -> None:
        log.info("pod %s: %s: %s", self.name, reason, message)
        for state in self._waiting:
            state.waiting = (reason, message)
        self._reporter.changed()

    def _status(self) -> Json:
        states = [runner.state for runner in self._runners] or self._waiting
        status = pod_status(self._pod, self._place, states, self._conditions)
        self._conditions |= {c["type"]: c for c in status["conditions"]}
        return status

    async def _finish(self) -> None:
        """What a kubelet does once a deleted pod's containers have all stopped."""
        if self._gone:
            return
        for _ in range(3):  # the status is best effort; the deletion is what matters
            if await self._reporter.flush():
                break
        await self.delete_now()

    async def delete_now(self) -> None:
        """Deletes this pod (this uid) with no grace period: its processes are gone."""
        uid = self._pod["metadata"]["uid"]
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        for _ in range(3):
            try:
                await self._parts.api.delete(self._path, options)
                log.info("pod %s: deleted", self.name)
                return
            except ApiError as error:
                if error.status == 409:  # a newer pod of the same name: this uid is gone
                    return
                log.warning("pod %s: delete: %s", self.name, error)
            except (TimeoutError, aiohttp.ClientError) as error:
                log.warning("pod %s: delete: %s", self.name, error)
