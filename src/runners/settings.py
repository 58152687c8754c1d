"""Settings from the environment (`POLYSNIPE_*`) and an optional TOML file.

Secrets (private key, API secret and passphrase) come only from the environment, never from the
command line or a file in the repo, and are held in `Secret` so that no repr or log line shows them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Secret", "Settings", "load_settings"]

_PREFIX = "POLYSNIPE_"


@attrs.frozen(slots=True, repr=False)
class Secret:
    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def reveal(self) -> str:
        return self.value


@attrs.frozen(slots=True)
class Settings:
    chain_id: int = 137
    clob_url: str = "https://clob.polymarket.com"
    clob_ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws"
    #: bytes32 builder code signed into every order (attribution)
    builder_code: str = "0x" + "00" * 32
    signature_type: int = 0
    #: the funder (Safe / deposit wallet) for signature types 1-3; empty = the signer EOA
    funder: str = ""
    database_url: str = "postgresql://127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    private_key: Secret | None = None
    api_key: str = ""
    api_secret: Secret | None = None
    api_passphrase: Secret | None = None

    def require_private_key(self) -> str:
        if self.private_key is None:
            raise SystemExit(f"{_PREFIX}PRIVATE_KEY is not set")
        return self.private_key.reveal()


_SECRETS = {"private_key", "api_secret", "api_passphrase"}
_INTS = {"chain_id", "signature_type"}


def load_settings(env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Settings from a TOML file (non-secret keys only) overridden by POLYSNIPE_* environment variables."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = toml_path or (Path(env[f"{_PREFIX}CONFIG"]) if f"{_PREFIX}CONFIG" in env else None)
    if path is not None:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        leaked = _SECRETS & data.keys()
        if leaked:
            raise SystemExit(f"secrets must come from the environment, not {path}: {sorted(leaked)}")
        values.update(data)
    for field in attrs.fields(Settings):
        raw = env.get(f"{_PREFIX}{field.name.upper()}")
        if raw is None or raw == "":
            continue
        values[field.name] = int(raw) if field.name in _INTS else raw
    for name in _SECRETS & values.keys():
        values[name] = Secret(str(values[name]))
    return Settings(**values)
