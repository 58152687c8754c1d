"""The pure pipeline step: (state, input, now) -> commands.

Theory of operation
-------------------
Every input -- a market event, an external signal, an execution report from the venue, an operator's
kill-switch order -- goes through `step`. The step looks up the input's handler in `HANDLERS` and
returns the commands the runner must perform: place or cancel an order, journal a decision, raise an
alert. It performs no I/O, reads no clock (time is the `now_ms` argument) and draws randomness only
from the injected RNG, so a backtest, a replay and a property test all run the same code and a replay
is deterministic.

Where each input goes:

| input | handler | what it does |
|---|---|---|
| PriceChange, BookSnapshot, TickSizeChange, LastTrade | market_handlers | update books, signals react |
| ExternalSignal | market_handlers.on_signal | signals react (Momentum/Event) |
| Order* execution reports | lifecycle.on_report | order state machine, risk, outcomes |
| TradeSettlement | lifecycle.on_trade_settlement | a fill confirmed on chain, or undone when it failed |
| MarketResolved | market_handlers.on_resolved | marks 1/0, cancels, redeems (exits.py) |
| PositionsMerged, PositionsRedeemed, PositionsConverted | exits | the portfolio settles what was done |
| SettlementRefused | exits.on_settlement_refused | an alert; the request may be asked again |
| KillSwitch | lifecycle.on_kill_switch | risk scopes, cancels, stops slices |
| VenueCondition | lifecycle.on_venue_condition | risk refuses what a venue state forbids |
| Tick | (none) | time passed: only the slice release below |

Before any input, iceberg slices whose delay has passed are released (lifecycle.release_due_slices)
and exit rules (and refused conversions) whose time has come are judged (exits.release_due).
The state is mutated in place (state.py says why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polysnipe.core.events import (
    BookSnapshot,
    ExternalSignal,
    LastTrade,
    MarketResolved,
    PriceChange,
    TickSizeChange,
)
from polysnipe.core.exit_rules import BASKET_LOT
from polysnipe.core.exits import on_converted, on_merged, on_redeemed, on_settlement_refused
from polysnipe.core.exits import release_due as release_due_exits
from polysnipe.core.lifecycle import (
    on_kill_switch,
    on_report,
    on_trade_settlement,
    on_venue_condition,
    release_due_slices,
)
from polysnipe.core.market import MarketRegistry
from polysnipe.core.market_handlers import (
    on_book,
    on_last_trade,
    on_price_change,
    on_resolved,
    on_signal,
    on_tick_size,
)
from polysnipe.core.messages import (
    Command,
    Input,
    KillSwitch,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusUnknown,
    PositionsConverted,
    PositionsMerged,
    PositionsRedeemed,
    SettlementRefused,
    Tick,
    TradeSettlement,
    VenueCondition,
)
from polysnipe.core.ports import NEVER_MS
from polysnipe.core.state import EngineState

__all__ = ["HANDLERS", "next_timer_ms", "python_step", "step"]

Handler = Callable[[EngineState, Any, int, list[Command]], None]

#: input type -> its handler; a type missing here is a programming error (KeyError), never ignored
HANDLERS: dict[type, Handler] = {
    PriceChange: on_price_change,
    BookSnapshot: on_book,
    TickSizeChange: on_tick_size,
    LastTrade: on_last_trade,
    ExternalSignal: on_signal,
    MarketResolved: on_resolved,
    OrderAccepted: on_report,
    OrderRejected: on_report,
    OrderFilled: on_report,
    OrderCancelled: on_report,
    OrderExpired: on_report,
    OrderStatusUnknown: on_report,
    TradeSettlement: on_trade_settlement,
    PositionsMerged: on_merged,
    PositionsRedeemed: on_redeemed,
    PositionsConverted: on_converted,
    SettlementRefused: on_settlement_refused,
    KillSwitch: on_kill_switch,
    VenueCondition: on_venue_condition,
    Tick: lambda state, tick, now_ms, commands: None,
}


def python_step(state: EngineState, event: Input, now_ms: int) -> list[Command]:
    """Advance the engine by one input; returns the commands the runner must perform.

    The reference of `step`, which is core._market.step where that is built: the same steps, with a
    price change's compiled dispatch called from C (market_handlers.on_price_change says when)."""
    commands: list[Command] = []
    timers = state.timers
    if timers and timers[0][0] <= now_ms:
        release_due_slices(state, now_ms, commands)
    exits = state.exits
    rules, converts = exits.timers, exits.convert_timers
    if (rules and rules[0][0] <= now_ms) or (converts and converts[0][0] <= now_ms):
        release_due_exits(state, now_ms, commands)
    HANDLERS[type(event)](state, event, now_ms, commands)
    return commands


step: Callable[[EngineState, Input, int], list[Command]]
try:
    from polysnipe.core import _market
except ImportError:  # the extension is not built: the Python step serves alone
    step = python_step
else:
    from polysnipe.core import book as _book
    from polysnipe.core import market_handlers as _market_handlers

    _market.bind_step(
        HANDLERS,
        release_due_slices,
        release_due_exits,
        PriceChange,
        on_price_change,
        _market_handlers.price_change_left,
        _market_handlers._route_for,
        vars(_market_handlers),
        vars(_book),
        _book._DenseBook,
        BASKET_LOT,
        LastTrade,
        on_last_trade,
        _market_handlers.react_left,
        MarketRegistry,
    )
    step = _market.step


def next_timer_ms(state: EngineState) -> int:
    """When the step next has something to do without any input (an iceberg slice, a time exit, a
    refused conversion asked again); NEVER_MS if never."""
    slices = state.timers[0][0] if state.timers else NEVER_MS
    return min(slices, state.exits.next_due_ms(NEVER_MS))
