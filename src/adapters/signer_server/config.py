"""Settings of the signing server: what it signs for (policy), how often, how much, and how it listens.

Secrets are absent on purpose (builder credentials, the audit key, the keystore password, the token
PIN): the factory reads them from POLYSNIPE_* environment variables, so a config can be printed.
Addresses are kept lowercase, so a policy check is one set lookup whatever case the caller used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from polysnipe.adapters.clob.config import validate_address

__all__ = ["Policy", "RateLimit", "SignerServerConfig"]


def _addresses(values: object) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, list | tuple | set | frozenset):
        raise TypeError("expected a collection of addresses")
    return frozenset(validate_address(str(v)).lower() for v in values)


def _chain_ids(values: Iterable[int]) -> frozenset[int]:
    return frozenset(values)


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True, kw_only=True)
class Policy:
    """Whom the managed keys sign for. Empty sets allow nothing: a server without a policy refuses
    every trader signature, and only the builder route works."""

    chain_ids: frozenset[int] = attrs.field(default=(), converter=_chain_ids)
    #: EIP-712 verifyingContracts: the exchanges orders are signed for, and the Safe factory
    verifying_contracts: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: Safes whose transactions (and whose creation) may be signed
    safes: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: order makers (the funder wallet, or the EOA itself for signature type 0)
    makers: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    # What the Safes' transactions may call (safe_calls.py):
    #: ERC-20 collateral (USDC.e, pUSD): approved to a spender, transferred to a Safe or a recipient
    collateral_tokens: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: the Conditional Tokens contract: an operator approved, positions split, merged, redeemed
    conditional_tokens: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: neg-risk adapters: positions split, merged, redeemed, converted
    neg_risk_adapters: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: who may be approved to spend the Safes' collateral or positions (the exchanges, the adapter)
    spenders: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    #: whom collateral may be transferred to besides the Safes above (a treasury)
    recipients: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)


@attrs.frozen(slots=True)
class RateLimit:
    """A token bucket: `burst` requests at once, refilled at `rate_per_s`."""

    rate_per_s: float = attrs.field(validator=_positive)
    burst: int = attrs.field(validator=_positive)


@attrs.frozen(slots=True, kw_only=True)
class SignerServerConfig:
    policy: Policy = attrs.field(factory=Policy)
    per_caller: RateLimit = RateLimit(200.0, 400)
    per_key: RateLimit = RateLimit(100.0, 200)
    #: orders signed by one key in one UTC day, summed in USDC (micro): the second line behind risk
    daily_notional_cap_usdc_micro: int = attrs.field(default=10_000 * 1_000_000, validator=_positive)
    #: request bodies above this are refused unread (413)
    max_body_bytes: int = attrs.field(default=16_384, validator=_positive)
    #: engine requests whose timestamp is further than this from the server's clock are refused
    max_clock_skew_s: int = attrs.field(default=30, validator=_positive)
    #: nonces remembered at once; beyond it new requests are refused (503) rather than forgetting one
    max_nonces: int = attrs.field(default=1_000_000, validator=_positive)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both a certificate file and a key file")
