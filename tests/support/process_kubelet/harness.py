"""A process kubelet for a test against the rig's API server (`support.kube_rig.RealApi`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .api import ApiLogin
from .config import TRISKEL_ENTRYPOINTS, KubeletConfig
from .kubelet import ProcessKubelet
from support.kube_rig import RealApi


@contextlib.contextmanager
def process_kubelet(
    api: RealApi,
    work_dir: Path,
    namespaces: Iterable[str] | None,
    entrypoints: Mapping[str, tuple[str, ...]] = TRISKEL_ENTRYPOINTS,
    max_probe_period_s: float | None = None,
    max_pre_stop_sleep_s: float | None = None,
) -> Iterator[ProcessKubelet]:
    """A started kubelet (as the rig's admin) serving `namespaces` (None: all); on the way
    out it is stopped and prints every pod's log and its own (shown when a test failed)."""
    config = KubeletConfig(
        login=ApiLogin(server=api.server, token=api.admin_token, ca_path=api.ca_path),
        work_dir=work_dir,
        namespaces=None if namespaces is None else frozenset(namespaces),
        entrypoints=entrypoints,
        max_probe_period_s=max_probe_period_s,
        max_pre_stop_sleep_s=max_pre_stop_sleep_s,
    )
    kubelet = ProcessKubelet(config)
    kubelet.start()
    try:
        yield kubelet
    finally:
        kubelet.stop()
        # Always printed: pytest shows a test's output only when it failed.
        print(f"--- process kubelet pods:\n{kubelet.pod_logs()}")
        print(f"--- {kubelet.log_path}:\n{kubelet.log_path.read_text()[-6000:]}")
