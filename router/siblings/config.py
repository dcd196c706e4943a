"""Where a router process stands among its siblings; written by `--processes N`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from triskel.common.api import ApiModel

MAX_PROCESSES = 256


class SiblingsConfig(ApiModel):
    """This process's place (`index` of `count`) and the private directory (mode 0700,
    made by the parent) where each sibling listens on `<index>.sock`."""

    index: Annotated[int, Field(ge=0)]
    count: Annotated[int, Field(ge=2, le=MAX_PROCESSES)]
    directory: Path

    @model_validator(mode="after")
    def _index_within_count(self) -> SiblingsConfig:
        if self.index >= self.count:
            raise ValueError(f"index: {self.index} is not below count ({self.count})")
        return self

    def socket_of(self, index: int) -> Path:
        return self.directory / f"{index}.sock"

    @property
    def others(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]
