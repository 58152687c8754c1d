"""In-memory state of the CLOB simulator: accounts, API keys, orders, trades, heartbeats, faults, order log.

Theory of operation
-------------------
The simulator is the venue of PROTOCOL.md as the official clients see it; the ASGI app (clob_app) only
moves bytes. Everything here is synchronous and single-threaded (the app runs it on one event loop),
and every time comes from the injected clock, so a unit test drives it without a server.

An order goes through the venue's checks in this order: payload shape and version, owner == API key,
signer == the key's address, the EIP-712 signature (recomputed order hash, ecrecover, or the ERC-7739
wrapper of POLY_1271), the price derived from the signed integer amounts (any amounts are accepted; the
price only has to sit on the tick within one unit of the amount precision, PROTOCOL 3.7), then the ONE
matching engine (`MatchingEngine`) does duplicates, tick, minimum size, GTD expiration, balance,
post-only and FOK/FAK, and answers with `VENUE_ERRORS` texts. Its reports are folded back into venue
records: an order per hash, a trade per taker fill (with the resting orders it met at that level, on
either outcome: a mint or merge lists the other token's orders among `maker_orders`, each with its own
asset, side and price), user channel messages, and market channel messages.

Market channel. The simulator shows, for each token, the book an order on that token would match: the
engine's view (its own replayed book, or the complement's read mirrored) plus every order resting in
the market, on either token (read mirrored for the other one). Watched tokens keep the last book
sent; after each change the difference goes out as one `price_change` (entries for both tokens of the
market), a trade sends `last_trade_price` and `book`.

Identity. A user is an EOA address: API keys belong to it, heartbeats and the user channel are per
user, and open orders are listed per user. Funds belong to the order's `maker` wallet. A proxy, Safe or
deposit wallet is owned by the EOA the balances file names for it (`"owner"`); when the file names none,
the simulator assumes the wallet belongs to the EOA whose API key places the order (nothing on chain
can be asked), and for POLY_1271 the wrapped signature must recover to that EOA.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import attrs
from coincurve import PublicKey

from polysnipe.adapters.clob.auth import clob_auth_digest, l2_signature
from polysnipe.adapters.clob.config import AMOY, POLYGON, exchange_contracts
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_message, parse_markets
from polysnipe.adapters.clob.signing import ORDER_TYPE_STRING, domain_separator, keccak256
from polysnipe.adapters.files import load_events
from polysnipe.adapters.sim.models import PolymarketFeeModel, RiskAverseQueueModel
from polysnipe.adapters.sim.venue import VENUE_ERRORS, Ledger, MatchingEngine, buy_cost, sell_proceeds
from polysnipe.core.events import (
    BookSnapshot,
    Event,
    LastTrade,
    MarketEvent,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderType,
)
from polysnipe.core.order_math import ROUNDING, price_of
from polysnipe.core.units import MICRO, ONE, format_micro, parse_micro

__all__ = [
    "END_CURSOR",
    "ERRORS",
    "INITIAL_CURSOR",
    "ApiKey",
    "Balances",
    "ClobSimConfig",
    "ClobSimState",
    "Faults",
    "OrderLogEntry",
    "SimOrder",
    "SimTrade",
    "TokenBucket",
    "VenueError",
    "parse_balances",
    "recover_address",
]

INITIAL_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="

#: The venue's texts beyond the engine's VENUE_ERRORS (PROTOCOL 11.3-11.4; the owner/signer/signature
#: wording is what the venue answers in py-clob-client(-v2) issue reports, PROTOCOL 11.4 [3P]).
ERRORS: Final[Mapping[str, str]] = {
    "unauthorized": "Unauthorized/Invalid api key",
    "l1": "Invalid L1 Request headers",
    "rate_limited": "Too Many Requests",
    "payload": "Invalid order payload",
    "batch_limit": "Payload exceeds the limit",
    "owner": "the order owner has to be the owner of the API KEY",
    "signer": "the order signer address has to be the address of the API KEY",
    "signature": "invalid signature",
    "version": "order_version_mismatch",
    "restarting": "Matching engine is restarting",
    "cancel_only": "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed.",
    "disabled": "Trading is currently disabled. Check polymarket.com for updates",
    "post_only_mode": "post-only mode: only post-only orders and cancels are allowed",
    "heartbeat": "Invalid Heartbeat ID",
    "order_not_found": "order not found",
    "not_cancelable": "already canceled or matched",
    "no_orderbook": "No orderbook exists for the requested token id",
    "market_not_found": "market not found",
    "internal": "Internal server error",
}

#: Exchange V3 verifying contracts (PROTOCOL 1.1); signing.py only knows the V2 pair.
_EXCHANGE_V3: Final = {
    POLYGON: "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
    AMOY: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D",
}
_ORDER_TYPEHASH: Final = keccak256(ORDER_TYPE_STRING.encode())
#: ERC-7739 wrapper of POLY_1271 signatures (PROTOCOL 2)
_TYPED_DATA_SIGN_TYPEHASH: Final = keccak256(
    (
        "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
        "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
    ).encode()
)
_DEPOSIT_WALLET_DOMAIN: Final = keccak256(b"DepositWallet") + keccak256(b"1")
_TYPE_STRING_BYTES: Final = ORDER_TYPE_STRING.encode()
_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
_SIDE_NAMES: Final = ("BUY", "SELL")
#: fields only V1 orders carry (PROTOCOL 4.4): their presence means a client signing another version
_V1_FIELDS: Final = frozenset({"nonce", "feeRateBps", "taker"})
_MAX_UINT256: Final = (1 << 256) - 1
_UNLIMITED: Final = str(_MAX_UINT256)


class VenueError(Exception):
    """A refusal the venue answers with a non-200 status and `{"error": message}` (or `body`)."""

    def __init__(
        self, status: int, message: str, *, body: Mapping[str, Any] | None = None, retry_after_s: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body: Mapping[str, Any] = body if body is not None else {"error": message}
        self.retry_after_s = retry_after_s


# -- configuration -------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class ClobSimConfig:
    chain_id: int = POLYGON
    #: seeds credentials, heartbeat ids, trade ids and the fault RNG: one seed, one run
    seed: int = 0
    #: GET /version; orders signed for another exchange version get `order_version_mismatch`
    exchange_version: int = 2
    #: HTTP status of that error (UNVERIFIED, PROTOCOL 5.5; the Python client only retries on 200)
    version_mismatch_status: int = 400
    #: allowed |now - POLY_TIMESTAMP| of L1 / L2 headers (the venue's windows are not documented)
    l1_max_skew_s: int = 300
    l2_max_skew_s: int = 300
    #: open orders of a user are cancelled this long after their last good heartbeat (PROTOCOL 9)
    heartbeat_timeout_ms: int = 10_000
    #: GTD expiration must lie at least this far ahead (the docs' one-minute threshold)
    min_gtd_lead_ms: int = 60_000
    #: USDC (micro) credited to a wallet the balances file does not name; None = such wallets hold 0
    default_usdc_micro: int | None = None
    #: per-API-key token buckets (PROTOCOL 11.2): burst per window, refilled evenly over the window
    order_burst: int = 3_500
    cancel_burst: int = 3_000
    rate_window_ms: int = 10_000
    #: trade settlement: MATCHED -> MINED -> CONFIRMED after these delays from the match
    mined_after_ms: int = 2_000
    confirmed_after_ms: int = 5_000
    #: items per page of /markets, /data/orders, /data/trades
    page_size: int = 100
    #: with an events file: False replays it all at startup, True waits for POST /_sim/advance
    paced_replay: bool = False


@attrs.define(slots=True)
class Faults:
    """Injected faults, switched by POST /_sim/faults; draws come from a seeded RNG (deterministic)."""

    #: share of REST calls (admin excluded) answered with an injected error status
    error_rate: float = 0.0
    status_codes: tuple[int, ...] = (500,)
    latency_ms: int = 0
    #: close every WebSocket now and refuse new ones while set
    drop_ws: bool = False
    #: Retry-After (s) sent with injected errors and 425s; 0 = none
    retry_after_s: int = 0
    #: the matching engine is restarting: 425 on order endpoints (PROTOCOL 11.3)
    engine_restart: bool = False
    #: "normal" | "cancel_only" | "disabled" | "post_only" (PROTOCOL 11.3)
    mode: str = "normal"
    #: overrides the configured exchange version (simulates a version migration)
    exchange_version: int | None = None
    seed: int = 0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), eq=False, repr=False)

    _MODES = ("normal", "cancel_only", "disabled", "post_only")

    @classmethod
    def from_json(cls, obj: Any) -> Faults:
        """Faults from the admin payload; fields left out are off. Raises ValueError on bad input."""
        if not isinstance(obj, dict):
            raise ValueError("faults must be a JSON object")
        known = {
            "error_rate",
            "status",
            "status_codes",
            "latency_ms",
            "drop_ws",
            "retry_after_s",
            "engine_restart",
            "mode",
            "exchange_version",
            "seed",
        }
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        codes = obj.get("status_codes")
        if codes is None:
            codes = [obj.get("status", 500)]
        if not isinstance(codes, list) or not codes or not all(_is_int(c) and 400 <= c <= 599 for c in codes):
            raise ValueError("status / status_codes must be HTTP error statuses (400-599)")
        rate = obj.get("error_rate", 0.0)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        mode = obj.get("mode", "normal")
        if mode not in cls._MODES:
            raise ValueError(f"mode must be one of {cls._MODES}")
        version = obj.get("exchange_version")
        if version is not None and version not in (2, 3):
            raise ValueError("exchange_version must be 2 or 3")
        seed = obj.get("seed", 0)
        ints = {k: obj.get(k, 0) for k in ("latency_ms", "retry_after_s")}
        if not _is_int(seed) or not all(_is_int(v) and v >= 0 for v in ints.values()):
            raise ValueError("seed, latency_ms and retry_after_s must be non-negative integers")
        return cls(
            error_rate=float(rate),
            status_codes=tuple(codes),
            latency_ms=ints["latency_ms"],
            drop_ws=bool(obj.get("drop_ws", False)),
            retry_after_s=ints["retry_after_s"],
            engine_restart=bool(obj.get("engine_restart", False)),
            mode=mode,
            exchange_version=version,
            seed=seed,
            rng=random.Random(seed),
        )

    def injected_status(self) -> int:
        """The status to inject into this call, or 0 for none."""
        if self.error_rate <= 0.0 or self.rng.random() >= self.error_rate:
            return 0
        return self.status_codes[self.rng.randrange(len(self.status_codes))]

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "status_codes": list(self.status_codes),
            "latency_ms": self.latency_ms,
            "drop_ws": self.drop_ws,
            "retry_after_s": self.retry_after_s,
            "engine_restart": self.engine_restart,
            "mode": self.mode,
            "exchange_version": self.exchange_version,
            "seed": self.seed,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- balances ------------------------------------------------------------------------------------
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
        wallet = _address(address)
        if wallet is None or not isinstance(entry, dict):
            raise ValueError(f"bad balances entry for {address!r}")
        usdc[wallet] = parse_micro(str(entry.get("usdc", "0")))
        held = entry.get("positions", {})
        if not isinstance(held, dict):
            raise ValueError(f"positions of {address} must be an object")
        positions[wallet] = {str(t): parse_micro(str(n)) for t, n in held.items()}
        if "owner" in entry:
            owner = _address(entry["owner"])
            if owner is None:
                raise ValueError(f"owner of {address} is not an address")
            owners[wallet] = owner
        if "signature_type" in entry:
            sig_types[wallet] = int(entry["signature_type"])
    return Balances(usdc, positions, owners, sig_types)


class _SimLedger(Ledger):
    """The engine's Ledger plus deposits: the simulator funds wallets it first meets (by setting)."""

    __slots__ = ()

    def deposit(self, wallet: str, usdc: int) -> None:
        self._usdc[wallet] = self._usdc.get(wallet, 0) + usdc


# -- records -------------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class ApiKey:
    key: str
    secret: str
    passphrase: str
    #: the EOA (lowercase) the key belongs to
    address: str
    nonce: int


@attrs.define(slots=True, eq=False)
class SimOrder:
    """An order the venue accepted, with its venue-side state."""

    id: str
    owner: str
    user: str
    #: `maker` exactly as the order carried it (wallet holding the funds)
    maker: str
    market: Market
    token_id: str
    side: Side
    price: int
    original_size: int
    order_type: OrderType
    expiration_s: int
    created_ms: int
    size_matched: int = 0
    #: LIVE | MATCHED | CANCELED
    status: str = "LIVE"
    trade_ids: list[str] = attrs.field(factory=list)

    @property
    def remaining(self) -> int:
        return self.original_size - self.size_matched


@attrs.define(slots=True, eq=False)
class SimTrade:
    """One taker fill; `taker` is None when replayed (outside) flow hit a resting order."""

    id: str
    taker: SimOrder | None
    market: Market
    #: the taker's token, side, price and size
    asset_id: str
    side: Side
    price: int
    size: int
    fee_usdc: int
    fee_shares: int
    match_ms: int
    tx_hash: str
    #: the resting orders hit: (order, size, its own price)
    makers: list[tuple[SimOrder, int, int]] = attrs.field(factory=list)
    status: str = "MATCHED"
    last_update_ms: int = 0

    def users(self) -> set[str]:
        out = {o.user for o, _, _ in self.makers}
        if self.taker is not None:
            out.add(self.taker.user)
        return out


@attrs.frozen(slots=True)
class OrderLogEntry:
    """One order request as received (accepted or not): what GET /_sim/orders lists."""

    ts_ms: int
    endpoint: str
    order_hash: str
    salt: int | None
    owner: str
    order_type: str
    #: "accepted" | "rejected" | "unauthorized" | "rate_limited" | "fault"
    outcome: str
    error: str = ""
    status: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ts_ms": self.ts_ms,
            "endpoint": self.endpoint,
            "order_hash": self.order_hash,
            "salt": self.salt,
            "owner": self.owner,
            "order_type": self.order_type,
            "outcome": self.outcome,
            "error": self.error,
            "status": self.status,
        }


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


# -- signatures ----------------------------------------------------------------------------------
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


def _address(value: object) -> str | None:
    """Lowercase form of a 0x address, or None."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        return None
    try:
        int(value[2:], 16)
    except ValueError:
        return None
    return value.lower()


def _hex_bytes(value: object, length: int | None = None) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    if length is not None and len(raw) != length:
        return None
    return raw


def _uint(value: object) -> int | None:
    """A uint256 from a decimal string (or a JSON integer, as salt and signatureType travel)."""
    if _is_int(value):
        n = value
    elif isinstance(value, str) and value.isascii() and value.isdecimal():
        n = int(value)
    else:
        return None
    assert isinstance(n, int)
    return n if 0 <= n <= _MAX_UINT256 else None


@attrs.frozen(slots=True)
class _WireOrder:
    """A POST /order element, parsed by key (the TS client orders keys differently)."""

    salt: int
    #: lowercase; `maker_text` is the address as sent (checksummed by the clients)
    maker: str
    maker_text: str
    signer: str
    token_id: str
    maker_amount: int
    taker_amount: int
    side: Side
    expiration_s: int
    signature_type: int
    timestamp_ms: int
    metadata: bytes
    builder: bytes
    signature: bytes
    owner: str
    order_type: OrderType
    post_only: bool

    def struct_hash(self) -> bytes:
        return keccak256(
            b"".join(
                (
                    _ORDER_TYPEHASH,
                    self.salt.to_bytes(32, "big"),
                    bytes(12) + bytes.fromhex(self.maker[2:]),
                    bytes(12) + bytes.fromhex(self.signer[2:]),
                    int(self.token_id).to_bytes(32, "big"),
                    self.maker_amount.to_bytes(32, "big"),
                    self.taker_amount.to_bytes(32, "big"),
                    int(self.side).to_bytes(32, "big"),
                    self.signature_type.to_bytes(32, "big"),
                    self.timestamp_ms.to_bytes(32, "big"),
                    self.metadata,
                    self.builder,
                )
            )
        )


def _peek(payload: Any) -> tuple[int | None, str, str]:
    """(salt, owner, orderType) of a payload that may not parse, for the order log."""
    if not isinstance(payload, dict):
        return None, "", ""
    order = payload.get("order")
    salt = _uint(order.get("salt")) if isinstance(order, dict) else None
    owner, order_type = payload.get("owner"), payload.get("orderType")
    return salt, owner if isinstance(owner, str) else "", order_type if isinstance(order_type, str) else ""


def _parse_wire_order(payload: Any) -> _WireOrder:
    bad = VenueError(400, ERRORS["payload"])
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise bad
    order: dict[str, Any] = payload["order"]
    if "timestamp" not in order and _V1_FIELDS & order.keys():
        raise VenueError(400, ERRORS["version"])
    salt = _uint(order.get("salt"))
    maker, signer = _address(order.get("maker")), _address(order.get("signer"))
    token_id = order.get("tokenId")
    maker_amount, taker_amount = _uint(order.get("makerAmount")), _uint(order.get("takerAmount"))
    side_text = order.get("side")
    side = _SIDES.get(side_text) if isinstance(side_text, str) else None
    expiration = _uint(order.get("expiration", "0"))
    sig_type = order.get("signatureType")
    timestamp = _uint(order.get("timestamp"))
    metadata = _hex_bytes(order.get("metadata"), 32)
    builder = _hex_bytes(order.get("builder"), 32)
    signature = _hex_bytes(order.get("signature"))
    owner = payload.get("owner")
    order_type = payload.get("orderType")
    post_only = payload.get("postOnly", False)
    if (
        salt is None
        or maker is None
        or signer is None
        or not (isinstance(token_id, str) and _uint(token_id) is not None)
        or not maker_amount
        or not taker_amount
        or side is None
        or expiration is None
        or not (_is_int(sig_type) and sig_type in (0, 1, 2, 3))
        or timestamp is None
        or metadata is None
        or builder is None
        or signature is None
        or not isinstance(owner, str)
        or order_type not in ("GTC", "GTD", "FOK", "FAK")
        or not isinstance(post_only, bool)
        or not isinstance(payload.get("deferExec", False), bool)
    ):
        raise bad
    assert isinstance(token_id, str) and isinstance(sig_type, int) and isinstance(order_type, str)
    return _WireOrder(
        salt,
        maker,
        order["maker"],
        signer,
        token_id,
        maker_amount,
        taker_amount,
        side,
        expiration,
        sig_type,
        timestamp,
        metadata,
        builder,
        signature,
        owner,
        OrderType(order_type),
        post_only,
    )


def _venue_price(side: Side, maker_amount: int, taker_amount: int, tick: int) -> int | None:
    """The on-tick price the signed amounts stand for, or None when it is off the tick.

    The official client rounds the USDC (or, for market BUYs, the share) leg to the tick's amount
    decimals A with floats, so amount / size is within one unit of the A-th decimal of an on-tick
    price; anything farther breaks the tick rules (PROTOCOL 3.4-3.7).
    """
    exact = price_of(maker_amount, taker_amount, side)
    shares, usdc = (taker_amount, maker_amount) if side is Side.BUY else (maker_amount, taker_amount)
    price = round(exact * MICRO / tick) * tick
    slack = 10 ** (6 - ROUNDING[tick].amount_decimals)
    if abs(Fraction(usdc) - Fraction(shares * price, MICRO)) > slack:
        return None
    return price if tick <= price <= ONE - tick else None


# -- formatting ----------------------------------------------------------------------------------
def _fmt(value: int) -> str:
    return format_micro(value)


def _side_name(side: Side) -> str:
    return _SIDE_NAMES[side]


def _book_hash(summary: Mapping[str, Any]) -> str:
    # The server hashes the compact summary with "hash" blank; py-clob-client-v2's
    # generate_orderbook_summary_hash reproduces it, so clients can validate our books.
    return hashlib.sha1(
        json.dumps({**summary, "hash": ""}, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(base64.b64decode(cursor, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise VenueError(400, "invalid next_cursor") from None
    if offset < 0:
        raise VenueError(400, "invalid next_cursor")
    return offset


_Levels = tuple[dict[int, int], dict[int, int]]
MarketOut = tuple[tuple[str, ...], dict[str, Any]]
UserOut = tuple[str, str, dict[str, Any]]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the state -----------------------------------------------------------------------------------
class ClobSimState:
    """Everything the simulated CLOB knows; the app calls it from one thread (see module doc)."""

    def __init__(
        self,
        markets: Sequence[Market],
        config: ClobSimConfig | None = None,
        *,
        market_documents: Sequence[Mapping[str, Any]] = (),
        balances: Balances | None = None,
        events: Sequence[Event] = (),
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self.config = config or ClobSimConfig()
        self._clock = clock
        cfg = self.config
        self.registry = MarketRegistry.of(markets)
        docs = {str(d.get("condition_id")): d for d in market_documents}
        self._market_docs: list[Mapping[str, Any]] = [
            docs.get(m.condition_id) or _market_document(m) for m in self.registry
        ]
        listed = {m.condition_id for m in self.registry}
        self._market_docs.extend(d for cid, d in docs.items() if cid not in listed)
        bal = balances or Balances()
        self._balances = bal
        self.ledger = _SimLedger(dict(bal.usdc), {w: dict(p) for w, p in bal.positions.items()})
        self._funded: set[str] = set(bal.usdc) | set(bal.positions)
        self.engine = MatchingEngine(
            self.registry,
            RiskAverseQueueModel(),
            PolymarketFeeModel(),
            self.ledger,
            trade_id_prefix="t",
            min_gtd_lead_ms=cfg.min_gtd_lead_ms,
        )
        self._rng = random.Random(cfg.seed)
        self._cred_key = hashlib.sha256(f"polysnipe-clob-sim:{cfg.seed}".encode()).digest()
        self.faults = Faults()
        contracts = exchange_contracts(cfg.chain_id)
        self._domains: dict[tuple[int, bool], bytes] = {
            (2, False): domain_separator(
                cfg.chain_id, contracts.exchange_v2, name="Polymarket CTF Exchange", version="2"
            ),
            (2, True): domain_separator(
                cfg.chain_id, contracts.neg_risk_exchange_v2, name="Polymarket CTF Exchange", version="2"
            ),
            (3, False): domain_separator(
                cfg.chain_id, _EXCHANGE_V3[cfg.chain_id], name="Polymarket CTF Exchange", version="3"
            ),
        }
        #: domain separator -> the exchange version it belongs to
        self._domain_versions = {sep: version for (version, _), sep in self._domains.items()}
        self._spenders = (contracts.exchange_v2, contracts.neg_risk_exchange_v2)
        self._keys: dict[str, ApiKey] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._orders: dict[str, SimOrder] = {}
        self._live: dict[str, dict[str, SimOrder]] = {}  # condition id -> resting orders
        self._trades: dict[str, SimTrade] = {}
        self._to_mine: deque[SimTrade] = deque()
        self._to_confirm: deque[SimTrade] = deque()
        self._hb_expected: dict[str, str] = {}
        self._hb_last_ms: dict[str, int] = {}
        self.order_log: list[OrderLogEntry] = []
        self._last_trade: dict[str, int] = {}
        self._watch_count: dict[str, int] = {}
        self._shown: dict[str, _Levels] = {}
        self._market_out: list[MarketOut] = []
        self._user_out: list[UserOut] = []
        self._pending: deque[Event] = deque()
        if cfg.paced_replay:
            self._pending.extend(events)
        else:
            self.apply_events(events)

    @classmethod
    def from_files(
        cls,
        markets_path: str | Path,
        events_path: str | Path | None = None,
        balances_path: str | Path | None = None,
        *,
        config: ClobSimConfig | None = None,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> ClobSimState:
        raw = Path(markets_path).read_bytes()
        doc = json.loads(raw, parse_float=Decimal)  # venue numbers stay exact decimals
        docs = doc if isinstance(doc, list) else doc["data"] if isinstance(doc.get("data"), list) else [doc]
        events = load_events(events_path)[0] if events_path is not None else []
        balances = None
        if balances_path is not None:
            balances = parse_balances(json.loads(Path(balances_path).read_bytes()))
        return cls(
            parse_markets(raw),
            config,
            market_documents=docs,
            balances=balances,
            events=events,
            clock=clock,
        )

    # -- time ----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock()

    def exchange_version(self) -> int:
        v = self.faults.exchange_version
        return v if v is not None else self.config.exchange_version

    # -- credentials and auth ------------------------------------------------------------------
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
        self._fund(creds.address)
        return creds

    def register_api_key(
        self, address: str, key: str, secret: str, passphrase: str, nonce: int = 0
    ) -> ApiKey:
        """Install given credentials (tests replaying recorded requests made with known keys)."""
        creds = ApiKey(key, secret, passphrase, address.lower(), nonce)
        self._keys[key] = creds
        return creds

    def api_keys_of(self, address: str) -> list[str]:
        return [k.key for k in self._keys.values() if k.address == address]

    def delete_api_key(self, creds: ApiKey) -> None:
        self._keys.pop(creds.key, None)

    def authenticate_l1(self, headers: Mapping[str, str]) -> tuple[str, int]:
        """(address, nonce) of valid L1 headers, else 401 `Invalid L1 Request headers`."""
        fail = VenueError(401, ERRORS["l1"])
        headers = {k.lower(): v for k, v in headers.items()}
        address = _address(headers.get("poly_address"))
        signature = _hex_bytes(headers.get("poly_signature"), 65)
        ts, nonce = headers.get("poly_timestamp", ""), headers.get("poly_nonce", "0")
        if address is None or signature is None or not ts.isdecimal() or not nonce.isdecimal():
            raise fail
        if abs(self.now_ms() // 1000 - int(ts)) > self.config.l1_max_skew_s:
            raise fail
        digest = clob_auth_digest(address, self.config.chain_id, int(ts), int(nonce))
        if recover_address(digest, signature) != address:
            raise fail
        return address, int(nonce)

    def authenticate_l2(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> ApiKey:
        """The API key of a request with valid L2 headers, else 401 `Unauthorized/Invalid api key`."""
        fail = VenueError(401, ERRORS["unauthorized"])
        headers = {k.lower(): v for k, v in headers.items()}
        creds = self._keys.get(headers.get("poly_api_key", ""))
        ts = headers.get("poly_timestamp", "")
        if creds is None or not ts.isdecimal():
            raise fail
        if not hmac.compare_digest(headers.get("poly_passphrase", ""), creds.passphrase):
            raise fail
        if (headers.get("poly_address") or "").lower() != creds.address:
            raise fail
        if abs(self.now_ms() // 1000 - int(ts)) > self.config.l2_max_skew_s:
            raise fail
        expected = l2_signature(creds.secret, int(ts), method, path, body)
        if not hmac.compare_digest(headers.get("poly_signature", ""), expected):
            raise fail
        return creds

    def authenticate_ws(self, auth: object) -> ApiKey | None:
        """The key of a user-channel auth object `{apiKey, secret, passphrase}`, or None."""
        if not isinstance(auth, dict):
            return None
        creds = self._keys.get(str(auth.get("apiKey", "")))
        if creds is None:
            return None
        if not (
            hmac.compare_digest(str(auth.get("secret", "")), creds.secret)
            and hmac.compare_digest(str(auth.get("passphrase", "")), creds.passphrase)
        ):
            return None
        return creds

    # -- rate limits ---------------------------------------------------------------------------
    def _bucket(self, creds: ApiKey, kind: str) -> TokenBucket:
        bucket = self._buckets.get((creds.key, kind))
        if bucket is None:
            burst = self.config.order_burst if kind == "order" else self.config.cancel_burst
            bucket = self._buckets[(creds.key, kind)] = TokenBucket(
                burst, self.config.rate_window_ms, self.now_ms()
            )
        return bucket

    def check_rate(self, creds: ApiKey, kind: str, cost: int) -> None:
        """Raise 429 unless the key's `kind` ("order" | "cancel") bucket holds `cost` tokens."""
        wait = self._bucket(creds, kind).retry_after_s(max(cost, 1), self.now_ms())
        if wait:
            raise VenueError(429, ERRORS["rate_limited"], retry_after_s=wait)

    def charge(self, creds: ApiKey, kind: str, cost: int) -> None:
        self._bucket(creds, kind).take(cost, self.now_ms())

    # -- order log -----------------------------------------------------------------------------
    def log_request(self, endpoint: str, payload: Any, outcome: str, error: str) -> None:
        """Record an order request refused before the venue looked at it (auth, rate, fault)."""
        salt, owner, order_type = _peek(payload)
        self.order_log.append(
            OrderLogEntry(self.now_ms(), endpoint, "", salt, owner, order_type, outcome, error)
        )

    # -- placing orders ------------------------------------------------------------------------
    def place_order(self, creds: ApiKey, payload: Any) -> dict[str, Any]:
        """POST /order: the 5.3 response, or VenueError with the venue's status and text."""
        response = self._place(creds, payload, "/order")
        if not response["success"]:
            status = self.config.version_mismatch_status if response["errorMsg"] == ERRORS["version"] else 400
            raise VenueError(status, response["errorMsg"])
        return response

    def place_orders(self, creds: ApiKey, payloads: Sequence[Any]) -> list[dict[str, Any]]:
        """POST /orders: one 5.3 response per element, in request order."""
        return [self._place(creds, p, "/orders") for p in payloads]

    def _place(self, creds: ApiKey, payload: Any, endpoint: str) -> dict[str, Any]:
        now = self.now_ms()
        salt, owner, order_type = _peek(payload)
        order_hash = ""
        try:
            wire = _parse_wire_order(payload)
            market = self.registry.get_by_token(wire.token_id)
            if market is None:
                raise VenueError(400, VENUE_ERRORS["invalid_token"])
            version = self.exchange_version()
            domain = self._domains[(3, False) if version == 3 else (2, market.neg_risk)]
            contents = wire.struct_hash()
            order_hash = "0x" + keccak256(b"\x19\x01" + domain + contents).hex()
            self._verify(creds, wire, domain, contents)
            if self.faults.mode == "post_only" and not wire.post_only:
                raise VenueError(400, ERRORS["post_only_mode"])
            response = self._execute(creds, wire, market, order_hash, now)
        except VenueError as exc:
            self.order_log.append(
                OrderLogEntry(now, endpoint, order_hash, salt, owner, order_type, "rejected", exc.message)
            )
            return _failure(exc.message, order_hash)
        outcome = "accepted" if response["success"] else "rejected"
        self.order_log.append(
            OrderLogEntry(
                now,
                endpoint,
                order_hash,
                salt,
                owner,
                order_type,
                outcome,
                response["errorMsg"],
                response["status"],
            )
        )
        return response

    def _verify(self, creds: ApiKey, wire: _WireOrder, domain: bytes, contents: bytes) -> None:
        if wire.owner != creds.key:
            raise VenueError(400, ERRORS["owner"])
        key_address = creds.address
        if wire.signature_type == 3:
            # POLY_1271: signer is the deposit wallet; the EOA signs inside the ERC-7739 wrapper.
            if wire.signer != wire.maker:
                raise VenueError(400, ERRORS["signature"])
            eoa = self._recover_1271(wire, domain, contents)
        else:
            if wire.signer != key_address:
                raise VenueError(400, ERRORS["signer"])
            if wire.signature_type == 0 and wire.maker != wire.signer:
                raise VenueError(400, ERRORS["signature"])
            digest = keccak256(b"\x19\x01" + domain + contents)
            eoa = recover_address(digest, wire.signature)
            if eoa != wire.signer:
                self._raise_for_other_version(wire, domain, contents)
        if eoa != key_address:
            raise VenueError(400, ERRORS["signature"])
        owner = self._balances.owners.get(wire.maker)
        if wire.signature_type != 0 and owner is not None and owner != eoa:
            raise VenueError(400, ERRORS["signature"])

    def _recover_1271(self, wire: _WireOrder, domain: bytes, contents: bytes) -> str | None:
        sig = wire.signature
        n = len(_TYPE_STRING_BYTES)
        if len(sig) != 65 + 32 + 32 + n + 2 or sig[129 : 129 + n] != _TYPE_STRING_BYTES:
            raise VenueError(400, ERRORS["signature"])
        if int.from_bytes(sig[-2:], "big") != n or sig[97:129] != contents:
            raise VenueError(400, ERRORS["signature"])
        wrapped_domain = sig[65:97]
        if wrapped_domain != domain:
            if self._domain_versions.get(wrapped_domain, self.exchange_version()) != self.exchange_version():
                raise VenueError(self.config.version_mismatch_status, ERRORS["version"])
            raise VenueError(400, ERRORS["signature"])
        typed = keccak256(
            _TYPED_DATA_SIGN_TYPEHASH
            + contents
            + _DEPOSIT_WALLET_DOMAIN
            + self.config.chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(wire.signer[2:])
            + bytes(32)
        )
        return recover_address(keccak256(b"\x19\x01" + domain + typed), sig[:65])

    def _raise_for_other_version(self, wire: _WireOrder, domain: bytes, contents: bytes) -> None:
        """A signature valid under another exchange version's domain is a version mismatch."""
        for (version, _), other in self._domains.items():
            if version == self.exchange_version():
                continue
            if recover_address(keccak256(b"\x19\x01" + other + contents), wire.signature) == wire.signer:
                raise VenueError(self.config.version_mismatch_status, ERRORS["version"])
        raise VenueError(400, ERRORS["signature"])

    def _tick(self, token_id: str, market: Market) -> int:
        book = self.engine.book(token_id)
        return book.tick_size if book is not None else market.tick_size

    def _view_of(self, token_id: str, market: Market) -> tuple[str, bool]:
        """The engine book an order on `token_id` matches in (MatchingEngine's views) and mirrored-ness."""
        book = self.engine.book(token_id)
        if book is not None and book.trusted:
            return token_id, False
        comp = market.complement(token_id)
        comp_book = self.engine.book(comp)
        if comp_book is not None and comp_book.trusted:
            return comp, True
        return token_id, False

    def _execute(
        self, creds: ApiKey, wire: _WireOrder, market: Market, order_hash: str, now: int
    ) -> dict[str, Any]:
        token = wire.token_id
        tick = self._tick(token, market)
        price = _venue_price(wire.side, wire.maker_amount, wire.taker_amount, tick)
        if price is None:
            raise VenueError(400, VENUE_ERRORS["invalid_tick"])
        size = wire.taker_amount if wire.side is Side.BUY else wire.maker_amount
        wallet = wire.maker
        self._fund(wallet)
        gtd = wire.order_type is OrderType.GTD
        request = OrderRequest(
            order_id=order_hash,
            opportunity_id="",
            correlation_id=creds.key,
            strategy="",
            routing="",
            wallet=wallet,
            market=market.condition_id,
            token_id=token,
            side=wire.side,
            price=price,
            size=size,
            order_type=wire.order_type,
            tick_size=tick,
            neg_risk=market.neg_risk,
            post_only=wire.post_only,
            expiration_ms=wire.expiration_s * 1000 if gtd else 0,
        )
        self.engine.place(request, now)
        reports = self.engine.drain()
        first = reports[0]
        if isinstance(first, OrderRejected):
            raise VenueError(400, first.venue_message)
        assert isinstance(first, OrderAccepted)
        order = SimOrder(
            order_hash,
            creds.key,
            creds.address,
            wire.maker_text,
            market,
            token,
            wire.side,
            price,
            size,
            wire.order_type,
            wire.expiration_s if gtd else 0,
            now,
        )
        self._orders[order_hash] = order
        trades = self._absorb(reports[1:], now, order)
        if order.status == "LIVE":
            self._live.setdefault(market.condition_id, {})[order_hash] = order
        self._emit_order(order, "PLACEMENT", now)
        self._emit_trades(trades, now)
        self._publish(market, now, traded=bool(trades))
        mine = [t for t in trades if t.taker is order]
        return _success(order, mine)

    def _fund(self, wallet: str) -> None:
        """Credit the configured default to a wallet seen for the first time (never silently)."""
        if wallet in self._funded:
            return
        self._funded.add(wallet)
        if self.config.default_usdc_micro is not None:
            self.ledger.deposit(wallet, self.config.default_usdc_micro)

    # -- engine reports -> venue records ---------------------------------------------------------
    def _absorb(
        self, reports: Iterable[ExecutionReport], now: int, placing: SimOrder | None
    ) -> list[SimTrade]:
        """Fold engine reports into orders and trades; returns the trades made, in order."""
        trades: list[SimTrade] = []
        touched: dict[str, SimOrder] = {}
        # A taker fill that the next maker fills belong to: the engine reports one taker fill per level
        # for all the resting orders it met there (on either outcome), then each maker's fill.
        open_trade: SimTrade | None = None
        unassigned = 0
        for report in reports:
            if isinstance(report, OrderFilled):
                order = self._orders[report.order_id]
                order.size_matched += report.size
                if report.liquidity is Liquidity.TAKER:
                    open_trade = self._new_trade(order, report, now)
                    unassigned = report.size
                    trades.append(open_trade)
                    continue
                touched[order.id] = order
                if open_trade is not None and open_trade.taker is placing and unassigned >= report.size:
                    open_trade.makers.append((order, report.size, report.price))
                    order.trade_ids.append(open_trade.id)
                    unassigned -= report.size
                else:
                    trades.append(self._new_trade(None, report, now, maker=order))
                    open_trade = None
            elif isinstance(report, OrderCancelled | OrderExpired):
                order = self._orders[report.order_id]
                open_trade = None
                if isinstance(report, OrderCancelled) and report.reason == "fak_remainder":
                    continue
                order.status = "CANCELED"
                self._live.get(order.market.condition_id, {}).pop(order.id, None)
                self._emit_order(order, "CANCELLATION", now)
        if placing is not None and (placing.order_type.is_immediate or not placing.remaining):
            placing.status = "MATCHED"
        for order in touched.values():
            if not order.remaining:
                order.status = "MATCHED"
                self._live.get(order.market.condition_id, {}).pop(order.id, None)
            self._emit_order(order, "UPDATE", now)
        return trades

    def _new_trade(
        self, order: SimOrder | None, fill: OrderFilled, now: int, *, maker: SimOrder | None = None
    ) -> SimTrade:
        trade_id = str(
            uuid.UUID(bytes=keccak256(f"{self.config.seed}:{fill.trade_id}".encode())[:16], version=4)
        )
        tx_hash = "0x" + keccak256(trade_id.encode()).hex()
        if order is not None:
            trade = SimTrade(
                trade_id,
                order,
                order.market,
                fill.token_id,
                fill.side,
                fill.price,
                fill.size,
                fill.fee_usdc,
                fill.fee_shares,
                now,
                tx_hash,
                last_update_ms=now,
            )
            order.trade_ids.append(trade_id)
        else:
            # Replayed flow took a resting order: the outside taker sits on the other side.
            assert maker is not None
            trade = SimTrade(
                trade_id,
                None,
                maker.market,
                maker.token_id,
                maker.side.opposite,
                fill.price,
                fill.size,
                0,
                0,
                now,
                tx_hash,
                [(maker, fill.size, fill.price)],
                last_update_ms=now,
            )
            maker.trade_ids.append(trade_id)
        self._trades[trade_id] = trade
        self._to_mine.append(trade)
        self._last_trade[trade.asset_id] = trade.price
        return trade

    # -- cancels -------------------------------------------------------------------------------
    def cancel(self, creds: ApiKey, order_ids: Sequence[str]) -> dict[str, Any]:
        """DELETE /order(s): `{canceled, not_canceled}` for the caller's orders."""
        return self._cancel(creds.address, order_ids)

    def _cancel(self, user: str, order_ids: Sequence[str]) -> dict[str, Any]:
        now = self.now_ms()
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        markets: dict[str, Market] = {}
        for order_id in order_ids:
            order = self._orders.get(order_id)
            if order is None or order.user != user:
                not_canceled[order_id] = ERRORS["order_not_found"]
            elif order.status != "LIVE":
                not_canceled[order_id] = ERRORS["not_cancelable"]
            else:
                self.engine.cancel(order_id, now)
                self._absorb(self.engine.drain(), now, None)
                canceled.append(order_id)
                markets[order.market.condition_id] = order.market
        for market in markets.values():
            self._publish(market, now, traded=False)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def live_orders(
        self, user: str, market: str = "", asset_id: str = "", order_id: str = ""
    ) -> list[SimOrder]:
        """The user's resting orders, oldest first, optionally filtered (GET /data/orders)."""
        out = [
            o
            for live in self._live.values()
            for o in live.values()
            if o.user == user
            and (not market or o.market.condition_id == market)
            and (not asset_id or o.token_id == asset_id)
            and (not order_id or o.id == order_id)
        ]
        out.sort(key=lambda o: o.created_ms)
        return out

    def cancel_where(self, creds: ApiKey, market: str = "", asset_id: str = "") -> dict[str, Any]:
        """DELETE /cancel-all and /cancel-market-orders."""
        return self.cancel(creds, [o.id for o in self.live_orders(creds.address, market, asset_id)])

    # -- queries -------------------------------------------------------------------------------
    def order_json(self, order: SimOrder) -> dict[str, Any]:
        return {
            "id": order.id,
            "status": order.status,
            "owner": order.owner,
            "maker_address": order.maker,
            "market": order.market.condition_id,
            "asset_id": order.token_id,
            "side": _side_name(order.side),
            "original_size": _fmt(order.original_size),
            "size_matched": _fmt(order.size_matched),
            "price": _fmt(order.price),
            "outcome": order.market.outcome_of(order.token_id),
            "expiration": str(order.expiration_s),
            "order_type": order.order_type.value,
            "associate_trades": list(order.trade_ids),
            "created_at": order.created_ms // 1000,
        }

    def get_order(self, creds: ApiKey, order_id: str) -> dict[str, Any]:
        order = self._orders.get(order_id)
        if order is None or order.user != creds.address:
            raise VenueError(404, ERRORS["order_not_found"])
        return self.order_json(order)

    def open_orders_page(
        self, creds: ApiKey, *, market: str, asset_id: str, order_id: str, cursor: str | None
    ) -> dict[str, Any]:
        return self._page(
            [self.order_json(o) for o in self.live_orders(creds.address, market, asset_id, order_id)], cursor
        )

    def trades_page(self, creds: ApiKey, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /data/trades for the caller: trades where they were taker or maker."""
        user = creds.address
        after, before = query.get("after", ""), query.get("before", "")
        maker_address = query.get("maker_address", "").lower()
        rows = []
        for trade in self._trades.values():
            if user not in trade.users():
                continue
            if query.get("id") and trade.id != query["id"]:
                continue
            if query.get("market") and trade.market.condition_id != query["market"]:
                continue
            if query.get("asset_id") and query["asset_id"] not in (
                trade.asset_id,
                *(o.token_id for o, _, _ in trade.makers),
            ):
                continue
            match_s = trade.match_ms // 1000
            if (after.isdecimal() and match_s <= int(after)) or (
                before.isdecimal() and match_s >= int(before)
            ):
                continue
            view = self.trade_json(trade, user)
            if maker_address and view["maker_address"].lower() != maker_address:
                continue
            rows.append(view)
        return self._page(rows, query.get("next_cursor"))

    def trade_json(self, trade: SimTrade, user: str) -> dict[str, Any]:
        """A trade as `user` sees it: trader_side TAKER or MAKER, owner = their API key."""
        taker = trade.taker
        mine = [o for o, _, _ in trade.makers if o.user == user]
        is_taker = taker is not None and taker.user == user
        viewer_key = taker.owner if is_taker and taker is not None else (mine[0].owner if mine else "")
        rate = trade.market.fee_rate
        return {
            "id": trade.id,
            "taker_order_id": taker.id
            if taker is not None
            else "0x" + keccak256(b"taker:" + trade.id.encode()).hex(),
            "market": trade.market.condition_id,
            "asset_id": trade.asset_id,
            "side": _side_name(trade.side),
            "size": _fmt(trade.size),
            "fee_rate_bps": str(rate // 100),
            "price": _fmt(trade.price),
            "status": trade.status,
            "match_time": str(trade.match_ms // 1000),
            "last_update": str(trade.last_update_ms // 1000),
            "outcome": trade.market.outcome_of(trade.asset_id),
            "bucket_index": 0,
            "owner": viewer_key,
            "trade_owner": viewer_key,
            "maker_address": taker.maker if taker is not None else "",
            "transaction_hash": trade.tx_hash,
            "trader_side": "TAKER" if is_taker else "MAKER",
            "maker_orders": [
                {
                    "order_id": o.id,
                    "owner": o.owner,
                    "maker_address": o.maker,
                    "matched_amount": _fmt(size),
                    "price": _fmt(price),
                    "fee_rate_bps": "0",
                    "asset_id": o.token_id,
                    "outcome": o.market.outcome_of(o.token_id),
                    "side": _side_name(o.side),
                }
                for o, size, price in trade.makers
            ],
        }

    def _page(self, rows: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
        if cursor == END_CURSOR:
            return {"data": [], "next_cursor": END_CURSOR, "limit": self.config.page_size, "count": 0}
        start = _offset(cursor)
        end = start + self.config.page_size
        data = rows[start:end]
        return {
            "data": data,
            "next_cursor": _cursor(end) if end < len(rows) else END_CURSOR,
            "limit": self.config.page_size,
            "count": len(data),
        }

    def balance_allowance(
        self, creds: ApiKey, asset_type: str, token_id: str, signature_type: str
    ) -> dict[str, Any]:
        """GET /balance-allowance: the wallet the signature type names for this user."""
        wallet = self._funder_of(
            creds.address, int(signature_type) if signature_type.lstrip("-").isdecimal() else 0
        )
        if asset_type == "CONDITIONAL":
            if self.registry.get_by_token(token_id) is None:
                raise VenueError(400, VENUE_ERRORS["invalid_token"])
            balance = self.ledger.shares(wallet, token_id)
        else:
            balance = self.ledger.usdc(wallet)
        return {"balance": str(balance), "allowances": dict.fromkeys(self._spenders, _UNLIMITED)}

    def _funder_of(self, eoa: str, signature_type: int) -> str:
        if signature_type <= 0:
            return eoa
        owned = [w for w, owner in self._balances.owners.items() if owner == eoa]
        typed = [w for w in owned if self._balances.signature_types.get(w) == signature_type]
        return (typed or owned or [eoa])[0]

    # -- heartbeats ----------------------------------------------------------------------------
    def heartbeat(self, creds: ApiKey, heartbeat_id: object) -> dict[str, Any]:
        """POST /v1/heartbeats: chained ids; a stale id gets 400 with the expected one."""
        user = creds.address
        expected = self._hb_expected.get(user, "")
        if heartbeat_id != expected:
            raise VenueError(
                400, ERRORS["heartbeat"], body={"error_msg": ERRORS["heartbeat"], "heartbeat_id": expected}
            )
        new_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self._hb_expected[user] = new_id
        self._hb_last_ms[user] = self.now_ms()
        return {"heartbeat_id": new_id}

    def legacy_heartbeat(self, creds: ApiKey) -> dict[str, Any]:
        self._hb_last_ms[creds.address] = self.now_ms()
        return {"status": "ok"}

    # -- time passing --------------------------------------------------------------------------
    def tick(self) -> None:
        """Run what is due by now: GTD expiries, heartbeat timeouts, trade settlement."""
        now = self.now_ms()
        expiry = self.engine.next_expiry_ms()
        if expiry is not None and expiry <= now:
            self.engine.expire_until(now)
            reports = self.engine.drain()
            markets = {
                self._orders[r.order_id].market.condition_id: self._orders[r.order_id].market for r in reports
            }
            self._absorb(reports, now, None)
            for market in markets.values():
                self._publish(market, now, traded=False)
        timeout = self.config.heartbeat_timeout_ms
        for user, last in list(self._hb_last_ms.items()):
            if now - last >= timeout:
                # The timer then rests until the user's next good heartbeat (PROTOCOL 9: it only
                # runs for users who send heartbeats).
                del self._hb_last_ms[user]
                self._cancel(user, [o.id for o in self.live_orders(user)])
        self._settle(now)

    def _settle(self, now: int) -> None:
        cfg = self.config
        while self._to_mine and self._to_mine[0].match_ms + cfg.mined_after_ms <= now:
            trade = self._to_mine.popleft()
            trade.status, trade.last_update_ms = "MINED", now
            self._to_confirm.append(trade)
            self._emit_trades([trade], now)
        while self._to_confirm and self._to_confirm[0].match_ms + cfg.confirmed_after_ms <= now:
            trade = self._to_confirm.popleft()
            trade.status, trade.last_update_ms = "CONFIRMED", now
            self._emit_trades([trade], now)

    # -- market data ---------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Event]) -> int:
        """Replay market events into the engine (and out to watchers); returns how many applied."""
        n = 0
        for event in events:
            if isinstance(event, BookSnapshot | PriceChange | TickSizeChange | LastTrade):
                self._apply(event)
                n += 1
        return n

    def inject(self, frame: Any) -> int:
        """POST /_sim/events: a market-channel frame (object or array), stamped now if it has no time."""
        try:
            events = parse_market_message(frame, ts_recv_ms=self.now_ms())
        except MalformedMessage as exc:
            raise VenueError(400, exc.reason) from None
        return self.apply_events(events)

    def advance(self, count: int | None = None, until_ms: int | None = None) -> int:
        """POST /_sim/advance: apply pending (paced) events, `count` of them or up to `until_ms`."""
        batch: list[Event] = []
        pending = self._pending
        while pending and (count is None or len(batch) < count):
            if until_ms is not None and pending[0].ts_ms > until_ms:
                break
            batch.append(pending.popleft())
        return self.apply_events(batch)

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    def _apply(self, event: MarketEvent) -> None:
        now = self.now_ms()
        self.engine.apply(event)
        trades = self._absorb(self.engine.drain(), now, None)
        self._emit_trades(trades, now)
        token = event.changes[0].token_id if isinstance(event, PriceChange) and event.changes else ""
        if not isinstance(event, PriceChange):
            token = event.token_id
        market = self.registry.get_by_token(token) if token else None
        if market is None:
            return
        if isinstance(event, LastTrade):
            self._last_trade[event.token_id] = event.price
            if event.token_id in self._shown:
                self._market_out.append(
                    (
                        (event.token_id,),
                        {
                            "event_type": "last_trade_price",
                            "asset_id": event.token_id,
                            "market": market.condition_id,
                            "price": _fmt(event.price),
                            "side": _side_name(event.side),
                            "size": _fmt(event.size),
                            "fee_rate_bps": str(event.fee_rate_bps),
                            "timestamp": str(event.ts_ms),
                        },
                    )
                )
        elif isinstance(event, TickSizeChange):
            for t in market.token_ids:
                if t in self._shown:
                    self._market_out.append(
                        (
                            (t,),
                            {
                                "event_type": "tick_size_change",
                                "asset_id": t,
                                "market": market.condition_id,
                                "old_tick_size": _fmt(event.old_tick),
                                "new_tick_size": _fmt(event.new_tick),
                                "timestamp": str(event.ts_ms),
                            },
                        )
                    )
        self._publish(market, now, traded=bool(trades) or isinstance(event, BookSnapshot))

    def levels(self, token_id: str) -> _Levels:
        """(bids, asks) price -> size of the book an order on `token_id` would meet (module doc)."""
        market = self.registry.by_token(token_id)
        view, mirror = self._view_of(token_id, market)
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        book = self.engine.book(view)
        if book is not None and book.trusted:
            if mirror:
                bids = {ONE - p: s for p, s in book.asks.items()}
                asks = {ONE - p: s for p, s in book.bids.items()}
            else:
                bids, asks = dict(book.bids), dict(book.asks)
        # every resting order of the market meets an order on either token (MatchingEngine's one book)
        for o in self._live.get(market.condition_id, {}).values():
            if not o.remaining:
                continue
            own = o.token_id == token_id
            side, price = (o.side, o.price) if own else (o.side.opposite, ONE - o.price)
            dest = bids if side is Side.BUY else asks
            dest[price] = dest.get(price, 0) + o.remaining
        return bids, asks

    def book_json(self, token_id: str, levels: _Levels | None = None) -> dict[str, Any]:
        """GET /book: bids ascending and asks descending (best last), as the venue sends them."""
        market = self.registry.by_token(token_id)
        bids, asks = levels if levels is not None else self.levels(token_id)
        last = self._last_trade.get(token_id)
        summary: dict[str, Any] = {
            "market": market.condition_id,
            "asset_id": token_id,
            "timestamp": str(self.now_ms()),
            "hash": "",
            "bids": [{"price": _fmt(p), "size": _fmt(bids[p])} for p in sorted(bids)],
            "asks": [{"price": _fmt(p), "size": _fmt(asks[p])} for p in sorted(asks, reverse=True)],
            "min_order_size": _fmt(market.min_order_size),
            "tick_size": _fmt(self._tick(token_id, market)),
            "neg_risk": market.neg_risk,
            "last_trade_price": _fmt(last) if last is not None else "",
        }
        summary["hash"] = _book_hash(summary)
        return summary

    def best(self, token_id: str, side: Side) -> int | None:
        bids, asks = self.levels(token_id)
        if side is Side.BUY:
            return max(bids) if bids else None
        return min(asks) if asks else None

    def tick_size(self, token_id: str) -> int:
        market = self.registry.by_token(token_id)
        return self._tick(token_id, market)

    def last_trade_price(self, token_id: str) -> int | None:
        return self._last_trade.get(token_id)

    def market_documents(self) -> list[Mapping[str, Any]]:
        return self._market_docs

    def markets_page(self, cursor: str | None) -> dict[str, Any]:
        return self._page([dict(d) for d in self._market_docs], cursor)

    # -- WebSocket plumbing --------------------------------------------------------------------
    def watch(self, token_ids: Iterable[str]) -> list[dict[str, Any]]:
        """A subscriber wants these tokens: returns their `book` messages (known tokens only)."""
        out = []
        for token in token_ids:
            if token not in self.registry:
                continue
            self._watch_count[token] = self._watch_count.get(token, 0) + 1
            levels = self.levels(token)
            self._shown[token] = levels
            out.append({"event_type": "book", **self.book_json(token, levels)})
        return out

    def unwatch(self, token_ids: Iterable[str]) -> None:
        for token in token_ids:
            n = self._watch_count.get(token, 0) - 1
            if n > 0:
                self._watch_count[token] = n
            elif n == 0:
                del self._watch_count[token]
                self._shown.pop(token, None)

    def _publish(self, market: Market, now: int, *, traded: bool) -> None:
        """Tell watchers how the market's books changed: `book` after trades, else `price_change`."""
        entries: list[dict[str, Any]] = []
        tokens: list[str] = []
        for token in market.token_ids:
            shown = self._shown.get(token)
            if shown is None:
                continue
            levels = self.levels(token)
            if levels == shown:
                continue
            self._shown[token] = levels
            book = self.book_json(token, levels)
            if traded:
                self._market_out.append(((token,), {"event_type": "book", **book}))
                continue
            bids, asks = levels
            best_bid = _fmt(max(bids)) if bids else ""
            best_ask = _fmt(min(asks)) if asks else ""
            tokens.append(token)
            for side, now_levels, old_levels in ((Side.BUY, bids, shown[0]), (Side.SELL, asks, shown[1])):
                for price in sorted(now_levels.keys() | old_levels.keys()):
                    size = now_levels.get(price, 0)
                    if size != old_levels.get(price, 0):
                        entries.append(
                            {
                                "asset_id": token,
                                "price": _fmt(price),
                                "size": _fmt(size),
                                "side": _side_name(side),
                                "hash": book["hash"],
                                "best_bid": best_bid,
                                "best_ask": best_ask,
                            }
                        )
        if entries:
            self._market_out.append(
                (
                    tuple(tokens),
                    {
                        "event_type": "price_change",
                        "market": market.condition_id,
                        "timestamp": str(now),
                        "price_changes": entries,
                    },
                )
            )

    def _emit_order(self, order: SimOrder, kind: str, now: int) -> None:
        msg = self.order_json(order)
        msg.update(
            event_type="order",
            type=kind,
            order_owner=order.owner,
            timestamp=str(now),
            created_at=str(order.created_ms // 1000),
        )
        self._user_out.append((order.user, order.market.condition_id, msg))

    def _emit_trades(self, trades: Iterable[SimTrade], now: int) -> None:
        for trade in trades:
            for user in trade.users():
                msg = {
                    "event_type": "trade",
                    "type": "TRADE",
                    **self.trade_json(trade, user),
                    "timestamp": str(now),
                }
                self._user_out.append((user, trade.market.condition_id, msg))
            if trade.status == "MATCHED" and trade.asset_id in self._shown:
                self._market_out.append(
                    (
                        (trade.asset_id,),
                        {
                            "event_type": "last_trade_price",
                            "asset_id": trade.asset_id,
                            "market": trade.market.condition_id,
                            "price": _fmt(trade.price),
                            "side": _side_name(trade.side),
                            "size": _fmt(trade.size),
                            "fee_rate_bps": str(trade.market.fee_rate // 100),
                            "timestamp": str(now),
                            "transaction_hash": trade.tx_hash,
                        },
                    )
                )

    def drain_market(self) -> list[MarketOut]:
        out, self._market_out = self._market_out, []
        return out

    def drain_user(self) -> list[UserOut]:
        out, self._user_out = self._user_out, []
        return out

    # -- admin ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """GET /_sim/state: what an operator or a test wants to see at a glance (no secrets)."""
        wallets = sorted(self._funded)
        return {
            "now_ms": self.now_ms(),
            "exchange_version": self.exchange_version(),
            "markets": len(self.registry),
            "pending_events": len(self._pending),
            "api_keys": [{"key": k.key, "address": k.address, "nonce": k.nonce} for k in self._keys.values()],
            "open_orders": sum(len(v) for v in self._live.values()),
            "orders": len(self._orders),
            "trades": len(self._trades),
            "wallets": {
                w: {
                    "usdc": _fmt(self.ledger.usdc(w)),
                    "free_usdc": _fmt(self.ledger.free_usdc(w)),
                    "positions": {t: _fmt(n) for t, n in self.ledger.positions(w).items()},
                }
                for w in wallets
            },
            "heartbeats": {u: self._hb_expected.get(u, "") for u in self._hb_last_ms},
            "faults": self.faults.to_json(),
        }


def _success(order: SimOrder, trades: Sequence[SimTrade]) -> dict[str, Any]:
    making = taking = 0
    for t in trades:
        if order.side is Side.BUY:
            making += buy_cost(t.price, t.size)
            taking += t.size - t.fee_shares
        else:
            making += t.size
            taking += sell_proceeds(t.price, t.size) - t.fee_usdc
    return {
        "success": True,
        "errorMsg": "",
        "orderID": order.id,
        "status": "matched" if trades else "live",
        "makingAmount": _fmt(making) if trades else "",
        "takingAmount": _fmt(taking) if trades else "",
        "tradeIDs": [t.id for t in trades],
    }


def _failure(message: str, order_hash: str) -> dict[str, Any]:
    return {
        "success": False,
        "errorMsg": message,
        "orderID": order_hash,
        "status": "",
        "makingAmount": "",
        "takingAmount": "",
        "tradeIDs": [],
    }


def _market_document(market: Market) -> dict[str, Any]:
    """A GET /markets object for a market known only as a domain Market (no recorded document)."""
    return {
        "enable_order_book": True,
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "minimum_order_size": Decimal(_fmt(market.min_order_size)),
        "minimum_tick_size": Decimal(_fmt(market.tick_size)),
        "condition_id": market.condition_id,
        "question": market.question,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id or "",
        "tokens": [
            {"token_id": t, "outcome": o, "price": 0, "winner": False}
            for t, o in zip(market.token_ids, market.outcomes, strict=True)
        ],
    }
