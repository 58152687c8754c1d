"""The shared test kit: builders for markets, books, opportunities, orders and engines.

Tests import it as `kit` (pyproject's pytest `pythonpath` puts tests/ on the path). Every builder
takes keyword overrides, so a test states only what it is about.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import httpx

from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.book import Book
from polysnipe.core.evaluators import Evaluators
from polysnipe.core.events import BookSnapshot, Event, LastTrade, Level, Side
from polysnipe.core.exit_rules import ExitParams
from polysnipe.core.market import Market, MarketRegistry
from polysnipe.core.messages import (
    ExecutionReport,
    Liquidity,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderType,
    PlaceOrder,
)
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.ports import NEVER_MS
from polysnipe.core.risk import RiskDecision, RiskGatekeeper, RiskPolicy, RiskState
from polysnipe.core.routing import build_router
from polysnipe.core.signals.base import SignalContext
from polysnipe.core.state import EngineState, build_state
from polysnipe.core.units import MICRO

__all__ = [
    "MARKET",
    "NO",
    "SAMPLE",
    "T0",
    "WALLET",
    "YES",
    "RecordingGatekeeper",
    "ScriptedSignal",
    "ScriptedVenue",
    "engine",
    "event_legs",
    "fill",
    "market",
    "market_files",
    "of",
    "opportunity",
    "order_request",
    "risk_policy",
    "run",
    "snapshot",
    "trade",
    "until",
    "until_subscribed",
]

T = TypeVar("T")
T0 = 1_700_000_000_000
#: the bundled sample (polysnipe generate --seed 7 --duration-s 600)
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def market_files(folder: Path) -> list[Path]:
    """The metadata files `polysnipe generate` wrote into `folder` (CLOB markets and Gamma), all of
    which a run takes: without Gamma's fee schedules no market's fees are known."""
    from polysnipe.tools.datagen import GENERATED_METADATA

    return [folder / name for name in GENERATED_METADATA]


WALLET = "0x5afe"
YES, NO = "111", "222"


def market(
    condition_id: str = "0xc1",
    tokens: tuple[str, str] = (YES, NO),
    *,
    tick: int = 10_000,
    min_size: int = 5 * MICRO,
    neg_risk: bool = False,
    **more: Any,
) -> Market:
    return Market(condition_id, tokens, ("Yes", "No"), tick, min_size, neg_risk, **more)


MARKET = market()


def event_legs(event: str = "E", n: int = 3, **more: Any) -> tuple[Market, ...]:
    """The `n` binary markets of neg-risk event `event`: condition ids 0xe0.., YES y0.., NO n0.."""
    return tuple(
        market(f"0xe{i}", (f"y{i}", f"n{i}"), neg_risk=True, neg_risk_market_id=event, **more)
        for i in range(n)
    )


def snapshot(
    ts: int = T0, token: str = YES, bid: int = 480_000, ask: int = 500_000, size: int = 100 * MICRO,
    condition_id: str = "0xc1",
) -> BookSnapshot:  # fmt: skip
    return BookSnapshot(ts, token, condition_id, (Level(bid, size),), (Level(ask, size),))


def trade(ts: int = T0, token: str = YES, price: int = 500_000, condition_id: str = "0xc1") -> LastTrade:
    return LastTrade(ts, token, condition_id, price, MICRO, Side.BUY)


def opportunity(oid: str = "o1", **changes: Any) -> Opportunity:
    base = Opportunity(
        id=oid, strategy="scripted", market=MARKET.condition_id, token_id=YES, side=Side.BUY,
        size=20 * MICRO, limit_price=500_000, fair_value=550_000, edge=50_000, confidence=0.9,
        created_ms=T0, expires_ms=T0 + 60_000, reason="test", correlation_id=f"c-{oid}",
    )  # fmt: skip
    return attrs.evolve(base, **changes)


def order_request(order_id: str = "o1-0", **changes: Any) -> OrderRequest:
    base = OrderRequest(
        order_id=order_id, opportunity_id=order_id.split("-")[0], correlation_id="c", strategy="scripted",
        routing="aggressive", wallet=WALLET, market=MARKET.condition_id, token_id=YES, side=Side.BUY,
        price=500_000, size=10 * MICRO, order_type=OrderType.FAK, tick_size=10_000, neg_risk=False,
    )  # fmt: skip
    return attrs.evolve(base, **changes)


def fill(
    order: OrderRequest,
    ts: int,
    size: int | None = None,
    trade_id: str = "t1",
    *,
    price: int | None = None,
    liquidity: Liquidity = Liquidity.TAKER,
    **fees: int,
) -> OrderFilled:
    """A fill of `order` (all of it unless `size`, at its limit unless `price`), as a taker by default."""
    return OrderFilled(
        order.order_id, trade_id, ts, order.token_id, order.side, order.price if price is None else price,
        order.size if size is None else size, liquidity, **fees,
    )  # fmt: skip


def risk_policy(**overrides: Any) -> RiskPolicy:
    base: dict[str, Any] = {
        "max_order_notional_usdc_micro": 1_000 * MICRO,
        "max_market_exposure_usdc_micro": 5_000 * MICRO,
        "max_outcome_exposure_usdc_micro": 5_000 * MICRO,
        "max_open_orders": 50,
        "max_orders_per_window": 100,
        "rate_window_ms": 10_000,
        "daily_loss_limit_usdc_micro": 1_000 * MICRO,
        "max_book_age_ms": 60_000,
    }
    base.update(overrides)
    return RiskPolicy(**base)


class ScriptedSignal:
    """A real signal module that emits prepared opportunities when an event with a given time arrives."""

    name = "scripted"

    def __init__(self, script: dict[int, list[Opportunity]]) -> None:
        self.script = script

    def on_event(self, event: Event, ctx: SignalContext, now_ms: int) -> list[Opportunity]:
        return self.script.pop(event.ts_ms, [])


class RecordingGatekeeper(RiskGatekeeper):
    """The real gatekeeper, keeping every check it made (the orders and the decision), in order.

    For properties about decisions the journal does not show: the lifecycle journals an iceberg
    slice's check only when it refuses the slice.
    """

    __slots__ = ("checks",)

    def __init__(self, policy: RiskPolicy) -> None:
        super().__init__(policy)
        self.checks: list[tuple[tuple[OrderRequest, ...], RiskDecision]] = []

    def check_orders(
        self,
        legs: Sequence[tuple[OrderRequest, Market, Book | None]],
        state: RiskState,
        now_ms: int,
        event_tokens: Sequence[str] = (),
    ) -> RiskDecision:
        decision = super().check_orders(legs, state, now_ms, event_tokens)
        self.checks.append((tuple(order for order, _, _ in legs), decision))
        return decision


def engine(
    script: dict[int, list[Opportunity]] | None = None,
    markets: Sequence[Market] = (MARKET,),
    *,
    balance: int = 10_000 * MICRO,
    policy: RiskPolicy | None = None,
    routing: dict[str, Any] | None = None,
    balances: Mapping[str, int] | None = None,
    wallet_for: Callable[[Opportunity], str] | None = None,
    gatekeeper: RiskGatekeeper | None = None,
    exits: ExitParams | None = None,
) -> EngineState:
    """An engine over `markets` whose one signal plays `script`. One wallet (WALLET, `balance`) unless
    `balances` names several, with `wallet_for` choosing among them; `gatekeeper` replaces the one
    built from `policy`."""
    router = build_router(routing or {
        "default": "aggressive",
        "by_urgency": {"passive": "passive", "iceberg": "iceberg"},
        "iceberg": {"display_size_micro": 8 * MICRO, "size_jitter_bps": 0, "delay_ms": 100,
                    "delay_jitter_ms": 0, "child": "aggressive"},
    })  # fmt: skip
    return build_state(
        markets=MarketRegistry.of(markets),
        signals=[ScriptedSignal({} if script is None else script)],
        evaluators=Evaluators(),
        gatekeeper=gatekeeper or RiskGatekeeper(policy or risk_policy()),
        risk=RiskState(Portfolio.of(balances or {WALLET: balance})),
        router=router,
        rng=random.Random(1),
        wallet_for=wallet_for or (lambda _: WALLET),
        exits=exits,
    )


def of(commands: Sequence[object], kind: type[T]) -> list[T]:
    """The commands of one type, in order."""
    return [c for c in commands if isinstance(c, kind)]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to the end on a fresh event loop (a sync test's way into async code)."""
    return asyncio.run(coro)


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Wait, polling every 10 ms, until `predicate()` holds; fail the test after `timeout_s`.

    What a test waits on instead of sleeping "long enough": fast when the condition comes early,
    and a clear failure (not a later, puzzling one) when it never does. The predicate may be a
    coroutine function, for conditions only a request can see.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        held = predicate()
        if held if isinstance(held, bool) else await held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout_s} s")
        await asyncio.sleep(0.01)


async def until_subscribed(
    sim_url: str,
    token_ids: Iterable[str],
    *,
    user: bool = False,
    started: asyncio.Task[Any] | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Wait until the CLOB simulator at `sim_url` serves every one of `token_ids` on its market
    channel and, with `user`, has an authenticated user socket (GET /_sim/state `subscriptions`).

    The simulator sends a subscriber its books as it subscribes, so after this a runner has them
    before any replayed change. A `started` task that ends first (a runner that failed to start)
    raises its own error rather than a timeout.
    """
    wanted = set(token_ids)
    async with httpx.AsyncClient(base_url=sim_url) as client:

        async def subscribed() -> bool:
            if started is not None and started.done():
                started.result()
                raise AssertionError("the runner ended before it subscribed")
            subs = (await client.get("/_sim/state")).json()["subscriptions"]
            return wanted <= set(subs["market_assets"]) and (not user or subs["user"] > 0)

        await until(subscribed, timeout_s)


class ScriptedVenue:
    """An ExecutionPort that answers every order at once with what `answer` says (the CLOB's way)."""

    def __init__(self, journal: MemoryJournal, answer: str = "fill") -> None:
        self.journal = journal
        self.answer = answer
        self.submitted: list[OrderRequest] = []
        self.journaled_first: list[bool] = []

    async def submit(self, order: OrderRequest, now_ms: int) -> Sequence[ExecutionReport]:
        self.submitted.append(order)
        self.journaled_first.append(PlaceOrder(order, now_ms) in self.journal.records)
        if self.answer == "reject":
            return [OrderRejected(order.order_id, now_ms, "fak_not_filled", "no orders found")]
        return [
            OrderAccepted(order.order_id, now_ms, "0xabc"),
            fill(order, now_ms, trade_id=f"t-{order.order_id}"),
        ]

    async def cancel(self, order_id: str, now_ms: int) -> Sequence[ExecutionReport]:
        return ()

    def due(self, now_ms: int) -> Sequence[ExecutionReport]:
        return ()

    @property
    def wake_ms(self) -> int:
        return NEVER_MS
