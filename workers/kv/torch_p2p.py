"""torch.distributed plumbing for the nccl connector: a store, 2-rank groups, tensors.

Every call here blocks (rendezvous, send, recv), so the connector runs them on its
threads. torch is imported when a `TorchP2p` is made, never at module import, so
workers that use another connector never pay torch's start-up cost.
"""

from __future__ import annotations

import importlib
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from triskel.workers.kv.arena import KvArena, contiguous_runs

BACKENDS = ("gloo", "nccl")
_TAG_LIMIT = 1 << 30


@dataclass(slots=True)
class PeerGroup:
    """An importer's cached 2-rank group with one exporter, and the store it met on."""

    key: str
    group: Any
    store: Any
    next_tag: int = 1

    def take_tag(self) -> int:
        """A tag no other pull on this group is using (tag 0 is the group's first pull)."""
        tag = self.next_tag
        self.next_tag = self.next_tag % _TAG_LIMIT + 1
        return tag


class TorchP2p:
    """Point-to-point transfers for one backend, bound to `host`, bounded by `timeout`.

    `backend` None picks nccl when CUDA is available, else gloo. RuntimeError when torch
    is missing; ValueError for nccl without CUDA.
    """

    def __init__(self, backend: str | None, host: str, timeout: timedelta) -> None:
        try:
            self._torch: Any = importlib.import_module("torch")
            self._dist: Any = importlib.import_module("torch.distributed")
        except ImportError as error:
            raise RuntimeError(
                "the nccl KV connector needs torch: pip install 'triskel[nccl]'"
            ) from error
        has_cuda = bool(self._torch.cuda.is_available())
        self.backend = backend or ("nccl" if has_cuda else "gloo")
        if self.backend == "nccl" and not has_cuda:
            raise ValueError("kvConnector.params.backend: 'nccl' needs CUDA; use 'gloo' on CPU")
        self._host = host
        self._timeout = timeout
        self._device = "cuda" if self.backend == "nccl" else "cpu"

    def host_store(self) -> tuple[Any, int]:
        """A TCPStore server listening on `host`:0 only; returns it and its port."""
        listener = socket.create_server((self._host, 0))
        port = listener.getsockname()[1]
        store = self._dist.TCPStore(
            self._host,
            port,
            is_master=True,
            wait_for_workers=False,
            timeout=self._timeout,
            master_listen_fd=listener.detach(),  # the store owns (and closes) it now
        )
        return store, port

    def connect_store(self, host: str, port: int) -> Any:
        return self._dist.TCPStore(host, port, is_master=False, timeout=self._timeout)

    def new_group(self, store: Any, key: str, rank: int) -> Any:
        """Build the 2-rank group `key` on `store`; collective: the peer must join too."""
        dist = self._dist
        prefixed = dist.PrefixStore(f"triskel-kv/{key}", store)
        if self.backend == "gloo":
            options = dist.ProcessGroupGloo._Options()
            # Bind gloo to our host rather than whatever the hostname resolves to, so no
            # GLOO_SOCKET_IFNAME is needed.
            options._devices = [dist.ProcessGroupGloo.create_device(hostname=self._host)]
            options._timeout = self._timeout
            return dist.ProcessGroupGloo(prefixed, rank, 2, options)
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = self._timeout
        return dist.ProcessGroupNCCL(prefixed, rank, 2, options)

    def send_blocks(self, group: Any, arena: KvArena, block_ids: tuple[int, ...], tag: int) -> None:
        """Send `block_ids` (in order) to rank 1 as one uint8 tensor."""
        torch = self._torch
        runs = contiguous_runs(block_ids)
        if len(runs) == 1:  # one contiguous run: send straight from the arena
            tensor = torch.frombuffer(arena.view(*runs[0]), dtype=torch.uint8)
        else:
            tensor = torch.empty(len(block_ids) * arena.block_bytes, dtype=torch.uint8)
            staging = memoryview(tensor.numpy())
            offset = 0
            for first_block_id, num_blocks in runs:
                with arena.view(first_block_id, num_blocks) as run:
                    staging[offset : offset + run.nbytes] = run
                    offset += run.nbytes
        group.send([tensor.to(self._device)], 1, tag).wait(self._timeout)

    def recv_bytes(self, group: Any, num_bytes: int, tag: int) -> Any:
        """Receive `num_bytes` from rank 0 into a new CPU staging tensor.

        Never into the arena directly: a recv that outlives a timed-out pull must not
        write into blocks the importer may already have reused.
        """
        tensor = self._torch.empty(num_bytes, dtype=self._torch.uint8, device=self._device)
        group.recv([tensor], 0, tag).wait(self._timeout)
        return tensor.cpu()

    @staticmethod
    def scatter(staging: Any, arena: KvArena, dest_block_ids: tuple[int, ...]) -> None:
        """Copy the staging tensor into `dest_block_ids`, in order."""
        source = memoryview(staging.numpy())
        offset = 0
        for first_block_id, num_blocks in contiguous_runs(dest_block_ids):
            with arena.view(first_block_id, num_blocks) as run:
                run[:] = source[offset : offset + run.nbytes]
                offset += run.nbytes
