"""The simulated CLOB composed: one MatchingEngine and the parts around it, each with one role
(accounts, auth, market data, orders, channels, heartbeats), plus the replay of market events and
the clock-driven work (`tick`). Synchronous and single-threaded: the app runs it on one event loop,
and every time comes from the injected clock, so a unit test drives it without a server.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_market_message
from polysnipe.adapters.files import load_events
from polysnipe.adapters.metadata import document_shape, load_market_files
from polysnipe.adapters.sim.clob import render
from polysnipe.adapters.sim.clob.accounts import Accounts, ApiKey, Balances, parse_balances
from polysnipe.adapters.sim.clob.auth import Authenticator, RateLimits
from polysnipe.adapters.sim.clob.channels import Channels
from polysnipe.adapters.sim.clob.config import ClobSimConfig, Faults
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.gamma import GammaDocs
from polysnipe.adapters.sim.clob.heartbeats import Heartbeats
from polysnipe.adapters.sim.clob.market import MarketData
from polysnipe.adapters.sim.clob.orders import Orders
from polysnipe.adapters.sim.clob.records import OrderLogEntry
from polysnipe.adapters.sim.models import PolymarketFeeModel, RiskAverseQueueModel
from polysnipe.adapters.sim.venue import MatchingEngine
from polysnipe.core.events import (
    BookSnapshot,
    Event,
    LastTrade,
    MarketEvent,
    MarketResolved,
    PriceChange,
    TickSizeChange,
)
from polysnipe.core.market import Market, MarketRegistry

__all__ = ["ClobSimState"]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ClobSimState:
    """Everything the simulated CLOB knows; the app calls it from one thread (see module doc)."""

    def __init__(
        self,
        markets: Sequence[Market],
        config: ClobSimConfig | None = None,
        *,
        market_documents: Sequence[Mapping[str, Any]] = (),
        compact_documents: Mapping[str, Mapping[str, Any]] | None = None,
        gamma: GammaDocs | None = None,
        balances: Balances | None = None,
        events: Sequence[Event] = (),
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self.config = cfg = config or ClobSimConfig()
        self._clock = clock
        self.registry = MarketRegistry.of(markets)
        #: switched by POST /_sim/faults (or a test) at any time; read afresh on every call
        self.faults = Faults()
        self.accounts = Accounts(cfg, balances or Balances())
        self.engine = MatchingEngine(
            self.registry,
            RiskAverseQueueModel(),
            PolymarketFeeModel(),
            self.accounts.ledger,
            trade_id_prefix="t",
            min_gtd_lead_ms=cfg.min_gtd_lead_ms,
            record_trades=True,
        )
        self.auth = Authenticator(cfg, self.accounts, self.now_ms)
        self.rates = RateLimits(cfg, self.now_ms)
        self.market = MarketData(self.registry, self.engine, self.now_ms, market_documents, compact_documents)
        #: the Gamma documents served under /gamma (none unless the metadata files held some)
        self.gamma = gamma or GammaDocs((), ())
        #: condition id -> winning token, of the markets resolved (POST /_sim/resolve)
        self.resolved: dict[str, str] = {}
        self.channels = Channels(self.market)
        self.orders = Orders(
            cfg, self.market, self.engine, self.accounts, self.channels, self.now_ms, self._current_faults
        )
        self.heartbeats = Heartbeats(cfg, self.now_ms)
        self._pending: deque[Event] = deque()
        if cfg.paced_replay:
            self._pending.extend(events)
        else:
            self.apply_events(events)

    @classmethod
    def from_files(
        cls,
        markets_paths: str | Path | Sequence[str | Path],
        events_path: str | Path | None = None,
        balances_path: str | Path | None = None,
        *,
        config: ClobSimConfig | None = None,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> ClobSimState:
        """The markets of every metadata file given (adapters/metadata.py merges CLOB and Gamma shapes;
        the CLOB documents among them are what GET /markets serves, recorded GET /clob-markets answers
        what that serves, the Gamma ones what /gamma serves), the events replayed, balances."""
        paths = (
            [Path(markets_paths)]
            if isinstance(markets_paths, str | Path)
            else [Path(p) for p in markets_paths]
        )
        catalog = load_market_files(paths)
        docs: list[Mapping[str, Any]] = []
        compact: dict[str, Mapping[str, Any]] = {}
        gamma_markets: list[Mapping[str, Any]] = []
        gamma_events: list[Mapping[str, Any]] = []
        for path in paths:
            doc = json.loads(path.read_bytes(), parse_float=Decimal)  # venue numbers stay exact decimals
            shape = document_shape(doc)
            if shape == "clob_compact":
                compact.update(doc)
                continue
            if shape == "clob_page":
                doc = doc["data"]
            items = [d for d in (doc if isinstance(doc, list) else [doc]) if isinstance(d, dict)]
            if shape.startswith("gamma_market"):
                gamma_markets += items
            elif shape.startswith("gamma_event"):
                gamma_events += items
            else:
                docs += [d for d in items if "condition_id" in d]
        events = load_events(events_path)[0] if events_path is not None else []
        balances = None
        if balances_path is not None:
            balances = parse_balances(json.loads(Path(balances_path).read_bytes()))
        return cls(
            catalog.markets,
            config,
            market_documents=docs,
            compact_documents=compact,
            gamma=GammaDocs(gamma_markets, gamma_events),
            balances=balances,
            events=events,
            clock=clock,
        )

    # -- time and venue mode -------------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock()

    def _current_faults(self) -> Faults:
        return self.faults

    def exchange_version(self) -> int:
        return self.orders.exchange_version()

    # -- what every client does first, and what tests read -------------------------------------
    def api_key_for(self, address: str, nonce: int) -> ApiKey:
        """Create or derive the API key of (address, nonce) (see Accounts.api_key_for)."""
        return self.accounts.api_key_for(address, nonce)

    @property
    def order_log(self) -> Sequence[OrderLogEntry]:
        return self.orders.log

    # -- time passing --------------------------------------------------------------------------
    def tick(self) -> None:
        """Run what is due by now: GTD expiries, heartbeat timeouts, trade settlement."""
        now = self.now_ms()
        self.orders.expire(now)
        for user in self.heartbeats.timed_out(now):
            self.orders.cancel(user, [o.id for o in self.orders.live_orders(user)])
        self.orders.settle(now)

    # -- market data ---------------------------------------------------------------------------
    def apply_events(self, events: Iterable[Event]) -> int:
        """Replay market events into the engine (and out to watchers); returns how many applied."""
        n = 0
        for event in events:
            if isinstance(event, BookSnapshot | PriceChange | TickSizeChange | LastTrade):
                self._apply(event)
                n += 1
        return n

    def inject(self, frame: Any) -> int:
        """POST /_sim/events: a market-channel frame (object or array), stamped now if it has no time."""
        try:
            events = parse_market_message(frame, ts_recv_ms=self.now_ms())
        except (MalformedMessage, ValueError, RecursionError) as exc:
            raise VenueError(400, str(exc) or "invalid market message") from None
        return self.apply_events(events)

    def advance(self, count: int | None = None, until_ms: int | None = None) -> int:
        """POST /_sim/advance: apply pending (paced) events, `count` of them or up to `until_ms`."""
        batch: list[Event] = []
        pending = self._pending
        while pending and (count is None or len(batch) < count):
            if until_ms is not None and pending[0].ts_ms > until_ms:
                break
            batch.append(pending.popleft())
        return self.apply_events(batch)

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    def _apply(self, event: MarketEvent) -> None:
        if isinstance(event, MarketResolved):
            # resolution is settled on chain; the simulated CLOB has no settlement to replay yet
            return
        now = self.now_ms()
        self.engine.apply(event)
        trades = self.orders.absorb(now)
        if isinstance(event, PriceChange):
            token = event.changes[0].token_id if event.changes else ""
        else:
            token = event.token_id
        market = self.registry.get_by_token(token)
        if market is None:
            return
        if isinstance(event, LastTrade):
            self.market.record_last_trade(event.token_id, event.price)
            self.channels.replayed_print(event, market)
        elif isinstance(event, TickSizeChange):
            self.channels.tick_size_change(event, market)
        self.channels.publish(market, now, traded=bool(trades) or isinstance(event, BookSnapshot))

    # -- resolution ----------------------------------------------------------------------------
    def resolve(self, condition_id: str, winning_token: str) -> None:
        """POST /_sim/resolve: the market resolved to `winning_token`; its watchers get
        `market_resolved`. A market resolves once."""
        market = self.market.market(condition_id)
        if market is None:
            raise VenueError(404, ERRORS["market_not_found"])
        if winning_token not in market.token_ids:
            raise VenueError(400, f"winning_asset_id is not a token of market {condition_id}")
        if condition_id in self.resolved:
            raise VenueError(409, f"market {condition_id} is already resolved")
        self.resolved[condition_id] = winning_token
        market_id = self.gamma.market_id(condition_id) or str(list(self.registry).index(market) + 1)
        self.channels.resolved(market, winning_token, market_id, self.now_ms())

    # -- admin ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """GET /_sim/state: what an operator or a test wants to see at a glance (no secrets)."""
        ledger = self.accounts.ledger
        return {
            "now_ms": self.now_ms(),
            "exchange_version": self.exchange_version(),
            "markets": len(self.registry),
            "pending_events": len(self._pending),
            "resolved": dict(self.resolved),
            "api_keys": [
                {"key": k.key, "address": k.address, "nonce": k.nonce} for k in self.accounts.api_keys()
            ],
            **self.orders.counts(),
            "wallets": {
                w: {
                    "usdc": render.fmt(ledger.usdc(w)),
                    "free_usdc": render.fmt(ledger.free_usdc(w)),
                    "positions": {t: render.fmt(n) for t, n in ledger.positions(w).items()},
                }
                for w in self.accounts.wallets()
            },
            "heartbeats": self.heartbeats.summary(),
            "faults": self.faults.to_json(),
        }
