"""Positions, cash, marking and PnL: the one place the engine values what it holds.

Theory of operation
-------------------
Each wallet (the platform runs one Safe or deposit wallet per trader) holds USDC and outcome shares.
Every new fill moves them: a BUY pays price * size (+ a USDC fee) and receives size - fee_shares (the
venue takes a BUY's fee in shares); a SELL gives size (+ fee_shares) and receives price * size - the
USDC fee. Shares are held in lots, one per (token, strategy that bought them), each with its average
cost (fees included), when it opened and the fair value its entry claimed (exit rules read them). A
SELL of a strategy takes from that strategy's lot first, then from the others pro rata; merging
complete sets, converting neg-risk NO shares and redeeming a resolved market take from every lot of
the token pro rata. Realized PnL
is kept per lot's strategy, for the current UTC day (what the daily loss limit reads) and in total.

The marking rule, the only one in the engine (risk's daily loss, the backtest's equity curve and the
report all use it): a resolved token is worth 1 if it won and 0 if it lost; otherwise the mid of its
book while that book is trusted and two-sided, else the price of its last trade; a token with none
of these is valued at its cost (no unrealized PnL is invented for it). `mark_price` states the rule;
the engine's own view of the market (EngineState) is the MarkSource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from polysnipe.core.book import Book
from polysnipe.core.events import LastTrade, Side
from polysnipe.core.messages import OrderFilled
from polysnipe.core.units import MICRO, notional

__all__ = ["DAY_MS", "NO_MARKS", "Equity", "Lot", "MarkSource", "Portfolio", "WalletState", "mark_price"]

DAY_MS = 86_400_000


class MarkSource(Protocol):
    """Where marks come from: the engine's books and last trades."""

    def book(self, token_id: str) -> Book | None: ...

    def last_trade(self, token_id: str) -> LastTrade | None: ...


class _NoMarks:
    """A market view with nothing in it: every position is valued at cost."""

    def book(self, token_id: str) -> Book | None:
        return None

    def last_trade(self, token_id: str) -> LastTrade | None:
        return None


NO_MARKS: MarkSource = _NoMarks()


def mark_price(source: MarkSource, token_id: str, resolved: Mapping[str, int] | None = None) -> int | None:
    """The marking rule (module doc): resolution, else trusted two-sided mid, else the last trade."""
    if resolved:
        settled = resolved.get(token_id)
        if settled is not None:
            return settled
    book = source.book(token_id)
    if book is not None and book.trusted:
        mid = book.mid()
        if mid is not None:
            return mid
    trade = source.last_trade(token_id)
    return trade.price if trade is not None else None


@attrs.define(slots=True)
class Lot:
    """The shares of one token one strategy bought and still holds."""

    shares: int
    #: USDC paid for those shares, fees included
    cost: int
    opened_ms: int
    #: the fair value the entering opportunity claimed (0: none claimed)
    fair_value: int = 0

    @property
    def avg_price(self) -> int:
        return self.cost * MICRO // self.shares if self.shares > 0 else 0


@attrs.define(slots=True)
class WalletState:
    balance_usdc_micro: int
    #: token id -> micro-shares held (the sum of the token's lots)
    positions: dict[str, int] = attrs.field(factory=dict)
    #: token id -> USDC paid for the shares still held (the sum of the token's lots' cost)
    cost: dict[str, int] = attrs.field(factory=dict)
    #: (token id, strategy) -> lot
    lots: dict[tuple[str, str], Lot] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        # holdings given without lots (a wallet's opening positions) belong to no strategy
        for token, shares in self.positions.items():
            if shares and not any(t == token for t, _ in self.lots):
                self.lots[token, ""] = Lot(shares, self.cost.get(token, 0), 0)

    def lots_of(self, token_id: str) -> list[tuple[str, Lot]]:
        return [(strategy, lot) for (t, strategy), lot in self.lots.items() if t == token_id]

    def _take(self, token_id: str, shares: int, first: str | None) -> dict[str, tuple[int, int]]:
        """Remove `shares` of `token_id` from its lots: `first`'s lot first, then the rest pro rata.

        Returns strategy -> (shares taken, cost removed at that lot's average cost); never takes more
        than the lots hold.
        """
        lots = [(strategy, lot) for strategy, lot in self.lots_of(token_id) if lot.shares > 0]
        left = min(shares, sum(lot.shares for _, lot in lots))
        plan: dict[str, int] = {}
        for strategy, lot in lots:
            if strategy == first:
                plan[strategy] = min(left, lot.shares)
                left -= plan[strategy]
        rest = [(strategy, lot) for strategy, lot in lots if strategy != first]
        pool = sum(lot.shares for _, lot in rest)
        if left and pool:
            want = left
            for strategy, lot in rest:
                n = min(lot.shares, want * lot.shares // pool)
                plan[strategy] = n
                left -= n
            for strategy, lot in rest:  # the pro rata rounding remainder, a few micro-shares
                extra = min(left, lot.shares - plan[strategy])
                plan[strategy] += extra
                left -= extra
        taken: dict[str, tuple[int, int]] = {}
        for strategy, lot in lots:
            n = plan.get(strategy, 0)
            if not n:
                continue
            removed = lot.cost * n // lot.shares
            lot.shares -= n
            lot.cost -= removed
            taken[strategy] = (n, removed)
            if lot.shares == 0:
                del self.lots[token_id, strategy]
        shares_left = self.positions.get(token_id, 0) - sum(n for n, _ in taken.values())
        cost_left = self.cost.get(token_id, 0) - sum(c for _, c in taken.values())
        self._set(token_id, shares_left, cost_left)
        return taken

    def _set(self, token_id: str, shares: int, cost: int) -> None:
        if shares or cost:
            self.positions[token_id] = shares
            self.cost[token_id] = cost
        else:
            self.positions.pop(token_id, None)
            self.cost.pop(token_id, None)


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
    #: USDC traded (sum of fill notionals), for the capital turnover
    traded_usdc_micro: int = 0
    #: token id -> what a resolved token pays per share (ONE or 0)
    resolved: dict[str, int] = attrs.field(factory=dict)
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
        return mark_price(self.marks, token_id, self.resolved)

    def unrealized(self) -> int:
        """Marked value minus cost over every held position; unmarked positions count as 0."""
        pnl = 0
        for w in self.wallets.values():
            for token_id, shares in w.positions.items():
                mark = mark_price(self.marks, token_id, self.resolved)
                if mark is not None:
                    pnl += notional(mark, shares) - w.cost.get(token_id, 0)
        return pnl

    def unrealized_floor(self) -> int | None:
        """A lower bound on `unrealized()` that reads no mark: minus the cost of everything held, as
        no mark is below 0 (so no long position is worth less than nothing). None when a wallet holds
        a short position or a negative cost, where that reasoning does not hold."""
        total = 0
        for w in self.wallets.values():
            if min(w.positions.values(), default=0) < 0 or min(w.cost.values(), default=0) < 0:
                return None
            total += sum(w.cost.values())
        return -total

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
                mark = mark_price(self.marks, token_id, self.resolved)
                value += w.cost.get(token_id, 0) if mark is None else notional(mark, shares)
        return Equity(cash + value, value, held)

    # -- updates -----------------------------------------------------------------------------
    def apply_fill(
        self, wallet_name: str, fill: OrderFilled, strategy: str, fair_value: int = 0
    ) -> Mapping[str, tuple[int, int]]:
        """Apply one new (de-duplicated) fill of `wallet_name`'s order placed for `strategy`.

        Returns what a SELL took from the lots (strategy -> (shares, cost)), which undoing the fill
        needs; nothing for a BUY."""
        wallet = self.wallets[wallet_name]
        token_id = fill.token_id
        self.traded_usdc_micro += notional(fill.price, fill.size)
        if fill.side is Side.BUY:
            # a maker's rebate lowers what the shares cost
            paid = notional(fill.price, fill.size) + fill.fee_usdc - fill.rebate_usdc
            wallet.balance_usdc_micro -= paid
            got = fill.size - fill.fee_shares
            lot = wallet.lots.get((token_id, strategy))
            if lot is None:
                lot = wallet.lots[token_id, strategy] = Lot(0, 0, fill.ts_ms, fair_value)
            lot.shares += got
            lot.cost += paid
            if fair_value:
                lot.fair_value = fair_value
            wallet._set(
                token_id, wallet.positions.get(token_id, 0) + got, wallet.cost.get(token_id, 0) + paid
            )
            return {}
        given = fill.size + fill.fee_shares
        proceeds = notional(fill.price, fill.size) - fill.fee_usdc + fill.rebate_usdc
        wallet.balance_usdc_micro += proceeds
        held = wallet.positions.get(token_id, 0)
        taken = wallet._take(token_id, min(given, max(held, 0)), strategy)
        if given > held:
            # selling shares the books do not show (never approved by risk): kept visible as short
            wallet._set(token_id, wallet.positions.get(token_id, 0) - (given - max(held, 0)),
                        wallet.cost.get(token_id, 0))  # fmt: skip
        self._realize(taken, proceeds, fill.ts_ms, fallback=strategy)
        return taken

    def restore_position(
        self, wallet_name: str, token_id: str, shares: int, cost: int, strategy: str, opened_ms: int
    ) -> None:
        """A restarted engine takes a holding as the venue reports it (`shares`), at the `cost` and in
        the `strategy` lot its journal says (the strategy's exit rules then manage it)."""
        if shares < 0 or cost < 0:
            raise ValueError(f"a restored position is never negative: {shares} shares, cost {cost}")
        wallet = self.wallets[wallet_name]
        for key in [k for k in wallet.lots if k[0] == token_id]:
            del wallet.lots[key]
        if shares:
            wallet.lots[token_id, strategy] = Lot(shares, cost, opened_ms)
        wallet._set(token_id, shares, cost if shares else 0)

    def reverse_fill(
        self, wallet_name: str, fill: OrderFilled, strategy: str, taken: Mapping[str, tuple[int, int]]
    ) -> None:
        """Undo a fill whose trade failed on chain: it never happened. The cash comes back exactly.
        A BUY's shares leave the lot it booked to at the cost they added while the lot still holds
        them; shares of it sold since leave the position, which may go short (the risk audit shows
        that, and the venue's balances are the truth). A SELL's shares go back to the lots it took
        them from (`taken`, what apply_fill returned) at the cost they left with, and the PnL it
        realized is reversed exactly."""
        wallet = self.wallets[wallet_name]
        token_id = fill.token_id
        self.traded_usdc_micro -= notional(fill.price, fill.size)
        if fill.side is Side.BUY:
            paid = notional(fill.price, fill.size) + fill.fee_usdc - fill.rebate_usdc
            got = fill.size - fill.fee_shares
            wallet.balance_usdc_micro += paid
            lot = wallet.lots.get((token_id, strategy))
            back = min(got, lot.shares) if lot is not None else 0
            cost_back = paid * back // got if got else 0
            if lot is not None and back:
                lot.shares -= back
                lot.cost -= min(cost_back, lot.cost)
                if lot.shares == 0:
                    del wallet.lots[token_id, strategy]
            wallet._set(token_id, wallet.positions.get(token_id, 0) - got,
                        max(wallet.cost.get(token_id, 0) - paid, 0))  # fmt: skip
            # what was sold of those shares since realized PnL against their cost; that sale stands
            return
        given = fill.size + fill.fee_shares
        proceeds = notional(fill.price, fill.size) - fill.fee_usdc + fill.rebate_usdc
        wallet.balance_usdc_micro -= proceeds
        cost_back = 0
        for lot_name, (n, cost) in taken.items():
            lot = wallet.lots.get((token_id, lot_name))
            if lot is None:
                lot = wallet.lots[token_id, lot_name] = Lot(0, 0, fill.ts_ms)
            lot.shares += n
            lot.cost += cost
            cost_back += cost
        wallet._set(
            token_id, wallet.positions.get(token_id, 0) + given, wallet.cost.get(token_id, 0) + cost_back
        )
        for lot_name, pnl in self._realized_parts(taken, proceeds, strategy):
            self._book_realized(-pnl, fill.ts_ms, lot_name)

    def apply_merge(self, wallet_name: str, tokens: tuple[str, str], size: int, ts_ms: int) -> None:
        """`size` complete sets of one market became `size` USDC."""
        wallet = self.wallets[wallet_name]
        wallet.balance_usdc_micro += size
        yes = wallet._take(tokens[0], size, None)
        no = wallet._take(tokens[1], size, None)
        # each set's 1 USDC goes to its two legs in proportion to what they cost
        cost_yes = sum(c for _, c in yes.values())
        cost_no = sum(c for _, c in no.values())
        to_yes = size * cost_yes // (cost_yes + cost_no) if cost_yes + cost_no else size // 2
        self._realize(yes, to_yes, ts_ms)
        self._realize(no, size - to_yes, ts_ms)

    def apply_conversion(
        self,
        wallet_name: str,
        no_tokens: Sequence[str],
        yes_tokens: Sequence[str],
        size: int,
        collateral: int,
        yes_size: int,
        ts_ms: int,
    ) -> None:
        """`size` NO shares of each of `no_tokens` became `collateral` USDC and `yes_size` YES shares
        of each of `yes_tokens` (a neg-risk conversion, core/messages.ConvertPositions).

        Each lot's strategy keeps what its NO shares became, in proportion to the shares it gave:
        its part of the collateral pays back its cost first, and what the cost exceeds it by moves
        to that strategy's lots of the YES shares (split evenly over the tokens), opened when its
        earliest NO lot was. A cost the collateral more than pays back realizes the difference as a
        gain (the YES shares then cost nothing); with no YES shares to carry it, the whole
        difference is realized. Nothing else changes: the payoff is the same whatever wins.
        """
        wallet = self.wallets[wallet_name]
        opened: dict[str, int] = {}
        given: dict[str, list[int]] = {}  # strategy -> [shares, cost]
        for token in no_tokens:
            for strategy, lot in wallet.lots_of(token):
                opened[strategy] = min(opened.get(strategy, lot.opened_ms), lot.opened_ms)
            held = max(wallet.positions.get(token, 0), 0)
            for strategy, (n, cost) in wallet._take(token, min(size, held), None).items():
                part = given.setdefault(strategy, [0, 0])
                part[0] += n
                part[1] += cost
            if size > held:
                # converted shares the books do not show: kept visible as short, like such a sale
                wallet._set(token, wallet.positions.get(token, 0) - (size - held), wallet.cost.get(token, 0))
        wallet.balance_usdc_micro += collateral
        if not given:
            given[""] = [0, 0]  # shares no lot held (never approved by risk): no strategy's
        total = max(sum(n for n, _ in given.values()), 1)
        cash_left, yes_left = collateral, yes_size
        items = list(given.items())
        for i, (strategy, (n, cost)) in enumerate(items):
            last = i == len(items) - 1
            cash = cash_left if last else collateral * n // total
            got = yes_left if last else yes_size * n // total
            cash_left -= cash
            yes_left -= got
            carry = cost - cash
            if not yes_tokens or got <= 0 or carry <= 0:
                self._book_realized(-carry, ts_ms, strategy)
                carry = 0
            if got <= 0:
                continue
            for j, token in enumerate(yes_tokens):
                share = carry // len(yes_tokens) + (carry % len(yes_tokens) if j == 0 else 0)
                yes_lot = wallet.lots.get((token, strategy))
                if yes_lot is None:
                    yes_lot = wallet.lots[token, strategy] = Lot(0, 0, opened.get(strategy, ts_ms))
                yes_lot.shares += got
                yes_lot.cost += share
                wallet._set(token, wallet.positions.get(token, 0) + got, wallet.cost.get(token, 0) + share)

    def apply_resolution(self, tokens: tuple[str, str], winning_token: str) -> None:
        """A market resolved: marks become 1 (winner) and 0 (loser) until the shares are redeemed."""
        for token in tokens:
            self.resolved[token] = MICRO if token == winning_token else 0

    def apply_redemption(
        self, wallet_name: str, tokens: tuple[str, str], winning_token: str, ts_ms: int
    ) -> int:
        """Redeem every share of a resolved market in the wallet; returns the USDC paid."""
        wallet = self.wallets[wallet_name]
        payout = 0
        for token in tokens:
            held = wallet.positions.get(token, 0)
            if held <= 0:
                continue
            taken = wallet._take(token, held, None)
            paid = held if token == winning_token else 0
            payout += paid
            self._realize(taken, paid, ts_ms)
        wallet.balance_usdc_micro += payout
        return payout

    def _realize(
        self, taken: Mapping[str, tuple[int, int]], proceeds: int, ts_ms: int, fallback: str = ""
    ) -> None:
        """Book `proceeds` against the lots `taken` from, pro rata to their shares."""
        for strategy, pnl in self._realized_parts(taken, proceeds, fallback):
            self._book_realized(pnl, ts_ms, strategy)

    @staticmethod
    def _realized_parts(
        taken: Mapping[str, tuple[int, int]], proceeds: int, fallback: str
    ) -> list[tuple[str, int]]:
        """(strategy, PnL) that a sale for `proceeds` of the shares `taken` realizes; parts sum exactly."""
        if not taken:
            return [(fallback, proceeds)]
        shares = sum(n for n, _ in taken.values())
        parts: list[tuple[str, int]] = []
        left = proceeds
        items = list(taken.items())
        for i, (strategy, (n, cost)) in enumerate(items):
            part = left if i == len(items) - 1 else (proceeds * n // shares if shares else 0)
            left -= part
            # shares no strategy bought (a wallet's opening holdings) go to whoever sells them
            parts.append((strategy or fallback, part - cost))
        return parts

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
