"""The market WebSocket channel: books kept honest, every frame accounted for.

Theory of operation
-------------------
`BookKeeper` is the synchronous heart: frames in, events out, no I/O. It keeps a book (core.book.new_book)
per subscribed token and only forwards what it could apply to a book it trusts. A book stops being
trusted on any sign of a gap:

* timestamp going backwards for a token (an out-of-order or replayed message);
* a hash mismatch where the hash can be checked. The venue's hash is SHA-1 over the book summary
  (parsing.book_hash), which also covers the token's minimum order size, tick, neg-risk flag and last
  trade price; once those are known (from GET /book, the market registry or the messages themselves)
  every `book` message is checked, and the hash carried by deltas is checked at "settle points": when
  a token's next delta carries a new hash, the book must match the previous one (deltas of one trade
  share the hash of the state after the whole trade, so mid-trade states are never compared).
  Checks of deltas are sampled (every `hash_check_every` deltas) to keep the hot path lean;
* no message for a token for `book_quiet_s`, or no frame at all (not even PONG) on a connection for
  `stale_after_s` (the connection is dropped and reopened);
* a reconnect: every book of that connection is untrusted until a snapshot arrives;
* a frame that could not be used (malformed, or failing for any other reason): we cannot tell which
  books it would have changed, so all books of its connection are untrusted.

While untrusted, a token's deltas are buffered, not applied or forwarded; a snapshot (the venue's
own `book` message, or GET /book fetched by the feed) restores trust, and buffered deltas newer than
the snapshot are replayed on top (price_change sizes are absolute, so a replay is idempotent).

`MarketDataFeed` runs the sockets (websocket.ReconnectingSocket): one connection per group of tokens
(the venue cannot change a subscription in place, so new tokens get a new connection), a text PING
every 10 s, reconnect with jittered backoff, and a resync worker that fetches REST snapshots for
untrusted books. No frame can stop it: a malformed one goes whole to `on_malformed` (the dead
letters); any failure, the sink's included, is logged and raised as an alert through `on_alert`, and
the next frame is read. The user channel lives in user_channel.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

import attrs
import msgspec

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import (
    RestBook,
    book_hash,
    decode_market_frame,
    feed_keeper,
    message_events,
)
from polysnipe.adapters.clob.retry import RetryPolicy, backoff_s
from polysnipe.adapters.clob.schemas import WireMessage
from polysnipe.adapters.clob.websocket import Connect, Notices, ReconnectingSocket, ws_connect
from polysnipe.adapters.logs import get_logger
from polysnipe.core.book import Book, new_book
from polysnipe.core.events import (
    BookDelta,
    BookSnapshot,
    Event,
    LastTrade,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.messages import RaiseAlert
from polysnipe.core.ports import Clock, Rng
from polysnipe.core.units import MICRO, format_micro

__all__ = [
    "BookKeeper",
    "MarketDataConfig",
    "MarketDataFeed",
    "OnAlert",
    "OnMalformedFrame",
    "market_subscription",
]

log = get_logger("polysnipe.clob.market_data")

#: the dead letters: (the frame exactly as received, why it could not be used)
OnMalformedFrame = Callable[[str | bytes, str], None]
OnAlert = Callable[[RaiseAlert], None]

_DEFAULT_TICK: Final = 10_000


@attrs.frozen(slots=True)
class MarketDataConfig:
    market_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    user_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
    #: the venue expects a text PING every 10 s and answers PONG (PROTOCOL.md 10.1)
    ping_interval_s: float = 10.0
    #: no frame at all (PONG included) for this long: the connection is dead, reconnect
    stale_after_s: float = 30.0
    #: no message for a token for this long: resync its book over REST (None: never)
    book_quiet_s: float | None = 300.0
    #: a token still without a book this long after (re)subscribing is fetched over REST
    snapshot_timeout_s: float = 5.0
    #: tokens per connection (500 is a third-party figure; stay well under it)
    max_tokens_per_connection: int = 200
    reconnect_base_s: float = 0.5
    reconnect_cap_s: float = 30.0
    #: check a delta hash at most once per this many deltas per token (0: never; books always)
    hash_check_every: int = 256
    #: deltas kept per untrusted token while its snapshot is fetched
    max_buffered_deltas: int = 10_000
    #: concurrent GET /book resyncs
    max_concurrent_resyncs: int = 4
    #: the venue sends `market_resolved` (redemption, marks at 1 and 0) only with this on
    #: (PROTOCOL.md 10.1); `best_bid_ask` and `new_market` come with it and are ignored
    custom_feature_enabled: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_tokens_per_connection < 1 or self.max_buffered_deltas < 1:
            raise ValueError("max_tokens_per_connection and max_buffered_deltas must be >= 1")
        if self.hash_check_every < 0:
            raise ValueError("hash_check_every must be >= 0")


def market_subscription(token_ids: Sequence[str], *, custom_feature_enabled: bool = False) -> str:
    """The initial frame of a market-channel connection (PROTOCOL.md 10.1)."""
    return msgspec.json.encode(
        {"type": "market", "assets_ids": list(token_ids), "custom_feature_enabled": custom_feature_enabled}
    ).decode()


# -- the book keeper (pure: no I/O, time passed in) ---------------------------------------------
def _fixed_3(value: int) -> str:
    """Price with exactly three decimals: how the venue spells last_trade_price in book summaries."""
    return f"{value // MICRO}.{value % MICRO // 1000:03d}" if value % 1000 == 0 else format_micro(value)


class _Token:
    """Per-token state of the keeper."""

    __slots__ = (
        "book",
        "buffer",
        "dropped",
        "last_recv_ms",
        "ltp",
        "ltp_print",
        "market",
        "min_order_size",
        "neg_risk",
        "pending_hash",
        "pending_ts",
        "since_check",
    )

    def __init__(self, token_id: str, now_ms: int, max_buffered: int) -> None:
        self.book = new_book(token_id, _DEFAULT_TICK)
        self.market = ""
        #: the venue's own strings the hash covers; None = unknown (hash not checkable)
        self.min_order_size: str | None = None
        self.neg_risk: bool | None = None
        #: the last trade price as the venue spelt it ("" = no trade yet)
        self.ltp: str | None = None
        #: when `ltp` came from a trade print, its price in micro-units: the summary hash may spell it
        #: two other ways (_ltp_spellings); None when it is a book summary's own string
        self.ltp_print: int | None = None
        self.pending_hash = ""
        self.pending_ts = 0
        self.since_check = 0
        #: deltas waiting for a snapshot (None while trusted)
        self.buffer: deque[tuple[int, str, BookDelta]] | None = deque(maxlen=max_buffered)
        self.dropped = False
        self.last_recv_ms = now_ms


class BookKeeper:
    """Books per token, fed by market-channel frames and REST snapshots; detects gaps."""

    __slots__ = ("_config", "_gaps", "_tokens", "checks", "malformed", "on_frame")

    #: Apply one market-channel frame; returns the events safe to forward downstream. Raises
    #: MalformedMessage for a frame that cannot be parsed (the caller decides whether the books it may
    #: have touched are still trustworthy). The compiled keeper's own method where it is built
    #: (parsing.feed_keeper: no Python frame runs per frame), else _on_frame.
    on_frame: Callable[[bytes | str, int], list[Event]]

    def __init__(self, config: MarketDataConfig | None = None) -> None:
        self._config = config or MarketDataConfig()
        self._tokens: dict[str, _Token] = {}
        self._gaps: list[tuple[str, str]] = []
        # the compiled common case of on_frame (parsing.feed_keeper): it runs the usual paths of
        # _price_change, _last_trade and _wire_book itself, counting its checks in self.checks, and
        # calls _price_change and _decode_frame for everything else
        fast = feed_keeper()
        self.on_frame = self._on_frame
        if fast is not None:
            every = self._config.hash_check_every
            self.on_frame = fast(
                self, self._tokens, _Token, every, self._price_change, self._decode_frame
            ).on_frame
        #: hash checks performed (books and deltas), for metrics and tests
        self.checks = 0
        #: frames that could not be parsed
        self.malformed = 0

    # -- tokens --------------------------------------------------------------------------------
    def track(self, token_ids: Iterable[str], now_ms: int) -> list[str]:
        """Start keeping books for these tokens (untrusted until a snapshot); returns the new ones."""
        new = [t for t in token_ids if t not in self._tokens]
        for token_id in new:
            self._tokens[token_id] = _Token(token_id, now_ms, self._config.max_buffered_deltas)
        return new

    def untrack(self, token_ids: Iterable[str]) -> None:
        for token_id in token_ids:
            self._tokens.pop(token_id, None)

    def book(self, token_id: str) -> Book | None:
        state = self._tokens.get(token_id)
        return state.book if state is not None else None

    def tokens(self) -> list[str]:
        return list(self._tokens)

    def untrusted(self) -> list[str]:
        return [t for t, s in self._tokens.items() if not s.book.trusted]

    def set_market_meta(self, token_id: str, *, min_order_size: str, neg_risk: bool) -> None:
        """Seed the hash inputs that market-channel books omit (e.g. from the market registry)."""
        state = self._tokens.get(token_id)
        if state is not None:
            state.min_order_size = min_order_size
            state.neg_risk = neg_risk

    # -- gaps ----------------------------------------------------------------------------------
    def invalidate(self, token_ids: Iterable[str], reason: str) -> None:
        for token_id in token_ids:
            state = self._tokens.get(token_id)
            if state is not None:
                self._gap(token_id, state, reason)

    def _gap(self, token_id: str, state: _Token, reason: str) -> None:
        state.book.invalidate()
        if state.buffer is None:
            state.buffer = deque(maxlen=self._config.max_buffered_deltas)
            state.dropped = False
        state.pending_hash = ""
        state.since_check = 0
        self._gaps.append((token_id, reason))

    def take_gaps(self) -> list[tuple[str, str]]:
        """(token, reason) of every book that lost trust since the last call."""
        gaps, self._gaps = self._gaps, []
        return gaps

    def quiet_tokens(self, now_ms: int, quiet_ms: int) -> list[str]:
        """Invalidate trusted books that heard nothing for `quiet_ms`; returns them."""
        quiet = [t for t, s in self._tokens.items() if s.book.trusted and now_ms - s.last_recv_ms > quiet_ms]
        self.invalidate(quiet, "stale")
        return quiet

    # -- hashes --------------------------------------------------------------------------------
    def _book_matches(self, state: _Token, claimed: str, ts_ms: int) -> bool | None:
        """Does the book equal the venue's hash `claimed` at `ts_ms`? None when not checkable."""
        ltp = state.ltp
        if state.min_order_size is None or state.neg_risk is None or ltp is None:
            return None
        # the spellings of the last trade price the summary may use: a print's price as sent and the
        # two ways the venue writes it in summaries, made here rather than at every print
        price = state.ltp_print
        spoken = (ltp,) if price is None else (ltp, _fixed_3(price), format_micro(price))
        spellings = tuple(dict.fromkeys(spoken))
        self.checks += 1
        book = state.book
        fmt = format_micro
        bids = [(fmt(p), fmt(n)) for p, n in reversed(book.levels(Side.BUY))]
        asks = [(fmt(p), fmt(n)) for p, n in reversed(book.levels(Side.SELL))]
        return any(
            book_hash(
                state.market,
                book.token_id,
                str(ts_ms),
                bids,
                asks,
                min_order_size=state.min_order_size,
                tick_size=fmt(book.tick_size),
                neg_risk=state.neg_risk,
                last_trade_price=spelling,
            )
            == claimed
            for spelling in spellings
        )

    def _wire_book_matches(self, state: _Token, msg: WireMessage) -> bool | None:
        """Check a `book` message against its own hash, from its own strings."""
        min_order_size = msg.min_order_size if msg.min_order_size is not None else state.min_order_size
        neg_risk = msg.neg_risk if msg.neg_risk is not None else state.neg_risk
        if (
            not msg.hash
            or not isinstance(msg.timestamp, str)
            or min_order_size is None
            or neg_risk is None
            or msg.tick_size is None
            or msg.last_trade_price is None
        ):
            return None
        self.checks += 1
        computed = book_hash(
            msg.market or "",
            msg.asset_id or "",
            msg.timestamp,
            [(lv.price, lv.size) for lv in msg.bids or ()],
            [(lv.price, lv.size) for lv in msg.asks or ()],
            min_order_size=min_order_size,
            tick_size=msg.tick_size,
            neg_risk=neg_risk,
            last_trade_price=msg.last_trade_price,
        )
        return computed == msg.hash

    # -- frames --------------------------------------------------------------------------------
    def _on_frame(self, data: bytes | str, recv_ms: int) -> list[Event]:
        """on_frame in Python alone."""
        out: list[Event] = []
        self._decode_frame(data, recv_ms, out)
        return out

    def _decode_frame(self, data: bytes | str, recv_ms: int, out: list[Event]) -> None:
        """A frame decoded with msgspec and applied, its events appended to `out`. The compiled keeper
        calls it for a frame it does not take, and for one message of a frame it did when the case is
        Python's (then `data` is that message's own JSON text, so this reads the same Struct)."""
        for msg in decode_market_frame(data):
            self._message(msg, recv_ms, out)

    def _message(self, msg: WireMessage, recv_ms: int, out: list[Event]) -> None:
        for event in message_events(msg, ts_recv_ms=recv_ms):
            if type(event) is PriceChange:
                self._price_change(event, recv_ms, out)
                continue
            if type(event) is LastTrade:
                self._last_trade(event, msg.price or "", recv_ms, out)
                continue
            if isinstance(event, BookSnapshot | TickSizeChange):
                state = self._tokens.get(event.token_id)
                if state is None:
                    continue  # not subscribed here: no book to keep, nothing to forward
                state.last_recv_ms = recv_ms
                if isinstance(event, BookSnapshot):
                    self._wire_book(state, event, msg, out)
                    continue
                state.book.set_tick_size(event.new_tick)
            out.append(event)

    def _last_trade(self, event: LastTrade, price_text: str, recv_ms: int, out: list[Event]) -> None:
        """A trade print; `price_text` is its price as the venue spelt it."""
        state = self._tokens.get(event.token_id)
        if state is None:
            return  # not subscribed here: no book to keep, nothing to forward
        state.last_recv_ms = recv_ms
        # the summary hash spells the last trade price its own way: the spellings it may take are
        # made from these when a check is due
        state.ltp = price_text
        state.ltp_print = event.price
        out.append(event)

    def _price_change(self, event: PriceChange, recv_ms: int, out: list[Event], start: int = 0) -> None:
        """The deltas of `event` from `start` on (those before it were applied and are forwarded)."""
        # The hot path: one dict lookup, two compares and apply_level per delta; nothing allocated
        # unless some delta cannot be forwarded. The compiled FeedKeeper runs this same path over
        # the deltas it can, and hands the rest of the event here at the first one it cannot.
        ts = event.ts_ms
        tokens = self._tokens
        every = self._config.hash_check_every
        changes = event.changes
        kept: list[BookDelta] | None = None
        for i, delta in enumerate(changes[start:], start):
            state = tokens.get(delta.token_id)
            applied = False
            if state is not None:
                state.last_recv_ms = recv_ms
                book = state.book
                if book.trusted:
                    if ts < book.last_ts_ms:
                        self._gap(delta.token_id, state, "timestamp_backwards")
                    else:
                        if delta.hash != state.pending_hash:
                            if every and state.since_check >= every and state.pending_hash:
                                state.since_check = 0
                                if self._book_matches(state, state.pending_hash, state.pending_ts) is False:
                                    self._gap(delta.token_id, state, "hash_mismatch")
                                    state.buffer.append((ts, event.market, delta))  # type: ignore[union-attr]
                                    if kept is None:
                                        kept = list(changes[:i])
                                    continue
                            state.pending_hash = delta.hash
                            state.pending_ts = ts
                        book.apply_level(delta.side, delta.price, delta.size, ts)
                        state.since_check += 1
                        applied = True
                elif state.buffer is not None:
                    buffer = state.buffer
                    if len(buffer) == buffer.maxlen:
                        state.dropped = True
                    buffer.append((ts, event.market, delta))
            if applied:
                if kept is not None:
                    kept.append(delta)
            elif kept is None:
                kept = list(changes[:i])
        if kept is None:
            out.append(event)
        elif kept:
            out.append(PriceChange(ts, event.market, tuple(kept)))

    def _wire_book(self, state: _Token, snap: BookSnapshot, msg: WireMessage, out: list[Event]) -> None:
        book = state.book
        if book.trusted and snap.ts_ms < book.last_ts_ms:
            return  # an older picture than the one we hold: nothing to learn
        if self._wire_book_matches(state, msg) is False:
            self._gap(snap.token_id, state, "hash_mismatch")
            return
        if msg.last_trade_price is not None:
            state.ltp = msg.last_trade_price
            state.ltp_print = None
        if msg.min_order_size is not None:
            state.min_order_size = msg.min_order_size
        if msg.neg_risk is not None:
            state.neg_risk = msg.neg_risk
        self._snapshot(state, snap, out)

    def on_rest_book(self, rest: RestBook, recv_ms: int) -> list[Event]:
        """Apply a GET /book snapshot (already hash-checked by the parser); returns events to forward."""
        snap = rest.snapshot
        state = self._tokens.get(snap.token_id)
        if state is None:
            return []
        state.last_recv_ms = recv_ms
        if state.book.trusted and snap.ts_ms < state.book.last_ts_ms:
            return []
        if rest.min_order_size is not None:
            state.min_order_size = rest.min_order_size
        if rest.neg_risk is not None:
            state.neg_risk = rest.neg_risk
        if rest.last_trade_price is not None:
            state.ltp = rest.last_trade_price
            state.ltp_print = None
        out: list[Event] = []
        self._snapshot(state, snap, out)
        return out

    def _snapshot(self, state: _Token, snap: BookSnapshot, out: list[Event]) -> None:
        book = state.book
        book.apply_snapshot(snap)
        state.market = snap.market
        state.pending_hash = snap.hash
        state.pending_ts = snap.ts_ms
        state.since_check = 0
        out.append(snap)
        buffer, state.buffer = state.buffer, None
        if not buffer:
            return
        replay = [(ts, market, d) for ts, market, d in buffer if ts >= snap.ts_ms]
        if state.dropped and replay and len(replay) == len(buffer):
            # The buffer overflowed and everything it kept is newer than the snapshot: deltas in
            # between are lost, so this book is still not what the venue holds.
            self._gap(snap.token_id, state, "buffer_overflow")
            return
        group: list[BookDelta] = []
        key = (0, "")
        for ts, market, delta in replay:
            book.apply_level(delta.side, delta.price, delta.size, ts)
            state.pending_hash = delta.hash
            state.pending_ts = ts
            if (ts, market) != key and group:
                out.append(PriceChange(key[0], key[1], tuple(group)))
                group = []
            key = (ts, market)
            group.append(delta)
        if group:
            out.append(PriceChange(key[0], key[1], tuple(group)))


class MarketDataFeed:
    """The market channel for a set of tokens: sockets, books, resyncs. Events go to `sink`.

    `on_malformed` receives every frame that could not be parsed, whole (the dead letters);
    `on_alert` every failure worth a human's attention (a dead-lettered frame, a frame or a sink
    that raised, a broken session). Both are optional; failures are logged either way.
    """

    def __init__(
        self,
        config: MarketDataConfig,
        *,
        snapshots: Callable[[str], Awaitable[RestBook]],
        sink: Callable[[list[Event]], None],
        clock: Clock,
        rng: Rng,
        on_gap: Callable[[str, str], None] | None = None,
        connect: Connect | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_malformed: OnMalformedFrame | None = None,
        on_alert: OnAlert | None = None,
    ) -> None:
        self._notices = Notices("market", clock, on_alert, on_malformed)
        self._config = config
        self._snapshots = snapshots
        self._sink = sink
        self._clock = clock
        self._rng = rng
        self._on_gap = on_gap
        self._connect = connect or ws_connect
        self._sleep = sleep
        self._policy = RetryPolicy(base_s=config.reconnect_base_s, cap_s=config.reconnect_cap_s)
        self.keeper = BookKeeper(config)
        self._connections: dict[frozenset[str], asyncio.Task[None]] = {}
        self._resync_pending: set[str] = set()
        self._resync_queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------------
    def _ensure_workers(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._resync_worker()) for _ in range(self._config.max_concurrent_resyncs)
            ]
        if self._watchdog is None and self._config.book_quiet_s is not None:
            self._watchdog = asyncio.create_task(self._quiet_watch(int(self._config.book_quiet_s * 1000)))

    async def subscribe(self, token_ids: Iterable[str]) -> None:
        """Open connections for tokens not yet subscribed (in groups of max_tokens_per_connection)."""
        self._ensure_workers()
        new = self.keeper.track(token_ids, self._clock.now_ms())
        size = self._config.max_tokens_per_connection
        for start in range(0, len(new), size):
            self._open(frozenset(new[start : start + size]))

    async def unsubscribe(self, token_ids: Iterable[str]) -> None:
        """Drop tokens: their connections are closed and reopened without them."""
        gone = set(token_ids)
        for group in [g for g in self._connections if g & gone]:
            await self._close(group)
            rest = group - gone
            if rest:
                # between the old socket closing and the new one's book dump, deltas are missed
                self._distrust(rest, "resubscribe")
                self._open(rest)
        self.keeper.untrack(gone)

    def _open(self, group: frozenset[str]) -> None:
        tokens = sorted(group)
        config = self._config
        socket = ReconnectingSocket(
            config.market_url,
            market_subscription(tokens, custom_feature_enabled=config.custom_feature_enabled),
            handle=lambda frame, now_ms: self._on_frame(group, frame, now_ms),
            on_open=lambda n: self._on_open(group, n),
            on_lost=lambda reason: self._lost(group, reason),
            on_error=lambda frame, exc: self._on_error(group, frame, exc),
            ping_interval_s=config.ping_interval_s,
            stale_after_s=config.stale_after_s,
            policy=self._policy,
            clock=self._clock,
            rng=self._rng,
            connect=self._connect,
            sleep=self._sleep,
        )
        self._connections[group] = asyncio.create_task(socket.run())

    async def _close(self, group: frozenset[str]) -> None:
        task = self._connections.pop(group)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        for group in list(self._connections):
            await self._close(group)
        tasks = [*self._workers, *self._background, *([self._watchdog] if self._watchdog else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        self._watchdog = None

    # -- failures ------------------------------------------------------------------------------
    def _alert(self, severity: str, code: str, message: str, **details: str) -> None:
        self._notices.alert(severity, code, message, **details)

    def _dead_letter(self, frame: str | bytes, reason: str) -> None:
        self._notices.dead_letter(frame, reason)

    def _deliver(self, events: list[Event]) -> None:
        """Events to the sink. A sink that raises is a failure downstream, not of our books (they
        applied the events): it is alerted and the next frame goes on. Distrusting the books instead
        would resync them over REST after every failing delivery, a storm against GET /book."""
        try:
            self._sink(events)
        except Exception as exc:
            log.exception("market_sink_failed", events=len(events))
            self._alert(
                "critical",
                "market_sink_failed",
                f"the market-data sink raised {type(exc).__name__}; {len(events)} events lost downstream",
                error=repr(exc)[:500],
            )

    def _on_error(self, group: frozenset[str], frame: str | bytes | None, exc: Exception) -> None:
        """Whatever escaped a frame's handling, or broke a session: the books of the connection may be
        half-updated, so they are distrusted (and resynced); the frame goes to the dead letters."""
        if frame is not None:
            log.error("market_frame_failed", error=repr(exc)[:500], size=len(frame), exc_info=exc)
            self.keeper.invalidate(group, "frame_failed")
            self._dead_letter(frame, f"{type(exc).__name__}: {exc}"[:500])
            self._alert(
                "critical",
                "market_frame_failed",
                f"a market-channel frame raised {type(exc).__name__}",
                error=repr(exc)[:500],
            )
            self._schedule_gaps()
        else:
            self._alert(
                "critical",
                "market_socket_failed",
                f"a market-channel session broke: {type(exc).__name__}",
                error=repr(exc)[:500],
                url=self._config.market_url,
            )

    # -- socket callbacks ----------------------------------------------------------------------
    def _on_frame(self, group: frozenset[str], frame: str | bytes, now_ms: int) -> None:
        try:
            events = self.keeper.on_frame(frame, now_ms)
        except MalformedMessage as exc:
            # we cannot tell which books the frame would have changed: distrust them all; the frame
            # itself goes to whoever keeps the dead letters, so nothing is lost
            self.keeper.malformed += 1
            self.keeper.invalidate(group, "malformed_frame")
            log.warning("market_frame_malformed", reason=exc.reason, size=len(frame))
            self._dead_letter(frame, exc.reason)
            self._alert("warning", "market_frame_malformed", exc.reason[:500])
            events = []
        if events:
            self._deliver(events)
        self._schedule_gaps()

    async def _on_open(self, group: frozenset[str], connects: int) -> None:
        # (a lost connection already distrusted its books; the subscription's initial dump now
        # brings fresh ones, and REST fetches whatever it did not bring in time)
        task = asyncio.create_task(self._await_snapshots(group))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lost(self, group: frozenset[str], reason: str) -> None:
        # Books are distrusted at once, not at reconnect: no one may trade on a silent book.
        self._distrust(group, reason)

    def _report_gap(self, token_id: str, reason: str) -> None:
        if self._on_gap is None:
            return
        try:
            self._on_gap(token_id, reason)
        except Exception:
            log.exception("market_gap_callback_failed", token_id=token_id, reason=reason)

    def _distrust(self, group: Iterable[str], reason: str) -> None:
        # The (re-)subscription's initial dump brings fresh books, so REST is only the fallback
        # (_await_snapshots): these gaps are reported but not fetched.
        self.keeper.invalidate(group, reason)
        for token_id, why in self.keeper.take_gaps():
            self._report_gap(token_id, why)

    async def _await_snapshots(self, group: frozenset[str]) -> None:
        await self._sleep(self._config.snapshot_timeout_s)
        for token_id in group:
            book = self.keeper.book(token_id)
            if book is not None and not book.trusted:
                self._enqueue(token_id)

    def _schedule_gaps(self) -> None:
        for token_id, reason in self.keeper.take_gaps():
            self._report_gap(token_id, reason)
            self._enqueue(token_id)

    def _enqueue(self, token_id: str) -> None:
        if token_id not in self._resync_pending:
            self._resync_pending.add(token_id)
            self._resync_queue.put_nowait(token_id)

    async def _resync_worker(self) -> None:
        policy = self._policy
        while True:
            token_id = await self._resync_queue.get()
            attempt = 0
            while True:
                book = self.keeper.book(token_id)
                if book is None or book.trusted:
                    break
                try:
                    rest = await self._snapshots(token_id)
                    events = self.keeper.on_rest_book(rest, self._clock.now_ms())
                except Exception as exc:
                    # whatever failed (venue, network, a book failing its hash), the book stays
                    # untrusted; a dead worker would leave it so for good, hence back off and retry
                    log.warning("market_resync_failed", token_id=token_id, error=repr(exc)[:500])
                    attempt += 1
                    await self._sleep(backoff_s(attempt, policy, self._rng))
                    continue
                if events:
                    self._deliver(events)
                self._schedule_gaps()
                break
            self._resync_pending.discard(token_id)

    async def _quiet_watch(self, quiet_ms: int) -> None:
        while True:
            await self._sleep(self._config.ping_interval_s)
            if self.keeper.quiet_tokens(self._clock.now_ms(), quiet_ms):
                self._schedule_gaps()
