"""A container's environment and `$(VAR)` expansion, as Kubernetes computes them.

Pure functions: the pod object and its IP in, strings out.

- `expand` follows Kubernetes' expansion rules (`third_party/forked/golang/expansion`):
  `$(NAME)` becomes the value of NAME when NAME is defined, and stays `$(NAME)` when
  not; `$$` becomes `$` (so `$$(NAME)` is the literal `$(NAME)`); any other `$` is
  kept, as is an unclosed `$(`.
- `container_env` walks `env` in order: each value is expanded against the variables
  defined before it; a later entry with the same name wins. Values come from `value`
  or from a downward-API `fieldRef`. Other sources (`configMapKeyRef`, `envFrom`, ...)
  raise Unsupported naming the field, rather than starting a container without them.
- `command` and `args` are expanded against the container's whole `env`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]


class Unsupported(Exception):
    """The pod asks for something the process kubelet does not do; the message names it."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : close]
            out.append(variables.get(name, f"$({name})"))
            i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Json, field_path: str, pod_ip: str, host_ip: str) -> str:
    """The downward API's value of `field_path` for `pod` running at `pod_ip`."""
    metadata = pod["metadata"]
    spec = pod["spec"]
    simple = {
        "metadata.name": metadata["name"],
        "metadata.namespace": metadata["namespace"],
        "metadata.uid": metadata["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        # Set by the ServiceAccount admission plugin, which the rig turns off: the
        # account a pod runs as when it names none.
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    keyed = _LABEL_REF.match(field_path)
    if keyed:
        return str(metadata.get(keyed.group(1), {}).get(keyed.group(2), ""))
    raise Unsupported(f"fieldRef.fieldPath {field_path!r}")


def container_env(pod: Json, container: Json, pod_ip: str, host_ip: str) -> dict[str, str]:
    """The variables `container`'s `env` defines, expanded, in Kubernetes' order."""
    name = container["name"]
    if container.get("envFrom"):
        raise Unsupported(f"container {name}: envFrom")
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        source = entry.get("valueFrom")
        if source is None:
            value = expand(entry.get("value", ""), env)
        elif set(source) == {"fieldRef"}:
            value = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        else:
            raise Unsupported(f"container {name}: env {entry['name']}: valueFrom {sorted(source)}")
        env[entry["name"]] = value
    return env


def container_argv(
    container: Json, entrypoint: tuple[str, ...] | None, env: Mapping[str, str]
) -> list[str]:
    """`command` + `args` expanded against `env`; `entrypoint` (the image's) when the
    container names no `command`, as a container runtime would."""
    command = container.get("command")
    if command:
        head = [expand(part, env) for part in command]
    elif entrypoint is not None:
        head = list(entrypoint)  # an image's entrypoint is never expanded
    else:
        raise Unsupported(
            f"container {container['name']}: no command, and no entrypoint is known "
            f"for image {container.get('image')!r}"
        )
    return head + [expand(arg, env) for arg in container.get("args", [])]
