"""The simulated venue behind the engine loop's ports: execution, market-event sink and settlement.
What backtests and paper runs trade against.

SimVenue is synchronous and keeps its own time (the latency model schedules arrivals and acks); the
port only adapts its calls: `submit` and `cancel` enter requests in flight (the venue answers later,
through `due`), `due` hands over the reports delivered by `now_ms`, and `wake_ms` tells the loop when
the next one falls due, so a replay calls the venue only when it has something to say.

Settlement is what the relayer does on chain, done at once on the venue's ledger: a merged set's
shares can no longer be sold and its USDC can buy again. A market's resolution is learnt from the
market events this sink sees: resting orders there are cancelled and redemptions pay the real winner.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.events import MarketEvent, MarketResolved
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import (
    ExecutionReport,
    MergePositions,
    OrderRequest,
    PositionsMerged,
    PositionsRedeemed,
    RedeemPositions,
    SettlementRefused,
    SettlementReport,
)

__all__ = ["SimExecution"]


class SimExecution:
    """core.ports.ExecutionPort, MarketEventSink and SettlementPort over one SimVenue."""

    __slots__ = ("registry", "venue", "winners")

    def __init__(self, venue: SimVenue, registry: MarketRegistry) -> None:
        self.venue = venue
        self.registry = registry
        #: condition id -> winning token, from the market_resolved events seen
        self.winners: dict[str, str] = {}

    # -- execution -----------------------------------------------------------------------------
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

    # -- market events -------------------------------------------------------------------------
    def on_market_event(self, event: MarketEvent) -> None:
        if type(event) is MarketResolved:
            self._resolve(event)
            return
        self.venue.on_market_event(event)

    def _resolve(self, event: MarketResolved) -> None:
        if event.market in self.winners:
            return
        self.winners[event.market] = event.winning_token
        # the venue stops the market: whatever rests there is cancelled
        for resting in self.venue.open_orders():
            if resting.order.market == event.market:
                self.venue.cancel(resting.order.order_id, event.ts_ms)

    # -- settlement ----------------------------------------------------------------------------
    async def merge(self, request: MergePositions) -> Sequence[SettlementReport]:
        market = self.registry.get(request.market)
        if market is None:
            return [_refused("merge", request, "unknown market")]
        merged = self.venue.ledger.merge(request.wallet, market.token_ids, request.size)
        if merged <= 0:
            return [_refused("merge", request, "no complete set to merge")]
        return [PositionsMerged(request.wallet, request.market, merged, request.ts_ms)]

    async def redeem(self, request: RedeemPositions) -> Sequence[SettlementReport]:
        market = self.registry.get(request.market)
        winner = self.winners.get(request.market)
        if market is None or winner is None:
            return [_refused("redeem", request, "market not resolved on the venue")]
        shares, paid = self.venue.ledger.redeem(request.wallet, market.token_ids, winner)
        return [PositionsRedeemed(request.wallet, request.market, winner, shares, paid, request.ts_ms)]


def _refused(kind: str, request: MergePositions | RedeemPositions, why: str) -> SettlementRefused:
    return SettlementRefused(kind, request.wallet, request.market, why, request.ts_ms, request.correlation_id)
