"""Who may call, and how often: L1 (EIP-712 ClobAuth) and L2 (HMAC) headers, the user channel's auth
object, order signatures (EOA, proxy, Safe and the POLY_1271 wrapper, per exchange version), and the
per-API-key token buckets of PROTOCOL 11.2.

L2 is checked over the raw body bytes before anything parses them, so a request without valid
credentials costs one HMAC and is never decoded.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Final

from coincurve import PublicKey

from polysnipe.adapters.clob.auth import clob_auth_digest, l2_signature
from polysnipe.adapters.clob.config import AMOY, POLYGON, exchange_contracts
from polysnipe.adapters.clob.signing import ORDER_TYPE_STRING, domain_separator, keccak256
from polysnipe.adapters.sim.clob.accounts import Accounts, ApiKey
from polysnipe.adapters.sim.clob.config import ClobSimConfig
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.wire import WireOrder, hex_bytes, parse_address, uint

__all__ = ["Authenticator", "OrderSignatures", "RateLimits", "TokenBucket", "recover_address"]

#: Exchange V3 verifying contracts (PROTOCOL 1.1); signing.py only knows the V2 pair.
_EXCHANGE_V3: Final = {
    POLYGON: "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    AMOY: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
}
#: ERC-7739 wrapper of POLY_1271 signatures (PROTOCOL 2)
_TYPED_DATA_SIGN_TYPEHASH: Final = keccak256(
    (
        "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
        "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
    ).encode()
)
_DEPOSIT_WALLET_DOMAIN: Final = keccak256(b"DepositWallet") + keccak256(b"1")
_TYPE_STRING_BYTES: Final = ORDER_TYPE_STRING.encode()
#: a POLY_TIMESTAMP longer than this is no unix time (and int() of a huge digit string is slow)
_MAX_TS_DIGITS: Final = 12


def recover_address(digest: bytes, signature: bytes) -> str | None:
    """ecrecover: the lowercase address that signed `digest` (r || s || v, v in 27/28 or 0/1)."""
    if len(signature) != 65 or len(digest) != 32:
        return None
    v = signature[64]
    recid = v - 27 if v >= 27 else v
    if recid not in (0, 1):
        return None
    try:
        public = PublicKey.from_signature_and_message(signature[:64] + bytes((recid,)), digest, hasher=None)
    except (ValueError, TypeError):
        return None
    return "0x" + keccak256(public.format(compressed=False)[1:])[-20:].hex()


def _seconds(text: str) -> int | None:
    if not (0 < len(text) <= _MAX_TS_DIGITS and text.isascii() and text.isdecimal()):
        return None
    return int(text)


class Authenticator:
    """L1, L2 and user-channel credentials, checked against the accounts and the injected clock."""

    __slots__ = ("_accounts", "_clock", "_config")

    def __init__(self, config: ClobSimConfig, accounts: Accounts, clock: Callable[[], int]) -> None:
        self._config = config
        self._accounts = accounts
        self._clock = clock

    def l1(self, headers: Mapping[str, str]) -> tuple[str, int]:
        """(address, nonce) of valid L1 headers, else 401 `Invalid L1 Request headers`."""
        fail = VenueError(401, ERRORS["l1"])
        headers = {k.lower(): v for k, v in headers.items()}
        address = parse_address(headers.get("poly_address"))
        signature = hex_bytes(headers.get("poly_signature"), 65)
        ts, nonce = _seconds(headers.get("poly_timestamp", "")), uint(headers.get("poly_nonce", "0"))
        if address is None or signature is None or ts is None or nonce is None:
            raise fail
        if abs(self._clock() // 1000 - ts) > self._config.l1_max_skew_s:
            raise fail
        digest = clob_auth_digest(address, self._config.chain_id, ts, nonce)
        if recover_address(digest, signature) != address:
            raise fail
        return address, nonce

    def l2(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> ApiKey:
        """The API key of a request with valid L2 headers, else 401 `Unauthorized/Invalid api key`."""
        fail = VenueError(401, ERRORS["unauthorized"])
        headers = {k.lower(): v for k, v in headers.items()}
        creds = self._accounts.key(headers.get("poly_api_key", ""))
        ts = _seconds(headers.get("poly_timestamp", ""))
        if creds is None or ts is None:
            raise fail
        if not hmac.compare_digest(headers.get("poly_passphrase", "").encode(), creds.passphrase.encode()):
            raise fail
        if (headers.get("poly_address") or "").lower() != creds.address:
            raise fail
        if abs(self._clock() // 1000 - ts) > self._config.l2_max_skew_s:
            raise fail
        expected = l2_signature(creds.secret, ts, method, path, body)
        if not hmac.compare_digest(headers.get("poly_signature", "").encode(), expected.encode()):
            raise fail
        return creds

    def ws(self, auth: object) -> ApiKey | None:
        """The key of a user-channel auth object `{apiKey, secret, passphrase}`, or None."""
        if not isinstance(auth, dict):
            return None
        creds = self._accounts.key(str(auth.get("apiKey", "")))
        if creds is None:
            return None
        if not (
            hmac.compare_digest(str(auth.get("secret", "")).encode(), creds.secret.encode())
            and hmac.compare_digest(str(auth.get("passphrase", "")).encode(), creds.passphrase.encode())
        ):
            return None
        return creds


class OrderSignatures:
    """The order hash per exchange version and neg-risk flag, and who signed an order."""

    __slots__ = ("_accounts", "_config", "_domain_versions", "_domains")

    def __init__(self, config: ClobSimConfig, accounts: Accounts) -> None:
        self._config = config
        self._accounts = accounts
        contracts = exchange_contracts(config.chain_id)
        name = "Polymarket CTF Exchange"
        self._domains: dict[tuple[int, bool], bytes] = {
            (2, False): domain_separator(config.chain_id, contracts.exchange_v2, name=name, version="2"),
            (2, True): domain_separator(
                config.chain_id, contracts.neg_risk_exchange_v2, name=name, version="2"
            ),
            (3, False): domain_separator(
                config.chain_id, _EXCHANGE_V3[config.chain_id], name=name, version="3"
            ),
        }
        #: domain separator -> the exchange version it belongs to
        self._domain_versions = {sep: version for (version, _), sep in self._domains.items()}

    def domain(self, version: int, neg_risk: bool) -> bytes:
        return self._domains[(3, False) if version == 3 else (2, neg_risk)]

    def verify(self, creds: ApiKey, wire: WireOrder, domain: bytes, contents: bytes, version: int) -> None:
        """Raise the venue's refusal unless the key's EOA signed this order for `domain`.

        A signature valid under another exchange version's domain is `order_version_mismatch`.
        """
        if wire.owner != creds.key:
            raise VenueError(400, ERRORS["owner"])
        key_address = creds.address
        if wire.signature_type == 3:
            # POLY_1271: signer is the deposit wallet; the EOA signs inside the ERC-7739 wrapper.
            if wire.signer != wire.maker:
                raise VenueError(400, ERRORS["signature"])
            eoa = self._recover_1271(wire, domain, contents, version)
        else:
            if wire.signer != key_address:
                raise VenueError(400, ERRORS["signer"])
            if wire.signature_type == 0 and wire.maker != wire.signer:
                raise VenueError(400, ERRORS["signature"])
            eoa = recover_address(keccak256(b"\x19\x01" + domain + contents), wire.signature)
            if eoa != wire.signer:
                self._raise_for_other_version(wire, contents, version)
        if eoa != key_address:
            raise VenueError(400, ERRORS["signature"])
        owner = self._accounts.owner_of(wire.maker)
        if wire.signature_type != 0 and owner is not None and owner != eoa:
            raise VenueError(400, ERRORS["signature"])

    def _recover_1271(self, wire: WireOrder, domain: bytes, contents: bytes, version: int) -> str | None:
        sig = wire.signature
        n = len(_TYPE_STRING_BYTES)
        if len(sig) != 65 + 32 + 32 + n + 2 or sig[129 : 129 + n] != _TYPE_STRING_BYTES:
            raise VenueError(400, ERRORS["signature"])
        if int.from_bytes(sig[-2:], "big") != n or sig[97:129] != contents:
            raise VenueError(400, ERRORS["signature"])
        wrapped_domain = sig[65:97]
        if wrapped_domain != domain:
            if self._domain_versions.get(wrapped_domain, version) != version:
                raise VenueError(self._config.version_mismatch_status, ERRORS["version"])
            raise VenueError(400, ERRORS["signature"])
        typed = keccak256(
            _TYPED_DATA_SIGN_TYPEHASH
            + contents
            + _DEPOSIT_WALLET_DOMAIN
            + self._config.chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(wire.signer[2:])
            + bytes(32)
        )
        return recover_address(keccak256(b"\x19\x01" + domain + typed), sig[:65])

    def _raise_for_other_version(self, wire: WireOrder, contents: bytes, version: int) -> None:
        for (other_version, _), other in self._domains.items():
            if other_version == version:
                continue
            if recover_address(keccak256(b"\x19\x01" + other + contents), wire.signature) == wire.signer:
                raise VenueError(self._config.version_mismatch_status, ERRORS["version"])
        raise VenueError(400, ERRORS["signature"])


class TokenBucket:
    """Integer token bucket: `burst` tokens, refilled at burst per `window_ms` (no floats, no drift).

    The level is kept in token-milliseconds so refill per elapsed ms is exactly `burst`.
    """

    __slots__ = ("_burst", "_last_ms", "_level", "_window_ms")

    def __init__(self, burst: int, window_ms: int, now_ms: int) -> None:
        self._burst = burst
        self._window_ms = window_ms
        self._level = burst * window_ms
        self._last_ms = now_ms

    def _refill(self, now_ms: int) -> None:
        elapsed = max(now_ms - self._last_ms, 0)
        self._level = min(self._level + elapsed * self._burst, self._burst * self._window_ms)
        self._last_ms = max(now_ms, self._last_ms)

    @property
    def burst(self) -> int:
        return self._burst

    def retry_after_s(self, cost: int, now_ms: int) -> int:
        """0 when `cost` tokens are there now, else whole seconds until they will be."""
        self._refill(now_ms)
        missing = cost * self._window_ms - self._level
        if missing <= 0:
            return 0
        return max(1, -(-missing // (self._burst * 1000)))

    def take(self, cost: int, now_ms: int) -> None:
        """Spend `cost` tokens; the level may go negative (a cancel-all that cancelled many)."""
        self._refill(now_ms)
        self._level -= cost * self._window_ms


class RateLimits:
    """One order bucket and one cancel bucket per API key (PROTOCOL 11.2)."""

    __slots__ = ("_buckets", "_clock", "_config")

    def __init__(self, config: ClobSimConfig, clock: Callable[[], int]) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, creds: ApiKey, kind: str) -> TokenBucket:
        bucket = self._buckets.get((creds.key, kind))
        if bucket is None:
            burst = self._config.order_burst if kind == "order" else self._config.cancel_burst
            bucket = TokenBucket(burst, self._config.rate_window_ms, self._clock())
            self._buckets[(creds.key, kind)] = bucket
        return bucket

    def check(self, creds: ApiKey, kind: str, cost: int) -> None:
        """Raise 429 unless the key's `kind` ("order" | "cancel") bucket holds `cost` tokens; 400 for
        a cost beyond what the bucket can ever hold (no wait would let it through)."""
        bucket = self._bucket(creds, kind)
        if cost > bucket.burst:
            raise VenueError(400, ERRORS["batch_limit"])
        wait = bucket.retry_after_s(max(cost, 1), self._clock())
        if wait:
            raise VenueError(429, ERRORS["rate_limited"], retry_after_s=wait)

    def charge(self, creds: ApiKey, kind: str, cost: int) -> None:
        self._bucket(creds, kind).take(cost, self._clock())
