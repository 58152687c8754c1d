"""Types of the compiled engine step and price-change dispatch (src/core/_market.c)."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from polysnipe.core.messages import Command, Input
from polysnipe.core.state import EngineState

def price_change(
    books: dict[str, Any],
    changes: Sequence[Any],
    ts_ms: int,
    handlers: tuple[Callable[..., Any], ...],
    event: Any,
    ctx: Any,
    now_ms: int,
    watched: set[str],
    wallets: dict[str, Any],
    unruled: str,
    flagged: tuple[Any, ...],
    dq_seen: dict[str, int],
) -> tuple[int, int, int, list[Any] | None, list[Any] | None] | None: ...
def step(state: EngineState, event: Input, now_ms: int) -> list[Command]: ...
def bind_step(
    handlers: Mapping[type, Callable[..., None]],
    release_due_slices: Callable[..., None],
    release_due_exits: Callable[..., None],
    price_change_type: type,
    on_price_change: Callable[..., None],
    price_change_left: Callable[..., None],
    route_for: Callable[..., Any],
    market_handlers_globals: dict[str, Any],
    book_globals: dict[str, Any],
    dense_book: object,
    unruled: str,
    last_trade_type: type,
    on_last_trade: Callable[..., None],
    react_left: Callable[..., None],
    registry_type: type,
) -> None: ...
