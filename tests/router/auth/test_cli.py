"""The auth flags of `triskel router` and `triskel new-api-key`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from triskel.cli.cmd_router import _auth_flags
from triskel.cli.main import app
from triskel.router.auth.keys_file import parse_keys_file


def test_flags_lay_over_the_config_json_auth_section() -> None:
    configured = {"jwt": {"issuer": "https://old", "audience": "a", "leewayS": 5}}
    merged = _auth_flags(
        configured,
        Path("/etc/keys.yaml"),
        {"issuer": "https://new", "audience": None, "jwksUrl": "https://new/jwks"},
    )
    assert merged == {
        "apiKeysFile": "/etc/keys.yaml",
        # A flag replaces its field; the rest of the section stays.
        "jwt": {
            "issuer": "https://new",
            "audience": "a",
            "leewayS": 5,
            "jwksUrl": "https://new/jwks",
        },
    }
    assert _auth_flags(None, None, {"issuer": None}) is None  # no flag: as configured


def test_an_incomplete_jwt_flag_set_is_refused_naming_the_field() -> None:
    result = CliRunner().invoke(
        app,
        ["router", "--config-json", '{"workers": ["127.0.0.1:1"]}', "--jwt-issuer", "https://i"],
    )
    assert result.exit_code == 2
    assert "auth.jwt.audience" in result.output and "Field required" in result.output


def test_new_api_key_prints_a_key_and_an_entry_that_parses() -> None:
    result = CliRunner().invoke(app, ["new-api-key", "--name", "team-a", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    key = lines[1].strip()
    entry = "\n".join(lines[3:])
    table = parse_keys_file(f"keys:\n{entry}\n", "printed")
    principal = table[hashlib.sha256(key.encode()).hexdigest()]
    assert principal.name == "team-a" and principal.tenant == "acme"


def test_new_api_key_refuses_a_bad_name() -> None:
    result = CliRunner().invoke(app, ["new-api-key", "--name", "a b", "--tenant", "acme"])
    assert result.exit_code == 2 and "--name" in result.output
