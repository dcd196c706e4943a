"""header: does a request header hold one of given values (a tenant, a tier...)?

    header: x-tier
    values: [premium, standard]    fires on `x-tier: premium`, value `premium`

The header's name is matched whatever its case; its value, trimmed of surrounding
whitespace, is compared whole with each configured value (or, with `prefix: true`,
must start with it), case-sensitively unless `caseSensitive: false`. The values
reported are the configured values that match, in the order configured, so rules can
say `{signal: tier:premium}`. Without `values`, the signal fires when the header is
present and not blank, with no value. Score 1.0.

Credentials never reach policies (the front drops them), so `authorization`,
`proxy-authorization` and `cookie` are refused at load rather than never matching.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "header"
SUMMARY = "A request header's value (tenant, tier...), exact or by prefix."

# RFC 9110 `token`: what a header's name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The same headers the front drops before policies see a request.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

FIRED = SignalResult(True, (), 1.0)


class HeaderParameters(SignalParameters):
    header: str = Field(min_length=1)
    # Values that count (and are reported); none: any non-blank value counts.
    values: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    # The header's value need only start with one of `values`.
    prefix: bool = False
    case_sensitive: bool = True


class HeaderSignal:
    """Fires when header `header` (lower case) holds one of `values` (exactly, or as a
    prefix), or, with no `values`, any non-blank value. Reports the values matched."""

    def __init__(
        self,
        name: str,
        header: str,
        values: tuple[str, ...],
        is_prefix: bool,
        case_sensitive: bool,
    ) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset(values)
        self._header = header
        self._is_prefix = is_prefix
        self._case_sensitive = case_sensitive
        # (what the header's value is compared with, what is reported)
        self._values = tuple((self._folded(value), value) for value in values)
        self._exact = dict(self._values)

    def evaluate(self, request: SignalInput) -> SignalResult:
        raw = request.headers.get(self._header)
        value = raw.strip() if raw is not None else ""
        if not value:
            return NOT_FIRED
        if not self._values:
            return FIRED
        seen = self._folded(value)
        if self._is_prefix:
            matched = tuple(shown for key, shown in self._values if seen.startswith(key))
        else:
            exact = self._exact.get(seen)
            matched = () if exact is None else (exact,)
        return SignalResult(True, matched, 1.0) if matched else NOT_FIRED

    def _folded(self, value: str) -> str:
        return value if self._case_sensitive else value.casefold()


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> HeaderSignal:
    parsed = parse_parameters(HeaderParameters, parameters, path)
    where = f"{path}.parameters"
    if not _HEADER_NAME.fullmatch(parsed.header):
        raise SemanticConfigError(
            f"{where}.header",
            f"not an HTTP header name (got {parsed.header!r}); "
            "allowed: letters, digits and !#$%&'*+-.^_`|~",
        )
    header = parsed.header.lower()
    if header in _CREDENTIAL_HEADERS:
        raise SemanticConfigError(
            f"{where}.header",
            f"{header!r} carries credentials, which the router never passes to policies",
        )
    if parsed.prefix and not parsed.values:
        raise SemanticConfigError(f"{where}.prefix", "prefix: true needs `values`")
    first_index: dict[str, int] = {}
    for index, value in enumerate(parsed.values):
        if value != value.strip():
            raise SemanticConfigError(
                f"{where}.values[{index}]",
                f"{value!r} has surrounding whitespace, which header values are trimmed of",
            )
        key = value if parsed.case_sensitive else value.casefold()
        if key in first_index:
            raise SemanticConfigError(
                f"{where}.values[{index}]", f"{value!r} repeats values[{first_index[key]}]"
            )
        first_index[key] = index
    return HeaderSignal(name, header, parsed.values, parsed.prefix, parsed.case_sensitive)
