"""The user WebSocket channel: our orders' execution reports, each fill counted once.

Theory of operation: `UserChannel` (pure: frames in, reports out) maps `order` and `trade` messages
(PROTOCOL.md 10.3) to core execution reports for orders in the OrderIndex shared with execution. A
trade is reported as MATCHED, MINED, CONFIRMED (or RETRYING, FAILED): the fill is counted once per
(trade id, order), whatever the status sequence, and every change of status also goes to the engine
as a TradeSettlement, so the fill stays provisional until CONFIRMED and is undone if FAILED.

`UserStream` runs its socket (websocket.ReconnectingSocket). After a reconnect, `catch_up` (REST
trades, read like the channel's own) fills the hole the outage left: missed fills, and missed
statuses, a failure among them. No frame can stop it: a malformed one goes whole to
`on_malformed`; any failure, the sink's included, is logged and raised through `on_alert` (a lost
user-channel frame may be a lost fill, hence critical), and the next frame is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial

import msgspec

from polysnipe.adapters.clob.auth import ApiCreds
from polysnipe.adapters.clob.errors import MalformedMessage, VenueError
from polysnipe.adapters.clob.execution import OrderIndex
from polysnipe.adapters.clob.market_data import MarketDataConfig, OnAlert, OnMalformedFrame
from polysnipe.adapters.clob.parsing import FeeOf, decode_user_frame, fills_from_trade, order_reports
from polysnipe.adapters.clob.retry import RetryPolicy
from polysnipe.adapters.clob.schemas import WireOrder, WireTrade
from polysnipe.adapters.clob.websocket import Connect, Notices, ReconnectingSocket, ws_connect
from polysnipe.adapters.logs import get_logger
from polysnipe.core.messages import (
    TRADE_STATUSES,
    ExecutionReport,
    OrderAccepted,
    OrderFilled,
    RaiseAlert,
    TradeSettlement,
)
from polysnipe.core.ports import Clock, Rng

__all__ = ["UserChannel", "UserReport", "UserStream", "user_subscription"]

#: what the user channel hands the engine
UserReport = ExecutionReport | TradeSettlement | RaiseAlert

log = get_logger("polysnipe.clob.user_channel")


def user_subscription(creds: ApiCreds, markets: Sequence[str]) -> str:
    """The initial frame of a user-channel connection; `markets` are condition ids (PROTOCOL.md 10.1)."""
    auth = {"apiKey": creds.api_key, "secret": creds.secret.reveal(), "passphrase": creds.passphrase.reveal()}
    return msgspec.json.encode({"auth": auth, "markets": list(markets), "type": "user"}).decode()


class UserChannel:
    """User-channel messages to execution reports for our orders, each fill counted once.

    Fills are claimed in the OrderIndex shared with execution, so a trade that REST already reported
    (an order's answer, reconciliation, catch-up) is not reported again here, and the other way round.
    A fill for an order that execution gave up on locally (reported cancelled) still maps to it while
    the index remembers the order, and is reported: the core counts fills after a cancel.
    """

    __slots__ = ("_fee_of", "index")

    def __init__(self, index: OrderIndex, *, fee_of: FeeOf | None = None) -> None:
        self.index = index
        self._fee_of = fee_of

    def on_trades(self, trades: Iterable[WireTrade], recv_ms: int) -> list[UserReport]:
        """Trades learned elsewhere (REST catch-up after a reconnect) as if the channel had sent them:
        the fills not reported yet, and each settlement status not passed on yet. So a trade that
        FAILED during the outage, whose fill was counted before it, is undone."""
        # every trade is read before any fill is claimed, as in on_frame
        read = [
            (t, fills_from_trade(t, self.index.order_id, ts_recv_ms=recv_ms, fee_of=self._fee_of))
            for t in trades
        ]
        out: list[UserReport] = []
        for trade, fills in read:
            self._trade(trade, fills, recv_ms, out)
        return out

    def on_frame(self, data: bytes | str, recv_ms: int) -> list[UserReport]:
        # Every message of the frame is read before any fill is claimed: a malformed one later in
        # the frame (the whole frame is then dead-lettered) must not leave earlier fills claimed,
        # and so never reported again when the venue sends them once more.
        steps: list[Callable[[list[UserReport]], None]] = []
        for msg in decode_user_frame(data):
            if isinstance(msg, WireTrade):
                fills = fills_from_trade(msg, self.index.order_id, ts_recv_ms=recv_ms, fee_of=self._fee_of)
                steps.append(partial(self._trade, msg, fills, recv_ms))
            else:
                order_id = self.index.order_id(msg.id)
                if order_id is not None:
                    reports = order_reports(msg, order_id, ts_recv_ms=recv_ms)
                    steps.append(partial(self._order, msg, order_id, reports))
        out: list[UserReport] = []
        for step in steps:
            step(out)
        return out

    def _order(
        self, msg: WireOrder, order_id: str, reports: list[ExecutionReport], out: list[UserReport]
    ) -> None:
        for report in reports:
            if isinstance(report, OrderAccepted):
                if (msg.order_type or "GTC").upper() in ("GTC", "GTD"):
                    self.index.mark_resting(order_id)
            else:
                self.index.observe(report)
            out.append(report)

    def _trade(self, msg: WireTrade, fills: list[OrderFilled], recv_ms: int, out: list[UserReport]) -> None:
        # py-sdk also sees an internal prefixed spelling (TRADE_STATUS_CONFIRMED)
        status = msg.status.upper().removeprefix("TRADE_STATUS_")
        if status not in TRADE_STATUSES:
            if fills:
                out.append(RaiseAlert("warning", "trade_status_unknown",
                                      f"trade {msg.id}: status {msg.status[:40]!r} is not one the protocol"
                                      " lists; its fill is kept as provisional", recv_ms))  # fmt: skip
            status = "MATCHED"
        if status == "FAILED":
            # never counted here (one counted before is undone by the core), nor later: a stale
            # MATCHED of the same trade after it failed is not a fill
            for f in fills:
                self.index.refuse(f)
        else:
            out.extend(f for f in fills if self.index.claim(f))
        news = [f for f in fills if self.index.passes_on(f, status)]
        out.extend(TradeSettlement(recv_ms, msg.id, f.order_id, status) for f in news)


class UserStream:
    """The user channel's socket. After a reconnect, `catch_up` (REST trades) fills the hole.

    `on_malformed` receives every frame that could not be parsed, whole; `on_alert` every failure
    (a dead-lettered frame, a frame or a sink that raised, a broken session). Both optional; every
    failure is logged either way.
    """

    def __init__(
        self,
        config: MarketDataConfig,
        *,
        creds: ApiCreds,
        markets: Sequence[str],
        channel: UserChannel,
        sink: Callable[[Sequence[UserReport]], None],
        clock: Clock,
        rng: Rng,
        catch_up: Callable[[], Awaitable[list[WireTrade]]] | None = None,
        connect: Connect | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_malformed: OnMalformedFrame | None = None,
        on_alert: OnAlert | None = None,
    ) -> None:
        self.channel = channel
        self._sink = sink
        self._clock = clock
        self._catch_up = catch_up
        self._notices = Notices("user", clock, on_alert, on_malformed)
        #: frames that could not be parsed
        self.malformed = 0
        self._socket = ReconnectingSocket(
            config.user_url,
            user_subscription(creds, markets),
            handle=self._handle,
            on_open=self._on_open,
            on_lost=lambda reason: log.info("user_channel_lost", reason=reason),
            on_error=self._on_error,
            ping_interval_s=config.ping_interval_s,
            stale_after_s=config.stale_after_s,
            policy=RetryPolicy(base_s=config.reconnect_base_s, cap_s=config.reconnect_cap_s),
            clock=clock,
            rng=rng,
            connect=connect or ws_connect,
            sleep=sleep,
        )

    def _alert(self, severity: str, code: str, message: str, **details: str) -> None:
        self._notices.alert(severity, code, message, **details)

    def _dead_letter(self, frame: str | bytes, reason: str) -> None:
        self._notices.dead_letter(frame, reason)

    def _deliver(self, out: list[UserReport]) -> None:
        try:
            self._sink(out)
        except Exception as exc:
            # the channel already counted these fills: they will not come again, hence critical
            log.exception("user_sink_failed", reports=len(out))
            self._alert(
                "critical",
                "user_sink_failed",
                f"the user-channel sink raised {type(exc).__name__}; {len(out)} reports lost downstream",
                error=repr(exc)[:500],
                order_ids=",".join(_order_ids(out))[:500],
            )

    def _handle(self, frame: str | bytes, now_ms: int) -> None:
        try:
            out = self.channel.on_frame(frame, now_ms)
        except MalformedMessage as exc:
            self.malformed += 1
            log.warning("user_frame_malformed", reason=exc.reason, size=len(frame))
            self._dead_letter(frame, exc.reason)
            self._alert(
                "critical", "user_frame_malformed", f"a user-channel frame was unreadable: {exc.reason}"[:500]
            )
            return
        if out:
            self._deliver(out)

    def _on_error(self, frame: str | bytes | None, exc: Exception) -> None:
        if frame is not None:
            log.error("user_frame_failed", error=repr(exc)[:500], size=len(frame), exc_info=exc)
            self._dead_letter(frame, f"{type(exc).__name__}: {exc}"[:500])
            self._alert(
                "critical",
                "user_frame_failed",
                f"a user-channel frame raised {type(exc).__name__}",
                error=repr(exc)[:500],
            )
        else:
            self._alert(
                "critical",
                "user_socket_failed",
                f"a user-channel session broke: {type(exc).__name__}",
                error=repr(exc)[:500],
            )

    async def _on_open(self, connects: int) -> None:
        if connects == 1 or self._catch_up is None:
            return
        fresh: list[UserReport] = []
        try:
            fresh.extend(self.channel.on_trades(await self._catch_up(), self._clock.now_ms()))
        except (VenueError, MalformedMessage) as exc:
            fresh.append(
                RaiseAlert(
                    "warning",
                    "user_catch_up_failed",
                    f"fills during the user-channel outage may be missing: {exc}",
                    self._clock.now_ms(),
                )
            )
        if fresh:
            self._deliver(fresh)

    async def run(self) -> None:
        await self._socket.run()


def _order_ids(reports: Iterable[UserReport]) -> list[str]:
    return [r.order_id for r in reports if not isinstance(r, RaiseAlert)]
