"""The one engine loop: backtest, paper and live trading run this code; only the ports behind it differ.

Theory of operation
-------------------
The loop takes batches of inputs from its InputSource (a replayed recording, the market WebSocket, the
bus), and for each one:

1. shows a market event to the MarketEventSink (the simulated venue's books; the CLOB adapter's ticks);
2. asks the clock for the engine's time of that input (event time in a replay, the wall clock live);
   a backtest with a market-data latency hands the event to the engine only once it has arrived
   (venue time plus the modelled delay), while the venue already acted on it;
3. hands the execution reports that fell due by then to the step first (a simulated venue's latency),
   so the engine never acts on a market it would already have seen its own orders change;
4. runs the pure step and performs the commands it returns: orders and cancels through the
   ExecutionPort (the reports a venue answers with at once go straight back into the step), journal
   records to the Journal, alerts to the journal and the log.

After each batch the journal commits (one transaction per consumed batch). With nothing to read, the
loop waits on the source until the earliest of the venue's next due report and the step's next timer
(an iceberg slice), then delivers and ticks. A risk audit independent of the gatekeeper runs after
every placement and fill; a breach is logged and counted, never silently absorbed.

The per-input work is synchronous: `await` happens only where an input produced commands, so a
backtest runs at the speed of the step. With a feed delay, runs of market events that need no
coroutine (nothing due from the venue, no commands to perform) go through runners/_loop.c, which does
steps 1-4 for them in one call and takes the equity samples that fall due; the Python path here is
its reference.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Protocol

from polysnipe.adapters.logs import get_logger
from polysnipe.core.book import book_implementation
from polysnipe.core.events import (
    BookSnapshot,
    ExternalSignal,
    LastTrade,
    MarketResolved,
    PriceChange,
    TickSizeChange,
)
from polysnipe.core.lifecycle import finish
from polysnipe.core.messages import (
    CancelOrder,
    Command,
    ConvertPositions,
    ExecutionReport,
    JournalRecord,
    KillSwitch,
    MergePositions,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    PlaceOrder,
    PositionsConverted,
    PositionsMerged,
    PositionsRedeemed,
    RaiseAlert,
    RecordError,
    RecordFill,
    RecordKillSwitch,
    RecordOpportunity,
    RecordOrderStatus,
    RecordOutcome,
    RecordRiskDecision,
    RedeemPositions,
    SettlementRefused,
    SettlementReport,
    Tick,
    TradeSettlement,
    VenueCondition,
)
from polysnipe.core.pipeline import next_timer_ms, step
from polysnipe.core.ports import (
    NEVER_MS,
    ExecutionPort,
    InputSource,
    Journal,
    MarketEventSink,
    SettlementPort,
)
from polysnipe.core.state import EngineState
from polysnipe.core.units import format_micro
from polysnipe.runners.report import EquityPoint

__all__ = ["DRAIN_MS", "EVENT_NAMES", "EngineLoop", "LoopClock", "NullSink", "audit_risk"]

log = get_logger("polysnipe.engine")

#: the market-channel name of each input type, for counts in reports
EVENT_NAMES: dict[type, str] = {
    BookSnapshot: "book",
    PriceChange: "price_change",
    TickSizeChange: "tick_size_change",
    LastTrade: "last_trade_price",
    ExternalSignal: "external_signal",
    MarketResolved: "market_resolved",
}
_MARKET = frozenset({BookSnapshot, PriceChange, TickSizeChange, LastTrade, MarketResolved})
_REPORTS = frozenset(
    {
        OrderAccepted,
        OrderRejected,
        OrderFilled,
        OrderCancelled,
        OrderExpired,
        OrderStatusUnknown,
        PositionsMerged,
        PositionsRedeemed,
        PositionsConverted,
        SettlementRefused,
        TradeSettlement,
    }
)
_NOTICES = frozenset({RaiseAlert, RecordError})
#: at the end of a run, how long in-flight orders get to arrive and the final cancels to be answered
DRAIN_MS = 60_000
#: an event `_release_quiet` left for the coroutine: the event, its engine time, and the commands its
#: step returned with perf_counter_ns at the step's start (None, 0: the step has not run)
_Held = tuple[object, int, list[Command] | None, int]


_feed_quiet: Callable[..., tuple[int, _Held | None]] | None
try:
    from polysnipe.runners._loop import feed_quiet as _feed_quiet
except ImportError:  # the extension is not built: the Python path serves alone
    _feed_quiet = None


class LoopClock(Protocol):
    def observe(self, ts_ms: int) -> int: ...

    def now_ms(self) -> int: ...


class NullSink:
    """A MarketEventSink for compositions where nothing but the engine needs market events."""

    def on_market_event(self, event: object) -> None:
        return None


def audit_risk(state: EngineState) -> list[str]:
    """Independent check of the risk limits on the engine's current state (not the gatekeeper's code).

    Run after every order placement and fill: a non-empty answer is a breach the gatekeeper let through.
    """
    policy = state.gatekeeper.policy
    risk = state.risk
    breaches = []
    if len(risk.open_orders) > policy.max_open_orders:
        breaches.append(f"open_orders {len(risk.open_orders)} > {policy.max_open_orders}")
    for name, wallet in risk.portfolio.wallets.items():
        free = risk.free_usdc(name, policy.treasury_for(name))
        if free < 0:
            breaches.append(f"wallet {name} free balance {free} < 0")
        breaches += [f"wallet {name} short {t}" for t, n in wallet.positions.items() if n < 0]
    # Only tokens held or reserved have exposure: a market with neither is within any cap that is not
    # negative (the config's are positive), and skipping it keeps the audit, run after every order,
    # proportional to what the engine holds rather than to every market it knows.
    live: set[str] | None = None
    if policy.max_outcome_exposure_usdc_micro >= 0 and policy.max_market_exposure_usdc_micro >= 0:
        live = set(risk.reserved_by_token)
        for wallet in risk.portfolio.wallets.values():
            live.update(wallet.cost)
    for market in state.markets:
        if live is not None and live.isdisjoint(market.token_ids):
            continue
        per_token = [risk.exposure(t) for t in market.token_ids]
        for token, exposure in zip(market.token_ids, per_token, strict=True):
            if exposure > policy.max_outcome_exposure_usdc_micro:
                breaches.append(f"outcome exposure {token} {exposure}")
        if sum(per_token) > policy.max_market_exposure_usdc_micro:
            breaches.append(f"market exposure {market.condition_id} {sum(per_token)}")
    return breaches


class EngineLoop:
    """Runs the step over an input source and performs its commands through the ports (module doc)."""

    def __init__(
        self,
        state: EngineState,
        *,
        source: InputSource,
        execution: ExecutionPort,
        sink: MarketEventSink,
        settlement: SettlementPort,
        journal: Journal,
        clock: LoopClock,
        equity_sample_ms: int = 1_000,
        max_wait_s: float = 1.0,
        on_batch: Callable[[], None] | None = None,
        feed_delay: Callable[[], int] | None = None,
        controls: Callable[[], Sequence[KillSwitch]] | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.execution = execution
        self.sink = sink
        self.settlement = settlement
        self.journal = journal
        self.clock = clock
        self.equity_sample_ms = equity_sample_ms
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        #: a simulated market-data latency (backtests): each market event reaches the engine this many
        #: ms after the venue applied it; None when the latency is real (paper and live runs)
        self.feed_delay = feed_delay
        #: operators' kill switches changed since the last call (the journal's KillSwitchWatch), read
        #: before every batch so a switch engaged from the command line stops the next decision
        self.controls = controls
        self._feed: deque[tuple[int, object]] = deque()
        self._feed_last_ms = 0
        self.now_ms = 0
        #: inputs seen, by market-channel name (EVENT_NAMES)
        self.counts: Counter[str] = Counter()
        #: for market inputs that placed orders: wall time of the pure step, and from the input entering
        #: the step to its last order handed to the execution port (signed, on a signing port)
        self.decision_ns: list[int] = []
        self.order_ns: list[int] = []
        #: PlaceOrder commands of each event timed in order_ns: 1 is a single order, more a basket
        self.order_legs: list[int] = []
        #: perf_counter_ns when the execution port last took an order (where order_ns ends)
        self._placed_ns = 0
        self.audits = 0
        self.breaches: list[str] = []
        self.equity: list[EquityPoint] = []
        self._next_sample_ms = -1
        self._stopping = False

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Consume the source until it ends (or `stop()`); the journal commits after every batch."""
        source = self.source
        # a source whose entries wait for acknowledgement (the bus: adapters/inbox.AckingSource)
        acknowledge: Callable[[], None] | None = getattr(source, "acknowledge", None)
        while not self._stopping:
            batch = await source.next_batch(self._wait_s())
            if self.controls is not None:
                await self._apply_controls()
            if batch is None:
                # the source ended: what is still on its way to the engine arrives now
                await self._release_feed(NEVER_MS)
                break
            if batch:
                await self._consume(batch)
            else:
                await self._idle()
            self.journal.commit()
            if acknowledge is not None:
                # the journal holds what the batch caused: its entries may leave the bus
                acknowledge()
            if self.on_batch is not None:
                self.on_batch()

    async def _apply_controls(self) -> None:
        assert self.controls is not None
        for switch in self.controls():
            now = self.clock.observe(self.clock.now_ms())
            self.now_ms = now
            log.info("kill_switch_from_operator", scope=switch.scope, engage=switch.engage, by=switch.by,
                     reason=switch.reason)  # fmt: skip
            await self.perform(step(self.state, switch, now), now)

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (SIGTERM, a paper run's deadline)."""
        self._stopping = True

    async def drain(self, reason: str) -> None:
        """End of a run: let orders in flight arrive, cancel what still rests, stop unreleased slices,
        and take the venue's answers, so every opportunity ends with an outcome."""
        horizon = self.clock.observe(self.now_ms) + DRAIN_MS
        self.now_ms = horizon
        await self._deliver(self.execution.due(horizon), horizon)
        await self.perform(finish(self.state, horizon, reason), horizon)
        await self._deliver(self.execution.due(horizon + DRAIN_MS), horizon)
        self.sample_equity(horizon, force=True)
        self.journal.commit()

    def _wait_s(self) -> float | None:
        wake = min(self.execution.wake_ms, next_timer_ms(self.state))
        if wake >= NEVER_MS:
            return self.max_wait_s
        return min(max(wake - self.clock.now_ms(), 0) / 1000, self.max_wait_s)

    async def _idle(self) -> None:
        now = self.clock.observe(self.clock.now_ms())
        self.now_ms = now
        if now >= self.execution.wake_ms:
            await self._deliver(self.execution.due(now), now)
        commands = step(self.state, Tick(now), now)
        if commands:
            await self.perform(commands, now)
        self.sample_equity(now)

    async def _consume(self, batch: Sequence[object]) -> None:
        state = self.state
        counts = self.counts
        delayed = self.feed_delay is not None
        # with a feed delay, runs of market events go through the compiled loop where the compiled
        # parts serve (runners/_loop.c); it stops where the coroutine is needed
        quiet = (
            _feed_quiet if delayed and type(batch) is list and book_implementation() == "compiled" else None
        )
        i, n = 0, len(batch)
        while i < n:
            if quiet is not None:
                i, held = quiet(batch, i, self, step, state, self.sink.on_market_event, self.clock.observe,
                                self.execution, self._feed, self.feed_delay, counts, EVENT_NAMES, _MARKET,
                                time.perf_counter_ns)  # fmt: skip
                if held is not None:
                    item = batch[i]
                    await self._release_feed(item.ts_ms, held)  # type: ignore[attr-defined]
                    self._to_feed(item)
                    i += 1
                    continue
                if i == n:
                    break
            item = batch[i]
            i += 1
            kind = type(item)
            if kind in _MARKET:
                counts[EVENT_NAMES[kind]] += 1
                if not delayed:
                    self.sink.on_market_event(item)  # type: ignore[arg-type]
                    await self._engine_event(item, self.clock.observe(item.ts_ms))  # type: ignore[attr-defined]
                    continue
                ts = item.ts_ms  # type: ignore[attr-defined]
                held = self._release_quiet(ts)
                if held is not None:
                    await self._release_feed(ts, held)
                self._to_feed(item)
            elif kind is ExternalSignal:
                counts[EVENT_NAMES[kind]] += 1
                ts = item.ts_ms  # type: ignore[attr-defined]
                feed = self._feed
                if feed and feed[0][0] <= ts:
                    await self._release_feed(ts)
                await self._engine_event(item, self.clock.observe(ts))
            elif kind in _REPORTS:
                now = self.clock.observe(item.ts_ms)  # type: ignore[attr-defined]
                self.now_ms = now
                await self._deliver((item,), now)  # type: ignore[arg-type]
            elif kind is KillSwitch or kind is VenueCondition:
                now = self.clock.observe(item.ts_ms)  # type: ignore[attr-defined]
                self.now_ms = now
                await self.perform(step(state, item, now), now)  # type: ignore[arg-type]
            elif kind in _NOTICES:
                self._notice(item)  # type: ignore[arg-type]
            else:
                raise TypeError(f"the engine loop cannot take a {kind.__name__}")

    def _to_feed(self, item: object) -> None:
        """A market event goes to the venue at the exchange's time and reaches the engine once its
        simulated latency has passed, never before the event ahead of it."""
        self.sink.on_market_event(item)  # type: ignore[arg-type]
        assert self.feed_delay is not None
        arrives = item.ts_ms + self.feed_delay()  # type: ignore[attr-defined]
        if arrives < self._feed_last_ms:
            arrives = self._feed_last_ms
        self._feed_last_ms = arrives
        self._feed.append((arrives, item))

    async def _release_feed(self, until_ms: int, held: _Held | None = None) -> None:
        """Hand the engine the market events that have reached it by `until_ms`, in order (after
        `held`, the one `_release_quiet` stopped at)."""
        if held is None:
            held = self._release_quiet(until_ms)
        while held is not None:
            item, now, commands, t0 = held
            if commands is None:
                await self._engine_event(item, now)
            else:
                await self._performed(commands, now, t0)
                self.sample_equity(now)
            held = self._release_quiet(until_ms)

    def _release_quiet(self, until_ms: int) -> _Held | None:
        """`_release_feed` without a coroutine while it can: events with nothing due from the venue whose
        step returns no commands (nearly all of them) are done here, with the equity sample when one is
        due; the first that needs more comes back with its time (and commands, when its step ran: the
        caller samples after performing them), or None at the end."""
        feed = self._feed
        observe = self.clock.observe
        execution = self.execution
        state = self.state
        perf = time.perf_counter_ns
        while feed and feed[0][0] <= until_ms:
            arrives, item = feed.popleft()
            now = observe(arrives)
            if now >= execution.wake_ms:
                return item, now, None, 0
            self.now_ms = now
            t0 = perf()
            commands = step(state, item, now)  # type: ignore[arg-type]
            if commands:
                return item, now, commands, t0
            if now >= self._next_sample_ms:
                self.sample_equity(now)
        return None

    async def _engine_event(self, item: object, now: int) -> None:
        """One market event or signal reaching the engine at `now`: the venue's due reports first."""
        self.now_ms = now
        execution = self.execution
        if now >= execution.wake_ms:
            reports = execution.due(now)
            if reports:
                await self._deliver(reports, now)
        t0 = time.perf_counter_ns()
        commands = step(self.state, item, now)  # type: ignore[arg-type]
        if commands:
            await self._performed(commands, now, t0)
        if now >= self._next_sample_ms:
            self.sample_equity(now)

    async def _performed(self, commands: list[Command], now: int, t0: int) -> None:
        """Perform the commands a market event's step (begun at perf_counter_ns `t0`) returned, timing
        the decision and the orders when it places any."""
        places = any(type(c) is PlaceOrder for c in commands)
        if places:
            self.decision_ns.append(time.perf_counter_ns() - t0)
        await self.perform(commands, now)
        if places:
            # to the last order taken, not to the end of perform: the venue's answers it then
            # feeds back in (acks, fills and their audits) come after the order is out
            self.order_ns.append(self._placed_ns - t0)
            self.order_legs.append(sum(1 for c in commands if type(c) is PlaceOrder))

    # -- effects -------------------------------------------------------------------------------
    async def _deliver(self, reports: Sequence[ExecutionReport | SettlementReport], now: int) -> None:
        """Feed venue reports into the step in the order the venue made them."""
        for r in reports:
            if type(r) is OrderRejected:
                rec = self.state.orders.get(r.order_id)
                log.info("order_rejected", correlation_id=rec.request.correlation_id if rec else "",
                         order_id=r.order_id, reason=r.reason)  # fmt: skip
            await self.perform(step(self.state, r, r.ts_ms), now)

    async def perform(self, commands: Sequence[Command], now: int) -> None:
        """Journal, log and execute the step's commands, in order; venue answers go back in.

        Several PlaceOrder commands in a row (a basket's legs) go out together (`_place_basket`).
        Log lines are written once the order they lead to is out (or, for records no order follows,
        at the next effect and at the end): rendering a line is not on an order's path, and the lines
        keep the commands' order."""
        journal = self.journal
        execution = self.execution
        records: list[JournalRecord] = []
        unlogged: list[JournalRecord] = []
        answers: list[ExecutionReport | SettlementReport] = []
        n = len(commands)
        basket_end = 0
        try:
            for i, cmd in enumerate(commands):
                if i < basket_end:
                    continue  # a leg of the basket placed below
                kind = type(cmd)
                if kind is PlaceOrder:
                    if i + 1 < n and type(commands[i + 1]) is PlaceOrder:
                        basket_end = i + 2
                        while basket_end < n and type(commands[basket_end]) is PlaceOrder:
                            basket_end += 1
                        await self._place_basket(commands[i:basket_end], records, unlogged, answers, now)  # type: ignore[arg-type]
                        records = []
                        continue
                    o = cmd.order  # type: ignore[union-attr]
                    records.append(cmd)  # type: ignore[arg-type]
                    # the order is in the journal, committed, before it can reach the venue: a crash
                    # after the POST finds it there (and the execution port's outbox row, which refers to it)
                    journal.record(records)
                    journal.commit()
                    records = []
                    try:
                        answers.extend(await execution.submit(o, now))
                        self._placed_ns = time.perf_counter_ns()
                    finally:
                        _log_records(unlogged)
                        _log_placed(o)
                    self.audit()
                elif kind is CancelOrder:
                    _log_records(unlogged)
                    log.info("order_cancel", correlation_id=cmd.correlation_id, order_id=cmd.order_id,  # type: ignore[union-attr]
                             reason=cmd.reason)  # type: ignore[union-attr]  # fmt: skip
                    answers.extend(await execution.cancel(cmd.order_id, now))  # type: ignore[union-attr]
                elif kind is MergePositions or kind is RedeemPositions:
                    records.append(cmd)  # type: ignore[arg-type]
                    journal.record(records)
                    records = []
                    _log_records(unlogged)
                    log.info("settlement_requested", kind=kind.__name__, wallet=cmd.wallet, market=cmd.market)  # type: ignore[union-attr]
                    settle = self.settlement.merge if kind is MergePositions else self.settlement.redeem
                    answers.extend(await settle(cmd))  # type: ignore[arg-type]
                elif kind is ConvertPositions:
                    records.append(cmd)  # type: ignore[arg-type]
                    journal.record(records)
                    records = []
                    _log_records(unlogged)
                    log.info("settlement_requested", kind=kind.__name__, correlation_id=cmd.correlation_id,  # type: ignore[union-attr]
                             wallet=cmd.wallet, neg_risk_event=cmd.event, markets=list(cmd.markets),  # type: ignore[union-attr]
                             size=format_micro(cmd.size))  # type: ignore[union-attr]  # fmt: skip
                    answers.extend(await self.settlement.convert(cmd))  # type: ignore[arg-type]
                else:
                    records.append(cmd)  # type: ignore[arg-type]
                    unlogged.append(cmd)  # type: ignore[arg-type]
                    if kind is RecordFill:
                        _log_records(unlogged)
                        self.audit()
        finally:
            _log_records(unlogged)
        if records:
            journal.record(records)
        if answers:
            await self._deliver(answers, now)

    async def _place_basket(
        self,
        legs: Sequence[PlaceOrder],
        records: list[JournalRecord],
        unlogged: list[JournalRecord],
        answers: list[ExecutionReport | SettlementReport],
        now: int,
    ) -> None:
        """`perform` for a run of PlaceOrder commands (a basket's legs): every leg journaled and
        committed first, then all handed to the execution port in one call (its `submit_many`, which
        signs them at once and sends them in one request; `submit` per leg on a port without one).
        The venue's answers join `answers` in the legs' order; log lines and audits follow."""
        journal = self.journal
        execution = self.execution
        orders = [leg.order for leg in legs]
        # every leg in the journal, committed, before any can reach the venue (as for one order)
        records.extend(legs)
        journal.record(records)
        journal.commit()
        try:
            submit_many = getattr(execution, "submit_many", None)
            if submit_many is None:
                for o in orders:
                    answers.extend(await execution.submit(o, now))
            else:
                for reports in await submit_many(orders, now):
                    answers.extend(reports)
            self._placed_ns = time.perf_counter_ns()
        finally:
            _log_records(unlogged)
            for o in orders:
                _log_placed(o)
        for _ in orders:
            self.audit()

    def _notice(self, notice: RaiseAlert | RecordError) -> None:
        self.journal.record((notice,))
        _log_record(notice)

    def audit(self) -> None:
        self.audits += 1
        found = audit_risk(self.state)
        if found:
            self.breaches.extend(found)
            log.error("risk_breach", breaches=found)

    def sample_equity(self, now: int, *, force: bool = False) -> None:
        if not force and now < self._next_sample_ms:
            return
        eq = self.state.portfolio.equity()
        self.equity.append(EquityPoint(now, eq.total_usdc_micro, eq.positions_usdc_micro, eq.held))
        self._next_sample_ms = now + self.equity_sample_ms


def _log_placed(o: OrderRequest) -> None:
    log.info("order_placed", correlation_id=o.correlation_id, order_id=o.order_id, routing=o.routing,
             side=o.side.name, price=format_micro(o.price), size=format_micro(o.size),
             order_type=o.order_type.value)  # fmt: skip


def _log_records(records: list[JournalRecord]) -> None:
    """Log `records` in order and empty the list."""
    for record in records:
        _log_record(record)
    records.clear()


def _log_record(cmd: object) -> None:
    """One structured log line per journal record, with the opportunity's correlation id."""
    if isinstance(cmd, RecordOpportunity):
        opp = cmd.opp
        log.info("opportunity", correlation_id=opp.correlation_id, strategy=opp.strategy,
                 token_id=opp.token_id, side=opp.side.name, size=format_micro(opp.size),
                 limit=format_micro(opp.limit_price), edge=format_micro(opp.edge), policy=cmd.policy,
                 reason=opp.reason)  # fmt: skip
    elif isinstance(cmd, RecordRiskDecision):
        log.info("risk_decision", correlation_id=cmd.correlation_id, approved=cmd.approved,
                 approved_size=format_micro(cmd.approved_size), reasons=list(cmd.reasons))  # fmt: skip
    elif isinstance(cmd, RecordOutcome):
        log.info("outcome", correlation_id=cmd.correlation_id, outcome=cmd.kind.value,
                 filled=format_micro(cmd.filled_size), reasons=list(cmd.reasons),
                 revision=cmd.revision)  # fmt: skip
    elif isinstance(cmd, RecordFill):
        f = cmd.fill
        log.info("order_filled", correlation_id=cmd.correlation_id, order_id=f.order_id, trade_id=f.trade_id,
                 price=format_micro(f.price), size=format_micro(f.size),
                 liquidity=f.liquidity.value)  # fmt: skip
    elif isinstance(cmd, RecordOrderStatus):
        log.debug(
            "order_status", order_id=cmd.order_id, status=cmd.status, filled=format_micro(cmd.filled_size)
        )
    elif isinstance(cmd, TradeSettlement):
        log.info("trade_settlement", trade_id=cmd.trade_id, order_id=cmd.order_id, status=cmd.status)
    elif isinstance(cmd, PositionsMerged | PositionsRedeemed):
        log.info("settled", kind=type(cmd).__name__, wallet=cmd.wallet, market=cmd.market)
    elif isinstance(cmd, PositionsConverted):
        log.info("settled", kind="PositionsConverted", correlation_id=cmd.correlation_id, wallet=cmd.wallet,
                 neg_risk_event=cmd.event, size=format_micro(cmd.size),
                 collateral=format_micro(cmd.collateral), yes_size=format_micro(cmd.yes_size))  # fmt: skip
    elif isinstance(cmd, RecordKillSwitch):
        log.warning("kill_switch", scope=cmd.scope, engaged=cmd.engaged, reason=cmd.reason, by=cmd.by)
    elif isinstance(cmd, RaiseAlert):
        log.warning("alert", correlation_id=cmd.correlation_id, code=cmd.code, message=cmd.message)
    elif isinstance(cmd, RecordError):
        log.warning("malformed_input", source=cmd.source, position=cmd.position, reason=cmd.reason)
