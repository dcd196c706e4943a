"""The process kubelet: node, scheduler and pod runtime in one thread with its own loop.

    start() ─► thread ─► event loop ─┬─ NodeAgent: register proc-node, heartbeat
                                     ├─ Binder: Pending pods of served namespaces → node
                                     └─ pods bound to the node ─► one PodWorker each
    stop()  ─► cancel the loop's work, kill every process it started (by PID: SIGTERM,
               then SIGKILL), delete the pods it ran and the Node, end the thread

A thread rather than a process: tests read `pod_logs()` and stop it directly, and its
processes are this test process's children, so none outlives the test run. Its own log
goes to `work_dir/kubelet.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

from .addresses import LoopbackAddresses
from .api import ApiClient, Json
from .config import KubeletConfig
from .informer import follow
from .node import NodeAgent, node_labels
from .pod import KubeletParts, PodWorker, pod_folder
from .process import ProcessTable
from .scheduler import Binder

log = logging.getLogger(__name__)
_PACKAGE_LOGGER = __name__.rpartition(".")[0]


class KubeletFailed(Exception):
    pass


class ProcessKubelet:
    def __init__(self, config: KubeletConfig) -> None:
        self.config = config
        self.processes = ProcessTable()
        self._addresses = LoopbackAddresses(config.first_address)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()  # uids whose deletion this kubelet completed
        self._log_handler: logging.Handler | None = None
        self._stop_grace_s = 5.0

    @property
    def log_path(self) -> Path:
        return self.config.work_dir / "kubelet.log"

    def start(self, timeout_s: float = 30.0) -> None:
        """Returns once the node is Ready and pods are being watched."""
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        self._log_handler = logging.FileHandler(self.log_path)
        self._log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        package_logger = logging.getLogger(_PACKAGE_LOGGER)
        package_logger.addHandler(self._log_handler)
        package_logger.setLevel(logging.INFO)
        self._thread = threading.Thread(
            target=self._run_thread, name=f"process-kubelet-{self.config.node_name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._failure is not None:
            self.stop()
            raise KubeletFailed(
                f"the process kubelet did not start within {timeout_s} s: {self._failure!r}\n"
                f"{self.log_path.read_text()[-3000:]}"
            )

    def stop(self, grace_s: float = 5.0, timeout_s: float = 30.0) -> None:
        """Kills every process this kubelet started (SIGTERM, SIGKILL after `grace_s`),
        deletes the pods it ran and its Node, and ends its thread."""
        self._stop_grace_s = grace_s
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)
        # Whatever the loop could not reach (it hung, or failed early) goes by PID too.
        self.processes.kill_all(grace_s)
        if self._log_handler is not None:
            package_logger = logging.getLogger(_PACKAGE_LOGGER)
            package_logger.removeHandler(self._log_handler)
            package_logger.setLevel(logging.NOTSET)
            self._log_handler.close()
            self._log_handler = None

    def pod_logs(self, namespace: str | None = None) -> str:
        """Every container log of every pod (of `namespace`) this kubelet ran, by pod."""
        pods = self.config.work_dir / "pods"
        prefix = "" if namespace is None else f"{namespace}_"
        parts = []
        for log_file in sorted(pods.glob(f"{prefix}*/logs/*.log")):
            parts.append(f"--- {log_file.relative_to(pods)}:\n{log_file.read_text()[-4000:]}")
        return "\n".join(parts)

    def folder_of(self, pod: Json) -> Path:
        return pod_folder(self.config.work_dir, pod)

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._main = loop.create_task(self._run())
            loop.run_until_complete(asyncio.wait([self._main]))
            if not self._main.cancelled() and self._main.exception() is not None:
                self._failure = self._main.exception()
                log.error("process kubelet failed", exc_info=self._failure)
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _run(self) -> None:
        config = self.config
        api = ApiClient(config.login)
        parts = KubeletParts(config, api, self._addresses, self.processes)
        node = NodeAgent(api, config.node_name)
        binder = Binder(api, config.node_name, node_labels(config.node_name), config.namespaces)
        pod_tasks: set[asyncio.Task[None]] = set()

        async def on_pod(kind: str, pod: Json) -> None:
            try:
                dispatch(kind, pod)
            except Exception:  # one pod it cannot handle must not take the node down
                metadata = pod["metadata"]
                log.exception("pod %s/%s", metadata.get("namespace"), metadata.get("name"))

        def dispatch(kind: str, pod: Json) -> None:
            uid = pod["metadata"]["uid"]
            worker = self._workers.get(uid)
            if kind == "DELETED":
                self._finished.discard(uid)
                if worker is not None:
                    worker.forget(pod)
            elif worker is not None:
                worker.update(pod)
            elif uid not in self._finished and self._takes(pod):
                worker = self._workers[uid] = PodWorker(pod, parts)
                task = asyncio.create_task(self._run_pod(worker, uid), name=worker.name)
                pod_tasks.add(task)
                task.add_done_callback(pod_tasks.discard)

        synced = asyncio.Event()
        on_node = {"fieldSelector": f"spec.nodeName={config.node_name}"}
        background: list[asyncio.Task[None]] = []
        try:
            await node.register()
            background = [
                asyncio.create_task(node.heartbeat_forever()),
                asyncio.create_task(follow(api, "/api/v1/pods", on_node, on_pod, synced)),
                asyncio.create_task(binder.run_forever()),
            ]
            await synced.wait()
            log.info("node %s is Ready; serving namespaces %s", node.name, config.namespaces)
            self._ready.set()
            await asyncio.gather(*background)
        finally:
            running = list(self._workers.values())
            for task in (*background, *pod_tasks):
                task.cancel()
            if background or pod_tasks:
                await asyncio.wait([*background, *pod_tasks])
            # Cancelled pod workers leave their processes running: they go here, by PID,
            # while this loop still reaps its children.
            await asyncio.to_thread(self.processes.kill_all, self._stop_grace_s)
            # The node leaves the cluster, and its pods with it: the pod garbage collector
            # would delete them a minute after the Node, unless a kubelet registered the
            # same node name again first (the next test's); they would then stay Running
            # and Ready with nothing behind them.
            with contextlib.suppress(Exception):
                await asyncio.gather(*(worker.delete_now() for worker in running))
            with contextlib.suppress(Exception):
                await node.deregister()
            await api.close()
            log.info("node %s stopped", node.name)

    def _takes(self, pod: Json) -> bool:
        """Pods of the served namespaces; of others (an earlier test's, left bound to this
        node name) only those being deleted, to finish their deletion, never to run them."""
        namespaces = self.config.namespaces
        served = namespaces is None or pod["metadata"]["namespace"] in namespaces
        return served or bool(pod["metadata"].get("deletionTimestamp"))

    async def _run_pod(self, worker: PodWorker, uid: str) -> None:
        try:
            await worker.run()
            self._finished.add(uid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s failed in the process kubelet", worker.name)
        finally:
            self._workers.pop(uid, None)
