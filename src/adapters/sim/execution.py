"""The simulated venue behind the engine loop's ports: execution, market-event sink and settlement.
What backtests and paper runs trade against.

SimVenue is synchronous and keeps its own time (the latency model schedules arrivals and acks); the
port only adapts its calls: `submit` and `cancel` enter requests in flight (the venue answers later,
through `due`), `due` hands over the reports delivered by `now_ms`, and `wake_ms` tells the loop when
the next one falls due, so a replay calls the venue only when it has something to say.

Settlement is what the relayer does on chain, done at once on the venue's ledger: a merged set's
shares can no longer be sold and its USDC can buy again. A neg-risk conversion is done the same way,
refused where NegRiskAdapter.convertPositions would revert (not a neg-risk event, an event of one
question, an empty or foreign set of markets) or the CTF transfer would fail (NO shares not held
free), and where the adapter would do nothing (amount 0); its fee (`convert_fee_bips`, the event's
feeBips on chain) is taken from the collateral and the YES shares alike. A market's resolution is
learnt from the market events this sink sees: resting orders there are cancelled and redemptions pay
the real winner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from polysnipe.adapters.sim.venue import SimVenue
from polysnipe.core.events import MarketEvent, MarketResolved
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import (
    ConvertPositions,
    ExecutionReport,
    MergePositions,
    OrderRequest,
    PositionsConverted,
    PositionsMerged,
    PositionsRedeemed,
    RedeemPositions,
    SettlementRefused,
    SettlementReport,
)

__all__ = ["SimExecution"]


class SimExecution:
    """core.ports.ExecutionPort, MarketEventSink and SettlementPort over one SimVenue."""

    __slots__ = ("convert_fee_bips", "on_market_event", "registry", "venue", "winners")

    #: `_on_market_event`, with the venue's plain events done in C (SimVenue.market_sink)
    on_market_event: Callable[[MarketEvent], None]

    def __init__(self, venue: SimVenue, registry: MarketRegistry, *, convert_fee_bips: int = 0) -> None:
        if not 0 <= convert_fee_bips <= 10_000:
            raise ValueError(f"convert_fee_bips must be 0..10000, got {convert_fee_bips}")
        self.venue = venue
        self.registry = registry
        self.convert_fee_bips = convert_fee_bips
        #: condition id -> winning token, from the market_resolved events seen
        self.winners: dict[str, str] = {}
        self.on_market_event = venue.market_sink(self._on_market_event)

    # -- execution -----------------------------------------------------------------------------
    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        self.venue.submit(order, now_ms)
        return ()

    async def submit_many(
        self, orders: Sequence[OrderRequest], now_ms: int
    ) -> Sequence[Sequence[ExecutionReport]]:
        """core.ports.BatchExecutionPort: the legs enter the venue one after the other, in order,
        exactly as submits would (the venue answers each later, through `due`)."""
        submit = self.venue.submit
        for order in orders:
            submit(order, now_ms)
        return [()] * len(orders)

    async def cancel(self, order_id: str, now_ms: int) -> Sequence[ExecutionReport]:
        self.venue.cancel(order_id, now_ms)
        return ()

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return self.venue.poll(now_ms)

    @property
    def wake_ms(self) -> int:
        return self.venue.wake_ms

    # -- market events -------------------------------------------------------------------------
    def _on_market_event(self, event: MarketEvent, start: int = 0) -> None:
        if type(event) is MarketResolved:
            self._resolve(event)
            return
        self.venue.apply_event(event, start)

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

    async def convert(self, request: ConvertPositions) -> Sequence[SettlementReport]:
        why = self._cannot_convert(request)
        if why:
            return [
                SettlementRefused(
                    "convert", request.wallet, request.event, why, request.ts_ms, request.correlation_id
                )
            ]
        event = self._event_markets(request.event)
        chosen = set(request.markets)
        no = [self.registry.by_condition(m).token_ids[1] for m in request.markets]
        others = tuple(m for m in event if m not in chosen)
        yes = [self.registry.by_condition(m).token_ids[0] for m in others]
        collateral, yes_size = self.venue.ledger.convert(
            request.wallet, no, yes, request.size, self.convert_fee_bips
        )
        return [
            PositionsConverted(
                request.wallet, request.event, request.markets, request.size, collateral, others, yes_size,
                request.ts_ms, request.correlation_id,
            )
        ]  # fmt: skip

    def _event_markets(self, event_id: str) -> tuple[str, ...]:
        """The questions of the neg-risk event, as its metadata lists them (else the loaded markets
        that name it)."""
        event = self.registry.event(event_id)
        if event is not None:
            return event.condition_ids
        return tuple(m.condition_id for m in self.registry if m.neg_risk_market_id == event_id)

    def _cannot_convert(self, request: ConvertPositions) -> str:
        """Why the conversion cannot be done ("" when it can)."""
        event = self._event_markets(request.event)
        members = [self.registry.get(m) for m in event]
        if not event or any(m is None or not m.neg_risk for m in members):
            return "not a neg-risk event the venue knows"
        if len(event) <= 1:
            return "no convertible positions: the event has one question"
        if not request.markets or len(set(request.markets)) != len(request.markets):
            return "invalid index set: no market, or one named twice"
        if not set(request.markets) <= set(event):
            return "invalid index set: a market outside the event"
        if request.size <= 0:
            return "amount 0: the adapter converts nothing"
        ledger = self.venue.ledger
        for m in request.markets:
            no = self.registry.by_condition(m).token_ids[1]
            free = ledger.free_shares(request.wallet, no)
            if free < request.size:
                return f"not enough NO shares of {m}: {free} free, {request.size} to convert"
        return ""


def _refused(kind: str, request: MergePositions | RedeemPositions, why: str) -> SettlementRefused:
    return SettlementRefused(kind, request.wallet, request.market, why, request.ts_ms, request.correlation_id)
