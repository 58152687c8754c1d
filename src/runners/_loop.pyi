"""Types of the backtest loop's compiled market-event path (src/runners/_loop.c)."""

from collections import Counter, deque
from collections.abc import Callable
from typing import Any

def feed_quiet(
    batch: list[object],
    start: int,
    loop: Any,
    step: Callable[..., Any],
    state: Any,
    on_market_event: Callable[[Any], None],
    observe: Callable[[int], int],
    execution: Any,
    feed: deque[tuple[int, object]],
    feed_delay: Callable[[], int],
    counts: Counter[str],
    names: dict[type, str],
    market_kinds: frozenset[type],
    perf: Callable[[], int],
) -> tuple[int, tuple[object, int, Any, int] | None]: ...
