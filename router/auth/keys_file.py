"""The API keys file: YAML, validated, keys stored as their SHA-256.

    keys:
      - name: team-a-batch            # shown in logs and metrics, never the key
        sha256: 9f86d08...            # `triskel auth new-key` prints a key and this line
        tenant: team-a
        models: [llama-8b, auto]      # absent: every model
        maxPriority: 0                # ceiling for x-priority (default 0)
        rateLimit: {requestsPerMinute: 600, tokensPerMinute: 200000}

A fast hash suits API keys: they are long random strings, so nothing is gained by
slowing down a guess (unlike passwords, which need bcrypt or argon2); GitHub- and
Stripe-style gateways store keys the same way.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from triskel.common.api import ApiModel
from triskel.common.validation_errors import first_issue
from triskel.router.auth.principal import NO_LIMIT, Principal, RateLimit

# Names and tenants travel in headers, logs and metric labels: plain, short tokens.
NAME_PATTERN = r"^[A-Za-z0-9][-._A-Za-z0-9]{0,62}$"
KEY_PREFIX = "tsk_"
# x-priority takes at most 9 digits (triskel.router.admission).
MAX_PRIORITY_BOUND = 999_999_999

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class KeysFileError(ValueError):
    """The keys file is unusable; the message names the file and the field."""


class ApiKeyEntry(ApiModel):
    name: Name
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    """The key's SHA-256 as 64 hex digits."""
    tenant: Name
    models: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None
    """Model names (or aliases) the key may ask for; absent: every model."""
    max_priority: Annotated[int, Field(ge=-MAX_PRIORITY_BOUND, le=MAX_PRIORITY_BOUND)] = 0
    rate_limit: RateLimit = NO_LIMIT

    @field_validator("sha256")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()

    def principal(self) -> Principal:
        return Principal(
            name=self.name,
            tenant=self.tenant,
            models=None if self.models is None else frozenset(self.models),
            max_priority=self.max_priority,
            limits=self.rate_limit,
            bucket=f"key:{self.name}",
        )


class ApiKeysFile(ApiModel):
    keys: list[ApiKeyEntry]

    @model_validator(mode="after")
    def _unique(self) -> ApiKeysFile:
        names: set[str] = set()
        hashes: set[str] = set()
        for index, entry in enumerate(self.keys):
            if entry.name in names:
                raise ValueError(f"keys[{index}].name: {entry.name!r} is used twice")
            if entry.sha256 in hashes:
                raise ValueError(f"keys[{index}]({entry.name}).sha256: the same key twice")
            names.add(entry.name)
            hashes.add(entry.sha256)
        return self


KeyTable = dict[str, Principal]
"""Principals by their key's SHA-256 (lower-case hex)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, with a prefix secret scanners match."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_keys_file(text: str, source: str) -> KeyTable:
    """The keys of one file's `text`; KeysFileError naming `source` and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KeysFileError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise KeysFileError(f"{source}: expected a mapping with `keys`")
    try:
        parsed = ApiKeysFile.model_validate(data)
    except ValidationError as error:
        raise KeysFileError(f"{source}: {first_issue(error, data)}") from None
    return {entry.sha256: entry.principal() for entry in parsed.keys}
