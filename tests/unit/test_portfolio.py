"""The portfolio: one marking rule, cash and positions from fills, realized PnL by day and strategy."""

from __future__ import annotations

from typing import TypedDict, Unpack

from kit import T0, YES, fill, order_request
from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, LastTrade, Level, Side
from polysnipe.core.messages import OrderFilled
from polysnipe.core.portfolio import DAY_MS, Equity, Portfolio, mark_price
from polysnipe.core.units import MICRO

W = "0xw"


class View:
    """A market view: books and last trades by token, as the engine keeps them."""

    def __init__(self) -> None:
        self.books: dict[str, BookState] = {}
        self.trades: dict[str, LastTrade] = {}

    def book(self, token_id: str) -> BookState | None:
        return self.books.get(token_id)

    def last_trade(self, token_id: str) -> LastTrade | None:
        return self.trades.get(token_id)


def _book(bids: tuple[Level, ...], asks: tuple[Level, ...]) -> BookState:
    book = BookState(YES, 10_000)
    book.apply_snapshot(BookSnapshot(T0, YES, "0xc", bids, asks))
    return book


class _Fees(TypedDict, total=False):
    fee_usdc: int
    fee_shares: int


def _fill(side: Side, price: int, size: int, ts: int = T0, **fees: Unpack[_Fees]) -> OrderFilled:
    order = order_request("o", side=side, price=price, size=size)
    return fill(order, ts, trade_id=f"t{ts}{side}{price}", **fees)


def test_marking_rule_mid_then_last_trade_then_none() -> None:
    view = View()
    assert mark_price(view, YES) is None
    view.trades[YES] = LastTrade(T0, YES, "0xc", 420_000, MICRO, Side.SELL)
    assert 420_000 == mark_price(view, YES)
    # a one-sided book has no mid: the last trade still marks
    view.books[YES] = _book((Level(400_000, MICRO),), ())
    assert 420_000 == mark_price(view, YES)
    view.books[YES] = _book((Level(400_000, MICRO),), (Level(460_000, MICRO),))
    assert 430_000 == mark_price(view, YES)
    # an untrusted book (after a gap) says nothing about value
    view.books[YES].invalidate()
    assert 420_000 == mark_price(view, YES)


def test_unmarked_positions_are_valued_at_cost() -> None:
    portfolio = Portfolio.of({W: 100 * MICRO})
    portfolio.apply_fill(W, _fill(Side.BUY, 400_000, 10 * MICRO), "s")
    assert Equity(100 * MICRO, 4 * MICRO, 1) == portfolio.equity()
    assert 0 == portfolio.unrealized()


def test_marked_equity_and_unrealized_follow_the_view() -> None:
    view = View()
    portfolio = Portfolio.of({W: 100 * MICRO})
    portfolio.marks = view
    portfolio.apply_fill(W, _fill(Side.BUY, 400_000, 10 * MICRO, fee_shares=100_000), "s")
    view.books[YES] = _book((Level(500_000, MICRO),), (Level(520_000, MICRO),))
    # 9.9 shares at 0.51 = 5.049 against a cost of 4
    assert 1_049_000 == portfolio.unrealized()
    assert Equity(96 * MICRO + 5_049_000, 5_049_000, 1) == portfolio.equity()


def test_realized_pnl_per_day_per_strategy_and_total() -> None:
    portfolio = Portfolio.of({W: 0})
    portfolio.apply_fill(W, _fill(Side.BUY, 400_000, 10 * MICRO), "a")
    portfolio.apply_fill(W, _fill(Side.SELL, 500_000, 4 * MICRO, fee_usdc=10_000), "a")
    # 4 shares sold for 2 - 0.01 against 1.6 of basis
    assert 390_000 == portfolio.realized_today(T0)
    tomorrow = (T0 // DAY_MS + 1) * DAY_MS
    portfolio.apply_fill(W, _fill(Side.SELL, 300_000, 6 * MICRO, ts=tomorrow), "b")
    assert 0 == portfolio.realized_today(T0)
    assert -600_000 == portfolio.realized_today(tomorrow)
    # the shares "b" sold were bought by "a": the realized PnL is the lot's, the strategy that bought them
    assert {"a": -210_000} == portfolio.realized_by_strategy
    assert -210_000 == portfolio.realized_total_usdc_micro
    assert {} == portfolio.wallets[W].positions
    # flat again: the cash moved by exactly the realized PnL
    assert -210_000 == portfolio.wallets[W].balance_usdc_micro
