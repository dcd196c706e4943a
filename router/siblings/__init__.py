"""The processes of one router (`triskel router --processes N`) as one router.

Each process serves the same port (SO_REUSEPORT) and tells its siblings, over Unix
sockets in a private directory, what they would otherwise not see: the work it has in
flight per worker (`SiblingState`'s load) and every pick it sends (`SharedPick`), which
each sibling's scheduler learns as if it had made it. No Redis round trip per request;
each process still watches the workers' load and KV events itself.
"""

from triskel.router.siblings.bus import SiblingBus
from triskel.router.siblings.config import SiblingsConfig
from triskel.router.siblings.frames import FrameError, LoadShare, SharedPick
from triskel.router.siblings.state import SiblingLoadLedger, SiblingState

__all__ = [
    "FrameError",
    "LoadShare",
    "SharedPick",
    "SiblingBus",
    "SiblingLoadLedger",
    "SiblingState",
    "SiblingsConfig",
]
