"""Handlers for market events and external signals: update the books, then let the signal modules react.

Each handler applies its event to the engine's books (or last trades), counts an event that names no
known token, and hands the event to the signal modules that declared interest in its type. Whatever
opportunities they find go to the opportunity lifecycle; their data-quality flags become alerts.

Price changes, nearly every input, take one compiled call where the compiled book serves
(core/_market.c: the deltas, the signal modules and the lots to judge); the Python here is its reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from polysnipe.core.book import Book, apply_changes, book_implementation, new_book
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    MarketResolved,
    PriceChange,
    TickSizeChange,
)
from polysnipe.core.exit_rules import BASKET_LOT, LotKey
from polysnipe.core.exits import judge_lots, on_book_change, redeem_resolved
from polysnipe.core.lifecycle import handle_opportunities
from polysnipe.core.messages import CancelOrder, Command, RaiseAlert
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.portfolio import Lot
from polysnipe.core.signals.base import handler_of, reacts_to
from polysnipe.core.state import EngineState, Flagging, SignalRoute

#: what core._market.price_change answers when Python has work left: (stop, applied, dropped, what the
#: signal modules found, the lots to judge)
_Left = tuple[int, int, int, list[Opportunity] | None, list[tuple[LotKey, Lot]] | None]
_price_change: Callable[..., _Left | None] | None
try:
    from polysnipe.core._market import price_change as _compiled

    _price_change = _compiled
except ImportError:  # the extension is not built: the Python below serves alone
    _price_change = None

__all__ = ["on_book", "on_last_trade", "on_price_change", "on_resolved", "on_signal", "on_tick_size"]


def _book_for(state: EngineState, token_id: str) -> Book | None:
    book = state.books.get(token_id)
    if book is None:
        market = state.markets.get_by_token(token_id)
        if market is None:
            return None
        book = new_book(token_id, market.tick_size)
        state.books[token_id] = book
    return book


def on_price_change(state: EngineState, event: PriceChange, now_ms: int, commands: list[Command]) -> None:
    # Most inputs are price changes: one apply_changes call takes every delta whose book exists (all
    # of them but a token's first); it stops at a token without one, made here (or skipped if unknown).
    # With the compiled book, core._market.price_change also runs the signal modules and picks the lots
    # to judge in that call, and answers None when nothing is left for Python (nearly every event);
    # core._market.step makes that call itself, without this frame (pipeline.py).
    if _price_change is not None and book_implementation() == "compiled":
        handlers, flagged = _route(state, PriceChange)
        done = _price_change(
            state.books,
            event.changes,
            event.ts_ms,
            handlers,
            event,
            state,
            now_ms,
            state.exits.watched,
            state.risk.portfolio.wallets,
            BASKET_LOT,
            flagged,
            state.dq_seen,
        )
        if done is not None:
            price_change_left(state, event, now_ms, commands, done, flagged)
        return
    stop, applied, dropped = apply_changes(state.books, event.changes, event.ts_ms, 0)
    _changes_left(state, event, now_ms, commands, stop, applied, dropped)


def price_change_left(
    state: EngineState,
    event: PriceChange,
    now_ms: int,
    commands: list[Command],
    done: _Left,
    flagged: tuple[Flagging, ...],
) -> None:
    """The rest of a price change after core._market.price_change answered `done` (not None)."""
    stop, applied, dropped, opps, held = done
    if stop != len(event.changes) or not applied:
        _changes_left(state, event, now_ms, commands, stop, applied, dropped)
        return
    if dropped:
        state.bump("deltas_before_snapshot", dropped)
    if opps:
        handle_opportunities(state, opps, now_ms, commands)
    if flagged:
        _collect_flags(state, flagged, now_ms, commands)
    if opps:  # the lifecycle came first: the lots are picked now, as below
        _on_books_changed(state, event.changes, now_ms, commands)
    elif held:
        judge_lots(state, held, now_ms, commands)


def _changes_left(
    state: EngineState,
    event: PriceChange,
    now_ms: int,
    commands: list[Command],
    stop: int,
    applied: int,
    dropped: int,
) -> None:
    """A price change whose deltas were applied up to `stop`: the rest, then the reactions."""
    books = state.books
    changes = event.changes
    n = len(changes)
    while stop != n:
        start = stop if _book_for(state, changes[stop].token_id) is not None else stop + 1
        stop, took, lost = apply_changes(books, changes, event.ts_ms, start)
        applied += took
        dropped += lost
    if dropped:
        state.bump("deltas_before_snapshot", dropped)
    if not applied:
        state.bump("events_unknown_token")
        return
    _react(state, event, now_ms, commands)
    _on_books_changed(state, changes, now_ms, commands)


def _on_books_changed(
    state: EngineState, changes: Sequence[BookDelta], now_ms: int, commands: list[Command]
) -> None:
    """Judge the exit rules of the lots held in the watched tokens `changes` touched."""
    watched = state.exits.watched
    if watched:
        touched = [t for d in changes if (t := d.token_id) in watched]
        if touched:
            # in the order the changes name them: a set's order follows string hashes, which differ
            # between processes, and two exits in one event would be placed in either order
            for token in dict.fromkeys(touched):
                on_book_change(state, token, now_ms, commands)


def on_book(state: EngineState, event: BookSnapshot, now_ms: int, commands: list[Command]) -> None:
    book = _book_for(state, event.token_id)
    if book is None:
        state.bump("events_unknown_token")
        return
    book.apply_snapshot(event)
    _react(state, event, now_ms, commands)
    if event.token_id in state.exits.watched:
        on_book_change(state, event.token_id, now_ms, commands)


def on_last_trade(state: EngineState, event: LastTrade, now_ms: int, commands: list[Command]) -> None:
    if event.token_id not in state.markets:
        state.bump("events_unknown_token")
        return
    state.last_trades[event.token_id] = event
    _react(state, event, now_ms, commands)


def on_tick_size(state: EngineState, event: TickSizeChange, now_ms: int, commands: list[Command]) -> None:
    book = _book_for(state, event.token_id)
    if book is None:
        state.bump("events_unknown_token")
        return
    book.set_tick_size(event.new_tick)
    _react(state, event, now_ms, commands)


def on_signal(state: EngineState, event: ExternalSignal, now_ms: int, commands: list[Command]) -> None:
    _react(state, event, now_ms, commands)


def on_resolved(state: EngineState, event: MarketResolved, now_ms: int, commands: list[Command]) -> None:
    """A market resolved: marks go to 1 and 0, nothing more trades there, holders redeem."""
    market = state.markets.get(event.market)
    if market is None or event.winning_token not in market.token_ids:
        state.bump("events_unknown_token")
        return
    if market.token_ids[0] in state.portfolio.resolved:
        return  # the venue repeats itself; the first resolution stands
    state.bump("markets_resolved")
    state.portfolio.apply_resolution(market.token_ids, event.winning_token)
    commands.append(
        RaiseAlert("info", "market_resolved", f"{market.condition_id}: {event.winning_token} won", now_ms)
    )
    for record in state.orders.values():
        if not record.is_terminal and record.request.market == market.condition_id:
            commands.append(
                CancelOrder(record.request.order_id, "market_resolved", now_ms, record.request.correlation_id)
            )
    redeem_resolved(state, market.condition_id, now_ms, commands)


def _route_for(state: EngineState, kind: type) -> SignalRoute:
    """Which modules react to events of type `kind`, in configuration order.

    A module that declares `event_types` (signals.base.reacts_to) is skipped for other types: most
    events are price changes, and a module that ignores them should cost nothing per event.
    """
    if state.routes_of is not state.signals:
        state.routes = {}
        state.routes_of = state.signals
    modules = [m for m in state.signals if (types := reacts_to(m)) is None or kind in types]
    route: SignalRoute = (
        tuple(handler_of(m) for m in modules),
        tuple(m for m in modules if isinstance(m, Flagging)),
    )
    state.routes[kind] = route
    return route


def _route(state: EngineState, kind: type) -> SignalRoute:
    route = state.routes.get(kind) if state.routes_of is state.signals else None
    return route if route is not None else _route_for(state, kind)


def _react(state: EngineState, event: Event, now_ms: int, commands: list[Command]) -> None:
    handlers, flagged = _route(state, type(event))
    opps: list[Opportunity] | None = None
    for on_event in handlers:
        found = on_event(event, state, now_ms)
        if found:
            if opps is None:
                opps = list(found)
            else:
                opps.extend(found)
    react_left(state, now_ms, commands, opps, flagged)


def react_left(
    state: EngineState,
    now_ms: int,
    commands: list[Command],
    opps: list[Opportunity] | None,
    flagged: tuple[Flagging, ...],
) -> None:
    """What the signal modules' reaction to an event leaves: the lifecycle takes what they found, then
    their new data-quality flags become alerts (core._market.step calls this for a last trade whose
    reaction it ran, when something is left)."""
    if opps:
        handle_opportunities(state, opps, now_ms, commands)
    _collect_flags(state, flagged, now_ms, commands)


def _collect_flags(
    state: EngineState, flagged: tuple[Flagging, ...], now_ms: int, commands: list[Command]
) -> None:
    for module in flagged:
        if len(module.data_quality_flags) != state.dq_seen.get(module.name, 0):
            _collect_data_quality(state, module, now_ms, commands)


def _collect_data_quality(state: EngineState, module: Flagging, now_ms: int, commands: list[Command]) -> None:
    """Turn a signal module's new data-quality flags (e.g. a binary pair priced below 1) into alerts.

    The flags list is append-only, so `dq_seen` (flags already alerted, per module) marks the new ones.
    """
    flags = module.data_quality_flags
    for flag in flags[state.dq_seen.get(module.name, 0) :]:
        state.bump("data_quality_flags")
        commands.append(
            RaiseAlert("warning", "data_quality", str(flag), now_ms, details={"module": module.name})
        )
    state.dq_seen[module.name] = len(flags)
