"""Wire types of the CLOB market and user channels, our external-signal lines and CLOB REST answers.

Facts come from PROTOCOL.md sections 8 and 10.2 and the recordings in shared/data/polymarket/.
Every Struct ignores unknown fields, so a field the venue adds tomorrow never breaks decoding.

Why the market channel decodes into ONE wide Struct instead of a tagged union per message type:
several recorded messages carry no `event_type`, and msgspec can only pick a union member by a tag
that is always present. One Struct whose fields are the union of all message types decodes every
frame in a single pass; `parsing.py` then reads `event_type` (or infers it from which fields are set)
and maps the fields that type uses. Absent fields cost only their default.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "WireCancelResponse",
    "WireChange",
    "WireClobMarket",
    "WireCursorPage",
    "WireFeeDetails",
    "WireHeartbeat",
    "WireLevel",
    "WireMakerOrder",
    "WireMarket",
    "WireMessage",
    "WireNegRisk",
    "WireOrder",
    "WireOrderResponse",
    "WireOrdersPage",
    "WirePriceChangeEntry",
    "WireSide",
    "WireTickSize",
    "WireToken",
    "WireTrade",
    "WireTradesPage",
    "WireVersion",
]

#: the venue spells sides in capitals; anything else is malformed, caught at decode time
WireSide = Literal["BUY", "SELL"]


class WireLevel(msgspec.Struct, gc=False):
    """One price level of a `book` message."""

    #: decimal string, may lack the leading zero (".48")
    price: str
    #: total shares resting at this price, decimal string
    size: str


class WirePriceChangeEntry(msgspec.Struct, gc=False):
    """One entry of `price_changes[]` (the price_change form in use since 2025-09-15)."""

    #: token id whose book changed
    asset_id: str
    #: the level's price
    price: str
    #: NEW total size at the level after the change; "0" removes the level
    size: str
    #: BUY = a bid level changed, SELL = an ask level changed
    side: WireSide
    #: book hash after this change ("hash for orderbook validation"; construction undocumented)
    hash: str = ""
    #: best bid / ask of the token after the change; "" or absent when the side is empty
    best_bid: str | None = None
    best_ask: str | None = None


class WireChange(msgspec.Struct, gc=False):
    """One entry of the obsolete 2024 batch form `changes[]` (token and hash are top-level)."""

    price: str
    side: WireSide
    #: new total size at the level, as in price_changes[]
    size: str


class WireMessage(msgspec.Struct, gc=False):
    """One object of a market-channel frame, or one line of our external-signal feed.

    Field comments name the message types that carry the field (see PROTOCOL.md 10.2;
    docs/external-signals.md for `external_signal`).
    """

    #: book | price_change | tick_size_change | last_trade_price | best_bid_ask | new_market |
    #: market_resolved | external_signal (ours); absent in some recordings: inferred from fields
    event_type: str | None = None
    #: token id (all types except new_market / market_resolved, and price_changes[] form)
    asset_id: str | None = None
    #: condition id of the market (all venue types)
    market: str | None = None
    #: venue time, epoch ms; a string on the wire, a number in some recordings
    timestamp: str | int | None = None
    #: book: hash of the snapshot; single and 2024 price_change: hash after the change
    hash: str | None = None

    # -- book ----------------------------------------------------------------------------------
    #: levels in no guaranteed order (recordings show bids ascending, asks descending)
    bids: list[WireLevel] | None = None
    asks: list[WireLevel] | None = None
    #: the token's tick at snapshot time (optional extra, e.g. "0.01")
    tick_size: str | None = None
    #: minimum order size in shares (optional extra, e.g. "5")
    min_order_size: str | None = None
    #: whether the market trades on the neg-risk exchange (optional extra)
    neg_risk: bool | None = None
    #: last traded price; "" when nothing traded yet (optional extra)
    last_trade_price: str | None = None

    # -- price_change --------------------------------------------------------------------------
    #: current form: one entry per changed level, possibly for both tokens of the market
    price_changes: list[WirePriceChangeEntry] | None = None
    #: obsolete 2024 batch form: entries for the top-level asset_id, one top-level hash
    changes: list[WireChange] | None = None

    # -- single price_change (pre-2025-09) and last_trade_price ---------------------------------
    #: price_change: level price; last_trade_price: trade price
    price: str | None = None
    #: price_change: new total size at the level; last_trade_price: traded shares
    size: str | None = None
    #: price_change: the changed book side (BUY = bid); last_trade_price: the taker's side
    side: WireSide | None = None

    # -- tick_size_change ----------------------------------------------------------------------
    old_tick_size: str | None = None
    new_tick_size: str | None = None

    # -- last_trade_price ----------------------------------------------------------------------
    #: fee rate in basis points (a string on the wire; V1-era field)
    fee_rate_bps: str | int | None = None
    #: on-chain settlement transaction of the trade
    transaction_hash: str | None = None

    # -- best_bid_ask (parsed, produces no event: price_changes[] already carries best bid/ask) --
    best_bid: str | None = None
    best_ask: str | None = None
    spread: str | None = None

    # -- new_market / market_resolved (parsed, produce no event: markets load from REST) --------
    #: venue (Gamma) market id
    id: str | None = None
    question: str | None = None
    #: token ids of the market (spelled `assets_ids` by the venue)
    assets_ids: list[str] | None = None
    outcomes: list[str] | None = None
    #: market_resolved: the token that won and its outcome label
    winning_asset_id: str | None = None
    winning_outcome: str | None = None

    # -- external_signal (OUR schema, docs/external-signals.md) ---------------------------------
    #: who produced the signal ("newswire", "x-sentiment", ...)
    source: str | None = None
    #: "up": the outcome became more likely; "down": less likely
    direction: Literal["up", "down"] | None = None
    #: 0..1, the source's confidence (signal math, hence a float)
    confidence: float | None = None
    #: how long the signal stays actionable after `timestamp`
    ttl_ms: int | None = None
    #: optional fair value of the token as a decimal string ("0.62")
    fair_price: str | None = None
    #: free-form reference (article URL, post id) for the journal
    ref: str | None = None


# -- CLOB REST: markets and their metadata (GET /markets, /clob-markets, /tick-size, /neg-risk, /version)


class WireToken(msgspec.Struct, gc=False):
    """One outcome token of a market."""

    #: ERC-1155 position id, a decimal string of 75-78 digits; "" on markets without a book
    token_id: str
    #: outcome label ("Yes", "No", a candidate name, ...)
    outcome: str


class WireFeeDetails(msgspec.Struct, gc=False):
    """`fd` of GET /clob-markets/{condition_id}: fee = C * r * (p * (1 - p)) ** e (PROTOCOL.md 11.1)."""

    #: fee rate, a number such as 0.04; kept as its JSON text and read exactly by parsing.py
    r: msgspec.Raw
    #: exponent of p(1-p)
    e: int = 1


class WireMarket(msgspec.Struct, gc=False):
    """One market of a GET /markets page, or the object of GET /markets/{condition_id}.

    A page is `{"data": [market, ...], "next_cursor": "...", "limit": n, "count": n}`; "LTE=" as
    `next_cursor` marks the last page. Only `data` matters here, so the page has no Struct of its own.

    Decimal fields are JSON numbers (0.01, 15, 14.96) or decimal strings, kept as their raw JSON text
    (`msgspec.Raw`) and read exactly by parsing.py: going through float would turn 0.001 into
    0.001000000000000000020816..., and msgspec's Decimal type would also take strings such as " 12 ",
    "1_000" or "١٢" that no boundary of ours may read as numbers.
    """

    #: CTF condition id, 0x + 64 hex
    condition_id: str
    #: outcome tokens in venue order; index 0 is "Yes" on binaries
    tokens: list[WireToken]
    #: price tick, e.g. 0.01 (raw JSON number or string)
    minimum_tick_size: msgspec.Raw
    #: minimum order size in shares, e.g. 5 or 14.96 (raw JSON number or string)
    minimum_order_size: msgspec.Raw
    #: whether orders sign against the neg-risk exchange; required: "unknown" must never read as False
    neg_risk: bool
    #: shared by the markets of one neg-risk event; "" on plain binaries
    neg_risk_market_id: str | None = None
    question: str = ""
    #: fee parameters, when the payload carries them (GET /clob-markets compact form)
    fd: WireFeeDetails | None = None
    #: ISO 8601 time the market is scheduled to end ("2027-12-31T00:00:00Z")
    end_date_iso: str | None = None
    #: seconds the venue holds a marketable order before matching it (sports markets: 3)
    seconds_delay: int | None = None


class WireClobMarket(msgspec.Struct, gc=False):
    """GET /clob-markets/{condition_id}, the compact info the V2 client caches (PROTOCOL.md 8):
    `t` tokens, `mts` min tick, `nr` neg risk, `fd` fee details. Only `fd` is read here."""

    #: absent on the simulator's fee-free markets; whether the venue always sends it is UNVERIFIED
    fd: WireFeeDetails | None = None


class WireTickSize(msgspec.Struct, gc=False):
    """GET /tick-size: `{"minimum_tick_size": 0.01}` (a number)."""

    minimum_tick_size: msgspec.Raw


class WireNegRisk(msgspec.Struct, gc=False):
    """GET /neg-risk: `{"neg_risk": bool}`."""

    #: required: a missing flag must not read as False (it picks the exchange the order signs for)
    neg_risk: bool


class WireVersion(msgspec.Struct, gc=False):
    """GET /version: `{"version": 2}`, the exchange order version."""

    version: int


# -- CLOB REST: order placement, cancels, orders, trades, heartbeats (PROTOCOL.md 5, 8, 9) ---------
# and the user channel (PROTOCOL.md 10.3), whose `order` and `trade` objects have the same shapes.


class WireOrderResponse(msgspec.Struct, gc=False):
    """One answer of POST /order, or one element of POST /orders' array (PROTOCOL.md 5.3)."""

    #: accepted only with success, no errorMsg, an orderID and status live|matched|delayed
    success: bool = False
    #: the rejection text ("" or null when accepted)
    errorMsg: str | None = None
    #: an error the venue answers in a 200 body (or an element) instead: `order_version_mismatch`
    #: comes this way (PROTOCOL.md 5.5)
    error: str | None = None
    #: the venue's order id, 0x + 64 hex (believed to be the EIP-712 order hash; UNVERIFIED)
    orderID: str | None = None
    #: live | matched | delayed | unmatched (lower case here, unlike the user channel)
    status: str | None = None
    #: amounts filled at placement, "" when nothing filled
    makingAmount: str | None = None
    takingAmount: str | None = None
    #: trades created at placement (later fills of a resting order are not listed)
    tradeIDs: list[str] | None = None
    transactionsHashes: list[str] | None = None


class WireCancelResponse(msgspec.Struct, gc=False):
    """DELETE /order, /orders, /cancel-all, /cancel-market-orders (PROTOCOL.md 8)."""

    canceled: list[str] | None = None
    #: order id -> reason ("order not found", "already canceled or matched")
    not_canceled: dict[str, str] | None = None


class WireOrder(msgspec.Struct, gc=False):
    """GET /data/order/{id}, an item of GET /data/orders, or a user-channel `order` message."""

    #: venue order id
    id: str
    #: LIVE | MATCHED | DELAYED | UNMATCHED | CANCELED | INVALID, or "CANCELED_<reason>" (FOK killed)
    status: str | None = None
    market: str | None = None
    asset_id: str | None = None
    side: WireSide | None = None
    #: decimal strings; size_matched is "" on a killed FOK
    original_size: str | None = None
    size_matched: str | None = None
    price: str | None = None
    #: trade ids this order took part in
    associate_trades: list[str] | None = None
    order_type: str | None = None
    #: seconds (REST: a number; WS: a string, sometimes ms, sometimes "")
    created_at: str | int | None = None
    #: unix seconds, "0" = none
    expiration: str | int | None = None
    #: API key that owns the order
    owner: str | None = None
    # -- user channel only --
    event_type: str | None = None
    #: PLACEMENT | UPDATE | CANCELLATION
    type: str | None = None
    #: ms epoch (string)
    timestamp: str | int | None = None


class WireMakerOrder(msgspec.Struct, gc=False):
    """One resting order a trade matched against (`maker_orders[]`)."""

    order_id: str
    #: shares of this maker order filled by the trade
    matched_amount: str
    price: str
    asset_id: str | None = None
    owner: str | None = None
    #: the maker order's side; older payloads omit it
    side: WireSide | None = None
    fee_rate_bps: str | int | None = None
    outcome: str | None = None


class WireTrade(msgspec.Struct, gc=False):
    """An item of GET /data/trades, or a user-channel `trade` message."""

    #: trade id: the key that counts a fill once across MATCHED, MINED and CONFIRMED
    id: str
    #: MATCHED -> MINED -> CONFIRMED, or RETRYING -> CONFIRMED | FAILED
    status: str
    #: the taker's token, side, size and price
    asset_id: str
    side: WireSide
    size: str
    price: str
    taker_order_id: str | None = None
    market: str | None = None
    #: TAKER: our order is taker_order_id; MAKER: ours are among maker_orders
    trader_side: str | None = None
    maker_orders: list[WireMakerOrder] | None = None
    #: seconds as digits, ms, or ISO 8601 ("2024-01-01T00:00:00Z"), depending on the payload
    match_time: str | int | None = None
    matchtime: str | int | None = None
    timestamp: str | int | None = None
    last_update: str | int | None = None
    owner: str | None = None
    fee_rate_bps: str | int | None = None
    transaction_hash: str | None = None
    #: a number in most payloads, the string "0" in a 2024 recording
    bucket_index: int | str | None = None
    event_type: str | None = None
    type: str | None = None


class WireOrdersPage(msgspec.Struct, gc=False):
    """GET /data/orders: `next_cursor` "LTE=" marks the last page."""

    data: list[WireOrder]
    next_cursor: str | None = None


class WireTradesPage(msgspec.Struct, gc=False):
    """GET /data/trades."""

    data: list[WireTrade]
    next_cursor: str | None = None


class WireHeartbeat(msgspec.Struct, gc=False):
    """POST /v1/heartbeats answer: send this id with the next heartbeat (the chain)."""

    heartbeat_id: str = ""


class WireCursorPage(msgspec.Struct, gc=False):
    """Just the cursor of any paginated answer (the data is decoded by its own reader)."""

    next_cursor: str | None = None
