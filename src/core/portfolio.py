"""Positions, cash, marking and PnL: the one place the engine values what it holds.

Theory of operation
-------------------
Each wallet (the platform runs one Safe or deposit wallet per trader) holds USDC and outcome shares.
Every new fill moves them: a BUY pays price * size (+ a USDC fee) and receives size - fee_shares (the
venue takes a BUY's fee in shares); a SELL gives size (+ fee_shares) and receives price * size - the
USDC fee. Cost is average cost, fees included, so a SELL realizes proceeds minus the shares' share of the
basis. Realized PnL is kept for the current UTC day (what the daily loss limit reads), per strategy and
in total.

The marking rule, the only one in the engine (risk's daily loss, the backtest's equity curve and the
report all use it): a token is worth the mid of its book while that book is trusted and two-sided,
else the price of its last trade; a token with neither is valued at its cost (no unrealized PnL is
invented for it). `mark_price` states the rule; the engine's own view of the market (EngineState)
is the MarkSource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from polysnipe.core.book import BookState
from polysnipe.core.events import LastTrade, Side
from polysnipe.core.messages import OrderFilled
from polysnipe.core.units import notional

__all__ = ["DAY_MS", "NO_MARKS", "Equity", "MarkSource", "Portfolio", "WalletState", "mark_price"]

DAY_MS = 86_400_000


class MarkSource(Protocol):
    """Where marks come from: the engine's books and last trades."""

    def book(self, token_id: str) -> BookState | None: ...

    def last_trade(self, token_id: str) -> LastTrade | None: ...


class _NoMarks:
    """A market view with nothing in it: every position is valued at cost."""

    def book(self, token_id: str) -> BookState | None:
        return None

    def last_trade(self, token_id: str) -> LastTrade | None:
        return None


NO_MARKS: MarkSource = _NoMarks()


def mark_price(source: MarkSource, token_id: str) -> int | None:
    """The marking rule (module doc): trusted two-sided mid, else the last trade, else None."""
    book = source.book(token_id)
    if book is not None and book.trusted:
        mid = book.mid()
        if mid is not None:
            return mid
    trade = source.last_trade(token_id)
    return trade.price if trade is not None else None


@attrs.define(slots=True)
class WalletState:
    balance_usdc_micro: int
    #: token id -> micro-shares held
    positions: dict[str, int] = attrs.field(factory=dict)
    #: token id -> USDC paid for the shares still held (average-cost basis, fees included)
    cost: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class Equity:
    #: cash plus marked value of every position
    total_usdc_micro: int
    #: marked value of the positions alone
    positions_usdc_micro: int
    #: how many (wallet, token) positions are held
    held: int


@attrs.define(slots=True)
class Portfolio:
    wallets: dict[str, WalletState] = attrs.field(factory=dict)
    #: realized PnL of the UTC day `pnl_day` (ts_ms // DAY_MS)
    realized_day_usdc_micro: int = 0
    pnl_day: int = 0
    realized_total_usdc_micro: int = 0
    realized_by_strategy: dict[str, int] = attrs.field(factory=dict)
    #: the engine's market view; the engine binds itself here when it is built
    marks: MarkSource = NO_MARKS

    @classmethod
    def of(cls, balances: Mapping[str, int]) -> Portfolio:
        return cls({w: WalletState(balance) for w, balance in balances.items()})

    # -- queries -----------------------------------------------------------------------------
    def holds(self, token_id: str) -> bool:
        return any(w.positions.get(token_id) for w in self.wallets.values())

    def cost_of(self, token_id: str) -> int:
        """USDC paid for the shares of `token_id` still held, all wallets together."""
        total = 0
        for w in self.wallets.values():
            total += w.cost.get(token_id, 0)
        return total

    def realized_today(self, now_ms: int) -> int:
        return self.realized_day_usdc_micro if now_ms // DAY_MS == self.pnl_day else 0

    def mark(self, token_id: str) -> int | None:
        return mark_price(self.marks, token_id)

    def unrealized(self) -> int:
        """Marked value minus cost over every held position; unmarked positions count as 0."""
        pnl = 0
        for w in self.wallets.values():
            for token_id, shares in w.positions.items():
                mark = mark_price(self.marks, token_id)
                if mark is not None:
                    pnl += notional(mark, shares) - w.cost.get(token_id, 0)
        return pnl

    def equity(self) -> Equity:
        """Cash plus every position at its mark (at cost when it has none)."""
        cash = 0
        value = 0
        held = 0
        for w in self.wallets.values():
            cash += w.balance_usdc_micro
            for token_id, shares in w.positions.items():
                if not shares:
                    continue
                held += 1
                mark = mark_price(self.marks, token_id)
                value += w.cost.get(token_id, 0) if mark is None else notional(mark, shares)
        return Equity(cash + value, value, held)

    # -- updates -----------------------------------------------------------------------------
    def apply_fill(self, wallet_name: str, fill: OrderFilled, strategy: str) -> None:
        """Apply one new (de-duplicated) fill of `wallet_name`'s order placed for `strategy`."""
        wallet = self.wallets[wallet_name]
        token_id = fill.token_id
        shares = wallet.positions.get(token_id, 0)
        cost = wallet.cost.get(token_id, 0)
        if fill.side is Side.BUY:
            paid = notional(fill.price, fill.size) + fill.fee_usdc
            wallet.balance_usdc_micro -= paid
            shares += fill.size - fill.fee_shares
            cost += paid
        else:
            given = fill.size + fill.fee_shares
            # average cost: the shares sold take their proportional share of the basis
            removed = cost * min(given, shares) // shares if shares > 0 else 0
            proceeds = notional(fill.price, fill.size) - fill.fee_usdc
            wallet.balance_usdc_micro += proceeds
            shares -= given
            cost -= removed
            self._book_realized(proceeds - removed, fill.ts_ms, strategy)
        if shares or cost:
            wallet.positions[token_id] = shares
            wallet.cost[token_id] = cost
        else:
            wallet.positions.pop(token_id, None)
            wallet.cost.pop(token_id, None)

    def _book_realized(self, pnl: int, ts_ms: int, strategy: str) -> None:
        self.realized_total_usdc_micro += pnl
        self.realized_by_strategy[strategy] = self.realized_by_strategy.get(strategy, 0) + pnl
        day = ts_ms // DAY_MS
        if day > self.pnl_day:
            self.pnl_day = day
            self.realized_day_usdc_micro = pnl
        elif day == self.pnl_day:
            self.realized_day_usdc_micro += pnl
        # a late report of an earlier day's fill belongs to a day whose limit no longer applies
