"""The opportunity lifecycle: from a signal's claim to exactly one recorded outcome.

Theory of operation
-------------------
signal -> evaluators (expiry, dedupe, edge, confidence, cooldown) -> routing policy chosen -> risk check
of the concrete order -> PlaceOrder -> execution reports -> exactly one RecordOutcome, once the last
order is terminal and no iceberg slice remains; a fill that lands after it (the venue matched before
our cancel took effect) revises it with a numbered RecordOutcome and a late_fill alert. Legs of one
group (the neg-risk complement arbitrage) pass the evaluators and risk together or not at all.

An iceberg parent is checked by risk as a whole, cut into slices, and each slice is checked again when
it is released (a slice is never resized: a refusal stops the parent, keeping what already filled).
Slices wait in `EngineState.timers` for their delay. Kill switches cancel resting orders and stop
unreleased slices in their scope. Every risk decision is journaled as a RecordRiskDecision.
"""

from __future__ import annotations

import heapq

import attrs

from polysnipe.core.baskets import buy_cost, worst_case_profit
from polysnipe.core.book import Book
from polysnipe.core.events import Side
from polysnipe.core.exit_rules import lot_name
from polysnipe.core.exits import after_fill
from polysnipe.core.fees import taker_fee
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    CancelOrder,
    Command,
    ExecutionReport,
    KillSwitch,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderStatusUnknown,
    OrderType,
    OutcomeKind,
    PlaceOrder,
    RaiseAlert,
    RecordFill,
    RecordKillSwitch,
    RecordOpportunity,
    RecordOrderStatus,
    RecordOutcome,
    RecordRiskDecision,
    TradeSettlement,
    VenueCondition,
)
from polysnipe.core.opportunity import Opportunity, opportunity_id
from polysnipe.core.orders import ForeignFill, InvalidTransition, OrderRecord, OverFill
from polysnipe.core.risk import scopes_of
from polysnipe.core.routing import ChildOrder, Iceberg, RoutingPolicy
from polysnipe.core.state import MAX_UNSETTLED, BasketTrack, EngineState, OpportunityTrack, UnsettledFill
from polysnipe.core.units import ONE, ceil_div, format_micro

__all__ = [
    "finish",
    "handle_opportunities",
    "on_kill_switch",
    "on_report",
    "on_trade_settlement",
    "on_venue_condition",
    "place_now",
    "release_due_slices",
]


# -- opportunities ---------------------------------------------------------------------------------
def handle_opportunities(
    state: EngineState, opps: list[Opportunity], now_ms: int, commands: list[Command]
) -> None:
    """Evaluate and route opportunities; the legs of one group pass the evaluators together or not at all."""
    batches: dict[str, list[Opportunity]] = {}
    for opp in opps:
        batches.setdefault(opp.group_id or opp.id, []).append(opp)
    for legs in batches.values():
        verdicts: list[tuple[Opportunity, tuple[str, ...]]] = []
        for opp in legs:
            reasons = state.evaluators.evaluate(opp, now_ms)
            if reasons == ("duplicate",):
                state.bump("opportunities_duplicate")
                continue
            by_strategy = state.opportunities_by_strategy
            by_strategy[opp.strategy] = by_strategy.get(opp.strategy, 0) + 1
            lot = lot_name(opp.strategy, bool(opp.group_id))
            state.tracks[opp.id] = OpportunityTrack(opp=opp, policy="", lot=lot)
            verdicts.append((opp, reasons))
        if not verdicts:
            continue
        if any(reasons for _, reasons in verdicts):
            for opp, reasons in verdicts:
                commands.append(RecordOpportunity(opp, "", _arrival(state, opp), now_ms))
                kind = OutcomeKind.EXPIRED if reasons == ("expired",) else OutcomeKind.REJECTED
                why = tuple(f"evaluator:{r}" for r in reasons) or ("evaluator:group_leg_refused",)
                _finalize(state, state.tracks[opp.id], now_ms, commands, kind=kind, reasons=why)
            continue
        _route_and_place(state, [opp for opp, _ in verdicts], now_ms, commands)


def _arrival(state: EngineState, opp: Opportunity) -> int:
    """The best price on the side the opportunity takes, now (0 without a book on that side)."""
    book = state.books.get(opp.token_id)
    if book is None:
        return 0
    return (book.best_ask() if opp.side is Side.BUY else book.best_bid()) or 0


def _event_tokens(state: EngineState, market: Market) -> tuple[str, ...]:
    return state.markets.event_tokens(market.neg_risk_market_id)


def _route_and_place(
    state: EngineState, legs: list[Opportunity], now_ms: int, commands: list[Command]
) -> None:
    """Route the opportunity (or every leg of a basket), risk-check the concrete order, place it."""
    if len(legs) > 1:
        _place_basket(state, legs, now_ms, commands)
        return
    (opp,) = legs
    track = state.tracks[opp.id]
    policy = state.router.select(opp)
    track.policy = policy.name
    market = state.markets.by_token(opp.token_id)
    book = state.books.get(opp.token_id)
    commands.append(RecordOpportunity(opp, policy.name, _arrival(state, opp), now_ms))
    if isinstance(policy, Iceberg):
        if not policy.can_slice(market.min_order_size, state.gatekeeper.size_step):
            # a setting that fits other markets, not an error of the run: this opportunity is refused
            _finalize(
                state, track, now_ms, commands, kind=OutcomeKind.REJECTED,
                reasons=("iceberg_display_below_min_size",),
            )  # fmt: skip
            return
        # The parent is checked as a whole at its limit price; each slice is checked again on release.
        parent = _order_request(state, opp, policy.name, 0, opp.size, _parent_child(opp), market, book)
        decision = state.gatekeeper.check(
            parent, state.risk, market, book, now_ms, _event_tokens(state, market)
        )
        _journal_risk(opp, parent.size, decision.approved_size, decision.reasons, now_ms, commands)
        if decision.outcome == "reject":
            _finalize(state, track, now_ms, commands, kind=OutcomeKind.REJECTED, reasons=decision.reasons)
            return
        slices = policy.slices(
            decision.approved_size, market.min_order_size, state.gatekeeper.size_step, state.rng
        )
        track.target_size = sum(size for size, _ in slices)
        track.pending_slices = slices
        _release_next_slice(state, track, policy, now_ms, commands)
        return
    order = _child_order(state, opp, policy, 0, opp.size, market, book, now_ms)
    if order is None:
        _finalize(state, track, now_ms, commands, kind=OutcomeKind.REJECTED, reasons=("no_route",))
        return
    decision = state.gatekeeper.check(order, state.risk, market, book, now_ms, _event_tokens(state, market))
    _journal_risk(opp, order.size, decision.approved_size, decision.reasons, now_ms, commands)
    if decision.outcome == "reject":
        _finalize(state, track, now_ms, commands, kind=OutcomeKind.REJECTED, reasons=decision.reasons)
        return
    if decision.approved_size != order.size:
        order = attrs.evolve(order, size=decision.approved_size)
    track.target_size = order.size
    _place(state, track, order, now_ms, commands)


def _place_basket(state: EngineState, legs: list[Opportunity], now_ms: int, commands: list[Command]) -> None:
    """The legs of a basket as one unit: one order per leg, one risk decision on them together (summed
    notional and reservations, one common size), placed only if, at that size and those prices,
    every outcome that can win still returns more than the basket costs after fees (baskets.py)."""
    orders: list[tuple[OrderRequest, Market, Book | None]] = []
    refusal: tuple[str, ...] = ()
    for opp in legs:
        track = state.tracks[opp.id]
        policy = state.router.select(opp)
        if isinstance(policy, Iceberg):
            # a basket's legs trade at once: slicing one leg would leave the others naked
            policy = policy.child_policy
        track.policy = policy.name
        commands.append(RecordOpportunity(opp, policy.name, _arrival(state, opp), now_ms))
        market = state.markets.by_token(opp.token_id)
        book = state.books.get(opp.token_id)
        order = _child_order(state, opp, policy, 0, opp.size, market, book, now_ms)
        if order is None:
            refusal = ("no_route",)
        else:
            orders.append((order, market, book))
    if not refusal:
        if len({o.size for o, _, _ in orders}) > 1:
            refusal = ("basket_sizes_differ",)
        else:
            tokens = _event_tokens(state, orders[0][1])
            decision = state.gatekeeper.check_orders(orders, state.risk, now_ms, tokens)
            for opp in legs:
                _journal_risk(opp, opp.size, decision.approved_size, decision.reasons, now_ms, commands)
            if decision.outcome == "reject":
                refusal = decision.reasons
            elif worst_case_profit([(m, o.price) for o, m, _ in orders], decision.approved_size) <= 0:
                refusal = ("basket_unprofitable_after_fees",)
    if refusal:
        for opp in legs:
            _finalize(
                state, state.tracks[opp.id], now_ms, commands, kind=OutcomeKind.REJECTED, reasons=refusal
            )
        return
    size = orders[0][0].size if decision.approved_size == orders[0][0].size else decision.approved_size
    group_id = legs[0].group_id
    state.baskets[group_id] = BasketTrack(group_id, tuple(opp.id for opp in legs), size)
    for opp, (order, _, _) in zip(legs, orders, strict=True):
        track = state.tracks[opp.id]
        track.target_size = size
        if order.size != size:
            order = attrs.evolve(order, size=size)
        _place(state, track, order, now_ms, commands)


def _settle_basket(state: EngineState, basket: BasketTrack, now_ms: int, commands: list[Command]) -> None:
    """Once every leg's orders have ended: a basket whose legs did not all fill its size holds a
    directional position. Complete it (buy what the short legs lack) when the completed basket loses
    at most the repair budget whatever wins, else unwind it (sell what the long legs hold beyond the
    shortest), at prices that keep the loss within the same budget. One round, journaled as its own
    opportunities; what it cannot fix is a critical alert."""
    legs = [state.tracks[i] for i in basket.opportunity_ids]
    if basket.settled or any(t.open_orders or t.pending_slices for t in legs):
        return
    basket.settled = True
    filled = [t.filled_size for t in legs]
    if all(f == basket.size for f in filled) or not any(filled):
        return
    budget = state.gatekeeper.policy.max_basket_repair_loss_usdc_micro
    markets = [state.markets.by_token(t.opp.token_id) for t in legs]
    fee_shares = [sum(state.orders[i].fee_shares for i in t.order_ids) for t in legs]
    commands.append(
        RaiseAlert(
            "critical",
            "basket_leg_risk",
            f"basket {basket.group_id} filled unevenly: {', '.join(map(format_micro, filled))}"
            f" of {format_micro(basket.size)} per leg",
            now_ms,
            correlation_id=legs[0].opp.correlation_id,
        )
    )
    completion: list[tuple[OpportunityTrack, int, int]] = []  # (leg, size to buy, ask)
    # what the fills cost (track.filled_notional sums price * size, in micro-units squared)
    cost = sum(ceil_div(t.filled_notional, ONE) for t in legs)
    least_net = basket.size
    for t, market, fees_paid in zip(legs, markets, fee_shares, strict=True):
        need = basket.size - t.filled_size
        book = state.books.get(t.opp.token_id)
        ask = book.best_ask() if book is not None and book.trusted else None
        extra_fee = 0
        if need:
            if ask is None or need < market.min_order_size:
                completion = []
                least_net = -1
                break
            completion.append((t, need, ask))
            cost += buy_cost(ask, need)
            extra_fee = taker_fee(Side.BUY, need, ask, market.fee_rate, market.fee_exponent).fee_shares
        least_net = min(least_net, basket.size - fees_paid - extra_fee)
    if completion and least_net - cost >= -budget:
        for t, need, ask in completion:
            _repair(state, t, Side.BUY, need, ask, "complete", now_ms, commands)
        return
    lo = min(filled)
    excess = [(t, f - lo) for t, f in zip(legs, filled, strict=True) if f - lo > 0]
    total = sum(n for _, n in excess)
    per_share = budget * ONE // total if total else 0
    for t, n in excess:
        avg = t.filled_notional // t.filled_size
        _repair(state, t, Side.SELL, n, avg - per_share, "unwind", now_ms, commands)


def _repair(
    state: EngineState,
    leg: OpportunityTrack,
    side: Side,
    size: int,
    limit: int,
    kind: str,
    now_ms: int,
    commands: list[Command],
) -> None:
    """One repair order of a basket leg, as an opportunity of its own (journaled, risk-checked)."""
    opp = leg.opp
    market = state.markets.by_token(opp.token_id)
    book = state.books.get(opp.token_id)
    tick = book.tick_size if book is not None else market.tick_size
    limit = limit - limit % tick if side is Side.BUY else ceil_div(limit, tick) * tick
    size -= size % state.gatekeeper.size_step
    oid = opportunity_id(opp.strategy, opp.token_id, side, "basket_repair", opp.group_id, kind)
    repair = attrs.evolve(
        opp,
        id=oid,
        side=side,
        size=size,
        limit_price=min(max(limit, tick), ONE - tick),
        fair_value=limit,
        edge=0,
        confidence=1.0,
        created_ms=now_ms,
        expires_ms=now_ms + 60_000,
        reason=f"basket {opp.group_id}: {kind} ({format_micro(leg.filled_size)} of the leg filled)",
        urgency="aggressive",
        group_id="",
    )
    place_now(state, repair, "aggressive", now_ms, commands, lot=leg.lot, wallet=leg.wallet)


def place_now(
    state: EngineState,
    opp: Opportunity,
    policy_name: str,
    now_ms: int,
    commands: list[Command],
    *,
    lot: str = "",
    wallet: str = "",
) -> None:
    """Track, journal, risk-check and place an opportunity the engine itself decided (a repair, an exit):
    no evaluators (they judge a signal's edge), but the same risk gatekeeper as any order. `lot` and
    `wallet` name the holdings it trades (an exit sells the lot it closes, from that lot's wallet)."""
    track = OpportunityTrack(opp=opp, policy=policy_name, lot=lot or opp.strategy, wallet=wallet)
    state.tracks[opp.id] = track
    by_strategy = state.opportunities_by_strategy
    by_strategy[opp.strategy] = by_strategy.get(opp.strategy, 0) + 1
    commands.append(RecordOpportunity(opp, policy_name, _arrival(state, opp), now_ms))
    policy = state.router.policies[policy_name]
    market = state.markets.by_token(opp.token_id)
    book = state.books.get(opp.token_id)
    order = _child_order(state, opp, policy, 0, opp.size, market, book, now_ms, wallet)
    if order is None:
        _finalize(state, track, now_ms, commands, kind=OutcomeKind.REJECTED, reasons=("no_route",))
        return
    tokens = _event_tokens(state, market)
    decision = state.gatekeeper.check(order, state.risk, market, book, now_ms, tokens)
    _journal_risk(opp, order.size, decision.approved_size, decision.reasons, now_ms, commands)
    if decision.outcome == "reject":
        _finalize(state, track, now_ms, commands, kind=OutcomeKind.REJECTED, reasons=decision.reasons)
        return
    if decision.approved_size != order.size:
        order = attrs.evolve(order, size=decision.approved_size)
    track.target_size = order.size
    _place(state, track, order, now_ms, commands)


def _parent_child(opp: Opportunity) -> ChildOrder:
    return ChildOrder(
        size=opp.size, price=opp.limit_price, order_type=OrderType.GTC, post_only=False, expiration_ms=0
    )


def _order_request(
    state: EngineState,
    opp: Opportunity,
    routing: str,
    index: int,
    size: int,
    child: ChildOrder,
    market: Market,
    book: Book | None,
    wallet: str = "",
    parent_id: str = "",
) -> OrderRequest:
    """The order `child` prices; `parent_id` defaults to the opportunity for every child but the first
    (an iceberg's slices name it from the first)."""
    return OrderRequest(
        order_id=f"{opp.id}-{index}",
        opportunity_id=opp.id,
        correlation_id=opp.correlation_id,
        strategy=opp.strategy,
        routing=routing,
        wallet=wallet or state.wallet_for(opp),
        market=market.condition_id,
        token_id=opp.token_id,
        side=opp.side,
        price=child.price,
        size=size,
        order_type=child.order_type,
        tick_size=book.tick_size if book is not None else market.tick_size,
        neg_risk=market.neg_risk,
        post_only=child.post_only,
        expiration_ms=child.expiration_ms,
        parent_id=parent_id or (opp.id if index else ""),
    )


def _child_order(
    state: EngineState,
    opp: Opportunity,
    policy: RoutingPolicy,
    index: int,
    size: int,
    market: Market,
    book: Book | None,
    now_ms: int,
    wallet: str = "",
    *,
    slice_of: Iceberg | None = None,
) -> OrderRequest | None:
    """One child order priced by `policy`; an iceberg's slice (`slice_of`, priced by its child policy)
    is routed as the iceberg and names its parent, built so here rather than copied (attrs.evolve)."""
    if book is None:
        return None
    child = policy.child(opp, size, book, now_ms)
    if child is None:
        return None
    if slice_of is not None:
        routing, parent_id = slice_of.name, opp.id
    else:
        routing, parent_id = policy.name, ""
    return _order_request(state, opp, routing, index, child.size, child, market, book, wallet, parent_id)


def _place(
    state: EngineState, track: OpportunityTrack, order: OrderRequest, now_ms: int, commands: list[Command]
) -> None:
    record = OrderRecord(order)
    record.mark_posted()
    state.orders[order.order_id] = record
    state.risk.on_submitted(order, now_ms)
    track.order_ids.append(order.order_id)
    track.open_orders += 1
    state.bump(f"orders:{order.routing}")
    commands.append(PlaceOrder(order, now_ms))


def _journal_risk(
    opp: Opportunity,
    requested: int,
    approved: int,
    reasons: tuple[str, ...],
    now_ms: int,
    commands: list[Command],
) -> None:
    commands.append(
        RecordRiskDecision(
            opportunity_id=opp.id,
            correlation_id=opp.correlation_id,
            approved=approved > 0,
            requested_size=requested,
            approved_size=approved,
            reasons=reasons,
            ts_ms=now_ms,
        )
    )


# -- icebergs --------------------------------------------------------------------------------------
def _release_next_slice(
    state: EngineState, track: OpportunityTrack, policy: RoutingPolicy, now_ms: int, commands: list[Command]
) -> None:
    """Release the next iceberg slice now, or stop the parent if it expired or risk refuses the slice."""
    assert isinstance(policy, Iceberg)
    opp = track.opp
    if now_ms > opp.expires_ms:
        track.pending_slices.clear()
        track.failures.append("iceberg_expired")
        _maybe_finalize(state, track, now_ms, commands)
        return
    size, _ = track.pending_slices.pop(0)
    market = state.markets.by_token(opp.token_id)
    book = state.books.get(opp.token_id)
    index = len(track.order_ids)
    order = _child_order(state, opp, policy.child_policy, index, size, market, book, now_ms, slice_of=policy)
    if order is not None:
        decision = state.gatekeeper.check(
            order, state.risk, market, book, now_ms, _event_tokens(state, market)
        )
        resized = decision.approved_size != order.size
        # A slice is never resized: the parent stops, keeping what already filled.
        approved = 0 if decision.outcome == "reject" or resized else order.size
        _journal_risk(opp, order.size, approved, decision.reasons, now_ms, commands)
        if not approved:
            track.pending_slices.clear()
            track.failures.extend(decision.reasons)
            _maybe_finalize(state, track, now_ms, commands)
            return
        _place(state, track, order, now_ms, commands)
        return
    track.pending_slices.clear()
    track.failures.append("no_route")
    _maybe_finalize(state, track, now_ms, commands)


def release_due_slices(state: EngineState, now_ms: int, commands: list[Command]) -> None:
    timers = state.timers
    while timers and timers[0][0] <= now_ms:
        _, _, opp_id = heapq.heappop(timers)
        track = state.tracks.get(opp_id)
        if track is None or track.done or not track.pending_slices:
            continue
        policy = state.router.policies[track.policy]
        _release_next_slice(state, track, policy, now_ms, commands)


def _schedule_next_slice(state: EngineState, track: OpportunityTrack, now_ms: int) -> None:
    delay = track.pending_slices[0][1]
    state.timer_seq += 1
    heapq.heappush(state.timers, (now_ms + delay, state.timer_seq, track.opp.id))


# -- execution reports -----------------------------------------------------------------------------
def on_report(state: EngineState, report: ExecutionReport, now_ms: int, commands: list[Command]) -> None:
    record = state.orders.get(report.order_id)
    if record is None:
        state.bump("reports_unknown_order")
        return
    was_terminal = record.is_terminal
    try:
        changed = record.apply(report)
    except (InvalidTransition, OverFill, ForeignFill) as err:
        # A report that contradicts what we know (a fill beyond the order's size, on another token
        # or side, a fill after a rejection) is never applied; an operator must reconcile with the venue.
        state.bump("reports_contradictory")
        commands.append(
            RaiseAlert(
                "critical",
                "contradictory_report",
                f"order {report.order_id}: {err}",
                now_ms,
                correlation_id=record.request.correlation_id,
            )
        )
        return
    if not changed:
        state.bump("reports_duplicate")
        return
    request = record.request
    commands.append(
        RecordOrderStatus(
            request.order_id,
            record.status.value,
            record.filled_size,
            now_ms,
            record.reason,
            record.venue_order_id,
        )
    )
    track = state.tracks.get(request.opportunity_id)
    if type(report) is OrderFilled:
        commands.append(
            RecordFill(
                report, request.opportunity_id, request.correlation_id, request.strategy, request.routing
            )
        )
        lot = track.lot if track is not None else ""
        fair = track.opp.fair_value if track is not None and report.side is Side.BUY else 0
        taken = state.risk.on_fill(report.order_id, report, lot, fair)
        _await_settlement(state, UnsettledFill(report, request.wallet, lot or request.strategy, taken))
        after_fill(state, request.wallet, report.token_id, now_ms, commands)
        state.bump("fills")
        if track is not None:
            track.filled_size += report.size
            track.filled_notional += report.price * report.size
            if track.done:
                # the venue matched it before our cancel took effect: the outcome already written
                # is revised, so the journal never keeps a stale "nothing filled"
                _revise(state, track, now_ms, commands)
    elif type(report) is OrderRejected:
        state.bump("orders_rejected")
        if track is not None:
            track.failures.append(f"venue:{report.reason}")
    elif type(report) is OrderExpired:
        if track is not None:
            track.expired_orders += 1
    elif type(report) is OrderStatusUnknown:
        state.bump("orders_unknown")
        commands.append(
            RaiseAlert(
                "warning",
                "order_status_unknown",
                f"order {report.order_id} outcome unknown: reconciling",
                now_ms,
                correlation_id=record.request.correlation_id,
            )
        )
    if record.is_terminal and not was_terminal:
        state.risk.on_order_closed(record.request.order_id)
        if track is not None:
            track.open_orders -= 1
            if track.pending_slices and not track.failures:
                _schedule_next_slice(state, track, now_ms)
            else:
                track.pending_slices.clear()
                _maybe_finalize(state, track, now_ms, commands)
            basket = state.baskets.get(track.opp.group_id) if track.opp.group_id else None
            if basket is not None:
                _settle_basket(state, basket, now_ms, commands)
    # A fill is where a loss becomes real, so the kill switch is checked here; between fills the
    # gatekeeper already refuses new BUYs while the day's PnL (at mid marks) is beyond the limit.
    if (
        type(report) is OrderFilled
        and "global" not in state.risk.kill_switches
        and state.gatekeeper.breaches_daily_loss(state.risk, now_ms)
    ):
        on_kill_switch(state, KillSwitch(now_ms, "global", True, "daily loss limit"), now_ms, commands)


def _await_settlement(state: EngineState, pending: UnsettledFill) -> None:
    unsettled = state.unsettled
    unsettled[pending.fill.trade_id, pending.fill.order_id] = pending
    if len(unsettled) > MAX_UNSETTLED:
        del unsettled[next(iter(unsettled))]
        state.bump("unsettled_forgotten")


def on_trade_settlement(
    state: EngineState, report: TradeSettlement, now_ms: int, commands: list[Command]
) -> None:
    """A fill's trade moved on. Every status is journaled; CONFIRMED makes the fill final; FAILED means
    the trade never settled, so the fill is undone in the portfolio (and so in risk) and the
    opportunity's outcome revised, with a critical alert: the venue's balances are the truth now."""
    key = (report.trade_id, report.order_id)
    pending = state.unsettled.get(key)
    if pending is None:
        if report.status == "FAILED":
            why = "its fill is not one the engine can undo (unknown, or settled long ago)"
            text = f"trade {report.trade_id} of order {report.order_id} failed: {why}"
            commands.append(RaiseAlert("critical", "trade_failed_unknown", text, now_ms))
        state.bump("settlements_unknown_trade")
        return
    commands.append(report)
    if report.status == "CONFIRMED":
        del state.unsettled[key]
        return
    if report.status != "FAILED":
        return
    del state.unsettled[key]
    fill = pending.fill
    state.portfolio.reverse_fill(pending.wallet, fill, pending.lot, pending.taken)
    state.bump("fills_failed")
    record = state.orders.get(fill.order_id)
    correlation_id = record.request.correlation_id if record is not None else ""
    text = f"trade {fill.trade_id} failed on chain: {format_micro(fill.size)} of order {fill.order_id} undone"
    commands.append(RaiseAlert("critical", "trade_failed", text, now_ms, correlation_id))
    track = state.tracks.get(record.request.opportunity_id) if record is not None else None
    if track is not None:
        track.filled_size -= fill.size
        track.filled_notional -= fill.price * fill.size
        if track.done:
            _revise(state, track, now_ms, commands, why="trade_failed")


def _maybe_finalize(
    state: EngineState, track: OpportunityTrack, now_ms: int, commands: list[Command]
) -> None:
    if track.done or track.open_orders > 0 or track.pending_slices:
        return
    if track.filled_size > 0:
        kind = OutcomeKind.FILLED if track.filled_size >= track.target_size else OutcomeKind.PARTLY_FILLED
    elif track.failures:
        kind = OutcomeKind.FAILED
    elif track.order_ids and track.expired_orders == len(track.order_ids):
        kind = OutcomeKind.EXPIRED
    else:
        kind = OutcomeKind.ORDERED
    _finalize(state, track, now_ms, commands, kind=kind, reasons=tuple(track.failures))


def _finalize(
    state: EngineState,
    track: OpportunityTrack,
    now_ms: int,
    commands: list[Command],
    *,
    kind: OutcomeKind,
    reasons: tuple[str, ...],
) -> None:
    track.done = True
    avg = track.filled_notional // track.filled_size if track.filled_size else 0
    state.bump(f"outcome:{kind.value}")
    commands.append(
        RecordOutcome(
            opportunity_id=track.opp.id,
            correlation_id=track.opp.correlation_id,
            kind=kind,
            reasons=reasons,
            order_ids=tuple(track.order_ids),
            filled_size=track.filled_size,
            avg_price=avg,
            ts_ms=now_ms,
        )
    )


def _revise(
    state: EngineState, track: OpportunityTrack, now_ms: int, commands: list[Command], why: str = "late_fill"
) -> None:
    """A recorded outcome no longer holds (a fill after it, or a fill whose trade failed): record the
    outcome as it stands now, numbered, with `why` among its reasons."""
    track.revisions += 1
    state.bump("outcomes_revised")
    filled = track.filled_size
    if filled >= track.target_size:
        kind = OutcomeKind.FILLED
    else:
        kind = OutcomeKind.PARTLY_FILLED if filled > 0 else OutcomeKind.ORDERED
    if why == "late_fill":
        commands.append(
            RaiseAlert(
                "warning",
                "late_fill",
                f"opportunity {track.opp.id}: a fill arrived after its outcome; now {kind.value}"
                f" {format_micro(filled)}",
                now_ms,
                correlation_id=track.opp.correlation_id,
            )
        )
    commands.append(
        RecordOutcome(
            opportunity_id=track.opp.id,
            correlation_id=track.opp.correlation_id,
            kind=kind,
            reasons=(*track.failures, why),
            order_ids=tuple(track.order_ids),
            filled_size=filled,
            avg_price=track.filled_notional // filled if filled > 0 else 0,
            ts_ms=now_ms,
            revision=track.revisions,
        )
    )


# -- kill switches ---------------------------------------------------------------------------------
def on_kill_switch(state: EngineState, ks: KillSwitch, now_ms: int, commands: list[Command]) -> None:
    try:
        scope = state.risk.engage(ks.scope) if ks.engage else state.risk.release(ks.scope)
    except ValueError as err:
        # a mistyped scope protects nothing: say so loudly rather than pretend it took effect
        commands.append(RaiseAlert("critical", "kill_switch_invalid", str(err), now_ms))
        return
    if not ks.journaled:
        commands.append(RecordKillSwitch(scope, ks.engage, ks.reason, ks.by, now_ms))
    if not ks.engage:
        commands.append(RaiseAlert("info", "kill_switch_released", f"{scope}: {ks.reason}", now_ms))
        return
    commands.append(RaiseAlert("critical", "kill_switch_engaged", f"{scope}: {ks.reason}", now_ms))
    # Everything the switch covers stops: resting orders are cancelled, iceberg parents stop releasing.
    for record in state.orders.values():
        if record.is_terminal or scope not in scopes_of(record.request):
            continue
        commands.append(
            CancelOrder(
                record.request.order_id, f"kill_switch:{scope}", now_ms, record.request.correlation_id
            )
        )
    for track in state.tracks.values():
        if not track.done and track.pending_slices and track.order_ids:
            request = state.orders[track.order_ids[0]].request
            if scope in scopes_of(request):
                track.pending_slices.clear()
                track.failures.append(f"kill_switch:{scope}")
                _maybe_finalize(state, track, now_ms, commands)


def on_venue_condition(state: EngineState, vc: VenueCondition, now_ms: int, commands: list[Command]) -> None:
    """The venue's state changed: risk refuses what the condition forbids until it clears. Resting
    orders are left alone (the venue keeps them, and cancels stay allowed)."""
    conditions = state.risk.venue_conditions
    if vc.active == (vc.condition in conditions):
        return
    if vc.active:
        conditions[vc.condition] = vc.detail
        commands.append(RaiseAlert("warning", "venue_condition", f"{vc.condition}: {vc.detail}", now_ms))
    else:
        del conditions[vc.condition]
        commands.append(RaiseAlert("info", "venue_condition_cleared", f"{vc.condition}: {vc.detail}", now_ms))


# -- end of run ------------------------------------------------------------------------------------
def finish(state: EngineState, now_ms: int, reason: str = "end_of_data") -> list[Command]:
    """Cancel whatever still rests and stop unreleased slices, so every opportunity can end."""
    commands: list[Command] = []
    for record in state.orders.values():
        if not record.is_terminal:
            commands.append(
                CancelOrder(record.request.order_id, reason, now_ms, record.request.correlation_id)
            )
    for track in state.tracks.values():
        if not track.done and track.pending_slices:
            track.pending_slices.clear()
            _maybe_finalize(state, track, now_ms, commands)
    return commands
