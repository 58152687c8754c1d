"""Orders on the simulated venue: intake, execution through the one MatchingEngine, the order and
trade store, cancels, GTD expiries, trade settlement and the order log.

An order goes through the venue's checks in this order: payload shape and version, owner == API key,
signer == the key's address, the EIP-712 signature (recomputed order hash, ecrecover, or the ERC-7739
wrapper of POLY_1271), the price derived from the signed integer amounts (any amounts are accepted; the
price only has to sit on the tick within one unit of the amount precision, PROTOCOL 3.7), then the ONE
matching engine does duplicates, tick, minimum size, GTD expiration, balance, post-only and FOK/FAK,
and answers with `VENUE_ERRORS` texts.

What the engine did is read back from its reports (acceptance, cancels, expiries) and its Trade
records, which name the taker and every maker of each match (on either outcome: a MINT or MERGE
lists the other token's orders among the makers, each with its own asset, side and price). Nothing
is inferred from the order the fills were reported in. Trades then settle MATCHED -> MINED ->
CONFIRMED on the clock.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from polysnipe.adapters.clob.signing import keccak256
from polysnipe.adapters.sim.clob.accounts import Accounts, ApiKey
from polysnipe.adapters.sim.clob.auth import OrderSignatures
from polysnipe.adapters.sim.clob.channels import Channels
from polysnipe.adapters.sim.clob.config import ClobSimConfig, Faults
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.market import MarketData
from polysnipe.adapters.sim.clob.records import OrderLogEntry, Placement, SimOrder, SimTrade
from polysnipe.adapters.sim.clob.wire import WireOrder, parse_wire_order, peek, venue_price
from polysnipe.adapters.sim.venue import VENUE_ERRORS, MatchingEngine, Trade
from polysnipe.core.market import Market
from polysnipe.core.messages import OrderCancelled, OrderExpired, OrderRejected, OrderRequest, OrderType

__all__ = ["MAX_BATCH", "Orders"]

#: orders per POST /orders (PROTOCOL 5.2)
MAX_BATCH: Final = 15

_log = logging.getLogger(__name__)
#: unix seconds in a query are at most this many ASCII digits (anything else is ignored)
_MAX_SECONDS_DIGITS: Final = 12


def _seconds(text: str) -> int | None:
    if 0 < len(text) <= _MAX_SECONDS_DIGITS and text.isascii() and text.isdecimal():
        return int(text)
    return None


class Orders:
    """The venue's order book keeping around the matching engine (see module doc)."""

    __slots__ = (
        "_accounts",
        "_channels",
        "_clock",
        "_config",
        "_engine",
        "_faults",
        "_live",
        "_market",
        "_orders",
        "_signatures",
        "_to_confirm",
        "_to_mine",
        "_trades",
        "log",
    )

    def __init__(
        self,
        config: ClobSimConfig,
        market: MarketData,
        engine: MatchingEngine,
        accounts: Accounts,
        channels: Channels,
        clock: Callable[[], int],
        faults: Callable[[], Faults],
    ) -> None:
        self._config = config
        self._market = market
        self._engine = engine
        self._accounts = accounts
        self._signatures = OrderSignatures(config, accounts)
        self._channels = channels
        self._clock = clock
        self._faults = faults
        self._orders: dict[str, SimOrder] = {}
        self._live: dict[str, dict[str, SimOrder]] = {}  # condition id -> resting orders
        self._trades: dict[str, SimTrade] = {}
        self._to_mine: deque[SimTrade] = deque()
        self._to_confirm: deque[SimTrade] = deque()
        #: every order request received (accepted or not), newest last, bounded
        self.log: deque[OrderLogEntry] = deque(maxlen=config.order_log_size)

    def exchange_version(self) -> int:
        version = self._faults().exchange_version
        return version if version is not None else self._config.exchange_version

    # -- intake --------------------------------------------------------------------------------
    def log_refused(self, endpoint: str, outcome: str, error: str, payload: Any = None) -> None:
        """Log an order request refused before the venue looked at the order (auth, rate, fault).

        `payload` is passed only for authenticated requests; unauthenticated bodies are never parsed.
        """
        batch = endpoint == "/orders" and isinstance(payload, list) and len(payload) <= MAX_BATCH
        items: Sequence[Any] = payload if batch else [payload]
        now = self._clock()
        for item in items:
            salt, owner, order_type = peek(item)
            self.log.append(OrderLogEntry(now, endpoint, "", salt, owner, order_type, outcome, error))

    def place(self, creds: ApiKey, payload: Any, endpoint: str, *, answer_lost: bool = False) -> Placement:
        """One order request: the order and its trades, or the venue's refusal. Always logged."""
        now = self._clock()
        salt, owner, order_type = peek(payload)
        order_hash = ""
        try:
            wire = parse_wire_order(payload)
            market = self._market.registry.get_by_token(wire.token_id)
            if market is None:
                raise VenueError(400, VENUE_ERRORS["invalid_token"])
            version = self.exchange_version()
            domain = self._signatures.domain(version, market.neg_risk)
            contents = wire.struct_hash()
            order_hash = "0x" + keccak256(b"\x19\x01" + domain + contents).hex()
            self._signatures.verify(creds, wire, domain, contents, version)
            if self._faults().mode == "post_only" and not wire.post_only:
                raise VenueError(400, ERRORS["post_only_mode"])
            placement = self._execute(creds, wire, market, order_hash, now)
        except VenueError as exc:
            version_error = exc.message == ERRORS["version"]
            status = self._config.version_mismatch_status if version_error else 400
            placement = Placement(order_hash, error=exc.message, status=status)
        except Exception:  # a bug: this order's own error, so that a batch never fails half-placed
            _log.exception("clob simulator could not place an order (%s)", endpoint)
            placement = Placement(order_hash, error=ERRORS["internal"], status=500)
        accepted = placement.order is not None
        self.log.append(
            OrderLogEntry(
                now,
                endpoint,
                order_hash,
                salt,
                owner,
                order_type,
                "accepted" if accepted else "rejected",
                placement.error,
                ("matched" if placement.trades else "live") if accepted else "",
                answer_lost,
            )
        )
        return placement

    def _execute(
        self, creds: ApiKey, wire: WireOrder, market: Market, order_hash: str, now: int
    ) -> Placement:
        token = wire.token_id
        tick = self._market.tick_size(token)
        price = venue_price(wire.side, wire.maker_amount, wire.taker_amount, tick)
        if price is None:
            raise VenueError(400, VENUE_ERRORS["invalid_tick"])
        self._accounts.fund(wire.maker)
        gtd = wire.order_type is OrderType.GTD
        request = OrderRequest(
            order_id=order_hash,
            opportunity_id="",
            correlation_id=creds.key,
            strategy="",
            routing="",
            wallet=wire.maker,
            market=market.condition_id,
            token_id=token,
            side=wire.side,
            price=price,
            size=wire.size,
            order_type=wire.order_type,
            tick_size=tick,
            neg_risk=market.neg_risk,
            post_only=wire.post_only,
            expiration_ms=wire.expiration_s * 1000 if gtd else 0,
        )
        first = len(self._engine.reports)
        self._engine.place(request, now)
        verdict = self._engine.reports[first]  # the engine answers a placement first: accepted or not
        if isinstance(verdict, OrderRejected):
            self._engine.drain()
            raise VenueError(400, verdict.venue_message)
        order = SimOrder(
            order_hash,
            creds.key,
            creds.address,
            wire.maker_text,
            market,
            token,
            wire.side,
            price,
            wire.size,
            wire.order_type,
            wire.expiration_s if gtd else 0,
            now,
        )
        self._orders[order_hash] = order
        trades = self.absorb(now, placing=order)
        self._channels.publish(market, now, traded=bool(trades))
        return Placement(order_hash, order, tuple(t for t in trades if t.taker is order))

    # -- engine output -> venue records ---------------------------------------------------------
    def absorb(self, now: int, *, placing: SimOrder | None = None) -> list[SimTrade]:
        """Fold what the engine just did into orders, trades and user messages; returns the trades.

        Messages go out makers' updates first, then the placed order, then the trades.
        """
        reports = self._engine.drain()
        trades = [self._trade(record, now) for record in self._engine.drain_trades()]
        touched: dict[str, SimOrder] = {}
        for trade in trades:
            for order, part in trade.sides():
                order.size_matched += part.size
                order.trade_ids.append(trade.id)
                if order is not placing:
                    touched[order.id] = order
        for report in reports:
            if not isinstance(report, OrderCancelled | OrderExpired):
                continue
            if isinstance(report, OrderCancelled) and report.reason == "fak_remainder":
                continue  # the unfilled rest of a FOK/FAK: the order ends MATCHED, never rested
            order = self._orders[report.order_id]
            order.status = "CANCELED"
            self._unlist(order)
            self._channels.order(order, "CANCELLATION", now)
        for order in touched.values():
            if not order.remaining:
                order.status = "MATCHED"
                self._unlist(order)
            self._channels.order(order, "UPDATE", now)
        if placing is not None:
            if placing.order_type.is_immediate or not placing.remaining:
                placing.status = "MATCHED"
            else:
                self._live.setdefault(placing.market.condition_id, {})[placing.id] = placing
            self._channels.order(placing, "PLACEMENT", now)
        for trade in trades:
            self._channels.trade(trade, now)
        return trades

    def _trade(self, record: Trade, now: int) -> SimTrade:
        trade_id = str(
            uuid.UUID(bytes=keccak256(f"{self._config.seed}:{record.trade_id}".encode())[:16], version=4)
        )
        taker_id = record.taker.order_id
        taker = self._orders[taker_id] if taker_id is not None else None
        makers = [(self._orders[m.order_id], m) for m in record.makers if m.order_id is not None]
        market = self._market.registry.by_condition(record.market)
        trade = SimTrade(
            trade_id,
            record,
            market,
            taker,
            makers,
            now,
            "0x" + keccak256(trade_id.encode()).hex(),
            last_update_ms=now,
        )
        self._trades[trade_id] = trade
        self._to_mine.append(trade)
        if taker is not None:
            self._market.record_last_trade(record.token_id, record.taker.price)
        return trade

    def _unlist(self, order: SimOrder) -> None:
        self._live.get(order.market.condition_id, {}).pop(order.id, None)

    # -- cancels -------------------------------------------------------------------------------
    def cancel(self, user: str, order_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """Cancel the user's orders among `order_ids`: (cancelled, {id: why not})."""
        now = self._clock()
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        markets: dict[str, Market] = {}
        for order_id in order_ids:
            order = self._orders.get(order_id)
            if order is None or order.user != user:
                not_canceled[order_id] = ERRORS["order_not_found"]
            elif order.status != "LIVE":
                not_canceled[order_id] = ERRORS["not_cancelable"]
            else:
                self._engine.cancel(order_id, now)
                self.absorb(now)
                canceled.append(order_id)
                markets[order.market.condition_id] = order.market
        for market in markets.values():
            self._channels.publish(market, now, traded=False)
        return canceled, not_canceled

    def cancel_where(
        self, user: str, market: str = "", asset_id: str = ""
    ) -> tuple[list[str], dict[str, str]]:
        """DELETE /cancel-all and /cancel-market-orders."""
        return self.cancel(user, [o.id for o in self.live_orders(user, market, asset_id)])

    # -- queries -------------------------------------------------------------------------------
    def order(self, user: str, order_id: str) -> SimOrder:
        """One of the user's orders, else 404 `order not found`."""
        order = self._orders.get(order_id)
        if order is None or order.user != user:
            raise VenueError(404, ERRORS["order_not_found"])
        return order

    def live_orders(
        self, user: str, market: str = "", asset_id: str = "", order_id: str = ""
    ) -> list[SimOrder]:
        """The user's resting orders, oldest first, optionally filtered (GET /data/orders)."""
        out = [
            o
            for live in self._live.values()
            for o in live.values()
            if o.user == user
            and (not market or o.market.condition_id == market)
            and (not asset_id or o.token_id == asset_id)
            and (not order_id or o.id == order_id)
        ]
        out.sort(key=lambda o: o.created_ms)
        return out

    def trades_of(self, user: str, query: Mapping[str, str]) -> list[SimTrade]:
        """GET /data/trades for a user: the trades they took or made, filtered by the query."""
        after, before = _seconds(query.get("after", "")), _seconds(query.get("before", ""))
        maker_address = query.get("maker_address", "").lower()
        trade_id, market, asset_id = (query.get(k, "") for k in ("id", "market", "asset_id"))
        out = []
        for trade in self._trades.values():
            if user not in trade.users():
                continue
            if trade_id and trade.id != trade_id:
                continue
            if market and trade.market.condition_id != market:
                continue
            if asset_id and asset_id not in (
                trade.taken.token_id,
                *(part.token_id for _, part in trade.makers),
            ):
                continue
            match_s = trade.match_ms // 1000
            if (after is not None and match_s <= after) or (before is not None and match_s >= before):
                continue
            taker_wallet = trade.taker.maker.lower() if trade.taker is not None else ""
            if maker_address and taker_wallet != maker_address:
                continue
            out.append(trade)
        return out

    def counts(self) -> dict[str, int]:
        return {
            "open_orders": sum(len(v) for v in self._live.values()),
            "orders": len(self._orders),
            "trades": len(self._trades),
        }

    # -- time passing --------------------------------------------------------------------------
    def expire(self, now: int) -> None:
        """Expire the GTD orders whose deadline has come."""
        expiry = self._engine.next_expiry_ms()
        if expiry is None or expiry > now:
            return
        self._engine.expire_until(now)
        markets = {
            self._orders[r.order_id].market.condition_id: self._orders[r.order_id].market
            for r in self._engine.reports
        }
        self.absorb(now)
        for market in markets.values():
            self._channels.publish(market, now, traded=False)

    def settle(self, now: int) -> None:
        """Move trades on: MATCHED -> MINED -> CONFIRMED after the configured delays."""
        cfg = self._config
        while self._to_mine and self._to_mine[0].match_ms + cfg.mined_after_ms <= now:
            trade = self._to_mine.popleft()
            trade.status, trade.last_update_ms = "MINED", now
            self._to_confirm.append(trade)
            self._channels.trade(trade, now)
        while self._to_confirm and self._to_confirm[0].match_ms + cfg.confirmed_after_ms <= now:
            trade = self._to_confirm.popleft()
            trade.status, trade.last_update_ms = "CONFIRMED", now
            self._channels.trade(trade, now)
