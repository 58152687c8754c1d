"""Who trades on the simulated venue: API keys (created, derived, installed, listed, deleted), wallets
and their funds (the balances file, plus the configured default for wallets first met), and which
wallet a user (an EOA) trades from.

Funds belong to an order's `maker` wallet. A proxy, Safe or deposit wallet is owned by the EOA the
balances file names for it (`"owner"`); when the file names none, the simulator assumes the wallet
belongs to the EOA whose API key places the order (nothing on chain can be asked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from polysnipe.adapters.sim.clob.config import ClobSimConfig
from polysnipe.adapters.sim.clob.wire import is_int, parse_address
from polysnipe.adapters.sim.venue import Ledger
from polysnipe.core.units import parse_micro

__all__ = ["Accounts", "ApiKey", "Balances", "SimLedger", "parse_balances"]


@attrs.frozen(slots=True, repr=False)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    #: the EOA (lowercase) the key belongs to
    address: str
    nonce: int

    def __repr__(self) -> str:
        return f"ApiKey(key={self.key}, address={self.address}, nonce={self.nonce}, secret=***)"


@attrs.frozen(slots=True)
class Balances:
    """Wallet funds from the balances file (micro-units), keyed by lowercase address."""

    usdc: Mapping[str, int] = attrs.field(factory=dict)
    positions: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    #: wallet -> the EOA that owns it (proxy, Safe, deposit wallet)
    owners: Mapping[str, str] = attrs.field(factory=dict)
    #: wallet -> its signature type, to find a user's funder for /balance-allowance
    signature_types: Mapping[str, int] = attrs.field(factory=dict)


def parse_balances(obj: Any) -> Balances:
    """`{address: {"usdc": "1000", "positions": {token: "10"}, "owner"?: EOA, "signature_type"?: n}}`."""
    if not isinstance(obj, dict):
        raise ValueError("balances must be a JSON object keyed by address")
    usdc: dict[str, int] = {}
    positions: dict[str, dict[str, int]] = {}
    owners: dict[str, str] = {}
    sig_types: dict[str, int] = {}
    for address, entry in obj.items():
        wallet = parse_address(address)
        if wallet is None or not isinstance(entry, dict):
            raise ValueError(f"bad balances entry for {address!r}")
        usdc[wallet] = parse_micro(str(entry.get("usdc", "0")))
        if usdc[wallet] < 0:
            raise ValueError(f"{wallet}: usdc {entry.get('usdc')!r} is negative")
        held = entry.get("positions", {})
        if not isinstance(held, dict):
            raise ValueError(f"positions of {address} must be an object")
        positions[wallet] = {str(t): parse_micro(str(n)) for t, n in held.items()}
        if any(n < 0 for n in positions[wallet].values()):
            raise ValueError(f"{wallet}: a position is negative")
        if "owner" in entry:
            owner = parse_address(entry["owner"])
            if owner is None:
                raise ValueError(f"owner of {address} is not an address")
            owners[wallet] = owner
        if "signature_type" in entry:
            sig_type = entry["signature_type"]
            if not (is_int(sig_type) and sig_type in (0, 1, 2, 3)):
                raise ValueError(f"signature_type of {address} must be 0, 1, 2 or 3")
            sig_types[wallet] = sig_type
    return Balances(usdc, positions, owners, sig_types)


class SimLedger(Ledger):
    """The engine's Ledger plus deposits: the simulator funds wallets it first meets (by setting)."""

    __slots__ = ()

    def deposit(self, wallet: str, usdc: int) -> None:
        self._usdc[wallet] = self._usdc.get(wallet, 0) + usdc


class Accounts:
    """API keys and wallets (see module doc)."""

    __slots__ = ("_balances", "_cred_key", "_default_usdc", "_funded", "_keys", "ledger")

    def __init__(self, config: ClobSimConfig, balances: Balances) -> None:
        self._balances = balances
        self.ledger = SimLedger(dict(balances.usdc), {w: dict(p) for w, p in balances.positions.items()})
        self._funded: set[str] = set(balances.usdc) | set(balances.positions)
        self._default_usdc = config.default_usdc_micro
        self._cred_key = hashlib.sha256(f"polysnipe-clob-sim:{config.seed}".encode()).digest()
        self._keys: dict[str, ApiKey] = {}

    # -- API keys ------------------------------------------------------------------------------
    def _derive(self, address: str, nonce: int) -> ApiKey:
        def part(label: str) -> bytes:
            return hmac.new(self._cred_key, f"{label}|{address}|{nonce}".encode(), hashlib.sha256).digest()

        key = str(uuid.UUID(bytes=part("key")[:16], version=4))
        return ApiKey(
            key, base64.urlsafe_b64encode(part("secret")).decode(), part("passphrase").hex(), address, nonce
        )

    def api_key_for(self, address: str, nonce: int) -> ApiKey:
        """Create or derive: the same (address, nonce) always yields the same credentials."""
        creds = self._derive(address.lower(), nonce)
        self._keys[creds.key] = creds
        self.fund(creds.address)
        return creds

    def register_api_key(
        self, address: str, key: str, secret: str, passphrase: str, nonce: int = 0
    ) -> ApiKey:
        """Install given credentials (tests replaying recorded requests made with known keys)."""
        creds = ApiKey(key, secret, passphrase, address.lower(), nonce)
        self._keys[key] = creds
        return creds

    def key(self, api_key: str) -> ApiKey | None:
        return self._keys.get(api_key)

    def api_keys(self) -> list[ApiKey]:
        return list(self._keys.values())

    def api_keys_of(self, address: str) -> list[str]:
        return [k.key for k in self._keys.values() if k.address == address]

    def delete_api_key(self, creds: ApiKey) -> None:
        self._keys.pop(creds.key, None)

    # -- wallets -------------------------------------------------------------------------------
    def fund(self, wallet: str) -> None:
        """Credit the configured default to a wallet seen for the first time (never silently)."""
        if wallet in self._funded:
            return
        self._funded.add(wallet)
        if self._default_usdc is not None:
            self.ledger.deposit(wallet, self._default_usdc)

    def wallets(self) -> list[str]:
        return sorted(self._funded)

    def owner_of(self, wallet: str) -> str | None:
        """The EOA the balances file gives this wallet to, if it names one."""
        return self._balances.owners.get(wallet)

    def funder_of(self, eoa: str, signature_type: int) -> str:
        """The wallet a user trades from under a signature type (their EOA for type 0)."""
        if signature_type <= 0:
            return eoa
        owned = [w for w, owner in self._balances.owners.items() if owner == eoa]
        typed = [w for w in owned if self._balances.signature_types.get(w) == signature_type]
        return (typed or owned or [eoa])[0]
