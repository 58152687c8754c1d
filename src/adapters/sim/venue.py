"""The simulated venue: a matching engine fed by replayed L2 data, behind the ExecutionPort.

Theory of operation
-------------------
`MatchingEngine` keeps its own book (core.book.new_book) per token, built from the same replayed events
the strategy sees, plus the resting orders placed into it (ours in a backtest; several owners' in the CLOB
simulator). It is synchronous and clock-free: every call carries the venue time at which it happens,
and results are appended to `reports`. `SimVenue` wraps it with time: orders and cancels reach the
engine after the latency model's delay (FIFO, like requests on one connection), GTD orders expire at
their deadline, and reports come back after the ack delay, in the order the engine made them.

Views. A binary market's two books mirror each other (BUY YES at p is SELL NO at 1-p). An order
takes replayed liquidity in the *view* of its token: the token's own book when a snapshot made it
trusted, else the complement's book read mirrored (a YES buy at p takes NO bids at >= 1-p), else the
token's own empty book. Inside a view everything is in that book's terms (`vprice`, the side the order
rests on), and fills are translated back so they always carry the order's own token, side and price.
Replayed liquidity comes from the arriving order's view only: the two replayed books show the same
orders twice, so reading both would double the market's depth.

One book per market. Resting orders, in contrast, all belong to one economic book, whichever of the
market's two views they rest in: a market has exactly two `_Tok`s, so an arriving order's plan walks
its view's resting orders and the complement view's read mirrored (a NO bid at q is an ask at 1-q),
merged at each level in time order. That gives the CTF exchange's three match types at the maker's
price: COMPLEMENTARY (buy vs sell of one token), MINT (BUY YES at p vs BUY NO at q, p + q >= 1: each
buyer pays its own price per share, the collateral splits into a pair and each gets its token) and
MERGE (SELL YES vs SELL NO, p + q <= 1: the pair merges and each seller gets its own price). The
ledger needs nothing special: every fill settles the order's own token, side and price. One taker
fill covers all the resting orders it meets at one level (the venue reports that as one trade whose
`maker_orders` span both outcomes), followed by each maker's fill at its own price.

Trades. Every match is also one `Trade` record (when the engine is built with `record_trades`): the
taker and the makers it met, each a `TradeSide` in its own terms (token, side, price, size, fee), so
whoever renders the trade never has to guess who traded with whom from the order of the fill
reports. Replayed (outside) flow takes part as a side without an order id: the displayed liquidity an
order takes is one replayed maker, and a replayed trade or crossing level that reaches resting orders
is one replayed taker. All fills of one trade carry its `trade_id`.

Book view. `book_view(token)` is the book an order on that token would meet, in the token's terms:
its view's replayed levels (mirrored when the view is the complement's) plus every order resting in
the market on either outcome. It is the one merged book; the CLOB simulator shows it as the venue's.

Liquidity. Replayed levels are the market's displayed size, and the real market never saw our orders:
the feed's next total at a level we took from still holds what we took. So each book keeps a *claim*
per level, the size our orders took there that the real market has not yet accounted for, and the
engine's book shows the feed's total less the claim. The rule, per level:
* a fall in the feed's total is the real market losing that size too; trades take the front of the
  queue, which is where our orders took, so the claim shrinks by as much. A rise is new orders and
  leaves the claim.
* a print (`last_trade_price`) at the level, or through it, traded the front of the real queue, so
  our claim first: it explains up to its size of the claim (through a level: all of it), and only
  the rest of its size goes on to the resting orders queued there. The explained size stays hidden
  until the fall that the print announces, which it then absorbs (one loss, not two). A print never
  returns size by itself: the feed nets trades against new orders, so until the total falls the
  displayed size may still contain the traded orders.
* a snapshot is every level's new total at once. A book that was trusted keeps its claims, each
  seeing the snapshot like a level update; one that becomes trusted takes the complement's claims
  mirrored (the same orders); and no claim keeps more than its level displays: a level the snapshot
  no longer shows holds none.
Both books of a binary market show the same orders (BUY YES at p is SELL NO at 1-p), so a take puts
the claim on the level of the view it read and on the complement book's mirror of it, and whichever
view a later order reads, the size is gone; each book's claims then follow that book's own feed.
Hence our fills at a level never exceed what the feed ever showed arriving there: its first total
plus every rise since. (hftbacktest's L2 exchanges leave the depth untouched by our takes, so a
repeated take reuses the same size; NautilusTrader's `liquidity_consumption` tracks the size taken
per level but forgets it whenever the level's size changes, as this engine once did: three FAK buys
filled 300 shares from a level of about 100.) Resting orders sit
in a per-level list in time order, each with a queue position counted in replayed size ahead of it;
the queue model moves it on depth changes and trades. A resting order fills when a trade reaches it
at (or through) its price, or when replayed liquidity appears that crosses it. Orders of the same
owner never match each other (they are passed over).

Matching delay. Some markets (sports, `seconds_delay` in the CLOB's market metadata) hold marketable
orders before matching them, on purpose; the venue answers such an order `delayed` (PROTOCOL.md 5.3).
With `match_delays` on, an order that would take liquidity on arrival in such a market is accepted,
its funds reserved, and matched only `Market.match_delay_ms` later against the book as it is then (a
FAK/FOK that finds nothing then is cancelled, not rejected: it was already accepted). A cancel that
arrives while it is held cancels it. Non-marketable and post-only orders rest at once.

Rejections carry the venue's exact error strings from `VENUE_ERRORS`, which the CLOB simulator reuses.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

import attrs

from polysnipe.adapters.sim.models import FeeModel, LatencyModel, QueueModel, QueuePosition
from polysnipe.core.book import Book, book_implementation, new_book
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    LastTrade,
    MarketEvent,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.fees import NO_FEE, TakerFee
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
from polysnipe.core.units import MICRO, ONE, ceil_div

__all__ = [
    "VENUE_ERRORS",
    "BookView",
    "Ledger",
    "MatchingEngine",
    "OpenOrder",
    "SimVenue",
    "SimVenueConfig",
    "Trade",
    "TradeSide",
    "buy_cost",
    "sell_proceeds",
]

#: Rejection code -> the venue's exact text (PROTOCOL.md 11.4). Codes follow Polymarket's SDKs where
#: they name one; the tick, min-size, duplicate and post-only-type texts come from the older docs table.
VENUE_ERRORS: Mapping[str, str] = MappingProxyType(
    {
        "invalid_tick": "order is invalid. Price breaks minimum tick size rules",
        "min_size": "order is invalid. Size lower than the minimum",
        "insufficient_balance_or_allowance": "not enough balance / allowance",
        "post_only_would_cross": "invalid post-only order: order crosses book",
        "post_only_order_type": "invalid post-only order: only GTC and GTD order types are allowed",
        "fok_not_filled": "order couldn't be fully filled. FOK orders are fully filled or killed.",
        "fak_not_filled": (
            "no orders found to match with FAK order. FAK orders are partially filled or killed "
            "if no match is found."
        ),
        "invalid_expiration": "invalid expiration",
        "duplicated": (
            "order is invalid. Duplicated. Same order has already been placed, can't be placed again"
        ),
        "invalid_token": "Invalid token id",
    }
)

#: "no time at all" for wake and due times; inputs may carry later timestamps, so loops never rely on
#: it being larger than every real time (they check for work, not for this value)
_NEVER = 1 << 62


def buy_cost(price: int, size: int) -> int:
    """USDC a buyer pays for `size` at `price`, rounded up: a wallet never pays less than it owes."""
    return ceil_div(price * size, MICRO)


def sell_proceeds(price: int, size: int) -> int:
    """USDC a seller receives, rounded down: a wallet is never credited more than it earned."""
    return price * size // MICRO


# -- balances ------------------------------------------------------------------------------------
class Ledger:
    """Per-wallet USDC and share balances, with what open orders reserve.

    Built without a balance map it only keeps score (balances may go negative) and never refuses an
    order: the common backtest that studies signals, not funding.
    """

    __slots__ = ("_reserved_shares", "_reserved_usdc", "_shares", "_usdc", "enforce")

    def __init__(
        self,
        balances: Mapping[str, int] | None = None,
        positions: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.enforce = balances is not None
        self._usdc: dict[str, int] = dict(balances or {})
        self._reserved_usdc: dict[str, int] = {}
        self._shares: dict[tuple[str, str], int] = {
            (w, t): n for w, held in (positions or {}).items() for t, n in held.items()
        }
        self._reserved_shares: dict[tuple[str, str], int] = {}

    def usdc(self, wallet: str) -> int:
        return self._usdc.get(wallet, 0)

    def shares(self, wallet: str, token_id: str) -> int:
        return self._shares.get((wallet, token_id), 0)

    def free_usdc(self, wallet: str) -> int:
        return self.usdc(wallet) - self._reserved_usdc.get(wallet, 0)

    def free_shares(self, wallet: str, token_id: str) -> int:
        key = (wallet, token_id)
        return self._shares.get(key, 0) - self._reserved_shares.get(key, 0)

    def positions(self, wallet: str) -> dict[str, int]:
        return {t: n for (w, t), n in self._shares.items() if w == wallet and n}

    def can_place(self, wallet: str, token_id: str, side: Side, price: int, size: int) -> bool:
        if not self.enforce:
            return True
        if side is Side.BUY:
            return buy_cost(price, size) <= self.free_usdc(wallet)
        return size <= self.free_shares(wallet, token_id)

    def reserve(self, wallet: str, token_id: str, side: Side, amount: int) -> None:
        """Add `amount` (USDC for BUY, shares for SELL; negative releases) to what open orders hold."""
        if side is Side.BUY:
            self._reserved_usdc[wallet] = self._reserved_usdc.get(wallet, 0) + amount
        else:
            key = (wallet, token_id)
            self._reserved_shares[key] = self._reserved_shares.get(key, 0) + amount

    def settle(
        self, wallet: str, token_id: str, side: Side, price: int, size: int, fee: TakerFee, rebate: int = 0
    ) -> None:
        key = (wallet, token_id)
        self._usdc[wallet] = self._usdc.get(wallet, 0) + rebate
        if side is Side.BUY:
            self._usdc[wallet] = self._usdc.get(wallet, 0) - buy_cost(price, size) - fee.fee_usdc
            self._shares[key] = self._shares.get(key, 0) + size - fee.fee_shares
        else:
            self._usdc[wallet] = self._usdc.get(wallet, 0) + sell_proceeds(price, size) - fee.fee_usdc
            self._shares[key] = self._shares.get(key, 0) - size - fee.fee_shares

    def merge(self, wallet: str, tokens: tuple[str, str], size: int) -> int:
        """Merge up to `size` complete sets (free shares only) into USDC; returns the sets merged."""
        merged = min(size, self.free_shares(wallet, tokens[0]), self.free_shares(wallet, tokens[1]))
        if not self.enforce:
            merged = size
        if merged <= 0:
            return 0
        for token in tokens:
            self._shares[wallet, token] = self._shares.get((wallet, token), 0) - merged
        self._usdc[wallet] = self._usdc.get(wallet, 0) + merged
        return merged

    def convert(
        self, wallet: str, no_tokens: Sequence[str], yes_tokens: Sequence[str], size: int, fee_bips: int
    ) -> tuple[int, int]:
        """Convert `size` NO shares of each of `no_tokens` (the caller checked they are held free) into
        collateral and YES of each of `yes_tokens`, as NegRiskAdapter.convertPositions does: its fee
        is taken from every unit out, collateral and YES alike. Returns (collateral, YES per token)."""
        out = size - size * fee_bips // 10_000
        for token in no_tokens:
            self._shares[wallet, token] = self._shares.get((wallet, token), 0) - size
        for token in yes_tokens:
            self._shares[wallet, token] = self._shares.get((wallet, token), 0) + out
        collateral = (len(no_tokens) - 1) * out
        self._usdc[wallet] = self._usdc.get(wallet, 0) + collateral
        return collateral, out

    def redeem(self, wallet: str, tokens: tuple[str, str], winning_token: str) -> tuple[int, int]:
        """Redeem every share of a resolved market: (winning shares, USDC paid)."""
        won = max(self._shares.get((wallet, winning_token), 0), 0)
        for token in tokens:
            self._shares.pop((wallet, token), None)
        self._usdc[wallet] = self._usdc.get(wallet, 0) + won
        return won, won


# -- engine --------------------------------------------------------------------------------------
class _Claim:
    """Replayed size at one level of one book that our orders took and the feed still displays.

    The engine's book shows `shown - hidden` at the level (module doc, Liquidity).
    """

    __slots__ = ("held", "printed", "shown")

    def __init__(self, shown: int) -> None:
        #: the feed's last total at the level
        self.shown = shown
        #: taken by our orders; nothing the real market did has accounted for it yet
        self.held = 0
        #: taken by our orders and since traded by the real market (a print reached it); still in
        #: `shown` until the feed's total falls, and that fall is this, not a second loss
        self.printed = 0

    @property
    def hidden(self) -> int:
        return self.held + self.printed

    def add(self, size: int) -> None:
        # never more than the level displays: the complement's book may show less than the view read
        self.held = min(self.held + size, self.shown - self.printed)

    def see(self, total: int) -> None:
        """The feed's new total at the level: a fall is the real market losing our claimed size."""
        fall = self.shown - total
        if fall > 0:
            known = min(fall, self.printed)
            self.printed -= known
            self.held = max(self.held - (fall - known), 0)
        self.shown = total
        # what the level no longer displays cannot be claimed (after a snapshot, or a mirror that
        # disagrees); printed size goes first, being already gone from the real book
        over = self.held + self.printed - total
        if over > 0:
            cut = min(over, self.printed)
            self.printed -= cut
            self.held -= over - cut

    def explain(self, size: int) -> int:
        """A print of `size` at the level traded the front of the real queue, our claim first."""
        known = min(size, self.held)
        self.held -= known
        self.printed += known
        return known


class _Tok:
    """One token's book plus the resting orders whose view is this book."""

    __slots__ = ("asks", "bids", "book", "claims", "complement", "market", "queue", "resting")

    def __init__(self, token_id: str, market: Market, queue: QueueModel) -> None:
        self.market = market
        #: the engine's queue model; held here for the compiled path, which moves the queues of the
        #: models it knows itself (_venue.c, resting orders)
        self.queue = queue
        self.complement = market.complement(token_id)
        #: the replayed book less what our orders claim (module doc, Liquidity)
        self.book = new_book(token_id, market.tick_size)
        # view price -> resting orders in time order, by the side of this book they rest on
        self.bids: dict[int, list[_Order]] = {}
        self.asks: dict[int, list[_Order]] = {}
        self.resting = 0
        #: per side (indexed by Side: BUY = bids), price -> the claim there; only while trusted
        self.claims: tuple[dict[int, _Claim], dict[int, _Claim]] = ({}, {})


def _apply_plain(toks: Mapping[str, _Tok], changes: Sequence[BookDelta], ts_ms: int, start: int) -> int:
    """Apply `changes[start:]` to the venue's books while each is only upkeep (a known token with no
    resting order: a book update, and the claim's at that price if there is one); returns the index of
    the first delta that needs `MatchingEngine.apply`'s full handling, or len(changes). The reference
    for _venue.apply_plain."""
    for i in range(max(start, 0), len(changes)):
        d = changes[i]
        tok = toks.get(d.token_id)
        if tok is None or tok.resting:
            return i
        _update_level(tok, d, ts_ms)
    return len(changes)


def _update_level(tok: _Tok, d: BookDelta, ts_ms: int) -> tuple[int, int]:
    """One level change of `tok`'s book, less what a claim there still hides (module doc, Liquidity):
    (the change in the book's size, the size it shows now)."""
    claims = tok.claims[d.side]
    claim = claims.get(d.price) if claims else None
    if claim is None:
        return tok.book.apply_level(d.side, d.price, d.size, ts_ms), d.size
    claim.see(d.size)
    shows = d.size - claim.hidden
    if not claim.hidden:
        del claims[d.price]
    return tok.book.apply_level(d.side, d.price, shows, ts_ms), shows


_PlainLoop = Callable[[Mapping[str, _Tok], Sequence[BookDelta], int, int], int]


class _EventHandler(Protocol):
    """A market-event handler that may be told where a price change's unapplied deltas begin."""

    def __call__(self, event: MarketEvent, start: int = 0, /) -> None: ...


_SinkMaker = Callable[[object, object, Mapping[str, _Tok], _EventHandler], Callable[[MarketEvent], None]]
_compiled_plain: _PlainLoop | None
_compiled_sink: _SinkMaker | None
#: _venue.match: _plan_levels' walk, or None where it leaves the case to it
_MatchFn = Callable[..., "list[_Step] | None"]
_compiled_match: _MatchFn | None
try:
    from polysnipe.adapters.sim._venue import apply_plain as _compiled_plain
    from polysnipe.adapters.sim._venue import match as _compiled_match
    from polysnipe.adapters.sim._venue import sink as _compiled_sink
except ImportError:  # not built: the Python loop serves
    _compiled_plain = _compiled_sink = _compiled_match = None


class _Order:
    __slots__ = (
        "filled",
        "leaves",
        "live",
        "market",
        "mirror",
        "owner",
        "pos",
        "req",
        "reserved",
        "rest_side",
        "seq",
        "view",
        "vprice",
    )

    def __init__(self, req: OrderRequest, market: Market, view: _Tok, mirror: bool, seq: int) -> None:
        self.req = req
        self.owner = req.wallet
        self.market = market
        self.view = view
        self.mirror = mirror
        self.rest_side = req.side.opposite if mirror else req.side
        self.vprice = ONE - req.price if mirror else req.price
        self.seq = seq
        self.leaves = req.size
        self.filled = 0
        self.reserved = 0
        self.live = False  # resting on the book (as opposed to being matched on arrival)
        self.pos = QueuePosition(0)


#: one step of a match: (view price, size, the resting order hit, or None for replayed liquidity)
_Step = tuple[int, int, _Order | None]

_NO_LEVELS: dict[int, list[_Order]] = {}  # shared and never written: "no resting orders there"


def _by_seq(o: _Order) -> int:
    return o.seq


def _replayed(token_id: str, side: Side, price: int, size: int) -> TradeSide:
    """Replayed (outside) flow as one side of a trade."""
    return TradeSide(None, "", token_id, side, price, size)


def _has_other_owner(orders: list[_Order], owner: str) -> bool:
    return any(r.owner != owner for r in orders)


def _plan_levels(
    book: Book,
    side: Side,
    limit: int,
    qty: int,
    owner: str,
    idx: Mapping[int, list[_Order]],
    other: Mapping[int, list[_Order]],
    replayed_only: bool,
) -> list[_Step]:
    """MatchingEngine._plan's walk of `side` of one view's book best-first, down to `limit`, for `qty`.

    `idx` holds the view's resting orders on that side by price, `other` the complement view's that sit
    on it, keyed by their own price (the complement's asks at q are this view's bids at 1 - q). Within a
    level the queue is replayed size and resting orders interleaved by each order's `ahead`, the orders
    of both views in time order; with `replayed_only` the orders are met by nobody (they only hold
    their places in the queue). The reference for _venue.match.
    """
    prices = book.level_prices(side)
    if not replayed_only and (idx or other):
        # a book holds positive sizes only: size 0 means no level
        size_at = book.size_at
        extra = {px for px, rs in idx.items() if not size_at(side, px) and _has_other_owner(rs, owner)}
        extra.update(
            ONE - px
            for px, rs in other.items()
            if not size_at(side, ONE - px) and _has_other_owner(rs, owner)
        )
        if extra:
            prices = sorted({*prices, *extra}, reverse=side is Side.BUY)
    plan: list[_Step] = []
    remaining = qty
    for px in prices:
        if (px < limit) if side is Side.BUY else (px > limit):
            break
        avail = book.size_at(side, px)
        queue: Sequence[_Order] = idx.get(px, ())
        if other:
            mirrored = other.get(ONE - px)
            if mirrored:
                queue = sorted((*queue, *mirrored), key=_by_seq) if queue else mirrored
        used = 0
        for r in queue:
            seg = min(remaining, r.pos.ahead - used, avail - used)
            if seg > 0:
                plan.append((px, seg, None))
                used += seg
                remaining -= seg
            if remaining and not replayed_only and r.owner != owner:
                size = min(remaining, r.leaves)
                plan.append((px, size, r))
                remaining -= size
            if not remaining:
                break
        seg = min(remaining, avail - used)
        if seg > 0:
            plan.append((px, seg, None))
            remaining -= seg
        if not remaining:
            break
    return plan


@attrs.frozen(slots=True)
class OpenOrder:
    """A resting order as the venue sees it (for inspection and tests)."""

    order: OrderRequest
    filled: int
    remaining: int
    queue_ahead: int
    #: resting in the complement's book, mirrored, because its own token had no snapshot
    mirrored: bool


@attrs.frozen(slots=True)
class TradeSide:
    """One side of a trade in its own terms: what that order's fill report says.

    `order_id` is None for replayed (outside) flow: displayed liquidity an order took, or the replayed
    trade or crossing level that reached resting orders. Replayed sides have no wallet and pay no fee.
    """

    order_id: str | None
    wallet: str
    token_id: str
    side: Side
    price: int
    size: int
    fee_usdc: int = 0
    fee_shares: int = 0


@attrs.frozen(slots=True)
class Trade:
    """One match: the taker and the makers it met (module doc, Trades).

    The makers' sizes add up to the taker's. A maker on the taker's token is a complementary match, one
    on the other token a MINT (both buy) or a MERGE (both sell); each side keeps its own price.
    """

    #: also the `trade_id` of every OrderFilled the match produced
    trade_id: str
    ts_ms: int
    #: condition id
    market: str
    taker: TradeSide
    makers: tuple[TradeSide, ...]

    @property
    def token_id(self) -> str:
        """The token the trade printed on: the taker's."""
        return self.taker.token_id


@attrs.frozen(slots=True)
class BookView:
    """The book an order on `token_id` meets, in that token's terms (module doc, Book view)."""

    token_id: str
    tick_size: int
    #: price -> size
    bids: Mapping[int, int]
    asks: Mapping[int, int]

    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None


class MatchingEngine:
    """Price-time matching of orders against replayed L2 liquidity and each other (see module doc)."""

    __slots__ = (
        "_apply_plain",
        "_compiled",
        "_expiries",
        "_fees",
        "_held",
        "_ledger",
        "_match_delays",
        "_min_gtd_lead_ms",
        "_orders",
        "_queue",
        "_record_trades",
        "_registry",
        "_seen",
        "_seq",
        "_toks",
        "_trade_prefix",
        "_trade_seq",
        "reports",
        "trades",
    )

    def __init__(
        self,
        registry: MarketRegistry,
        queue: QueueModel,
        fees: FeeModel,
        ledger: Ledger,
        *,
        trade_id_prefix: str = "sim",
        min_gtd_lead_ms: int = 0,
        record_trades: bool = False,
        match_delays: bool = False,
    ) -> None:
        self._registry = registry
        self._match_delays = match_delays
        #: order id -> the order held by its market's matching delay (accepted, funds reserved)
        self._held: dict[str, _Order] = {}
        self._queue = queue
        self._fees = fees
        self._ledger = ledger
        self._trade_prefix = trade_id_prefix
        self._min_gtd_lead_ms = min_gtd_lead_ms
        self._toks: dict[str, _Tok] = {}
        # the compiled loop along with the compiled books (POLYSNIPE_PURE_PYTHON=1 turns both off)
        self._compiled = _compiled_plain is not None and book_implementation() == "compiled"
        self._apply_plain: _PlainLoop = _compiled_plain if self._compiled else _apply_plain  # type: ignore[assignment]
        self._orders: dict[str, _Order] = {}  # resting orders only, in placement order
        self._seen: set[str] = set()
        self._expiries: list[tuple[int, int, str]] = []  # heap of (expiration_ms, seq, order_id)
        self._seq = 0
        self._trade_seq = 0
        #: reports produced since the last drain, in the order they happened
        self.reports: list[ExecutionReport] = []
        #: with `record_trades`: the matches since the last `drain_trades`, in the order they happened
        #: (a backtest that only needs the fill reports leaves it off and pays nothing for it)
        self._record_trades = record_trades
        self.trades: list[Trade] = []

    # -- inspection ----------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def drain(self) -> list[ExecutionReport]:
        out, self.reports = self.reports, []
        return out

    def drain_trades(self) -> list[Trade]:
        out, self.trades = self.trades, []
        return out

    def book(self, token_id: str) -> Book | None:
        tok = self._toks.get(token_id)
        return tok.book if tok is not None else None

    def book_view(self, token_id: str) -> BookView | None:
        """The merged book an order on `token_id` would meet (module doc); None for an unknown token."""
        tok = self._tok(token_id)
        if tok is None:
            return None
        view, mirror = self._view(tok)
        replayed = view.book
        if not replayed.trusted:
            bids: dict[int, int] = {}
            asks: dict[int, int] = {}
        elif mirror:
            bids = {ONE - p: n for p, n in replayed.levels(Side.SELL)}
            asks = {ONE - p: n for p, n in replayed.levels(Side.BUY)}
        else:
            bids, asks = dict(replayed.levels(Side.BUY)), dict(replayed.levels(Side.SELL))
        for t in (tok, self._tok(tok.complement)):
            if t is None or not t.resting:
                continue
            for levels in (t.bids, t.asks):
                for orders in levels.values():
                    for o in orders:
                        req = o.req
                        own = req.token_id == token_id
                        side = req.side if own else req.side.opposite
                        price = req.price if own else ONE - req.price
                        dest = bids if side is Side.BUY else asks
                        dest[price] = dest.get(price, 0) + o.leaves
        return BookView(token_id, tok.book.tick_size, bids, asks)

    def open_orders(self) -> list[OpenOrder]:
        return [OpenOrder(o.req, o.filled, o.leaves, o.pos.ahead, o.mirror) for o in self._orders.values()]

    def next_expiry_ms(self) -> int | None:
        """When the earliest GTD deadline or held order's release falls (possibly of an order already
        gone); None if none."""
        return self._expiries[0][0] if self._expiries else None

    # -- market data ---------------------------------------------------------------------------
    def sink(self, venue: object, handler: _EventHandler) -> Callable[[MarketEvent], None]:
        """`handler` as a MarketEventSink's on_market_event, for `venue` (a SimVenue over this engine).

        Compiled (along with the book), the events that are only book upkeep at this engine (_venue.c,
        `sink`) are applied in C and never reach `handler`, which gets the rest, and a price change
        it gets with the index of its first delta not yet applied; else `handler` itself, with start 0.
        """
        if _compiled_sink is None or not self._compiled:
            return handler
        return _compiled_sink(venue, self, self._toks, handler)

    def apply(self, event: MarketEvent, start: int = 0) -> None:
        """Update the books from one replayed event and fill resting orders it reaches; a price
        change from its delta `start` on (those before it are applied already)."""
        if type(event) is PriceChange:
            ts = event.ts_ms
            toks = self._toks
            changes = event.changes
            n = len(changes)
            # in order: the plain deltas (no order there: nearly all) a run at a time, in one call, and
            # each other one through _apply_delta
            i = self._apply_plain(toks, changes, ts, start)
            while i < n:
                self._apply_delta(changes[i], ts)
                i = self._apply_plain(toks, changes, ts, i + 1)
        elif type(event) is BookSnapshot:
            self._apply_snapshot(event)
        elif type(event) is LastTrade:
            self._apply_trade(event)
        elif type(event) is TickSizeChange:
            tok = self._tok(event.token_id)
            if tok is not None:
                tok.book.set_tick_size(event.new_tick)
                comp = self._tok(tok.complement)
                if comp is not None:
                    # the tick is a market property; the feed may announce it on one token only
                    comp.book.set_tick_size(event.new_tick)

    def _apply_delta(self, d: BookDelta, ts: int) -> None:
        """One level change of a token that is new here or has resting orders (or that the compiled
        loop leaves to Python: a claim whose values it does not take)."""
        tok = self._tok(d.token_id)
        if tok is None:
            return
        delta, shows = _update_level(tok, d, ts)
        if delta and tok.resting:
            self._level_changed(tok, d.side, d.price, shows - delta, shows, ts)

    def _apply_snapshot(self, snap: BookSnapshot) -> None:
        tok = self._tok(snap.token_id)
        if tok is None:
            return
        book = tok.book
        was_trusted = book.trusted
        if not tok.resting:
            book.apply_snapshot(snap)
            self._reclaim(tok, was_trusted, snap.ts_ms)
            return
        size_at = book.size_at
        prev_bids = {px: size_at(Side.BUY, px) for px in tok.bids}
        prev_asks = {px: size_at(Side.SELL, px) for px in tok.asks}
        book.apply_snapshot(snap)
        self._reclaim(tok, was_trusted, snap.ts_ms)
        for side, idx, prev in ((Side.BUY, tok.bids, prev_bids), (Side.SELL, tok.asks, prev_asks)):
            for px, orders in idx.items():
                new = size_at(side, px)
                if new != prev[px]:
                    for o in orders:
                        self._queue.on_depth_change(o.pos, prev[px], new)
        self._cross_resting(tok, Side.BUY, snap.ts_ms)
        self._cross_resting(tok, Side.SELL, snap.ts_ms)

    def _reclaim(self, tok: _Tok, was_trusted: bool, ts: int) -> None:
        """Carry the claims through a snapshot that just replaced `tok`'s book (module doc, Liquidity).

        A book that was trusted keeps its own claims, each seeing the snapshot's total like a level
        update; one that becomes trusted now takes the complement's claims, mirrored: the same orders.
        Either way a claim keeps no more than its level displays, and a level absent is none.
        """
        book = tok.book
        if not was_trusted:
            comp = self._toks.get(tok.complement)
            if comp is not None and comp.book.trusted:
                for side in (Side.BUY, Side.SELL):
                    mine = tok.claims[side.opposite]
                    for px, theirs in comp.claims[side].items():
                        c = mine[ONE - px] = _Claim(book.size_at(side.opposite, ONE - px))
                        c.held, c.printed = theirs.held, theirs.printed
        for side in (Side.BUY, Side.SELL):
            claims = tok.claims[side]
            for px, c in list(claims.items()):
                c.see(book.size_at(side, px))
                if not c.hidden:
                    del claims[px]
                book.apply_level(side, px, c.shown - c.hidden, ts)

    def _explain(self, tok: _Tok | None, side: Side, price: int, size: int) -> int:
        """A print of `size` at `price` hit `side` of `tok`'s book: it explains the claims it reached.

        At `price` it traded the front of the real queue, which is where our orders took; through a
        better level it traded all of it. Returns how much of `size` our claim at `price` absorbed.
        """
        if tok is None:
            return 0
        claims = tok.claims[side]
        if not claims:
            return 0
        at = 0
        for px, c in claims.items():
            if px == price:
                at = c.explain(size)
            elif (px < price) if side is Side.SELL else (px > price):
                c.explain(c.held)
        return at

    def _level_changed(self, tok: _Tok, side: Side, price: int, prev: int, new: int, ts: int) -> None:
        orders = (tok.bids if side is Side.BUY else tok.asks).get(price)
        if orders:
            for o in orders:
                self._queue.on_depth_change(o.pos, prev, new)
        if new > prev and (tok.asks if side is Side.BUY else tok.bids):
            self._cross_resting(tok, side.opposite, ts)

    def _cross_resting(self, view: _Tok, rest_side: Side, ts: int) -> None:
        """Fill resting orders that replayed liquidity now crosses: that order would have hit ours."""
        idx = view.bids if rest_side is Side.BUY else view.asks
        if not idx:
            return
        if rest_side is Side.BUY:
            best = view.book.best_ask()
            if best is None:
                return
            crossed = sorted((px for px in idx if px >= best), reverse=True)
        else:
            best = view.book.best_bid()
            if best is None:
                return
            crossed = sorted(px for px in idx if px <= best)
        take_side = rest_side.opposite
        for px in crossed:
            for o in list(idx.get(px, ())):
                if not o.live:
                    continue
                plan = self._plan(view, take_side, px, o.leaves, o.owner, replayed_only=True)
                if plan:
                    self._consume(view, take_side, plan, ts)
                    size = sum(step[1] for step in plan)
                    trade_id = self._next_trade_id()
                    maker = self._fill(o, o.req.price, size, Liquidity.MAKER, ts, trade_id)
                    if self._record_trades:
                        # the replayed liquidity takes the resting order, at the order's level
                        taker = _replayed(view.book.token_id, take_side, px, size)
                        self._record(trade_id, ts, o.market, taker, [self._side(o, maker)])

    def _apply_trade(self, trade: LastTrade) -> None:
        tok = self._tok(trade.token_id)
        if tok is None:
            return
        # the print reached our claims in both books first: they show the same orders
        absorbed = self._explain(tok, trade.side.opposite, trade.price, trade.size)
        mirrored = self._explain(self._toks.get(tok.complement), trade.side, ONE - trade.price, trade.size)
        view, mirror = self._view(tok)
        if not view.resting:
            return
        px = ONE - trade.price if mirror else trade.price
        rest_side = trade.side if mirror else trade.side.opposite  # the side the taker hit
        idx = view.bids if rest_side is Side.BUY else view.asks
        if rest_side is Side.BUY:
            hit = sorted((p for p in idx if p >= px), reverse=True)
        else:
            hit = sorted(p for p in idx if p <= px)
        # what the real taker traded of the size we had already taken does not reach the queue
        rest = trade.size - (mirrored if mirror else absorbed)
        budget = rest
        trade_id = ""
        makers: list[TradeSide] = []
        for p in hit:
            for o in list(idx[p]):
                if p == px:
                    reached = self._queue.on_trade(o.pos, rest)
                else:
                    # the taker traded through our price, so everything ahead of us is gone
                    o.pos.ahead = 0
                    reached = rest
                size = min(o.leaves, reached, budget)
                if size > 0:
                    budget -= size
                    # the replayed taker met every order it reached: one trade, several makers
                    trade_id = trade_id or self._next_trade_id()
                    fill = self._fill(o, o.req.price, size, Liquidity.MAKER, trade.ts_ms, trade_id)
                    if self._record_trades:
                        makers.append(self._side(o, fill))
        if makers:
            taker = _replayed(trade.token_id, trade.side, trade.price, trade.size - budget)
            self._record(trade_id, trade.ts_ms, tok.market, taker, makers)

    # -- orders --------------------------------------------------------------------------------
    def place(self, req: OrderRequest, now_ms: int) -> None:
        """An order arrives at the venue at `now_ms`: validate, match, then rest, kill or cancel the rest."""
        if req.order_id in self._seen:
            self._reject(req, "duplicated", now_ms)
            return
        self._seen.add(req.order_id)
        tok = self._tok(req.token_id)
        if tok is None:
            self._reject(req, "invalid_token", now_ms)
            return
        reason = self._validate(req, tok, now_ms)
        if reason:
            self._reject(req, reason, now_ms)
            return
        view, mirror = self._view(tok)
        self._seq += 1
        o = _Order(req, tok.market, view, mirror, self._seq)
        take_side = o.rest_side.opposite
        delay = tok.market.match_delay_ms if self._match_delays else 0
        if delay and not req.post_only and self._plan(view, take_side, o.vprice, 1, o.owner):
            self.reports.append(OrderAccepted(req.order_id, now_ms, req.order_id))
            self._hold(o, now_ms + delay)
            return
        if req.post_only:
            if self._plan(view, take_side, o.vprice, 1, o.owner):
                self._reject(req, "post_only_would_cross", now_ms)
                return
            plan: list[_Step] = []
        else:
            plan = self._plan(view, take_side, o.vprice, req.size, o.owner)
            if req.order_type is OrderType.FOK and sum(step[1] for step in plan) < req.size:
                self._reject(req, "fok_not_filled", now_ms)
                return
            if req.order_type is OrderType.FAK and not plan:
                self._reject(req, "fak_not_filled", now_ms)
                return
        self.reports.append(OrderAccepted(req.order_id, now_ms, req.order_id))
        if plan:
            self._take(o, plan, now_ms)
        self._rest_or_end(o, now_ms)

    def _hold(self, o: _Order, due_ms: int) -> None:
        """Keep an accepted order back until its market's matching delay has passed (module doc)."""
        req = o.req
        o.reserved = buy_cost(req.price, req.size) if req.side is Side.BUY else req.size
        self._ledger.reserve(req.wallet, req.token_id, req.side, o.reserved)
        self._held[req.order_id] = o
        # one heap of deadlines for expiries and releases: an order id is in at most one of the two
        heapq.heappush(self._expiries, (due_ms, o.seq, req.order_id))

    def _release_reservation(self, o: _Order) -> None:
        self._ledger.reserve(o.req.wallet, o.req.token_id, o.req.side, -o.reserved)
        o.reserved = 0

    def _match(self, o: _Order, now_ms: int) -> None:
        """A held order meets the book as it is at the end of its delay; it was accepted already, so
        what it cannot do ends as a cancel, never a rejection. The view is read again: the token's own
        book may have become trusted meanwhile."""
        req = o.req
        view, mirror = self._view(self._toks[req.token_id])
        o = _Order(req, o.market, view, mirror, o.seq)
        plan = self._plan(view, o.rest_side.opposite, o.vprice, req.size, o.owner)
        if req.order_type is OrderType.FOK and sum(step[1] for step in plan) < req.size:
            self.reports.append(OrderCancelled(req.order_id, now_ms, "fok_not_filled"))
            return
        if plan:
            self._take(o, plan, now_ms)
        self._rest_or_end(o, now_ms)

    def _rest_or_end(self, o: _Order, now_ms: int) -> None:
        if not o.leaves:
            return
        if o.req.order_type.is_immediate:
            self.reports.append(OrderCancelled(o.req.order_id, now_ms, "fak_remainder"))
            return
        self._rest(o)

    def _validate(self, req: OrderRequest, tok: _Tok, now_ms: int) -> str:
        if req.post_only and req.order_type.is_immediate:
            return "post_only_order_type"
        tick = tok.book.tick_size
        if req.price % tick or not tick <= req.price <= ONE - tick:
            return "invalid_tick"
        if req.size <= 0 or req.size < tok.market.min_order_size:
            return "min_size"
        if req.order_type is OrderType.GTD and req.expiration_ms <= now_ms + self._min_gtd_lead_ms:
            return "invalid_expiration"
        if not self._ledger.can_place(req.wallet, req.token_id, req.side, req.price, req.size):
            return "insufficient_balance_or_allowance"
        return ""

    def cancel(self, order_id: str, now_ms: int) -> None:
        """Cancel a resting or held order; unknown or finished orders are a no-op, like a late cancel."""
        o = self._orders.get(order_id)
        if o is not None:
            self._finish(o)
            self.reports.append(OrderCancelled(order_id, now_ms, "cancelled"))
            return
        held = self._held.pop(order_id, None)
        if held is not None:
            self._release_reservation(held)
            self.reports.append(OrderCancelled(order_id, now_ms, "cancelled"))

    def expire_until(self, now_ms: int) -> None:
        """Expire every GTD order whose deadline is at or before `now_ms`, and match every held order
        whose delay has passed, in time order (an expiry first on a tie)."""
        heap = self._expiries
        while heap and heap[0][0] <= now_ms:
            due, seq, order_id = heapq.heappop(heap)
            o = self._orders.get(order_id)
            if o is not None and o.seq == seq:
                self._finish(o)
                self.reports.append(OrderExpired(order_id, due))
                continue
            held = self._held.get(order_id)
            if held is not None and held.seq == seq:
                del self._held[order_id]
                self._release_reservation(held)
                self._match(held, due)

    # -- matching internals --------------------------------------------------------------------
    def _tok(self, token_id: str) -> _Tok | None:
        tok = self._toks.get(token_id)
        if tok is None:
            market = self._registry.get_by_token(token_id)
            if market is None:
                return None
            tok = self._toks[token_id] = _Tok(token_id, market, self._queue)
        return tok

    def _view(self, tok: _Tok) -> tuple[_Tok, bool]:
        if tok.book.trusted:
            return tok, False
        comp = self._tok(tok.complement)
        if comp is not None and comp.book.trusted:
            return comp, True
        return tok, False

    def _plan(
        self, view: _Tok, side: Side, limit: int, qty: int, owner: str, *, replayed_only: bool = False
    ) -> list[_Step]:
        """What taking up to `qty` from `side` of `view` at prices no worse than `limit` would hit
        (`_plan_levels`); compiled along with the book (_venue.c, matching) where it takes the case.

        Pure: nothing changes until `_take`/`_consume` apply the plan, so FOK and post-only can look
        first. Resting orders of both views take part (module doc), those of `owner` are passed over.
        """
        idx = view.bids if side is Side.BUY else view.asks
        other = _NO_LEVELS if replayed_only else self._mirrored_levels(view, side)
        if self._compiled and _compiled_match is not None:
            plan = _compiled_match(view.book, side, limit, qty, owner, idx, other, replayed_only)
            if plan is not None:
                return plan
        return _plan_levels(view.book, side, limit, qty, owner, idx, other, replayed_only)

    def _mirrored_levels(self, view: _Tok, side: Side) -> dict[int, list[_Order]]:
        """The complement view's resting orders that sit on `side` of `view`, keyed by their own vprice.

        The complement's asks at q are this view's bids at 1 - q, and its bids this view's asks.
        """
        comp = self._toks.get(view.complement)
        if comp is None or not comp.resting:
            return _NO_LEVELS
        return comp.asks if side is Side.BUY else comp.bids

    def _consume(self, view: _Tok, side: Side, plan: list[_Step], ts: int) -> None:
        """Claim the replayed liquidity a plan takes; resting orders behind it move up by as much.

        The claim goes on the view's level and on the complement book's mirror of it (module doc,
        Liquidity). Orders resting mirrored in the complement view move up too: the replayed level
        they queue behind there shows the same orders as the one taken here.
        """
        used: dict[int, int] = {}
        for px, size, maker in plan:
            if maker is None:
                used[px] = used.get(px, 0) + size
        if not used:
            return
        idx = view.bids if side is Side.BUY else view.asks
        other = self._mirrored_levels(view, side)
        comp = self._toks.get(view.complement)
        if comp is not None and not comp.book.trusted:
            comp = None
        for px, size in used.items():
            self._claim(view, side, px, size, ts)
            if comp is not None:
                self._claim(comp, side.opposite, ONE - px, size, ts)
            for r in idx.get(px, ()):
                r.pos.ahead = max(r.pos.ahead - size, 0)
            for r in other.get(ONE - px, ()):
                r.pos.ahead = max(r.pos.ahead - size, 0)

    @staticmethod
    def _claim(tok: _Tok, side: Side, px: int, size: int, ts: int) -> None:
        claims = tok.claims[side]
        c = claims.get(px)
        if c is None:
            shown = tok.book.size_at(side, px)  # no claim yet: the book shows the feed's total
            if not shown:
                return  # a complement that disagrees shows nothing here to claim
            c = claims[px] = _Claim(shown)
        c.add(size)
        tok.book.apply_level(side, px, c.shown - c.hidden, ts)

    def _take(self, o: _Order, plan: list[_Step], now_ms: int) -> None:
        """Execute an arriving order's plan, level by level.

        At each level the replayed size it took is one taker fill, and the resting orders it met are
        another taker fill followed by each maker's fill at the maker's own price (module doc).
        """
        self._consume(o.view, o.rest_side.opposite, plan, now_ms)
        i, n = 0, len(plan)
        while i < n:
            px = plan[i][0]
            replayed = matched = 0
            j = i
            while j < n and plan[j][0] == px:
                if plan[j][2] is None:
                    replayed += plan[j][1]
                else:
                    matched += plan[j][1]
                j += 1
            price = ONE - px if o.mirror else px
            take_side = o.rest_side.opposite
            if replayed:
                trade_id = self._next_trade_id()
                fill = self._fill(o, price, replayed, Liquidity.TAKER, now_ms, trade_id)
                if self._record_trades:
                    # the displayed liquidity it took: one replayed maker, in the view's terms
                    shown = _replayed(o.view.book.token_id, take_side, px, replayed)
                    self._record(trade_id, now_ms, o.market, self._side(o, fill), [shown])
            if matched:
                trade_id = self._next_trade_id()
                fill = self._fill(o, price, matched, Liquidity.TAKER, now_ms, trade_id)
                makers: list[TradeSide] = []
                for _, size, r in plan[i:j]:
                    if r is not None:
                        made = self._fill(r, r.req.price, size, Liquidity.MAKER, now_ms, trade_id)
                        if self._record_trades:
                            makers.append(self._side(r, made))
                if self._record_trades:
                    self._record(trade_id, now_ms, o.market, self._side(o, fill), makers)
            i = j

    def _next_trade_id(self) -> str:
        self._trade_seq += 1
        return f"{self._trade_prefix}-{self._trade_seq}"

    def _fill(
        self, o: _Order, price: int, size: int, liquidity: Liquidity, ts: int, trade_id: str
    ) -> OrderFilled:
        req = o.req
        if liquidity is Liquidity.TAKER:
            fee, rebate = self._fees.taker_fee(o.market, req.side, price, size), 0
        else:
            fee, rebate = NO_FEE, self._fees.maker_rebate(o.market, req.side, price, size)
        fill = OrderFilled(
            req.order_id,
            trade_id,
            ts,
            req.token_id,
            req.side,
            price,
            size,
            liquidity,
            fee.fee_usdc,
            fee.fee_shares,
            rebate,
        )
        self.reports.append(fill)
        self._ledger.settle(req.wallet, req.token_id, req.side, price, size, fee, rebate)
        o.leaves -= size
        o.filled += size
        if o.live:
            if o.leaves:
                self._set_reserved(o)
            else:
                self._finish(o)
        return fill

    @staticmethod
    def _side(o: _Order, fill: OrderFilled) -> TradeSide:
        return TradeSide(
            fill.order_id,
            o.req.wallet,
            fill.token_id,
            fill.side,
            fill.price,
            fill.size,
            fill.fee_usdc,
            fill.fee_shares,
        )

    def _record(
        self, trade_id: str, ts: int, market: Market, taker: TradeSide, makers: list[TradeSide]
    ) -> None:
        self.trades.append(Trade(trade_id, ts, market.condition_id, taker, tuple(makers)))

    def _rest(self, o: _Order) -> None:
        view = o.view
        idx = view.bids if o.rest_side is Side.BUY else view.asks
        o.pos = self._queue.join(view.book.size_at(o.rest_side, o.vprice))
        idx.setdefault(o.vprice, []).append(o)
        view.resting += 1
        o.live = True
        self._orders[o.req.order_id] = o
        self._set_reserved(o)
        if o.req.order_type is OrderType.GTD:
            heapq.heappush(self._expiries, (o.req.expiration_ms, o.seq, o.req.order_id))

    def _set_reserved(self, o: _Order) -> None:
        req = o.req
        if not o.live:
            want = 0
        elif req.side is Side.BUY:
            want = buy_cost(req.price, o.leaves)
        else:
            want = o.leaves
        if want != o.reserved:
            self._ledger.reserve(req.wallet, req.token_id, req.side, want - o.reserved)
            o.reserved = want

    def _finish(self, o: _Order) -> None:
        """Take a resting order off the book (filled, cancelled or expired) and free its reservation."""
        view = o.view
        idx = view.bids if o.rest_side is Side.BUY else view.asks
        level = idx[o.vprice]
        level.remove(o)
        if not level:
            del idx[o.vprice]
        view.resting -= 1
        del self._orders[o.req.order_id]
        o.live = False
        self._set_reserved(o)

    def _reject(self, req: OrderRequest, code: str, now_ms: int) -> None:
        self.reports.append(OrderRejected(req.order_id, now_ms, code, VENUE_ERRORS[code]))


# -- the venue with time -------------------------------------------------------------------------
@attrs.frozen(slots=True)
class SimVenueConfig:
    #: trade ids are "<prefix>-<n>"; a distinct prefix per venue keeps ids unique across venues
    trade_id_prefix: str = "sim"
    #: a GTD must expire at least this long after arrival; the real venue asks for 60_000 (PROTOCOL 5.1)
    min_gtd_lead_ms: int = 0
    #: hold marketable orders for their market's `match_delay_ms`, as the venue does (module doc)
    match_delays: bool = True


class SimVenue:
    """ExecutionPort over MatchingEngine with latency: what the backtest trades against.

    The backtest calls `on_market_event` for every market event before the engine sees it, `submit`
    and `cancel` for the engine's commands, and `poll` for the reports due by now.
    """

    __slots__ = (
        "_engine",
        "_last_arrival_ms",
        "_last_delivery_ms",
        "_latency",
        "_next_due_ms",
        "_outbox",
        "_pending",
        "_rng",
        "on_market_event",
        "wake_ms",
    )

    #: apply a replayed event (`apply_event`, with the compiled engine's plain events done in C)
    on_market_event: Callable[[MarketEvent], None]

    def __init__(
        self,
        registry: MarketRegistry,
        latency: LatencyModel,
        queue: QueueModel,
        fees: FeeModel,
        rng: random.Random,
        balances: Mapping[str, int] | None = None,
        positions: Mapping[str, Mapping[str, int]] | None = None,
        *,
        config: SimVenueConfig | None = None,
    ) -> None:
        config = config or SimVenueConfig()
        self._engine = MatchingEngine(
            registry,
            queue,
            fees,
            Ledger(balances, positions),
            trade_id_prefix=config.trade_id_prefix,
            min_gtd_lead_ms=config.min_gtd_lead_ms,
            match_delays=config.match_delays,
        )
        self._latency = latency
        self._rng = rng
        # requests in flight: (arrival ms, order to place | id to cancel), FIFO like one connection
        self._pending: deque[tuple[int, OrderRequest | str]] = deque()
        self._outbox: deque[tuple[int, ExecutionReport]] = deque()
        self._last_arrival_ms = 0
        self._last_delivery_ms = 0
        self._next_due_ms = _NEVER
        #: the earliest time at which `poll` has anything to do (an arrival, an expiry or a report to
        #: deliver); before it, poll returns [] and a replay loop may skip the call
        self.wake_ms = _NEVER
        self.on_market_event = self.market_sink(self.apply_event)

    # -- ExecutionPort -------------------------------------------------------------------------
    def submit(self, order: OrderRequest, now_ms: int) -> None:
        self._send(order, now_ms)

    def cancel(self, order_id: str, now_ms: int) -> None:
        self._send(order_id, now_ms)

    def poll(self, now_ms: int) -> list[ExecutionReport]:
        """Reports delivered by `now_ms`, in the order they happened at the venue."""
        if now_ms >= self._next_due_ms:
            self._advance(now_ms)
        out: list[ExecutionReport] = []
        outbox = self._outbox
        while outbox and outbox[0][0] <= now_ms:
            out.append(outbox.popleft()[1])
        self._rewake()
        return out

    # -- market data ---------------------------------------------------------------------------
    def apply_event(self, event: MarketEvent, start: int = 0) -> None:
        """Apply a replayed event; anything due at or before its time happens first. A price change
        from its delta `start` on: the compiled sink applied those before it, having found nothing due.
        The reference for `on_market_event`."""
        ts = event.ts_ms
        if ts >= self._next_due_ms:
            self._advance(ts)
        engine = self._engine
        engine.apply(event, start)
        if engine.reports:
            self._flush(ts)

    def market_sink(self, handler: _EventHandler) -> Callable[[MarketEvent], None]:
        """`handler` (apply_event, or a caller's that ends in it) as an on_market_event that leaves
        the venue's plain events (only book upkeep, nothing due) to compiled code where it is built."""
        return self._engine.sink(self, handler)

    # -- inspection ----------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        return self._engine.ledger

    def open_orders(self) -> list[OpenOrder]:
        return self._engine.open_orders()

    def book(self, token_id: str) -> Book | None:
        return self._engine.book(token_id)

    # -- internals -----------------------------------------------------------------------------
    def _send(self, item: OrderRequest | str, now_ms: int) -> None:
        arrival = max(now_ms + self._latency.order_latency_ms(self._rng), self._last_arrival_ms)
        self._last_arrival_ms = arrival
        self._pending.append((arrival, item))
        if arrival < self._next_due_ms:
            self._next_due_ms = arrival
            self._rewake()

    def _advance(self, until_ms: int) -> None:
        """Run arrivals and expiries due by `until_ms` in time order (an expiry first on a tie).

        Each pass either does one piece of work or stops: no timestamp, however large (one at or past
        _NEVER included), can make it spin.
        """
        engine = self._engine
        pending = self._pending
        while True:
            expiry = engine.next_expiry_ms()
            if pending and (expiry is None or pending[0][0] < expiry):
                due = pending[0][0]
                if due > until_ms:
                    break
                item = pending.popleft()[1]
                if isinstance(item, str):
                    engine.cancel(item, due)
                else:
                    engine.place(item, due)
            elif expiry is not None:
                due = expiry
                if due > until_ms:
                    break
                engine.expire_until(due)  # takes at least the deadline that fell due
            else:
                due = _NEVER
                break
            if engine.reports:
                self._flush(due)
        self._next_due_ms = due
        self._rewake()

    def _flush(self, at_ms: int) -> None:
        # one ack delay per batch, never earlier than the previous batch: reports stay in venue order
        deliver = max(at_ms + self._latency.ack_latency_ms(self._rng), self._last_delivery_ms)
        self._last_delivery_ms = deliver
        self._outbox.extend((deliver, r) for r in self._engine.drain())
        self._rewake()

    def _rewake(self) -> None:
        outbox = self._outbox
        self.wake_ms = min(self._next_due_ms, outbox[0][0]) if outbox else self._next_due_ms
