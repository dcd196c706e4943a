"""The pod's view translated into host terms: addresses and paths.

A container runtime gives each pod its own network namespace and mounts its volumes
at the paths the pod names. Processes on one host share both, so the process kubelet
rewrites what a container says, in its `command`, `args`, `env` values, exec probes
and exec hooks (after `$(VAR)` expansion):

- **Addresses.** Each pod gets its own loopback address 127.0.0.N (N from 2 up), its
  pod IP. A wildcard bind, `0.0.0.0` alone or as `0.0.0.0:PORT`, becomes the pod's
  own `127.0.0.N` (`127.0.0.N:PORT`), so two pods can both listen on port 8080 as
  they would on two pod IPs. Binds to `127.0.0.1`, `localhost` or `::` are left as
  they are: `127.0.0.1` is the host's loopback, shared by every pod here.
- **Paths.** Each volume is a folder under the pod's own folder. Where a volume
  mount's `mountPath` (or a path under it) appears in a string, it is replaced by
  that folder (with the mount's `subPath`), e.g. `--config=/etc/app/config.json`
  becomes `--config=<pod dir>/volumes/config/config.json`. A path is matched whole
  (`/etc/app` does not match `/etc/application`), the longest mountPath first.
  Paths a program builds itself (never written in its command line or env) are not
  translated: such a program sees the host's filesystem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]

_WILDCARD = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")


@dataclass(frozen=True, slots=True)
class HostView:
    """How one pod's processes see the host: their pod IP, and where each mount lives."""

    pod_ip: str
    mounts: Mapping[str, Path]  # mountPath in the container -> host folder or file

    def translate(self, text: str) -> str:
        text = _WILDCARD.sub(self.pod_ip, text)
        if not self.mounts:
            return text
        hosts = {path.rstrip("/"): str(host) for path, host in self.mounts.items()}
        # One pass, longest mountPath first: a host folder just written in (often under
        # /tmp) must not be translated again by a mount such as /tmp. A mountPath matches
        # only where the text around it cannot extend it into a longer name.
        alternatives = "|".join(re.escape(path) for path in sorted(hosts, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w.\-/])({alternatives})(?![\w.\-])")
        return pattern.sub(lambda match: hosts[match.group(1)], text)

    def translate_all(self, texts: Iterable[str]) -> list[str]:
        return [self.translate(text) for text in texts]


def container_mounts(container: Json, volumes: Mapping[str, Path]) -> dict[str, Path]:
    """mountPath -> host path for `container`'s volumeMounts, given each volume's folder."""
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        folder = volumes[mount["name"]]
        sub_path = mount.get("subPath") or ""
        mounts[mount["mountPath"]] = folder / sub_path if sub_path else folder
    return mounts
