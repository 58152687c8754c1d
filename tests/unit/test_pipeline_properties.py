"""Whole random runs of the pure pipeline, checked after every input (issue 12, items 2b, 2c and 6).

Each example builds an engine over two plain markets and one complete neg-risk event of three markets,
with random risk limits, wallets, fees and iceberg settings, then drives `step` with a random script:
book snapshots, trade prints that fire a scripted signal's opportunities (aggressive, passive and
iceberg buys, sells, baskets over the event, duplicates, stale and negative-edge ones), venue reports
on our orders (acks, fills, partial and late fills, repeated trades, rejections, cancels, expiries,
timeouts), operator kill switches (valid and mistyped), resolutions, settlement answers and the passing
of time (iceberg slices, exit timers, stale books). The test plays the venue. At the end the run is
drained (`finish`, every cancel answered) and every opportunity must have ended exactly once.

Risk decisions are observed twice: in the journal (RecordRiskDecision) and through
`kit.RecordingGatekeeper`, the real gatekeeper keeping each check it made. The second view is needed
because the lifecycle journals an iceberg slice's check only when it refuses the slice (an approved
slice leaves no RecordRiskDecision), so the journal alone cannot show that a slice was re-checked.

The properties, by the name each violation carries:

- [journal-order] every opportunity gets exactly one RecordOpportunity, before any other record of it
  (risk decision, order, fill, outcome), and one RecordOutcome, revised only by late fills (revision
  1, 2, ... in order, reason late_fill);
- [size-matches-journal] every order except an iceberg slice has the size approved by the latest
  RecordRiskDecision of its opportunity; a slice is at most the display size, and the slices of a
  parent add up to at most what risk approved for the parent;
- [placed-as-approved] every order is one the gatekeeper checked in the same step, at the size it
  approved; [slice-rechecked] the same for an iceberg slice, approved unresized;
- [decision-journaled] every gatekeeper check is journaled, once per opportunity it covers, with its
  sizes and reasons, and nothing else is (a slice's check included);
- [kill-switch-blocks] nothing is placed under an engaged kill switch that covers it;
  [no-order-on-resolved] nor on a resolved market;
- [daily-loss-kill-switch] a fill that leaves the day beyond the loss limit engages the global switch,
  journaled (RecordKillSwitch) and alerted; no BUY goes out while the day is beyond the limit;
- [audit] runners.loop.audit_risk finds nothing; [audit-caps] nor do the caps it does not cover (per-
  wallet open orders, the neg-risk event's exposure, the order rate);
- [basket-all-or-none] a basket's legs are placed all together or all refused with outcomes;
  [basket-one-size] at one size; [basket-affordable] within the wallet's free balance;
  [basket-profit] at that size every outcome that can win returns more than the basket cost after fees
  (core.baskets.worst_case_profit, and the same recomputed from the fee schedule);
- [one-outcome-at-end] once drained, every opportunity has exactly one outcome and no order is open.

tests/mutation/run.py applies known mutations of the lifecycle to a scratch copy and shows which
properties catch each one.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kit import T0, RecordingGatekeeper, engine, event_legs, market, opportunity, risk_policy
from polysnipe.core.baskets import worst_case_profit
from polysnipe.core.events import BookSnapshot, LastTrade, Level, MarketResolved, Side
from polysnipe.core.exit_rules import ExitParams
from polysnipe.core.fees import NO_FEE, taker_fee
from polysnipe.core.lifecycle import finish
from polysnipe.core.market import Market, NegRiskEvent
from polysnipe.core.messages import (
    CancelOrder,
    Command,
    Input,
    KillSwitch,
    Liquidity,
    MergePositions,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    PlaceOrder,
    PositionsMerged,
    PositionsRedeemed,
    RaiseAlert,
    RecordFill,
    RecordKillSwitch,
    RecordOpportunity,
    RecordOutcome,
    RecordRiskDecision,
    RedeemPositions,
    Tick,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.pipeline import step
from polysnipe.core.risk import RiskDecision
from polysnipe.core.state import EngineState
from polysnipe.core.units import MICRO, ONE, notional
from polysnipe.runners.loop import audit_risk

W1, W2 = "0xw1", "0xw2"
TICK = 10_000
STEP = 10_000  # the venue's 0.01-share size step
EVENT = "E"
PLAIN = (market("0xa", ("a1", "a2")), market("0xb", ("b1", "b2")))
LEGS = event_legs(EVENT)
EVENT_YES = tuple(m.token_ids[0] for m in LEGS)
BASKET_STRATEGY = "spread_hunter"
#: alpha and the baskets trade from W1, beta from W2
STRATEGIES = ("alpha", "beta")
DISPLAY = 8 * MICRO
#: at the end of a run, the time each round of cancelling and answering takes
DRAIN_MS = 60_000
SCOPES = (
    "global",
    "strategy:alpha",
    "strategy:beta",
    f"strategy:{BASKET_STRATEGY}",
    "market:0xa",
    "market:0xe1",
    f"wallet:{W1}",
    f"wallet:{W2}",
    "strategy:",  # mistyped: must be refused loudly, protecting nothing
)


class Violation(AssertionError):
    """One or more properties failed after one input; the message names them in brackets."""


# -- the random run ----------------------------------------------------------------------------------
def _setup() -> st.SearchStrategy[dict[str, Any]]:
    usdc = st.sampled_from
    return st.fixed_dictionaries(
        {
            "policy": st.fixed_dictionaries(
                {
                    "max_order_notional_usdc_micro": usdc([4, 15, 60, 1_000]).map(lambda v: v * MICRO),
                    "max_market_exposure_usdc_micro": usdc([8, 40, 5_000]).map(lambda v: v * MICRO),
                    "max_outcome_exposure_usdc_micro": usdc([6, 25, 5_000]).map(lambda v: v * MICRO),
                    "max_open_orders": st.sampled_from([3, 10, 50, 50]),
                    "max_orders_per_window": st.sampled_from([4, 100, 100]),
                    "daily_loss_limit_usdc_micro": usdc([1, 5, 1_000]).map(lambda v: v * MICRO),
                    "max_event_exposure_usdc_micro": st.sampled_from([None, 12 * MICRO, 50 * MICRO]),
                    "max_open_orders_per_wallet": st.sampled_from([None, None, 2, 5]),
                    "max_basket_repair_loss_usdc_micro": usdc([0, 10]).map(lambda v: v * MICRO),
                }
            ),
            "balances": st.tuples(usdc([5, 30, 200, 5_000]), usdc([5, 30, 5_000])).map(
                lambda b: {W1: b[0] * MICRO, W2: b[1] * MICRO}
            ),
            #: each market's taker fee rate
            "fees": st.lists(st.sampled_from([0, 0, 10_000, 30_000, 70_000]), min_size=5, max_size=5),
            #: each token's opening book: bid in ticks, spread in ticks
            "books": st.lists(st.tuples(st.integers(1, 97), st.integers(1, 3)), min_size=10, max_size=10),
            "iceberg": st.fixed_dictionaries(
                {
                    "size_jitter_bps": st.sampled_from([0, 2_000]),
                    "delay_jitter_ms": st.sampled_from([0, 50]),
                    "child": st.sampled_from(["aggressive", "passive"]),
                }
            ),
        }
    )


#: an action is a kind and five numbers its handler reads as it needs (indices are taken modulo). One
#: integer seeds them: a run draws one number per action where a tuple would cost six draws (most of
#: the test's time), and the seeded spread keeps the kinds weighted as listed whatever integers the
#: draw favours. Shrinking still drops actions from the run.
KINDS: tuple[str, ...] = ("book",) * 8 + ("opp",) * 10 + ("basket",) * 2 + ("report",) * 14
KINDS += ("kill",) * 2 + ("resolve",) + ("tick",) * 4 + ("answer",) * 2
ACTION = st.integers(0, 2**32 - 1)
SHARES = (1, 5, 8, 12, 30, 100, 900)
#: time steps: an iceberg slice's delay, an exit's retry, a book going stale, an exit's time stop
TICKS = (50, 100, 160, 160, 1_000, 6_000, 61_000, 3_700_000)
RUNS = st.tuples(_setup(), st.lists(ACTION, min_size=20, max_size=60, unique=True))


class Run:
    """One random run: the engine, the test acting as its venue, and the checks after every input."""

    def __init__(self, setup: dict[str, Any]) -> None:
        fees = setup["fees"]
        self.markets: tuple[Market, ...] = tuple(
            attrs.evolve(m, fee_rate=fee) for m, fee in zip(PLAIN + LEGS, fees, strict=True)
        )
        self.tokens = [t for m in self.markets for t in m.token_ids]
        self.policy = risk_policy(**setup["policy"])
        self.gatekeeper = RecordingGatekeeper(self.policy)
        routing = {
            "default": "aggressive",
            "by_urgency": {"passive": "passive", "iceberg": "iceberg"},
            "iceberg": {"display_size_micro": DISPLAY, "delay_ms": 100, **setup["iceberg"]},
        }
        self.script: dict[int, list[Opportunity]] = {}
        self.state: EngineState = engine(
            self.script,
            self.markets,
            policy=self.policy,
            routing=routing,
            balances=setup["balances"],
            wallet_for=lambda opp: W2 if opp.strategy == "beta" else W1,
            gatekeeper=self.gatekeeper,
            exits=ExitParams(),
        )
        event_markets = tuple(m.condition_id for m in self.markets if m.neg_risk_market_id == EVENT)
        self.state.markets.add_event(NegRiskEvent(EVENT, event_markets, False, False, True))
        self.now = T0
        self.seq = 0
        # the venue's view
        self.cancels: list[str] = []
        self.settlements: list[MergePositions | RedeemPositions] = []
        self.fills: dict[str, OrderFilled] = {}
        #: cancelled or expired orders a late fill may still race: only until the engine places another
        #: order or settles (the venue would refuse that order the funds, or that settlement the shares,
        #: a late fill had already taken)
        self.racing: set[str] = set()
        self.winners: dict[str, str] = {}
        self.first_seen: dict[str, int] = {}
        self.baskets: dict[str, tuple[str, ...]] = {}
        # the journal's view
        self.recorded: set[str] = set()
        #: per opportunity: the number of RecordOutcomes so far (the first, then its revisions)
        self.outcomes: Counter[str] = Counter()
        self.decisions: dict[str, RecordRiskDecision] = {}
        self.parent_approved: dict[str, int] = {}
        self.sliced: Counter[str] = Counter()
        self.placed_at: list[int] = []
        #: what the run reached, for `pytest --hypothesis-show-statistics`
        self.reached: set[str] = set()
        for i, (bid, spread) in enumerate(setup.get("books", ())):
            self._set_book(i, bid, spread, 2)

    # -- actions -------------------------------------------------------------------------------------
    def play(self, action: int) -> None:
        rng = random.Random(action)
        kind = rng.choice(KINDS)
        numbers = [rng.randrange(1_000) for _ in range(5)]
        self.now += TICKS[numbers[0] % len(TICKS)] if kind == "tick" else 1
        getattr(self, "_" + kind)(*numbers)

    def _book(self, a: int, b: int, c: int, d: int, e: int) -> None:
        """A new book: mostly a move of a token we hold (losses for the daily limit, exits' triggers)."""
        held = sorted({t for w in self.state.portfolio.wallets.values() for t, n in w.positions.items() if n})
        book = self.state.books.get(held[b % len(held)]) if held and a % 3 else None
        if book is not None and book.mid() is not None:
            mid = book.mid() or 0
            self._set_book(self.tokens.index(book.token_id), mid // TICK + c % 41 - 25, d % 3 + 1, e)
        else:
            self._set_book(b, 1 + c % 97, d % 3 + 1, e)

    def _set_book(self, token_i: int, bid_ticks: int, spread: int, e: int, *, remap: bool = True) -> None:
        token = self.tokens[token_i % len(self.tokens)]
        if token in EVENT_YES and remap:
            # three legs from 0.05 to 0.43: a basket costs anywhere from well under 1 to more than 1
            bid_ticks = 5 + bid_ticks % 36
        bid = min(max(bid_ticks, 1), 98) * TICK
        ask = min(bid + spread * TICK, ONE - TICK)
        size = (1, 20, 500)[e % 3] * MICRO
        asks = (Level(ask, size),) if ask > bid else ()
        market_id = self.state.markets.by_token(token).condition_id
        self.step(BookSnapshot(self.now, token, market_id, (Level(bid, size),), asks))

    def _opp(self, kind_i: int, token_i: int, shares_i: int, frac: int, more: int) -> None:
        kinds = ("aggressive", "aggressive", "passive", "iceberg", "iceberg", "sell", "stale", "duplicate")
        kind = kinds[kind_i % len(kinds)]
        token = self.tokens[token_i % len(self.tokens)]
        held = sorted(
            {t for w in self.state.portfolio.wallets.values() for t, n in w.positions.items() if n > 0}
        )
        if kind == "aggressive" and held and more % 3 == 0:
            # the other outcome of something held: a complete set the engine should merge
            token = self.state.markets.complement(held[token_i % len(held)])
        if kind == "duplicate":
            recent = [oid for oid, ts in self.first_seen.items() if self.now - ts < 500_000]
            if recent:
                old = self.state.tracks[recent[more % len(recent)]].opp
                self._fire(token, [attrs.evolve(old, size=old.size + STEP)])
                return
            kind = "aggressive"
        book = self.state.books.get(token)
        side = Side.SELL if kind == "sell" else Side.BUY
        touch = (book.best_bid() if side is Side.SELL else book.best_ask()) if book is not None else None
        touch = touch or 500_000
        offset = (more % 6 - 2) * TICK  # from 2 ticks short of the touch to 3 through it
        limit = min(max(touch + offset if side is Side.BUY else touch - offset, TICK), ONE - TICK)
        fair = limit + (more // 6 % 8 - 1) * TICK if side is Side.BUY else limit - (more // 6 % 8 - 1) * TICK
        size = SHARES[shares_i % len(SHARES)] * MICRO + (frac % 100) * STEP
        self.seq += 1
        created = self.now - (200_000 if kind == "stale" else 0)
        opp = opportunity(
            f"op{self.seq}",
            strategy=STRATEGIES[more % 2],
            market=self.state.markets.by_token(token).condition_id,
            token_id=token,
            side=side,
            size=size,
            limit_price=limit,
            fair_value=min(max(fair, TICK), ONE - TICK),
            edge=fair - limit if side is Side.BUY else limit - fair,
            created_ms=created,
            # icebergs live long enough for their later slices
            expires_ms=created + (30_000 if kind == "iceberg" else 1_000) + (more % 4) * 30_000,
            urgency="aggressive" if kind in ("sell", "stale") else kind,
        )
        self._fire(token, [opp])

    def _basket(self, shares_i: int, frac: int, more: int, d: int, e: int) -> None:
        """Fresh books on the event's legs (what a basket signal reacts to), then a basket at their asks.
        As real ones, it claims an edge of a few ticks (1 to 8), which fees may or may not leave."""
        first, second = 10 + d % 36, 10 + e % 36
        third = min(max(100 - (1 + more // 4 % 8) - first - second, 2), 60)
        for i, ask in enumerate((first, second, third)):
            self._set_book(len(PLAIN) * 2 + 2 * i, ask - 1, 1, 2, remap=False)
        self.seq += 1
        group = f"g{self.seq}"
        asks = []
        for token in EVENT_YES:
            book = self.state.books.get(token)
            asks.append((book.best_ask() if book is not None else None) or 300_000)
        edge = ONE - sum(asks)
        legs = [
            opportunity(
                f"{group}-{i}",
                strategy=BASKET_STRATEGY,
                market=m.condition_id,
                token_id=m.token_ids[0],
                size=(5, 20, 80, 400)[shares_i % 4] * MICRO + (frac % 100) * STEP,
                limit_price=ask,
                fair_value=min(max(ask + edge, TICK), ONE - TICK),
                edge=edge,
                created_ms=self.now,
                expires_ms=self.now + 30_000,
                group_id=group,
                urgency=("aggressive", "aggressive", "passive", "iceberg")[more % 4],
            )
            for i, (m, ask) in enumerate(zip(self.markets[len(PLAIN) :], asks, strict=True))
        ]
        self.baskets[group] = tuple(leg.id for leg in legs)
        self._fire(EVENT_YES[0], legs)

    def _fire(self, token: str, opps: list[Opportunity]) -> None:
        for opp in opps:
            self.first_seen.setdefault(opp.id, self.now)
        self.script[self.now] = opps
        market_id = self.state.markets.by_token(token).condition_id
        self.step(LastTrade(self.now, token, market_id, 500_000, MICRO, Side.BUY))

    def _report(self, order_i: int, kind_i: int, pct_i: int, _d: int, _e: int) -> None:
        records = list(self.state.orders.values())
        if not records:
            return
        live = [r for r in records if not r.is_terminal]
        if live and order_i % 3 == 0:
            record = live[-1]  # the newest order: a venue answers an immediate order at once
        else:
            record = live[order_i % len(live)] if live and order_i % 8 else records[order_i % len(records)]
        order_id, now = record.request.order_id, self.now
        kind = ("accept", "fill", "fill", "partial", "partial", "reject", "cancel", "expire", "unknown",
                "repeat")[kind_i % 10]  # fmt: skip
        if kind == "repeat" and order_id in self.fills:
            self.step(attrs.evolve(self.fills[order_id], ts_ms=now))
        elif kind in ("fill", "partial", "repeat"):
            if record.is_terminal and order_id not in self.racing:
                return
            size = record.remaining
            if kind == "partial":
                size = max(size * (1 + pct_i % 99) // 100 // STEP * STEP, STEP)
            if 0 < size <= record.remaining:
                self.step(self._fill(record.request, size))
        elif kind == "accept":
            self.step(OrderAccepted(order_id, now, f"v-{order_id}"))
        elif kind == "reject":
            self.step(OrderRejected(order_id, now, "fak_not_filled"))
        elif kind == "cancel":
            self.step(OrderCancelled(order_id, now, "venue"))
        elif kind == "expire":
            self.step(OrderExpired(order_id, now))
        else:
            self.step(OrderStatusUnknown(order_id, now, "timeout"))

    def _fill(self, order: OrderRequest, size: int) -> OrderFilled:
        self.seq += 1
        m = self.state.markets.by_token(order.token_id)
        maker = order.post_only
        fee = NO_FEE if maker else taker_fee(order.side, size, order.price, m.fee_rate, m.fee_exponent)
        report = OrderFilled(
            order.order_id, f"t{self.seq}", self.now, order.token_id, order.side, order.price, size,
            Liquidity.MAKER if maker else Liquidity.TAKER, fee.fee_usdc, fee.fee_shares,
        )  # fmt: skip
        self.fills[order.order_id] = report
        return report

    def _kill(self, scope_i: int, engage: int, _c: int, _d: int, _e: int) -> None:
        scope = SCOPES[scope_i % len(SCOPES)]
        self.step(KillSwitch(self.now, scope, bool(engage % 2), "operator", by="operator"))

    def _resolve(self, market_i: int, winner_i: int, _c: int, _d: int, _e: int) -> None:
        m = self.markets[market_i % len(self.markets)]
        winner = m.token_ids[winner_i % 2]
        if m.neg_risk_market_id and any(w in EVENT_YES for w in self.winners.values()):
            winner = m.token_ids[1]  # exactly one outcome of the event wins
        self.winners.setdefault(m.condition_id, winner)
        self.step(MarketResolved(self.now, m.condition_id, self.winners[m.condition_id]))

    def _tick(self, _a: int, _b: int, _c: int, _d: int, _e: int) -> None:
        self.step(Tick(self.now))

    def _answer(self, *_: int) -> None:
        """The venue answers the cancels and settlements asked of it so far."""
        cancels, self.cancels = self.cancels, []
        for order_id in cancels:
            if not self.state.orders[order_id].is_terminal:
                self.step(OrderCancelled(order_id, self.now, "cancelled on request"))
        settlements, self.settlements = self.settlements, []
        for cmd in settlements:
            m = self.state.markets.by_condition(cmd.market)
            if isinstance(cmd, MergePositions):
                free = min(self.state.risk.available_shares(cmd.wallet, t) for t in m.token_ids)
                size = min(cmd.size, free)
                if size > 0:
                    self.step(PositionsMerged(cmd.wallet, cmd.market, size, self.now))
            else:
                winner = self.winners[cmd.market]
                shares = self.state.portfolio.wallets[cmd.wallet].positions.get(winner, 0)
                self.step(PositionsRedeemed(cmd.wallet, cmd.market, winner, shares, shares, self.now))

    def drain(self) -> None:
        """End of the run: cancel what rests, stop slices, answer everything, until nothing is open."""
        for _ in range(20):
            self.now += DRAIN_MS
            self.check_commands(finish(self.state, self.now), self._before(), None)
            self._answer()
            if not any(not r.is_terminal for r in self.state.orders.values()) and not self.cancels:
                break
        bad = [
            f"[one-outcome-at-end] {oid}: no outcome" for oid in self.state.tracks if not self.outcomes[oid]
        ]
        if self.state.risk.open_orders:
            bad.append(
                f"[one-outcome-at-end] still open after the drain: {sorted(self.state.risk.open_orders)}"
            )
        _fail(bad, None)

    # -- checks --------------------------------------------------------------------------------------
    def step(self, event: Input) -> None:
        before = self._before()
        ending = ""
        if (
            isinstance(event, OrderCancelled | OrderExpired)
            and not self.state.orders[event.order_id].is_terminal
        ):
            ending = event.order_id
        commands = step(self.state, event, self.now)
        self.check_commands(commands, before, event)
        reused = any(isinstance(c, PlaceOrder) for c in commands)
        if ending and not reused and self.state.orders[ending].is_terminal:
            self.racing.add(ending)

    def _before(self) -> dict[str, Any]:
        risk = self.state.risk
        return {
            "switches": set(risk.kill_switches),
            "resolved": set(risk.portfolio.resolved),
            "free": {w: risk.free_usdc(w, self.policy.treasury_for(w)) for w in risk.portfolio.wallets},
            "breached": self._breached(),
            "checks": len(self.gatekeeper.checks),
        }

    def _breached(self) -> bool:
        return self.state.risk.daily_pnl(self.now) < -self.policy.daily_loss_limit_usdc_micro

    def check_commands(
        self, commands: Sequence[Command], before: dict[str, Any], event: Input | None
    ) -> None:
        bad: list[str] = []
        places = [c.order for c in commands if isinstance(c, PlaceOrder)]
        checks = self.gatekeeper.checks[before["checks"] :]
        self._check_journal(commands, bad)
        self._check_checked(places, checks, bad)
        self._check_decisions_journaled(commands, checks, bad)
        self._check_kill_switches(places, commands, before, bad)
        self._check_baskets(places, commands, before, bad)
        bad += [f"[audit] {b}" for b in audit_risk(self.state)]
        self._note(commands, places)
        self._check_caps(places, bad)
        if places or isinstance(event, PositionsMerged | PositionsRedeemed):
            self.racing.clear()  # the race is lost: what the late fill would take is committed elsewhere
        for c in commands:
            if isinstance(c, CancelOrder):
                self.cancels.append(c.order_id)
            elif isinstance(c, MergePositions | RedeemPositions):
                self.settlements.append(c)
        _fail(bad, event)

    def _note(self, commands: Sequence[Command], places: list[OrderRequest]) -> None:
        reached = self.reached
        for c in commands:
            if isinstance(c, RecordRiskDecision) and 0 < c.approved_size < c.requested_size:
                reached.add("resize")
            elif isinstance(c, RecordKillSwitch) and c.by == "engine":
                reached.add("daily-loss kill switch")
            elif isinstance(c, MergePositions | RedeemPositions):
                reached.add(type(c).__name__)
            elif isinstance(c, RecordFill):
                reached.add("fill")
        for o in places:
            opp = self.state.tracks[o.opportunity_id].opp
            if o.routing == "iceberg":
                reached.add("slice" if o.order_id.endswith("-0") else "later slice")
            elif opp.group_id:
                reached.add("basket")
            elif opp.reason.startswith("exit:"):
                reached.add("exit")
            elif opp.reason.startswith("basket "):
                reached.add("basket repair")

    def _check_journal(self, commands: Sequence[Command], bad: list[str]) -> None:
        """One RecordOpportunity per opportunity, before anything else about it; at most one outcome;
        every non-slice order the size its latest risk decision approved; slices within the display
        size and, together, within what risk approved for the parent."""
        for c in commands:
            oid = _opportunity_of(c)
            if oid is None:
                continue
            if isinstance(c, RecordOpportunity):
                if oid in self.recorded:
                    bad.append(f"[journal-order] a second RecordOpportunity for {oid}")
                self.recorded.add(oid)
                continue
            if oid not in self.recorded:
                bad.append(f"[journal-order] {type(c).__name__} of {oid} before its RecordOpportunity")
            if isinstance(c, RecordOutcome):
                # a later RecordOutcome only as the next revision (a late fill), never a second outcome
                if c.revision != self.outcomes[oid] or (c.revision and "late_fill" not in c.reasons):
                    bad.append(f"[journal-order] RecordOutcome revision {c.revision} for {oid}")
                self.outcomes[oid] = max(self.outcomes[oid], c.revision + 1)
            elif isinstance(c, RecordRiskDecision):
                if c.approved != (c.approved_size > 0):
                    bad.append(
                        f"[journal-order] decision of {oid} approved={c.approved} at {c.approved_size}"
                    )
                self.decisions[oid] = c
                self.parent_approved.setdefault(oid, c.approved_size)
            elif isinstance(c, PlaceOrder):
                order = c.order
                self.placed_at.append(self.now)
                decision = self.decisions.get(oid)
                if order.routing == "iceberg" and order.parent_id:
                    self.sliced[oid] += order.size
                    if order.size > DISPLAY:
                        bad.append(f"[size-matches-journal] slice {order.order_id} {order.size} > display")
                    if self.sliced[oid] > self.parent_approved.get(oid, 0):
                        bad.append(f"[size-matches-journal] slices of {oid} {self.sliced[oid]} > approved")
                elif decision is None or not decision.approved or decision.approved_size != order.size:
                    approved = None if decision is None else (decision.approved, decision.approved_size)
                    bad.append(
                        f"[size-matches-journal] {order.order_id} size {order.size}, journal {approved}"
                    )

    def _check_checked(
        self,
        places: list[OrderRequest],
        checks: list[tuple[tuple[OrderRequest, ...], RiskDecision]],
        bad: list[str],
    ) -> None:
        """Every order placed is an order the gatekeeper checked in this step and approved, at the size
        it approved; an iceberg slice is approved as it is (never resized)."""
        used: set[tuple[int, int]] = set()
        for order in places:
            slice_ = order.routing == "iceberg" and bool(order.parent_id)
            match = next(
                (
                    (i, j)
                    for i, (legs, d) in enumerate(checks)
                    for j, leg in enumerate(legs)
                    if (i, j) not in used
                    and d.approved
                    and attrs.evolve(leg, size=d.approved_size) == order
                    and (d.outcome == "approve" or not slice_)
                ),
                None,
            )
            if match is None:
                name = "slice-rechecked" if slice_ else "placed-as-approved"
                bad.append(f"[{name}] {order.order_id} size {order.size} placed without a passing check")
            else:
                used.add(match)

    def _check_decisions_journaled(
        self,
        commands: Sequence[Command],
        checks: list[tuple[tuple[OrderRequest, ...], RiskDecision]],
        bad: list[str],
    ) -> None:
        """Every check the gatekeeper made is journaled once per opportunity it covers, and nothing else
        is; an iceberg slice's check is journaled as approved at its size or refused (0)."""
        expected: Counter[tuple[str, int, int, tuple[str, ...]]] = Counter()
        for legs, d in checks:
            for leg in legs:
                if leg.routing == "iceberg" and leg.parent_id:
                    # a slice is approved as it is or not at all
                    unresized = d.outcome == "approve" and d.approved_size == leg.size
                    expected[(leg.opportunity_id, leg.size, leg.size if unresized else 0, d.reasons)] += 1
                else:
                    expected[(leg.opportunity_id, leg.size, d.approved_size, d.reasons)] += 1
        journaled = Counter(
            (c.opportunity_id, c.requested_size, c.approved_size, c.reasons)
            for c in commands
            if isinstance(c, RecordRiskDecision)
        )
        if expected != journaled:
            bad.append(
                "[decision-journaled] checked but not journaled "
                f"{sorted((expected - journaled).elements())}, journaled but not checked "
                f"{sorted((journaled - expected).elements())}"
            )

    def _check_kill_switches(
        self, places: list[OrderRequest], commands: Sequence[Command], before: dict[str, Any], bad: list[str]
    ) -> None:
        """Nothing is placed under a kill switch that covers it or on a resolved market; no BUY while the
        day's loss is beyond the limit; a fill that leaves it beyond the limit engages the global switch."""
        for order in places:
            covering = {
                "global",
                f"strategy:{order.strategy}",
                f"market:{order.market}",
                f"wallet:{order.wallet}",
            } & before["switches"]
            if covering:
                bad.append(f"[kill-switch-blocks] {order.order_id} placed under {sorted(covering)}")
            if order.token_id in before["resolved"]:
                bad.append(f"[no-order-on-resolved] {order.order_id} placed on resolved {order.token_id}")
        breached = self._breached()
        if before["breached"] and breached:
            buys = [o.order_id for o in places if o.side is Side.BUY]
            if buys:
                bad.append(f"[daily-loss-kill-switch] BUYs {buys} placed beyond the daily loss limit")
        if breached and any(isinstance(c, RecordFill) for c in commands):
            if "global" not in self.state.risk.kill_switches:
                bad.append(
                    "[daily-loss-kill-switch] a fill left the day beyond the limit, global not engaged"
                )
            elif "global" not in before["switches"]:
                recorded = any(
                    isinstance(c, RecordKillSwitch) and c.scope == "global" and c.engaged for c in commands
                )
                alerted = any(
                    isinstance(c, RaiseAlert) and c.severity == "critical" and c.code == "kill_switch_engaged"
                    for c in commands
                )
                if not (recorded and alerted):
                    bad.append(f"[daily-loss-kill-switch] engaged: recorded={recorded} alerted={alerted}")

    def _check_baskets(
        self, places: list[OrderRequest], commands: Sequence[Command], before: dict[str, Any], bad: list[str]
    ) -> None:
        """Basket legs are placed all or none, at one size, within the wallet's free balance, and at that
        size every outcome that can win returns more than the basket cost after fees."""
        by_group: dict[str, list[OrderRequest]] = {}
        for order in places:
            group = self.state.tracks[order.opportunity_id].opp.group_id
            if group:
                by_group.setdefault(group, []).append(order)
        ended = {c.opportunity_id for c in commands if isinstance(c, RecordOutcome)}
        for group, legs in self.baskets.items():
            placed = by_group.pop(group, [])
            if not placed:
                started = {c.opp.id for c in commands if isinstance(c, RecordOpportunity)}
                if started & set(legs) and not set(legs) <= ended:
                    bad.append(f"[basket-all-or-none] {group}: refused legs without outcomes")
                continue
            if sorted(o.opportunity_id for o in placed) != sorted(legs):
                bad.append(f"[basket-all-or-none] {group}: placed {[o.order_id for o in placed]} of {legs}")
                continue
            size = placed[0].size
            if {size} != {o.size for o in placed}:
                bad.append(f"[basket-one-size] {group}: sizes {[o.size for o in placed]}")
                continue
            wallet = placed[0].wallet
            cost = sum(notional(o.price, size) for o in placed)
            if cost > before["free"][wallet]:
                bad.append(f"[basket-affordable] {group}: {cost} > free {before['free'][wallet]} of {wallet}")
            markets = [self.state.markets.by_token(o.token_id) for o in placed]
            if worst_case_profit([(m, o.price) for m, o in zip(markets, placed, strict=True)], size) <= 0:
                bad.append(f"[basket-profit] {group}: worst_case_profit <= 0 at {size}")
            # the same, from the fee schedule directly: each winner nets size - its fee in shares
            paid = sum(-(-o.price * size // MICRO) for o in placed)
            for m, o in zip(markets, placed, strict=True):
                fee = taker_fee(Side.BUY, size, o.price, m.fee_rate, m.fee_exponent).fee_shares
                if size - fee <= paid:
                    bad.append(
                        f"[basket-profit] {group}: if {o.token_id} wins it pays {size - fee} <= {paid}"
                    )
        if by_group:
            bad.append(f"[basket-all-or-none] legs of unknown groups placed: {sorted(by_group)}")

    def _check_caps(self, places: list[OrderRequest], bad: list[str]) -> None:
        """The caps audit_risk does not cover: per-wallet open orders, the event's exposure, the rate."""
        policy, risk = self.policy, self.state.risk
        per_wallet = policy.max_open_orders_per_wallet
        for wallet in risk.portfolio.wallets:
            n = risk.open_orders_of(wallet)
            if per_wallet is not None and n > per_wallet:
                bad.append(f"[audit-caps] {wallet} has {n} open orders > {per_wallet}")
        exposure = sum(risk.exposure(t) for t in self.state.markets.event_tokens(EVENT))
        if exposure > policy.event_exposure_cap:
            bad.append(f"[audit-caps] event exposure {exposure} > {policy.event_exposure_cap}")
        if places:
            window = [t for t in self.placed_at if t > self.now - policy.rate_window_ms]
            if len(window) > policy.max_orders_per_window:
                bad.append(f"[audit-caps] {len(window)} orders in the rate window")


def _opportunity_of(c: Command) -> str | None:
    if isinstance(c, RecordOpportunity):
        return c.opp.id
    if isinstance(c, RecordRiskDecision | RecordOutcome | RecordFill):
        return c.opportunity_id
    if isinstance(c, PlaceOrder):
        return c.order.opportunity_id
    return None


def _fail(bad: list[str], event: Input | None) -> None:
    """Raise the violations found after `event` (None: the end of the run), if any. Their property names
    also go to $POLYSNIPE_PROPERTY_LOG when set: tests/mutation/run.py reads which properties failed."""
    if not bad:
        return
    path = os.environ.get("POLYSNIPE_PROPERTY_LOG")
    if path:
        with open(path, "a", encoding="ascii") as f:
            f.write(" ".join(sorted({b.partition("]")[0] + "]" for b in bad})) + "\n")
    raise Violation(f"after {event!r}:\n  " + "\n  ".join(bad))


# -- the properties ----------------------------------------------------------------------------------
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(RUNS)
def test_random_runs_keep_the_pipeline_invariants(run: tuple[dict[str, Any], list[int]]) -> None:
    """Every property of the module docstring, after every input of a random run and at its end."""
    setup, actions = run
    r = Run(setup)
    for action in actions:
        r.play(action)
    r.drain()
    for what in sorted(r.reached):
        event(what)


def test_iceberg_slices_respect_the_event_exposure_cap() -> None:
    """An iceberg on one market of a neg-risk event, then an order on another market of the event."""
    setup = {
        "policy": {"max_event_exposure_usdc_micro": 10 * MICRO},
        "balances": {W1: 1_000 * MICRO, W2: 1_000 * MICRO},
        "fees": [0] * 5,
        "iceberg": {"size_jitter_bps": 0, "delay_jitter_ms": 0, "child": "aggressive"},
    }
    r = Run(setup)
    for token in EVENT_YES[:2]:
        m = r.state.markets.by_token(token)
        r.step(BookSnapshot(r.now, token, m.condition_id, (Level(280_000, 500 * MICRO),),
                            (Level(300_000, 500 * MICRO),)))  # fmt: skip
    iceberg = opportunity("ice", strategy="alpha", market=LEGS[0].condition_id, token_id=EVENT_YES[0],
                          size=20 * MICRO, limit_price=300_000, urgency="iceberg")  # fmt: skip
    other = opportunity("other", strategy="alpha", market=LEGS[1].condition_id, token_id=EVENT_YES[1],
                        size=20 * MICRO, limit_price=300_000)  # fmt: skip
    r.now += 1
    r._fire(EVENT_YES[0], [iceberg])  # first slice: 8 shares at 0.30 = 2.40 USDC
    r.now += 1
    r._fire(EVENT_YES[1], [other])  # 20 at 0.30 = 6.00 USDC: 8.40 of the event's 10 USDC
    [first] = [o for o in r.state.orders.values() if o.request.opportunity_id == "ice"]
    r.now += 1
    r.step(r._fill(first.request, first.request.size))
    r.now += 200
    r.step(Tick(r.now))  # the second slice (7 shares, 2.10 USDC) would take the event to 10.50


def test_every_iceberg_slice_check_is_journaled() -> None:
    state = engine({T0 + 1: [opportunity("i", size=20 * MICRO, urgency="iceberg")]})
    book = BookSnapshot(T0, "111", "0xc1", (Level(480_000, 100 * MICRO),), (Level(500_000, 100 * MICRO),))
    step(state, book, T0)
    commands = step(state, LastTrade(T0 + 1, "111", "0xc1", 500_000, MICRO, Side.BUY), T0 + 1)
    [slice_] = [c.order for c in commands if isinstance(c, PlaceOrder)]
    # the parent's decision (20 shares) is journaled; the first slice's own check (8 shares) is not
    decisions = [(c.requested_size, c.approved_size) for c in commands if isinstance(c, RecordRiskDecision)]
    assert (slice_.size, slice_.size) in decisions, decisions
