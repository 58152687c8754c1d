"""Redis Streams: the publisher `ingest` appends with, and the engine's input source.

Theory of operation
-------------------
Publishing: each market-channel frame goes, exactly as received, to the stream of its market's shard
(parsing.route_frame) as an entry of two fields, `raw` (the bytes) and `recv_ms` (when ingest got
them). Entries are XADDed in a pipeline (one round trip per batch, never one per frame) with an
approximate MAXLEN, so Redis trims whole macro-nodes cheaply and the bus stays a bounded buffer.

Consuming (`StreamSource`, a core.ports.InputSource): the engine is a member of a consumer group on
the streams of the shards it owns (and `signals.external`). Delivery is at least once, acks follow
the journal:

1. at start, the groups are created if missing (MKSTREAM, from the stream's first entry), then the
   entries this consumer already held before a restart are read again (its own pending list), and
   entries idle longer than `claim_idle_ms` in other consumers' lists (dead engines) are taken
   with XAUTOCLAIM; the same claim runs again every `claim_every_ms`;
2. `next_batch` reads new entries with XREADGROUP (standalone Redis: one blocking command over all
   streams; Redis Cluster: one command per stream, the streams living in different slots) and
   parses `raw` with the backtest's own parser (adapters/clob/parsing.parse_market_line), so a
   recording, a replay and the live feed are one format;
3. every entry handed out is remembered; `acknowledge()` (called by the loop once the journal
   transaction covering those batches committed) queues their XACKs, which go out with the next read
   (or `flush()`). A crash before that redelivers them, and the engine's deterministic order ids
   make a redelivered entry harmless.

An entry the engine cannot use (unparseable `raw`, missing or unknown fields, a `recv_ms` that is not
ASCII epoch ms, anything but external signals on the signal stream, an external signal on a
market-data stream) is appended to `<stream>.dead` with its raw bytes (every field, when `raw` is not
all it holds), the reason and its id, and handed to the loop as a RecordError (the journal's errors
table); it is acked like every other entry, also when Redis refuses the dead letter (an alert says
so). No entry and no Redis failure raises out of `next_batch`: a lost connection or a refusal is one
alert per outage and an empty batch, then a retry after a pause. A group deleted under the engine is
an alert, and is recreated after the last entry the engine saw; entries trimmed before anyone acked
them are an alert, whoever held them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeAlias

import redis.asyncio as aioredis
import redis.exceptions

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import parse_int, parse_market_line
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.redis.config import StreamsConfig
from polysnipe.adapters.redis.parsing import route_frame
from polysnipe.core.events import MAX_TS_MS, MIN_TS_MS, Event, ExternalSignal
from polysnipe.core.messages import RaiseAlert, RecordError, SourceItem
from polysnipe.core.ports import Clock

__all__ = [
    "FRAME_FIELDS",
    "SIGNAL_FIELDS",
    "BufferedPublisher",
    "RedisClient",
    "StreamPublisher",
    "StreamSource",
]

log = get_logger("polysnipe.redis.streams")

RedisClient: TypeAlias = "aioredis.Redis | aioredis.RedisCluster"

#: the fields of a market-data entry
FRAME_FIELDS: Final = frozenset({b"raw", b"recv_ms"})
#: the fields of an external-signal entry: who sent it as well
SIGNAL_FIELDS: Final = frozenset({b"raw", b"recv_ms", b"provider"})
#: XACK ids per command (a huge ack list would block Redis for a long time in one command)
_ACK_CHUNK: Final = 4_096
_NETWORK_ERRORS: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
#: trimmed entry ids remembered so each is reported once
_MAX_TRIMMED_IDS: Final = 100_000


def _is_cluster(client: RedisClient) -> bool:
    return isinstance(client, aioredis.RedisCluster)


# -- publishing ------------------------------------------------------------------------------------
class StreamPublisher:
    """Appends frames and signals to the streams; one pipelined round trip per call."""

    __slots__ = ("_client", "_config", "published")

    def __init__(self, client: RedisClient, config: StreamsConfig) -> None:
        self._client = client
        self._config = config
        #: entries appended so far
        self.published = 0

    async def publish(self, frames: Iterable[tuple[bytes, int]]) -> list[bytes]:
        """Append market-channel frames (raw bytes as received, recv_ms); returns the entry ids."""
        config = self._config
        pipe = self._client.pipeline(transaction=False)
        n = 0
        for raw, recv_ms in frames:
            stamp = str(recv_ms)
            for stream, data in route_frame(raw, config):
                pipe.xadd(config.key(stream), {b"raw": data, b"recv_ms": stamp},
                          maxlen=config.maxlen, approximate=True)  # fmt: skip
                n += 1
        if not n:
            return []
        ids: list[bytes] = await pipe.execute()
        self.published += n
        return ids

    async def publish_signal(self, body: bytes, recv_ms: int, provider: str) -> bytes:
        """Append one external signal (its JSON body as received) to signals.external."""
        config = self._config
        entry = await self._client.xadd(
            config.signals_key,
            {b"raw": body, b"recv_ms": str(recv_ms), b"provider": provider},
            maxlen=config.maxlen,
            approximate=True,
        )
        self.published += 1
        return entry if isinstance(entry, bytes) else entry.encode()


class BufferedPublisher:
    """Frames pushed from synchronous callbacks (a socket's handler) go out in pipelined batches.

    `push` never blocks and never fails; `run` sends whatever accumulated while the previous batch
    was in flight, so the batch grows with the load and a quiet feed pays one round trip per frame.
    A Redis failure keeps the frames and retries: ingest does not drop what the venue sent because
    the bus blinked (up to `max_buffered` frames, then the oldest go, with an error in the log).
    """

    __slots__ = ("_buffer", "_max", "_publisher", "_wake", "dropped", "failures")

    def __init__(self, publisher: StreamPublisher, *, max_buffered: int = 1_000_000) -> None:
        self._publisher = publisher
        self._buffer: list[tuple[bytes, int]] = []
        self._wake = asyncio.Event()
        self._max = max_buffered
        self.dropped = 0
        self.failures = 0

    def push(self, raw: bytes, recv_ms: int) -> None:
        buffer = self._buffer
        buffer.append((raw, recv_ms))
        if len(buffer) > self._max:
            drop = len(buffer) - self._max
            del buffer[:drop]
            self.dropped += drop
            log.error("ingest_buffer_overflow", dropped=drop)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> None:
        """Send everything buffered now (raises what Redis raises)."""
        while self._buffer:
            batch, self._buffer = self._buffer, []
            try:
                await self._publisher.publish(batch)
            except BaseException:
                self._buffer[:0] = batch
                raise

    async def run(self) -> None:
        """Until cancelled: wait for frames, send them; back off and retry while Redis is away."""
        delay = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                delay = 0.05
            except _NETWORK_ERRORS as exc:
                self.failures += 1
                log.warning("ingest_publish_failed", error=repr(exc)[:300], buffered=len(self._buffer))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                self._wake.set()


# -- consuming -------------------------------------------------------------------------------------
class _Unusable(Exception):
    """An entry the engine cannot use; the reason goes to the dead letters."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fields_reason(fields: dict[bytes, bytes], allowed: frozenset[bytes]) -> str | None:
    unknown = [k for k in fields if k not in allowed]
    if unknown:
        shown = ", ".join(k.decode("utf-8", "replace")[:40] for k in unknown[:5])
        return f"unknown field(s): {shown}"
    for name in (b"raw", b"recv_ms"):
        if name not in fields:
            return f"missing field {name.decode()}"
    return None


def _decode_entry(fields: dict[bytes, bytes], *, signals: bool) -> list[Event]:
    """The events of one entry, parsed as the backtest parses a recorded line; _Unusable if none."""
    reason = _fields_reason(fields, SIGNAL_FIELDS if signals else FRAME_FIELDS)
    if reason is not None:
        raise _Unusable(reason)
    stamp = fields[b"recv_ms"]
    try:
        recv_ms = parse_int(stamp.decode("ascii"), "recv_ms", MIN_TS_MS, MAX_TS_MS)
    except (UnicodeDecodeError, ValueError):
        raise _Unusable(f"recv_ms is not epoch ms in ASCII digits: {stamp[:40]!r}") from None
    try:
        events = parse_market_line(fields[b"raw"], ts_recv_ms=recv_ms)
    except MalformedMessage as exc:
        raise _Unusable(exc.reason) from None
    if signals:
        if not events or any(type(e) is not ExternalSignal for e in events):
            raise _Unusable("the signal stream carries external signals only")
    elif any(type(e) is ExternalSignal for e in events):
        # a signal reaches the engine only through signals.external, which ingest fills from the
        # authenticated /signals endpoint; one on a market-data stream came around it
        raise _Unusable("a market-data stream carries market-channel messages only, not external signals")
    return events


#: one entry as redis-py returns it: (id, fields; {} once trimmed away while pending)
_Entry = tuple[bytes, dict[bytes, bytes]]
#: (stream key, entry id, raw bytes, reason) of an entry going to the dead letters
_Dead = tuple[str, bytes, bytes, str]


class StreamSource:
    """core.ports.InputSource over the bus, as one member (`consumer`) of the engines' group.

    `shards`: the market-data shards this engine owns; `signals`: whether it also reads
    signals.external (an engine that trades on news must). See the module docstring.
    """

    def __init__(
        self,
        client: RedisClient,
        config: StreamsConfig,
        *,
        consumer: str,
        shards: Sequence[int],
        clock: Clock,
        signals: bool = True,
    ) -> None:
        if not consumer:
            raise ValueError("a consumer needs a name, stable across its restarts")
        bad = [s for s in shards if not 0 <= s < config.shards]
        if bad:
            raise ValueError(f"shards {bad} outside 0..{config.shards - 1}")
        self._client = client
        self._config = config
        self._consumer = consumer
        self._clock = clock
        self._cluster = _is_cluster(client)
        keys = [config.md_key(s) for s in dict.fromkeys(shards)]
        if signals:
            keys.append(config.signals_key)
        if not keys:
            raise ValueError("a stream source needs at least one stream")
        self.keys: tuple[str, ...] = tuple(keys)
        self._signals_key = config.signals_key if signals else None
        self._started = False
        self._closed = False
        #: own pending entries still to re-read after a restart: key -> last id read
        self._backlog: dict[str, bytes] = {}
        #: XAUTOCLAIM cursors of the claim round in progress
        self._claiming: dict[str, bytes] = {}
        self._next_claim = 0.0
        #: handed to the loop, not yet acknowledged / acknowledged, not yet XACKed
        self._handed: dict[str, list[bytes]] = {}
        self._acks: dict[str, list[bytes]] = {}
        self._down = False
        #: stream key -> the newest entry id handed out (where a group deleted under us restarts)
        self._last_seen: dict[str, bytes] = {}
        #: alerts raised while reading, handed out with the next batch
        self._notices: list[SourceItem] = []
        #: ids of trimmed entries already reported, oldest first (a trimmed own entry shows up in
        #: both the pending read and XAUTOCLAIM's deleted list)
        self._trimmed_ids: dict[tuple[str, bytes], None] = {}
        #: counters for status and tests
        self.entries = 0
        self.dead = 0
        self.claimed = 0
        self.acked = 0
        self.trimmed = 0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Create the groups if missing and line up the recovery reads. Raises on a Redis failure
        (the runner reports it at start); afterwards nothing raises."""
        await self._ensure_groups()
        self._backlog = dict.fromkeys(self.keys, b"0")
        self._claiming = dict.fromkeys(self.keys, b"0-0")
        self._next_claim = time.monotonic() + self._config.claim_every_ms / 1000
        self._started = True

    async def _ensure_groups(self) -> None:
        for key in self.keys:
            # from the first entry: what ingest appended before any engine existed is not lost;
            # a group deleted under a running engine comes back after what the engine already saw
            start = self._last_seen.get(key, b"0")
            try:
                await self._client.xgroup_create(key, self._config.group, id=start, mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def close(self) -> None:
        """End the source: the next `next_batch` returns None. Call `flush()` to send last acks."""
        self._closed = True

    # -- acks ------------------------------------------------------------------------------------
    def acknowledge(self) -> None:
        """Everything handed out so far is durable downstream: XACK it (with the next read, or on
        `flush`). Call only after the journal commit that covers those batches."""
        for key, ids in self._handed.items():
            self._acks.setdefault(key, []).extend(ids)
        self._handed = {}

    @property
    def unacknowledged(self) -> int:
        """Entries handed out and not yet acknowledged."""
        return sum(len(ids) for ids in self._handed.values())

    async def flush(self) -> int:
        """Send the queued XACKs now; returns how many entries they acked."""
        acks = self._acks
        if not acks:
            return 0
        pipe = self._client.pipeline(transaction=False)
        sent = 0
        for key, ids in acks.items():
            for start in range(0, len(ids), _ACK_CHUNK):
                pipe.xack(key, self._config.group, *ids[start : start + _ACK_CHUNK])
                sent += 1
        results = await pipe.execute()
        self._acks = {}
        done = sum(int(n) for n in results)
        self.acked += done
        return done

    # -- reading ---------------------------------------------------------------------------------
    async def next_batch(self, timeout_s: float | None) -> Sequence[SourceItem] | None:
        if self._closed:
            return None
        deadline = None if timeout_s is None else time.monotonic() + max(timeout_s, 0.0)
        try:
            if not self._started:
                await self.start()
            await self.flush()
            entries = await self._recover()
            while not entries:
                block_ms = self._config.block_ms
                if deadline is not None:
                    block_ms = min(block_ms, int((deadline - time.monotonic()) * 1000))
                entries = await self._read_new(max(block_ms, 0))
                if entries or (deadline is not None and time.monotonic() >= deadline) or self._closed:
                    break
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                # Redis answers but refuses (a read-only replica, a key of another type, out of
                # memory): like an outage, one alert and a pause between tries, not a spin
                return await self._failed_wait(exc, deadline, "bus_read_failed", "reading the bus failed")
            return self._group_missing(exc)
        except _NETWORK_ERRORS as exc:
            return await self._failed_wait(exc, deadline, "bus_unreachable", "the Redis bus is unreachable")
        if self._down:
            self._down = False
            log.info("bus_reconnected")
        items, dead = self._take(entries)
        if dead:
            items += await self._dead_letter(dead)
        if self._notices:
            items += self._notices
            self._notices = []
        return items

    async def _failed_wait(
        self, exc: Exception, deadline: float | None, code: str, what: str
    ) -> list[SourceItem]:
        out: list[SourceItem] = []
        if not self._down:
            # one alert per outage, not one per retry
            self._down = True
            log.error(code, error=repr(exc)[:300])
            message = f"{what}: {type(exc).__name__}: {exc}"[:500]
            out.append(RaiseAlert("critical", code, message, self._clock.now_ms()))
        wait = 0.5 if deadline is None else min(0.5, max(deadline - time.monotonic(), 0.0))
        await asyncio.sleep(wait)
        return out

    def _group_missing(self, exc: Exception) -> list[SourceItem]:
        """The stream or its group was deleted under us: recreated on the next read, past the last
        entry this engine saw (from the start it would hand out again all the stream keeps)."""
        log.error("stream_group_missing", error=str(exc)[:300])
        self._started = False
        message = f"a stream or its consumer group was deleted under the engine; recreated: {exc}"[:500]
        return [RaiseAlert("critical", "stream_group_missing", message, self._clock.now_ms())]

    async def _recover(self) -> list[tuple[str, _Entry]]:
        """Own pending entries left from before a restart, then entries claimed from dead consumers."""
        out: list[tuple[str, _Entry]] = []
        config = self._config
        for key, after in list(self._backlog.items()):
            read = await self._client.xreadgroup(
                config.group, self._consumer, {key: after}, count=config.batch
            )
            got = _entries(read)
            if not got:
                del self._backlog[key]
                continue
            self._backlog[key] = got[-1][1][0]
            out += got
        if out:
            return out
        if not self._claiming and time.monotonic() >= self._next_claim:
            self._claiming = dict.fromkeys(self.keys, b"0-0")
        for key, cursor in list(self._claiming.items()):
            answer = await self._client.xautoclaim(
                key, config.group, self._consumer, config.claim_idle_ms, start_id=cursor, count=config.batch
            )
            nxt, claimed = answer[0], answer[1]
            deleted = answer[2] if len(answer) > 2 else []
            if deleted:
                self._report_trimmed(key, list(deleted))
            if nxt in (b"0-0", "0-0"):
                del self._claiming[key]
            else:
                self._claiming[key] = nxt
            if claimed:
                # XAUTOCLAIM also takes our own entries the loop holds for longer than the idle
                # time (a slow batch); they are ours already and must not be handed out twice
                mine = {*self._handed.get(key, ()), *self._acks.get(key, ())}
                claimed = [entry for entry in claimed if entry[0] not in mine]
            if claimed:
                self.claimed += len(claimed)
                log.info("stream_entries_claimed", stream=key, entries=len(claimed), consumer=self._consumer)
                out += [(key, entry) for entry in claimed]
        if not self._claiming and time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + config.claim_every_ms / 1000
        return out

    async def _read_new(self, block_ms: int) -> list[tuple[str, _Entry]]:
        config = self._config
        if not self._cluster:
            read = await self._client.xreadgroup(
                config.group, self._consumer, dict.fromkeys(self.keys, ">"), count=config.batch,
                block=block_ms or None,
            )  # fmt: skip
            return _entries(read)
        pipe = self._client.pipeline(transaction=False)
        for key in self.keys:
            pipe.xreadgroup(config.group, self._consumer, {key: ">"}, count=config.batch)
        out: list[tuple[str, _Entry]] = []
        for read in await pipe.execute():
            out += _entries(read)
        if not out and block_ms:
            await asyncio.sleep(min(config.cluster_poll_ms, block_ms) / 1000)
        return out

    def _report_trimmed(self, key: str, ids: Sequence[bytes]) -> None:
        """MAXLEN trimmed entries nobody had acked (ours or a dead engine's): they are gone, and an
        operator must know; each is reported once."""
        seen = self._trimmed_ids
        fresh = [i for i in ids if (key, i) not in seen]
        if not fresh:
            return
        for i in fresh:
            seen[key, i] = None
        while len(seen) > _MAX_TRIMMED_IDS:
            del seen[next(iter(seen))]
        n = len(fresh)
        self.trimmed += n
        log.error("stream_entries_trimmed", stream=key, entries=n)
        self._notices.append(RaiseAlert("critical", "stream_entries_trimmed",
                                        f"{n} pending entries of {key} were trimmed before anyone acked them",
                                        self._clock.now_ms()))  # fmt: skip

    # -- decoding --------------------------------------------------------------------------------
    def _take(self, entries: list[tuple[str, _Entry]]) -> tuple[list[SourceItem], list[_Dead]]:
        out: list[SourceItem] = []
        handed = self._handed
        dead: list[_Dead] = []
        trimmed: dict[str, list[bytes]] = {}
        #: each stream's last entry of this batch: one read's entries of a stream come in id order
        newest: dict[str, bytes] = {}
        for key, (entry_id, fields) in entries:
            handed.setdefault(key, []).append(entry_id)
            newest[key] = entry_id
            if not fields:
                trimmed.setdefault(key, []).append(entry_id)
                continue
            self.entries += 1
            try:
                out.extend(_decode_entry(fields, signals=key == self._signals_key))
            except _Unusable as exc:
                raw = _whole(fields)
                dead.append((key, entry_id, raw, exc.reason))
                eid = entry_id.decode("ascii", "replace")
                out.append(RecordError(key, eid, exc.reason, raw.decode("utf-8", "replace"),
                                       self._clock.now_ms()))  # fmt: skip
        for key, ids in trimmed.items():
            self._report_trimmed(key, ids)
        last_seen = self._last_seen
        for key, entry_id in newest.items():
            # a batch of recovered entries is older than what was read before it
            if _entry_order(entry_id) > _entry_order(last_seen.get(key, b"0-0")):
                last_seen[key] = entry_id
        return out, dead

    async def _dead_letter(self, dead: list[_Dead]) -> list[SourceItem]:
        """Append unusable entries to their stream's dead letters, in one round trip. The entry
        itself is acked with its batch; when Redis refuses the append (out of memory, a key of
        another type) or is gone, the errors table is the record and an alert says so."""
        config = self._config
        pipe = self._client.pipeline(transaction=False)
        for key, entry_id, raw, reason in dead:
            pipe.xadd(key + ".dead", {b"raw": raw, b"reason": reason, b"source_id": entry_id},
                      maxlen=config.dead_maxlen, approximate=True)  # fmt: skip
            eid = entry_id.decode("ascii", "replace")
            log.warning("stream_entry_dead_lettered", stream=key, entry_id=eid, reason=reason[:300])
        self.dead += len(dead)
        try:
            await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.error("dead_letter_failed", entries=len(dead), error=repr(exc)[:300])
            message = f"{len(dead)} unusable entries could not be dead-lettered ({type(exc).__name__}: {exc})"
            return [RaiseAlert("critical", "dead_letter_failed", message[:500], self._clock.now_ms())]
        return []


def _entry_order(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id (`<ms>-<seq>`, as Redis gives it) as the pair it is ordered by."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or b"0")


def _whole(fields: dict[bytes, bytes]) -> bytes:
    """What an unusable entry carried: its `raw` bytes as received when that is all it held beside
    `recv_ms` (and a signal's `provider`); otherwise every field, as `name=value` lines, so an entry
    with a misspelt field keeps its content in the dead letters and the errors table."""
    if b"raw" in fields and fields.keys() <= SIGNAL_FIELDS:
        return fields[b"raw"]
    return b"\n".join(name + b"=" + value for name, value in fields.items())


def _entries(read: Any) -> list[tuple[str, _Entry]]:
    """(stream key, entry) pairs of an XREADGROUP answer (RESP2: [[key, [(id, fields), ...]], ...])."""
    if not read:
        return []
    out: list[tuple[str, _Entry]] = []
    for name, entries in read:
        key = name.decode() if isinstance(name, bytes) else str(name)
        out += [(key, (entry_id, fields or {})) for entry_id, fields in entries]
    return out
