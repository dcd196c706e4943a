"""The auth section at start-up: an unusable keys file or key stops the router, named."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from triskel.router.auth.config import AuthConfig, JwtConfig
from triskel.router.auth.setup import AuthSetupError, open_authenticator
from triskel.router.metrics import RouterMetrics
from triskel.router.process import RouterProcessConfig, RouterStartupError, run_router


def test_auth_needs_a_credential_source() -> None:
    with pytest.raises(ValueError, match="auth: give apiKeysFile, jwt or both"):
        AuthConfig()


@pytest.mark.parametrize("share", [-0.01, 0.11])
def test_the_lease_share_is_bounded_and_named(share: float) -> None:
    # Above a tenth, N replicas could hold N tenths of a minute between them.
    with pytest.raises(ValueError, match=r"rateLimitLease\n"):
        AuthConfig.model_validate({"apiKeysFile": "keys.yaml", "rateLimitLease": share})


def test_a_bad_keys_file_is_named_with_its_field(tmp_path: Path) -> None:
    (tmp_path / "keys.yaml").write_text("keys:\n  - {name: a, sha256: nothex, tenant: t}\n")
    config = AuthConfig(api_keys_file=tmp_path / "keys.yaml")
    with pytest.raises(
        AuthSetupError, match=r"^auth\.apiKeysFile: .*keys\.yaml: keys\[0\]\(a\)\.sha256"
    ):
        open_authenticator(config, None, RouterMetrics(), list)


def test_a_bad_public_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "issuer.pem").write_text("not a key")
    jwt = JwtConfig(issuer="https://i", audience="a", public_key_file=tmp_path / "issuer.pem")
    with pytest.raises(AuthSetupError, match=r"^auth\.jwt\.publicKeyFile: .*issuer\.pem"):
        open_authenticator(AuthConfig(jwt=jwt), None, RouterMetrics(), list)


@pytest.mark.asyncio
async def test_the_router_refuses_to_start_with_a_missing_keys_file(tmp_path: Path) -> None:
    (tmp_path / "members.json").write_text('{"formatVersion": 1, "pools": []}')
    config = RouterProcessConfig.model_validate(
        {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "membershipFile": str(tmp_path / "members.json"),
            "auth": {"apiKeysFile": str(tmp_path / "missing.yaml")},
        }
    )
    with pytest.raises(
        RouterStartupError, match=r"auth\.apiKeysFile: .*missing\.yaml: cannot read"
    ):
        await run_router(config, lambda _endpoints: None, asyncio.Event())
