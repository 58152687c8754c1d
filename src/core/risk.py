"""Pre-trade risk: the gatekeeper every order passes before it can reach the venue.

Theory of operation: `RiskState` is the engine's running view of what it has committed (open orders,
their USDC and share reservations, the order-rate window, kill switches); what the wallets hold
(balances, positions, cost, PnL and marks) is its `Portfolio` (core/portfolio.py). The pipeline
feeds it `on_submitted` when an order goes out, `on_fill` for every new fill and `on_order_closed` when
an order ends; the gatekeeper only reads it (apart from dropping rate-window timestamps that have aged
out, so time must not run backwards between checks).

`RiskGatekeeper.check` sorts the checks into two kinds. Hard checks (kill switch, book trust and age,
minimum size, price range, open-order count, order rate, daily loss, unknown wallet) reject outright.
Size caps (order notional, outcome and market exposure, free balance, shares held for a SELL, the
venue's 2-decimal size step) each give the largest size that still fits; every cap is monotone in size,
so the minimum over the breached caps, rounded down to the size step, fits all of them at once. That is
the resize, taken only if it is still at least the market's minimum order size.

Exposure is the engine's total across wallets (a firm-level cap): the cost of shares held plus the USDC
reserved by open BUY orders on the token. Pending SELL orders do not lower it until they fill, which
errs on the side of caution.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from polysnipe.core.book import Book
from polysnipe.core.events import Side
from polysnipe.core.market import Market
from polysnipe.core.messages import VENUE_CONDITIONS, OrderFilled, OrderRequest
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.units import MICRO, ONE, notional

__all__ = [
    "OpenOrder",
    "RiskDecision",
    "RiskGatekeeper",
    "RiskOutcome",
    "RiskPolicy",
    "RiskState",
    "TreasuryPolicy",
    "check_scope",
    "max_size_within",
    "scopes_of",
]

_BPS = 10_000

RiskOutcome = Literal["approve", "resize", "reject"]


@attrs.frozen(slots=True)
class TreasuryPolicy:
    """How much of a wallet's cash the engine may commit to open BUY orders."""

    #: cash the wallet keeps untouched (gas-free relayer ops, withdrawals, the next funding round)
    min_free_balance_usdc_micro: int = 0
    #: at most this share of the cash balance may be reserved by open BUY orders (10_000 = all of it)
    max_utilization_bps: int = 10_000


@attrs.frozen(slots=True)
class RiskPolicy:
    max_order_notional_usdc_micro: int
    #: cost of held shares plus open BUY reservations, both tokens of a market together
    max_market_exposure_usdc_micro: int
    #: the same for one outcome token
    max_outcome_exposure_usdc_micro: int
    max_open_orders: int
    #: at most `max_orders_per_window` submissions in any `rate_window_ms` (sliding window)
    max_orders_per_window: int
    rate_window_ms: int
    #: realized (today, UTC day of the fill) plus unrealized loss that stops new BUYs
    daily_loss_limit_usdc_micro: int
    max_book_age_ms: int
    treasury: TreasuryPolicy = TreasuryPolicy()
    treasury_by_wallet: Mapping[str, TreasuryPolicy] = attrs.field(factory=dict)
    #: venue sizes carry 2 decimals (PROTOCOL.md 3.1), so 0.01 share is the smallest step
    size_step_micro: int = 10_000
    allow_resize: bool = True
    #: cost held plus open BUY reservations over every token of one neg-risk event; None: the market cap
    max_event_exposure_usdc_micro: int | None = None
    #: what repairing a basket whose legs filled unevenly (completing or unwinding it) may lose
    max_basket_repair_loss_usdc_micro: int = 10_000_000
    #: open orders of one wallet (one trader's Safe); None: only the engine-wide `max_open_orders`
    max_open_orders_per_wallet: int | None = None

    @property
    def event_exposure_cap(self) -> int:
        cap = self.max_event_exposure_usdc_micro
        return self.max_market_exposure_usdc_micro if cap is None else cap

    def treasury_for(self, wallet: str) -> TreasuryPolicy:
        return self.treasury_by_wallet.get(wallet, self.treasury)


@attrs.define(slots=True)
class OpenOrder:
    """What one open order holds back: its unfilled size and the USDC or shares reserved for it."""

    wallet: str
    strategy: str
    token_id: str
    side: Side
    price: int
    remaining: int
    #: BUY: notional(price, remaining); SELL: 0
    reserved_usdc_micro: int
    #: SELL: remaining; BUY: 0
    reserved_shares_micro: int


@attrs.define(slots=True)
class RiskState:
    #: what the wallets hold (balances, positions, PnL, marks); fills reach it through `on_fill`
    portfolio: Portfolio
    open_orders: dict[str, OpenOrder] = attrs.field(factory=dict)
    #: wallet -> USDC that its open BUY orders may still spend
    reserved_usdc: dict[str, int] = attrs.field(factory=dict)
    #: wallet -> token id -> micro-shares promised to open SELL orders, so two SELLs never sell the
    #: same shares
    reserved_shares: dict[str, dict[str, int]] = attrs.field(factory=dict)
    #: submission times, oldest first, for the sliding rate window
    order_times: deque[int] = attrs.field(factory=deque)
    #: "global", "strategy:<name>", "market:<condition_id>", "wallet:<addr>"
    kill_switches: set[str] = attrs.field(factory=set)
    #: venue conditions in force (messages.VENUE_CONDITIONS) -> what the adapter said about it
    venue_conditions: dict[str, str] = attrs.field(factory=dict)
    #: token id -> USDC reserved by open BUY orders across all wallets
    reserved_by_token: dict[str, int] = attrs.field(factory=dict)
    #: wallet -> how many of `open_orders` are its own (the per-wallet cap reads it on every check)
    open_by_wallet: dict[str, int] = attrs.field(factory=dict)
    #: recently closed orders, kept so a fill that races its cancel still finds its wallet
    closed_orders: dict[str, OpenOrder] = attrs.field(factory=dict)
    closed_memory: int = 100_000

    # -- queries -----------------------------------------------------------------------------
    def exposure(self, token_id: str) -> int:
        """Cost of shares held on `token_id` (all wallets) plus open BUY reservations on it."""
        return self.reserved_by_token.get(token_id, 0) + self.portfolio.cost_of(token_id)

    def free_usdc(self, wallet: str, treasury: TreasuryPolicy) -> int:
        """USDC a new BUY of `wallet` may still reserve under the treasury policy (negative when
        over-committed)."""
        balance = self.portfolio.wallets[wallet].balance_usdc_micro
        floor_room = balance - treasury.min_free_balance_usdc_micro
        utilization_room = balance * treasury.max_utilization_bps // _BPS
        return min(floor_room, utilization_room) - self.reserved_usdc.get(wallet, 0)

    def available_shares(self, wallet: str, token_id: str) -> int:
        held = self.portfolio.wallets[wallet].positions.get(token_id, 0)
        return held - self.reserved_shares.get(wallet, {}).get(token_id, 0)

    def open_orders_of(self, wallet: str) -> int:
        return self.open_by_wallet.get(wallet, 0)

    def orders_in_window(self, now_ms: int, window_ms: int) -> int:
        """Submissions in (now - window, now]; drops older timestamps (time only moves forward)."""
        times = self.order_times
        cutoff = now_ms - window_ms
        while times and times[0] <= cutoff:
            times.popleft()
        return len(times)

    def daily_pnl(self, now_ms: int) -> int:
        """Today's realized plus the unrealized PnL of everything held (the daily loss limit's figure)."""
        return self.portfolio.realized_today(now_ms) + self.portfolio.unrealized()

    # -- updates -----------------------------------------------------------------------------
    def on_submitted(self, order: OrderRequest, now_ms: int) -> None:
        """Reserve what `order` may spend and count it in the rate window.

        Idempotent per order id, because a retried submission is the same order. Raises KeyError
        for a wallet the portfolio does not know (the gatekeeper rejects those before submission).
        """
        if order.order_id in self.open_orders:
            return
        if order.wallet not in self.portfolio.wallets:
            raise KeyError(order.wallet)
        token_id = order.token_id
        if order.side is Side.BUY:
            reserved = notional(order.price, order.size)
            self.reserved_usdc[order.wallet] = self.reserved_usdc.get(order.wallet, 0) + reserved
            self.reserved_by_token[token_id] = self.reserved_by_token.get(token_id, 0) + reserved
            shares = 0
        else:
            reserved = 0
            shares = order.size
            mine = self.reserved_shares.setdefault(order.wallet, {})
            mine[token_id] = mine.get(token_id, 0) + shares
        self.open_orders[order.order_id] = OpenOrder(
            order.wallet, order.strategy, token_id, order.side, order.price, order.size, reserved, shares
        )
        self.open_by_wallet[order.wallet] = self.open_by_wallet.get(order.wallet, 0) + 1
        self.order_times.append(now_ms)

    def on_fill(
        self, order_id: str, fill: OrderFilled, lot: str = "", fair_value: int = 0
    ) -> Mapping[str, tuple[int, int]]:
        """Apply one (new, de-duplicated) fill: the portfolio's cash and shares, then reservations.

        `lot` names the portfolio lot the fill books to (default: the order's strategy); `fair_value`
        is what the entry claimed the shares are worth (exit rules take profit there).
        A fill for an order closed recently (a fill racing its cancel) still counts: the venue matched
        it. Raises KeyError for an order never submitted. Returns what portfolio.apply_fill returns.
        """
        order = self.open_orders.get(order_id)
        if order is None:
            order = self.closed_orders.get(order_id)
            if order is None:
                raise KeyError(order_id)
        taken = self.portfolio.apply_fill(order.wallet, fill, lot or order.strategy, fair_value)
        if order.remaining > 0:
            self._release(order, min(fill.size, order.remaining))
            if order.remaining == 0:
                self._close(order_id, order)
        return taken

    def on_order_closed(self, order_id: str) -> None:
        """Release what the order still reserves. Idempotent: unknown or closed orders are ignored."""
        order = self.open_orders.get(order_id)
        if order is None:
            return
        if order.remaining > 0:
            self._release(order, order.remaining)
        self._close(order_id, order)

    def engage(self, scope: str) -> str:
        """Engage `scope`; returns it as the engine matches it (check_scope)."""
        normal = check_scope(scope)
        self.kill_switches.add(normal)
        return normal

    def release(self, scope: str) -> str:
        normal = check_scope(scope)
        self.kill_switches.discard(normal)
        return normal

    # -- internals ---------------------------------------------------------------------------
    def _release(self, order: OpenOrder, size: int) -> None:
        order.remaining -= size
        if order.side is Side.BUY:
            # recompute from the remainder rather than subtracting the fill's notional, so the
            # rounding of many small fills never leaves a stray micro-unit reserved
            still = notional(order.price, order.remaining)
            freed = order.reserved_usdc_micro - still
            order.reserved_usdc_micro = still
            _subtract(self.reserved_usdc, order.wallet, freed)
            _subtract(self.reserved_by_token, order.token_id, freed)
        else:
            order.reserved_shares_micro -= size
            mine = self.reserved_shares[order.wallet]
            _subtract(mine, order.token_id, size)
            if not mine:
                del self.reserved_shares[order.wallet]

    def _close(self, order_id: str, order: OpenOrder) -> None:
        del self.open_orders[order_id]
        _subtract(self.open_by_wallet, order.wallet, 1)
        closed = self.closed_orders
        closed[order_id] = order
        if len(closed) > self.closed_memory:
            del closed[next(iter(closed))]


def _subtract(totals: dict[str, int], key: str, amount: int) -> None:
    """Lower a running total, dropping the key at zero so empty totals stay empty dicts."""
    left = totals[key] - amount
    if left:
        totals[key] = left
    else:
        del totals[key]


def check_scope(scope: str) -> str:
    """`scope` as the engine matches it: a market's or a wallet's hex id in lowercase, so an id
    typed in another case than the engine's still covers it. ValueError for a scope of no kind."""
    # a typo in a kill-switch scope would silently protect nothing
    kind, _, name = scope.partition(":")
    if scope == "global" or (kind == "strategy" and name):
        return scope
    if kind in ("market", "wallet") and name:
        return f"{kind}:{name.lower()}"
    raise ValueError(f"invalid kill-switch scope {scope!r}")


def scopes_of(order: OrderRequest) -> tuple[str, str, str, str]:
    """Every kill-switch scope that covers `order`, spelled as check_scope spells them."""
    return ("global", "strategy:" + order.strategy, "market:" + order.market.lower(),
            "wallet:" + order.wallet.lower())  # fmt: skip


@attrs.frozen(slots=True)
class RiskDecision:
    outcome: RiskOutcome
    #: the size that may be sent (the request's size on approve, smaller on resize, 0 on reject)
    approved_size: int
    reasons: tuple[str, ...]

    @property
    def approved(self) -> bool:
        return self.outcome != "reject"


def max_size_within(budget_usdc_micro: int, price: int) -> int:
    """Largest size whose notional at `price` (rounded down, as units.notional) is within budget."""
    if budget_usdc_micro < 0:
        return 0
    return ((budget_usdc_micro + 1) * MICRO - 1) // price


class RiskGatekeeper:
    __slots__ = ("policy",)

    def __init__(self, policy: RiskPolicy) -> None:
        self.policy = policy

    @property
    def size_step(self) -> int:
        return self.policy.size_step_micro

    def breaches_daily_loss(self, state: RiskState, now_ms: int) -> bool:
        """True when today's realized plus unrealized loss is beyond the limit; engage a kill switch."""
        limit = -self.policy.daily_loss_limit_usdc_micro
        # Marking every position is the dearest part of an order's check: it is needed only when
        # losing all that is held (the unrealized floor) would take the day beyond the limit.
        floor = state.portfolio.unrealized_floor()
        if floor is not None and state.portfolio.realized_today(now_ms) + floor >= limit:
            return False
        return state.daily_pnl(now_ms) < limit

    def check(
        self,
        order: OrderRequest,
        state: RiskState,
        market: Market,
        book: Book | None,
        now_ms: int,
        event_tokens: Sequence[str] = (),
    ) -> RiskDecision:
        """One order; `event_tokens` are the tokens of its neg-risk event (for the event exposure cap)."""
        return self.check_orders(((order, market, book),), state, now_ms, event_tokens)

    def check_orders(
        self,
        legs: Sequence[tuple[OrderRequest, Market, Book | None]],
        state: RiskState,
        now_ms: int,
        event_tokens: Sequence[str] = (),
    ) -> RiskDecision:
        """Orders that must trade together (the legs of a basket), checked as one unit: hard checks on
        every leg, caps on their sum, one common size for every leg, all or nothing.

        Every leg carries the same size; the approved size applies to all of them. Legs of one wallet
        share its free balance, legs of one market its exposure cap, legs of one neg-risk event
        (`event_tokens`, all of that event's tokens) the event's cap. A single order is the one-leg case.
        """
        policy = self.policy
        size = legs[0][0].size
        # One pass over the legs gathers what the checks below need (a single order is nearly every
        # call, and this runs on the decision path): the reasons keep the order of the rules above.
        leg_hard: list[str] = []
        #: the BUY legs, each with its notional at `size` (what it would reserve)
        buys: list[tuple[OrderRequest, Market, int]] = []
        #: prices of the legs whose notional is beyond the order cap, in leg order
        over_notional: list[int] = []
        notional_cap = policy.max_order_notional_usdc_micro
        wallets: set[str] = set()
        switches = state.kill_switches
        resolved = state.portfolio.resolved
        max_book_age_ms = policy.max_book_age_ms
        all_post_only = True
        prices_ok = True
        below_min = False
        for order, market, book in legs:
            if order.size != size:
                raise ValueError("the legs of one risk check must all carry the same size")
            if switches:
                for scope in scopes_of(order):
                    if scope in switches:
                        _once(leg_hard, "kill_switch:" + scope)
            if book is None or not book.trusted:
                _once(leg_hard, "book_untrusted")
            elif book.is_stale(now_ms, max_book_age_ms):
                _once(leg_hard, "book_stale")
            price = order.price
            if not (0 < price < ONE and price % order.tick_size == 0):
                prices_ok = False
            if order.token_id in resolved:
                _once(leg_hard, "market_resolved")
            if not market.fees_known:
                _once(leg_hard, "fees_unknown")
            if size < market.min_order_size:
                below_min = True
            if not order.post_only:
                all_post_only = False
            cost = notional(price, size)
            if cost > notional_cap:
                over_notional.append(price)
            if order.side is Side.BUY:
                buys.append((order, market, cost))
            wallets.add(order.wallet)
        hard: list[str] = []
        for condition in state.venue_conditions:
            if VENUE_CONDITIONS[condition] == "all" or not all_post_only:
                hard.append("venue:" + condition)
        hard += leg_hard
        if not prices_ok:
            hard.append("invalid_price")
        if below_min:
            hard.append("below_min_size")
        n = len(legs)
        if len(state.open_orders) + n > policy.max_open_orders:
            hard.append("open_orders")
        ordered_wallets = sorted(wallets) if n > 1 else list(wallets)
        per_wallet = policy.max_open_orders_per_wallet
        if per_wallet is not None:
            for wallet in ordered_wallets:
                mine = sum(1 for o, _, _ in legs if o.wallet == wallet)
                if state.open_orders_of(wallet) + mine > per_wallet:
                    _once(hard, "wallet_open_orders")
        if state.orders_in_window(now_ms, policy.rate_window_ms) + n > policy.max_orders_per_window:
            hard.append("rate_limit")
        # SELLs reduce risk, so a day in loss must still be able to exit (kill switches stop those)
        if buys and self.breaches_daily_loss(state, now_ms):
            hard.append("daily_loss")
        known_wallets = state.portfolio.wallets
        known = all(w in known_wallets for w in ordered_wallets)
        if not known:
            hard.append("unknown_wallet")

        caps: list[str] = []
        max_size = size
        step = policy.size_step_micro
        if size % step:
            caps.append("size_step")
        if prices_ok:
            for price in over_notional:
                max_size = _cap(caps, "order_notional", max_size, notional_cap, price)
            exposure = state.exposure
            for order, _, cost in buys:
                room = policy.max_outcome_exposure_usdc_micro - exposure(order.token_id)
                if cost > room:
                    max_size = _cap(caps, "outcome_exposure", max_size, room, order.price)
            judged: set[int] = set()  # the buys' markets by identity, each judged once
            for _, market, _ in buys:
                if id(market) in judged:
                    continue
                judged.add(id(market))
                prices, costs = _totals([b for b in buys if b[1] is market])
                room = policy.max_market_exposure_usdc_micro - sum(map(exposure, market.token_ids))
                if costs > room:
                    max_size = _cap(caps, "market_exposure", max_size, room, prices)
            if event_tokens:
                prices, costs = _totals([b for b in buys if b[1].neg_risk_market_id])
                if prices:
                    room = policy.event_exposure_cap - sum(map(exposure, event_tokens))
                    if costs > room:
                        max_size = _cap(caps, "event_exposure", max_size, room, prices)
            if known and buys:
                for wallet in ordered_wallets:
                    prices, costs = _totals([b for b in buys if b[0].wallet == wallet])
                    if not prices:
                        continue
                    free = state.free_usdc(wallet, policy.treasury_for(wallet))
                    if costs > free:
                        max_size = _cap(caps, "free_balance", max_size, free, prices)
        if known and len(buys) < n:
            for order, _, _ in legs:
                if order.side is Side.SELL:
                    available = state.available_shares(order.wallet, order.token_id)
                    if size > available:
                        _once(caps, "no_position")
                        max_size = min(max_size, max(available, 0))

        if hard:
            return RiskDecision("reject", 0, (*hard, *caps))
        if not caps:
            return RiskDecision("approve", size, ())
        max_size -= max_size % step
        min_size = max(m.min_order_size for _, m, _ in legs)
        if policy.allow_resize and max_size > 0 and max_size >= min_size:
            return RiskDecision("resize", max_size, tuple(caps))
        return RiskDecision("reject", 0, tuple(caps))


def _totals(buys: list[tuple[OrderRequest, Market, int]]) -> tuple[int, int]:
    """(summed prices, summed notionals) of `buys`, as check_orders lists them."""
    prices = costs = 0
    for order, _, cost in buys:
        prices += order.price
        costs += cost
    return prices, costs


def _cap(caps: list[str], reason: str, max_size: int, budget: int, price: int) -> int:
    """A size cap breached: note `reason` once; the largest size within `budget` at `price` bounds
    the size."""
    _once(caps, reason)
    return min(max_size, max_size_within(budget, price))


def _once(reasons: list[str], reason: str) -> None:
    if reason not in reasons:
        reasons.append(reason)
