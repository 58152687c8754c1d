"""The signing server's client from settings and the environment: the caller credential comes from
POLYSNIPE_SIGNER_CREDENTIAL only (`polysnipe signer callers add NAME` printed it once)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

import httpx

from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.signer_client.client import AsyncSignerClient
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.orders import RemoteOrderSigner
from polysnipe.adapters.signer_server.auth import Credential, Refused, parse_credential

__all__ = ["ENV_CREDENTIAL", "CredentialError", "build_remote_order_signer", "credential_from_env"]

ENV_CREDENTIAL: Final = "POLYSNIPE_SIGNER_CREDENTIAL"


class CredentialError(KeyError, ValueError):
    """POLYSNIPE_SIGNER_CREDENTIAL is missing or malformed; the message never shows its value."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def credential_from_env(env: Mapping[str, str] | None = None) -> Credential:
    env = os.environ if env is None else env
    text = env.get(ENV_CREDENTIAL, "").strip()
    if not text:
        raise CredentialError(f"{ENV_CREDENTIAL} is not set (polysnipe signer callers add NAME prints one)")
    try:
        return parse_credential(text)
    except Refused:
        raise CredentialError(f"{ENV_CREDENTIAL}: expected psk.<caller id>.<secret>") from None


def build_remote_order_signer(
    config: SignerClientConfig,
    clob: ClobConfig,
    env: Mapping[str, str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RemoteOrderSigner:
    """Orders of `clob`'s wallet signed by the server's key `config.order_key`. Opens no socket."""
    if config.order_key is None:
        raise ValueError("signing orders through the signing server needs the key's address (order_key)")
    client = AsyncSignerClient(config, credential_from_env(env), transport=transport)
    return RemoteOrderSigner(client, clob, config.order_key)
