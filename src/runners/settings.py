"""Non-secret settings from the environment (`POLYSNIPE_*`) and an optional TOML file.

Secrets never pass through here: each adapter's factory reads its own from the environment (the CLOB
key and L2 credentials: `adapters/clob/factory.py`, POLYSNIPE_CLOB_*), so no settings object, repr or
log line can carry one. A settings file that names a secret is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Settings", "load_settings"]

_PREFIX = "POLYSNIPE_"


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


_SECRET_WORDS = ("private_key", "secret", "passphrase", "api_key", "mnemonic")
_INTS = {"chain_id", "signature_type"}


def load_settings(env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Settings from a TOML file (non-secret keys only) overridden by POLYSNIPE_* environment variables."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = toml_path or (Path(env[f"{_PREFIX}CONFIG"]) if f"{_PREFIX}CONFIG" in env else None)
    if path is not None:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        leaked = [k for k in data if any(w in k.lower() for w in _SECRET_WORDS)]
        if leaked:
            raise SystemExit(f"secrets must come from the environment, not {path}: {sorted(leaked)}")
        values.update(data)
    for field in attrs.fields(Settings):
        raw = env.get(f"{_PREFIX}{field.name.upper()}")
        if raw is None or raw == "":
            continue
        values[field.name] = int(raw) if field.name in _INTS else raw
    return Settings(**values)
