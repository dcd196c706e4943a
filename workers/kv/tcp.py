"""The embedded default connector: block bytes follow the control reply on one socket.

    importer                              exporter
    PullRequest frame  ─────────────────►
                       ◄─────────────────  PullReply{ok, num_bytes}
                       ◄═════════════════  raw bytes of blocks [skip:], prompt order

The exporter writes memoryviews of its arena; the importer receives straight into
its destination blocks. Runs of consecutive block ids travel as one buffer.
Needs nothing but the standard library, so it works on any machine.
"""

from __future__ import annotations

from collections.abc import Mapping

from triskel.workers.kv.arena import KvArena, contiguous_runs
from triskel.workers.kv.base import ControlChannelConnector
from triskel.workers.kv.control import FrameChannel, PullReply, PullRequest
from triskel.workers.kv.exports import Export
from triskel.workers.kv.handle import KvHandle
from triskel.workers.kv.pull_checks import require_ok


class TcpConnector(ControlChannelConnector):
    """KV over the control connection itself; takes no parameters."""

    type_name = "tcp"

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TcpConnector:
        for name in params:
            raise ValueError(f"kvConnector.params: unknown param {name!r} for tcp (takes none)")
        return cls()

    async def _start_data_plane(self, arena: KvArena, host: str) -> None:
        return None

    async def _close_data_plane(self) -> None:
        return None

    def _handle_params(self) -> Mapping[str, str]:
        return {}

    async def send(self, channel: FrameChannel, export: Export, request: PullRequest) -> None:
        await channel.send_frame(PullReply(ok=True, num_bytes=request.num_pulled_bytes).to_frame())
        block_ids = export.block_ids[request.skip_blocks :]
        for first_block_id, num_blocks in contiguous_runs(block_ids):
            with self.arena.view(first_block_id, num_blocks) as run:
                await channel.send_buffers([run])

    async def _pull(self, handle: KvHandle, request: PullRequest) -> int:
        channel = await self._open_channel(handle.address)
        try:
            reply = await self._exchange(channel, request)
            require_ok(reply, request, handle.address)
            dest_block_ids = request.dest_block_ids[request.skip_blocks :]
            for first_block_id, num_blocks in contiguous_runs(dest_block_ids):
                with self.arena.view(first_block_id, num_blocks) as run:
                    await channel.recv_into(run)
        finally:
            channel.close()
        return request.num_pulled_bytes
