"""The simulated venue behind the execution port and the market-event sink: what backtests and paper
runs trade against.

SimVenue is synchronous and keeps its own time (the latency model schedules arrivals and acks); the
port only adapts its calls: `submit` and `cancel` enter requests in flight (the venue answers later,
through `due`), `due` hands over the reports delivered by `now_ms`, and `wake_ms` tells the loop when
the next one falls due, so a replay calls the venue only when it has something to say.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.events import MarketEvent
from polysnipe.core.messages import ExecutionReport, OrderRequest

__all__ = ["SimExecution"]


class SimExecution:
    """core.ports.ExecutionPort and MarketEventSink over one SimVenue."""

    __slots__ = ("venue",)

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue

    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        self.venue.submit(order, now_ms)
        return ()

    async def cancel(self, order_id: str, now_ms: int) -> Sequence[ExecutionReport]:
        self.venue.cancel(order_id, now_ms)
        return ()

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return self.venue.poll(now_ms)

    @property
    def wake_ms(self) -> int:
        return self.venue.wake_ms

    def on_market_event(self, event: MarketEvent) -> None:
        self.venue.on_market_event(event)
