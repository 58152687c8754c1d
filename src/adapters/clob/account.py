"""The trading account on the CLOB: API credentials by L1 auth, and the collateral the wallet holds.

`create_or_derive_creds` does what the official client's create_or_derive_api_key does (PROTOCOL.md
6.1): POST /auth/api-key with L1 headers, and when the venue will not create a key (one exists for
this nonce), GET /auth/derive-api-key with the same headers. `collateral_balance` reads the funder's
pUSD balance (GET /balance-allowance, PROTOCOL.md 8) so a live engine starts from what the venue says
the wallet holds, never from a number in a config file.
"""

from __future__ import annotations

import msgspec

from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.errors import MalformedMessage, VenueError
from polysnipe.adapters.clob.parsing import decode_json

__all__ = ["collateral_balance", "conditional_balance", "create_or_derive_creds"]


class _WireCreds(msgspec.Struct, rename={"api_key": "apiKey"}):
    api_key: str
    secret: str
    passphrase: str


class _WireBalance(msgspec.Struct):
    #: micro-units of collateral, as a decimal string of digits
    balance: str


_creds = msgspec.json.Decoder(_WireCreds)
_balance_answer = msgspec.json.Decoder(_WireBalance)


def _decode_creds(raw: bytes) -> ApiCreds:
    # (decode_json checks the nesting first: a deep answer must be an error, never a crash)
    wire = decode_json(_creds, raw, "unusable API credentials answer")
    try:
        return ApiCreds(api_key=wire.api_key, secret=wire.secret, passphrase=wire.passphrase)
    except ValueError as exc:
        raise MalformedMessage(f"unusable API credentials answer: {exc}") from None


async def create_or_derive_creds(
    client: ClobHttpClient, signer: LocalSigner, timestamp_s: int, nonce: int = 0
) -> ApiCreds:
    """L2 credentials for `signer`'s address: created, or derived when they already exist."""
    headers = signer.l1_headers(timestamp_s, nonce)
    try:
        raw = await client.request("POST", "/auth/api-key", headers=headers)
    except VenueError:
        raw = await client.request("GET", "/auth/derive-api-key", headers=headers)
    return _decode_creds(raw)


async def collateral_balance(client: ClobHttpClient, signature_type: int) -> int:
    """The funder's collateral (pUSD) in micro-units, as the venue reports it."""
    return await _balance(client, {"asset_type": "COLLATERAL", "signature_type": str(signature_type)})


async def conditional_balance(client: ClobHttpClient, token_id: str, signature_type: int) -> int:
    """The funder's micro-shares of one outcome token, as the venue reports them."""
    query = {"asset_type": "CONDITIONAL", "token_id": token_id, "signature_type": str(signature_type)}
    return await _balance(client, query)


async def _balance(client: ClobHttpClient, query: dict[str, str]) -> int:
    raw = await client.get("/balance-allowance", query, auth=True)
    text = decode_json(_balance_answer, raw, "unusable balance answer").balance
    if not (text.isascii() and text.isdigit() and len(text) <= 30):
        raise MalformedMessage(f"balance is not a whole number of micro-units: {text[:40]!r}")
    return int(text)
