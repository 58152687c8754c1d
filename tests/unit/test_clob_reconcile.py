"""Reconciliation against the CLOB simulator (in process, over httpx.ASGITransport, with its faults).

An immediate order whose outcome is unknown is never posted again: it is settled from the venue's
order and trades. An accepted immediate order ends in its own answer (fills, then the killed rest).
A fill after a local give-up still reaches the engine. The periodic reconciler does all of this
without a new submit, and pushes its reports where the user channel pushes its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from kit import order_request, run, until
from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.execution import (
    ORDER_IDS_VERIFIED,
    ClobExecution,
    ReconcileConfig,
    Reconciler,
)
from polysnipe.adapters.clob.factory import ClobSecrets, build_clob_adapters
from polysnipe.adapters.clob.signing import OrderSigner
from polysnipe.adapters.clob.user_channel import UserChannel, UserReport
from polysnipe.adapters.sim.clob import Balances, ClobSimState, Faults, create_app, render
from polysnipe.core.events import BookSnapshot, Level, TickSizeChange
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    ExecutionReport,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRequest,
    OrderType,
    RaiseAlert,
    TradeSettlement,
)
from polysnipe.core.orders import OrderRecord, OrderStatus
from polysnipe.core.units import MICRO

S = MICRO
T0 = 1_764_061_200_000
YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
COND = "0x" + "ab" * 32
# a public anvil/hardhat test key: nothing here is a secret
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDR = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
HOST = "http://sim.test"
GRACE_S = 10.0


class Clock:
    """One clock for the simulator (called) and for our adapter (the core Clock port)."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic_ns(self) -> int:
        return self.ms * 1_000_000


class Gate(httpx.AsyncBaseTransport):
    """The simulator's ASGI transport, with a switch that fails chosen requests before they arrive,
    and a record of every order body sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.refuse: Callable[[httpx.Request], bool] = lambda request: False
        #: requests held (never answered) while this says so, and an event set when one is
        self.hold: Callable[[httpx.Request], bool] = lambda request: False
        self.holding = asyncio.Event()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold(request):
            self.holding.set()
            await asyncio.Event().wait()
        if self.refuse(request):
            return httpx.Response(503, content=b'{"error": "upstream unavailable"}')
        if request.method == "POST" and request.url.path == "/order":
            self.bodies.append(request.content)
        return await self.inner.handle_async_request(request)


class Sim:
    """Our execution adapter in front of a simulator that shows `asks` on YES (outside liquidity)."""

    def __init__(self, asks: Sequence[tuple[int, int]] = (), **reconcile: Any) -> None:
        self.clock = Clock()
        self.state = ClobSimState(
            [Market(COND, (YES, NO), ("Yes", "No"), 10_000, 5 * S, False)],
            balances=Balances(usdc={ADDR: 10_000 * S}, positions={ADDR: {YES: 1_000 * S}}),
            clock=self.clock,
        )
        self.show(asks)
        api = self.state.api_key_for(ADDR, 0)
        self.creds = ApiCreds(api_key=api.key, secret=api.secret, passphrase=api.passphrase)
        self.gate = Gate(httpx.ASGITransport(app=create_app(self.state)))
        self.client = ClobHttpClient(
            ClobConfig(host=HOST),
            self.clock,
            LocalSigner.from_private_key(KEY, 137, self.creds),
            transport=self.gate,
        )
        self.alerts: list[RaiseAlert] = []
        self.execution = ClobExecution(
            self.client,
            OrderSigner.from_key(KEY, 137),
            owner=self.creds.api_key,
            clock=self.clock,
            rng=random.Random(3),
            alert=self.alerts.append,
            sleep=self.sleep,
            reconcile=ReconcileConfig(**{"settle_grace_s": GRACE_S, **reconcile}),
        )
        self.execution.on_market_event(TickSizeChange(self.clock.ms, YES, COND, 10_000, 10_000))

    async def sleep(self, seconds: float) -> None:
        self.clock.ms += int(seconds * 1000)

    def show(self, asks: Sequence[tuple[int, int]]) -> None:
        if asks:
            levels = tuple(Level(price, size) for price, size in asks)
            self.state.apply_events([BookSnapshot(self.clock.ms, YES, COND, (), levels)])

    def fault(self, **fields: Any) -> None:
        self.state.faults = Faults.from_json(fields)

    def heal(self) -> None:
        self.state.faults = Faults()

    def order_posts(self) -> list[str]:
        """Outcome of every POST /order the venue received, oldest first."""
        return [e.outcome for e in self.state.order_log if e.endpoint == "/order"]

    def trade_frames(self) -> list[bytes]:
        """The user-channel `trade` messages of our trades, as the venue would send them."""
        return [
            json.dumps(render.trade_message(t, ADDR, self.clock.ms)).encode()
            for t in self.state.orders.trades_of(ADDR, {})
        ]


def request(n: int, price: int, size: int, order_type: OrderType) -> OrderRequest:
    return order_request(f"opp-{n}:0", opportunity_id=f"opp-{n}", correlation_id=f"c-{n}", strategy="test",
                         wallet=ADDR, market=COND, token_id=YES, price=price, size=size,
                         order_type=order_type)  # fmt: skip


def engine_record(order: OrderRequest, reports: Sequence[ExecutionReport]) -> OrderRecord:
    """The core's order record after these reports (a contradiction would raise here)."""
    record = OrderRecord(order)
    record.mark_posted()
    for report in reports:
        if report.order_id == order.order_id:
            record.apply(report)
    return record


def kinds(reports: Sequence[object]) -> list[str]:
    return [type(r).__name__ for r in reports]


async def verify_ids(sim: Sim) -> None:
    """A resting order the venue acknowledges under our hash: order ids are then verified."""
    (accepted,) = await sim.execution.submit(request(0, 100_000, 5 * S, OrderType.GTC))
    assert isinstance(accepted, OrderAccepted)
    assert ORDER_IDS_VERIFIED == sim.execution.order_id_check


def socket_reports(channel: UserChannel, sim: Sim) -> list[ExecutionReport]:
    """What the user channel makes of the venue's trade frames, less the settlement statuses that
    follow every trade (tests/unit/test_trade_settlement.py)."""
    frames = sim.trade_frames()
    return [
        r
        for f in frames
        for r in channel.on_frame(f, sim.clock.ms)
        if not isinstance(r, TradeSettlement | RaiseAlert)
    ]


# -- an accepted immediate order ends in its answer ------------------------------------------------
@pytest.mark.parametrize(
    ("order_type", "shown", "status", "filled"),
    [
        (OrderType.FAK, 10 * S, OrderStatus.CANCELLED, 10 * S),  # the rest of a FAK is killed
        (OrderType.FOK, 30 * S, OrderStatus.FILLED, 20 * S),  # a FOK fills fully
        (OrderType.FAK, 20 * S, OrderStatus.FILLED, 20 * S),
    ],
)
def test_an_accepted_immediate_order_ends_with_its_fills_and_its_killed_rest(
    order_type: OrderType, shown: int, status: OrderStatus, filled: int
) -> None:
    sim = Sim(asks=[(400_000, shown)])
    order = request(1, 400_000, 20 * S, order_type)
    reports = run(sim.execution.submit(order))
    record = engine_record(order, reports)
    assert (status, filled) == (record.status, record.filled_size)
    assert "OrderAccepted" == kinds(reports)[0]
    fills = [r for r in reports if isinstance(r, OrderFilled)]
    assert [(400_000, filled)] == [(f.price, f.size) for f in fills]
    if status is OrderStatus.CANCELLED:
        assert isinstance(reports[-1], OrderCancelled)
        assert "unfilled_remainder" == reports[-1].reason
    assert ([], 0) == (sim.execution.open_immediate_orders, sim.execution.index.resting_count)
    # the user channel then brings the same trade: already counted, not reported again
    channel = UserChannel(sim.execution.index)
    assert [] == socket_reports(channel, sim)


def test_an_immediate_order_whose_trades_cannot_be_read_yet_is_ended_by_the_reconciler() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    order = request(1, 400_000, 20 * S, OrderType.FAK)
    sim.gate.refuse = lambda r: r.url.path == "/data/trades"  # the trades read path lags
    answered = run(sim.execution.submit(order))
    assert ["OrderAccepted"] == kinds(answered)
    assert ["opp-1:0"] == sim.execution.open_immediate_orders
    assert [] == sim.execution.unknown_orders  # accepted: new orders need not wait for it
    sim.gate.refuse = lambda r: False
    pushed: list[ExecutionReport | RaiseAlert] = []
    reconciler = Reconciler(
        sim.execution, sink=pushed.extend, on_alert=sim.alerts.append, clock=sim.clock, interval_s=1.0
    )
    run(reconciler.tick())
    assert ["OrderFilled", "OrderCancelled"] == kinds(pushed)
    record = engine_record(order, [*answered, *pushed])  # type: ignore[list-item]
    assert (OrderStatus.CANCELLED, 10 * S) == (record.status, record.filled_size)
    assert [] == sim.execution.open_immediate_orders


def test_a_fill_the_user_channel_reported_first_is_still_counted_once() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    order = request(1, 400_000, 20 * S, OrderType.FAK)
    sim.gate.refuse = lambda r: r.url.path == "/data/trades"
    answered = run(sim.execution.submit(order))
    channel = UserChannel(sim.execution.index)
    (early,) = socket_reports(channel, sim)
    assert isinstance(early, OrderFilled)
    sim.gate.refuse = lambda r: False
    settled = run(sim.execution.reconcile(everything=True))
    # the settlement lists the fill again, before the killed rest (the order they happened in)
    assert ["OrderFilled", "OrderCancelled"] == kinds(settled)
    record = engine_record(order, [*answered, early, *settled])
    assert (OrderStatus.CANCELLED, 10 * S, 1) == (record.status, record.filled_size, len(record.trade_ids))


# -- an immediate order with an unknown outcome is never posted again -----------------------------
@pytest.mark.parametrize("status", [502, 504])
def test_a_lost_fak_answer_is_settled_from_the_venue_never_reposted(status: int) -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    order = request(1, 400_000, 20 * S, OrderType.FAK)
    sim.fault(answer_lost_rate=1.0, answer_lost_status=status)
    lost = run(sim.execution.submit(order))
    assert ["OrderStatusUnknown"] == kinds(lost)
    sim.heal()
    settled = run(sim.execution.reconcile())
    assert ["OrderAccepted", "OrderFilled", "OrderCancelled"] == kinds(settled)
    record = engine_record(order, [*lost, *settled])
    assert (OrderStatus.CANCELLED, 10 * S) == (record.status, record.filled_size)
    assert ["accepted"] == sim.order_posts()  # carried out once, its answer lost, never sent again
    assert ([], ORDER_IDS_VERIFIED) == (sim.execution.unknown_orders, sim.execution.order_id_check)


@pytest.mark.parametrize(
    ("order_type", "shown", "fault"),
    [
        # the venue never saw it (a 500 before it acted)
        (OrderType.FAK, 10 * S, {"error_rate": 1.0, "status_codes": [500]}),
        # the venue killed it (a FOK it could not fill) and the answer was lost
        (OrderType.FOK, 10 * S, {"answer_lost_rate": 1.0, "answer_lost_status": 504}),
    ],
    ids=["fak_never_arrived", "fok_killed"],
)
def test_an_unknown_immediate_order_the_venue_never_placed_ends_cancelled_after_the_grace(
    order_type: OrderType, shown: int, fault: dict[str, Any]
) -> None:
    sim = Sim(asks=[(400_000, shown)])
    order = request(1, 400_000, 20 * S, order_type)

    async def scenario() -> list[ExecutionReport]:
        await verify_ids(sim)
        sim.fault(**fault)
        reports = list(await sim.execution.submit(order))
        sim.heal()
        # not on the venue, no trade, but a request in flight may still land: not concluded yet
        assert [] == await sim.execution.reconcile()
        assert ["opp-1:0"] == sim.execution.unknown_orders
        sim.clock.ms += int(GRACE_S * 1000)
        reports += await sim.execution.reconcile()
        return reports

    reports = run(scenario())
    assert ["OrderStatusUnknown", "OrderCancelled"] == kinds(reports)
    assert isinstance(reports[-1], OrderCancelled)
    assert "not_on_venue" == reports[-1].reason
    assert OrderStatus.CANCELLED is engine_record(order, reports).status
    posts = sim.order_posts()
    assert 2 == len(posts) and "accepted" == posts[0]  # the GTC, then the immediate order once
    assert ([], ["opp-1:0"]) == (sim.execution.unknown_orders, sim.execution.watched_orders)
    # a watched order is dropped once its watch ends
    sim.clock.ms += 301_000
    assert [] == run(sim.execution.reconcile(everything=True))
    assert [] == sim.execution.watched_orders


def test_until_order_ids_are_verified_absence_on_the_venue_proves_nothing() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    order = request(1, 400_000, 20 * S, OrderType.FAK)
    sim.fault(error_rate=1.0, status_codes=[500])

    async def scenario() -> list[ExecutionReport]:
        reports = list(await sim.execution.submit(order))
        sim.heal()
        sim.clock.ms += int(GRACE_S * 1000) + 61_000
        reports += await sim.execution.reconcile(everything=True)
        return reports

    reports = run(scenario())
    # it could be on the venue under an id we do not know: not given up, and it is loud about it
    assert ["OrderStatusUnknown"] == kinds(reports)
    assert ["opp-1:0"] == sim.execution.unknown_orders
    assert ["clob_order_unsettled"] == [a.code for a in sim.alerts]
    assert "critical" == sim.alerts[0].severity
    assert ["fault"] == sim.order_posts()


def test_a_round_cancelled_midway_loses_no_order_it_settled() -> None:
    sim = Sim(asks=[(400_000, 30 * S)])
    first, second = (request(n, 400_000, 10 * S, OrderType.FAK) for n in (1, 2))
    sim.fault(answer_lost_rate=1.0, answer_lost_status=504)

    async def scenario() -> tuple[list[ExecutionReport], list[str], list[ExecutionReport]]:
        lost = await sim.execution.post_batch([first, second])
        assert ["OrderStatusUnknown", "OrderStatusUnknown"] == kinds(lost)
        sim.heal()
        second_hash = sim.execution.index.venue_id("opp-2:0")
        assert second_hash is not None
        sim.gate.hold = lambda r: r.url.path == f"/data/order/{second_hash}"
        round_ = asyncio.create_task(sim.execution.reconcile())
        await sim.gate.holding.wait()  # order 1 is settled, order 2's lookup hangs: shutdown now
        round_.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await round_
        still_unknown = sim.execution.unknown_orders
        sim.gate.hold = lambda r: False
        return lost, still_unknown, await sim.execution.reconcile()

    lost, still_unknown, later = run(scenario())
    assert ["opp-2:0"] == still_unknown
    # what the cancelled round learned about order 1 is handed out by the next one, in order
    assert [("opp-1:0", "OrderAccepted"), ("opp-1:0", "OrderFilled")] == [
        (r.order_id, type(r).__name__) for r in later[:2]
    ]
    for order in (first, second):
        assert OrderStatus.FILLED is engine_record(order, [*lost, *later]).status
    assert [] == sim.execution.unknown_orders


# -- a fill after a local give-up still counts ----------------------------------------------------
def test_a_fill_after_a_local_give_up_is_reported_by_the_user_channel_and_the_reconciler() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    order = request(1, 400_000, 20 * S, OrderType.FAK)

    async def scenario() -> tuple[list[ExecutionReport], list[ExecutionReport], list[ExecutionReport]]:
        await verify_ids(sim)
        sim.fault(error_rate=1.0, status_codes=[500])
        given_up = list(await sim.execution.submit(order))
        sim.heal()
        sim.clock.ms += int(GRACE_S * 1000)
        given_up += await sim.execution.reconcile()
        # the request we had given up on reaches the venue after all (a delayed retry by a proxy)
        body = sim.gate.bodies[-1]
        await sim.client.request("POST", "/order", body=body, auth=True, posting=True)
        channel = UserChannel(sim.execution.index)
        by_socket = socket_reports(channel, sim)
        by_rest = await sim.execution.reconcile(everything=True)
        return given_up, by_socket, by_rest

    given_up, by_socket, by_rest = run(scenario())
    assert ["OrderStatusUnknown", "OrderCancelled"] == kinds(given_up)
    assert ["OrderFilled"] == kinds(by_socket)
    assert ["OrderFilled"] == kinds(by_rest)  # the watch finds it too (the socket may have been down)
    record = engine_record(order, [*given_up, *by_socket, *by_rest])
    # counted once, although the order had ended: the shares changed hands
    assert (OrderStatus.CANCELLED, 10 * S) == (record.status, record.filled_size)
    assert ["clob_order_landed_late"] == [a.code for a in sim.alerts]
    assert [] == sim.execution.watched_orders


# -- the periodic reconciler, started and stopped with the adapters -------------------------------
@contextlib.asynccontextmanager
async def _no_socket(url: str) -> AsyncIterator[Any]:
    await asyncio.Event().wait()  # the channels' sockets never open here: only REST is under test
    yield None


def test_clob_adapters_start_the_reconciler_and_its_reports_reach_the_user_sink() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    sim.fault(answer_lost_rate=1.0, answer_lost_status=504)
    pushed: list[UserReport] = []

    async def scenario() -> None:
        adapters = build_clob_adapters(
            {"clob": {"host": HOST}, "reconcile": {"interval_s": 0.01}},
            clock=sim.clock,
            rng=random.Random(1),
            alert=sim.alerts.append,
            market_sink=lambda events: None,
            user_sink=pushed.extend,
            secrets=ClobSecrets(KEY, sim.creds),
            transport=sim.gate,
            connect=_no_socket,
        )
        execution = adapters.execution
        execution.on_market_event(TickSizeChange(sim.clock.ms, YES, COND, 10_000, 10_000))
        await adapters.start([])
        try:
            assert ["OrderStatusUnknown"] == kinds(
                await execution.submit(request(1, 400_000, 20 * S, OrderType.FAK))
            )
            sim.heal()
            await until(lambda: bool(pushed))
        finally:
            await adapters.aclose()
        assert all(task.done() for task in adapters._tasks) or not adapters._tasks

    run(scenario())
    assert ["OrderAccepted", "OrderFilled", "OrderCancelled"] == kinds(pushed)
    assert ["accepted"] == sim.order_posts()


# -- the start-up order-id check ------------------------------------------------------------------
MARKET = Market(COND, (YES, NO), ("Yes", "No"), 10_000, 5 * S, False)


def test_the_order_id_probe_verifies_ids_on_the_venue_and_leaves_nothing_resting() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    assert ORDER_IDS_VERIFIED == run(sim.execution.probe_order_ids(MARKET, YES))
    ((probe_hash, outcome),) = [(e.order_hash, e.outcome) for e in sim.state.order_log]
    assert "accepted" == outcome
    assert "CANCELED" == sim.state.orders.order(ADDR, probe_hash).status
    assert ([], []) == (sim.state.orders.live_orders(ADDR), sim.alerts)
    assert 0 == sim.execution.index.resting_count


def test_a_probe_the_venue_refuses_leaves_ids_unverified_and_says_so() -> None:
    sim = Sim(asks=[(10_000, 10 * S)])  # an ask at one tick: a post-only bid there would cross
    assert "unverified" == run(sim.execution.probe_order_ids(MARKET, YES))
    assert [("warning", "clob_order_id_probe_failed")] == [(a.severity, a.code) for a in sim.alerts]


def test_clob_adapters_probe_order_ids_at_start_when_configured() -> None:
    from polysnipe.core.market import MarketRegistry

    sim = Sim()

    async def scenario() -> str:
        adapters = build_clob_adapters(
            {"clob": {"host": HOST}, "order_id_probe": True},
            clock=sim.clock,
            rng=random.Random(1),
            alert=sim.alerts.append,
            market_sink=lambda events: None,
            user_sink=lambda reports: None,
            registry=MarketRegistry.of([MARKET]),
            secrets=ClobSecrets(KEY, sim.creds),
            transport=sim.gate,
            connect=_no_socket,
        )
        adapters.execution.on_market_event(TickSizeChange(sim.clock.ms, YES, COND, 10_000, 10_000))
        await adapters.start([YES])
        await adapters.aclose()
        return adapters.execution.order_id_check

    assert ORDER_IDS_VERIFIED == run(scenario())
    assert ["accepted"] == sim.order_posts()


# -- the reconciler itself ------------------------------------------------------------------------
class _Raising:
    """Stands in for ClobExecution where a round itself fails (a bug, not venue trouble)."""

    async def reconcile(self, *, everything: bool = False) -> list[ExecutionReport]:
        raise RuntimeError("a bug")


def test_the_reconciler_survives_a_failing_round_and_a_failing_sink() -> None:
    sim = Sim(asks=[(400_000, 10 * S)])
    sim.fault(answer_lost_rate=1.0, answer_lost_status=504)
    run(sim.execution.submit(request(1, 400_000, 20 * S, OrderType.FAK)))
    sim.heal()

    def broken_sink(reports: Sequence[ExecutionReport | RaiseAlert]) -> None:
        raise RuntimeError("inbox gone")

    alerts: list[RaiseAlert] = []
    failing = Reconciler(_Raising(), sink=broken_sink, on_alert=alerts.append, clock=sim.clock, interval_s=1)  # type: ignore[arg-type]
    assert [] == run(failing.tick())
    lossy = Reconciler(sim.execution, sink=broken_sink, on_alert=alerts.append, clock=sim.clock, interval_s=1)
    assert 3 == len(run(lossy.tick()))
    assert ["clob_reconciler_failed", "clob_reconciler_sink_failed"] == [a.code for a in alerts]
    assert all("critical" == a.severity for a in alerts)
    assert "opp-1:0" in alerts[1].details["order_ids"]


def test_reconcile_settings_are_checked() -> None:
    from polysnipe.adapters.clob.factory import settings_from_mapping

    settings = settings_from_mapping({"reconcile": {"interval_s": 0.5, "gtc_repost_window_s": 5}})
    assert (0.5, 5) == (settings.reconcile.interval_s, settings.reconcile.gtc_repost_window_s)
    with pytest.raises(ValueError, match="interval_s"):
        settings_from_mapping({"reconcile": {"interval_s": 0}})
    with pytest.raises(TypeError):
        settings_from_mapping({"reconcile": {"interval": 1}})  # a typo must not fall back to a default
