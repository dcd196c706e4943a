"""Which local workers a `triskel up` router should route to: the membership file.

`triskel up` starts and stops workers while its router runs. It writes this small
JSON document whenever a pool's serving workers change; the router re-reads it
(`triskel.router.discovery.membership`) and joins or drains workers as it would
in a cluster, where the WorkerPools' `status.endpoints` play this part:

    {"formatVersion": 1,
     "pools": [{"name": "decode", "role": "decode", "model": "llama-3.1-8b",
                "engine": "mock", "endpoints": ["127.0.0.1:41231", ...]}, ...]}

A worker is listed once it is ready and until it starts draining, never after.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from triskel.common.api import Address, ApiModel, EngineType, Role

Name = Annotated[str, Field(min_length=1)]


class LocalPool(ApiModel):
    """One pool of `triskel up` and the gRPC addresses of its serving workers."""

    name: Name
    role: Role
    model: Name
    engine: EngineType = EngineType.MOCK
    endpoints: list[Address] = Field(default_factory=list)


class LocalMembership(ApiModel):
    format_version: Literal[1] = 1
    pools: list[LocalPool] = Field(default_factory=list)

    @field_validator("pools")
    @classmethod
    def _unique_names(cls, pools: list[LocalPool]) -> list[LocalPool]:
        names = [pool.name for pool in pools]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"pool listed twice: {', '.join(repeated)}")
        return pools

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> LocalMembership:
        """Parses the document; pydantic's ValidationError names a bad field."""
        return cls.model_validate_json(text)


def write_membership(path: Path, membership: LocalMembership) -> None:
    """Replaces the file in one step: a reader sees the old document or the new one,
    never half of one (a rename within a folder is atomic)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(membership.to_json())
    os.replace(partial, path)
