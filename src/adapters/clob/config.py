"""Settings of the CLOB adapter, and the venue constants that signing needs (PROTOCOL.md 1-2, 7).

Secrets (private key, API secret and passphrase) are deliberately absent: the factory resolves them
from POLYSNIPE_* environment variables, so a config object can be logged or printed safely.
"""

from __future__ import annotations

import enum
import re

import attrs

__all__ = [
    "AMOY",
    "BYTES32_ZERO",
    "POLYGON",
    "ClobConfig",
    "ExchangeContracts",
    "SignatureType",
    "exchange_contracts",
    "validate_address",
    "validate_bytes32",
]

POLYGON = 137
AMOY = 80002

BYTES32_ZERO = "0x" + "0" * 64

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")


class SignatureType(enum.IntEnum):
    """Who signs and who holds the funds (PROTOCOL.md 2); the value is signed into every order."""

    EOA = 0
    POLY_PROXY = 1
    POLY_GNOSIS_SAFE = 2
    #: deposit wallet / smart-contract wallet: `signer` is the wallet and the signature is wrapped
    POLY_1271 = 3


@attrs.frozen(slots=True)
class ExchangeContracts:
    """The EIP-712 verifyingContract of V2 orders; the neg-risk flag picks one (PROTOCOL.md 1.1)."""

    exchange_v2: str
    neg_risk_exchange_v2: str


_EXCHANGES = {
    # Both chains use the same V2 addresses (py-clob-client-v2 1.2.1 config.py).
    POLYGON: ExchangeContracts(
        exchange_v2="0xE111180000d2663C0091e4f400237545B87B996B",
        neg_risk_exchange_v2="0xe2222d279d744050d28e00520010520000310F59",
    ),
    AMOY: ExchangeContracts(
        exchange_v2="0xE111180000d2663C0091e4f400237545B87B996B",
        neg_risk_exchange_v2="0xe2222d279d744050d28e00520010520000310F59",
    ),
}


def exchange_contracts(chain_id: int) -> ExchangeContracts:
    try:
        return _EXCHANGES[chain_id]
    except KeyError:
        raise ValueError(f"Invalid chain_id: {chain_id}") from None


def validate_address(value: str, what: str = "address") -> str:
    """Return `value` if it is a 0x-prefixed 20-byte hex address, else raise ValueError."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{what} is not a 0x-prefixed 20-byte hex address: {value!r}")
    return value


def validate_bytes32(value: str, what: str = "bytes32") -> str:
    """Return `value` if it is 0x + 64 hex digits, else raise ValueError."""
    if not _BYTES32.fullmatch(value):
        raise ValueError(f"{what} is not 0x + 64 hex digits: {value!r}")
    return value


def _check_chain(_: object, __: attrs.Attribute[int], value: int) -> None:
    exchange_contracts(value)


def _check_builder(_: object, __: attrs.Attribute[str], value: str) -> None:
    validate_bytes32(value, "builder_code")


def _check_funder(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None:
        validate_address(value, "funder")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True)
class ClobConfig:
    """How to reach the CLOB and how our orders are signed and attributed."""

    host: str = "https://clob.polymarket.com"
    chain_id: int = attrs.field(default=POLYGON, validator=_check_chain)
    connect_timeout_s: float = attrs.field(default=2.0, validator=_positive)
    #: a POST /order that outlives this is "status unknown" and goes to reconciliation, never "not filled"
    request_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    #: bytes32 builder code signed into every order: the V2 builder attribution (PROTOCOL.md 7)
    builder_code: str = attrs.field(default=BYTES32_ZERO, validator=_check_builder)
    signature_type: SignatureType = attrs.field(default=SignatureType.EOA, converter=SignatureType)
    #: the wallet that holds the funds (proxy, Safe or deposit wallet); None = the signer's EOA
    funder: str | None = attrs.field(default=None, validator=_check_funder)

    def __attrs_post_init__(self) -> None:
        if self.signature_type is not SignatureType.EOA and self.funder is None:
            raise ValueError(f"signature type {self.signature_type.name} needs a funder wallet")
