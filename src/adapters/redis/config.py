"""Settings of the Redis Streams adapter and the names of its keys.

Theory of operation: market data is split over `shards` streams `md.<k>`, a market (condition id)
always on shard `shard_of(market)`: CRC-32 of its ASCII text mod the shard count, the same on every
host and Python version (Python's `hash()` is salted per process). External signals have one stream,
`signals.external`. Each stream's name is a Redis Cluster hash tag (`{md.3}`), and everything else
about that stream (its dead letters `{md.3}.dead`) hangs off the same tag, so one shard's keys live in
one slot and a shard moves between nodes whole. `prefix` goes in front of every key, outside the tag,
so test runs and deployments sharing a server never see each other's keys.
"""

from __future__ import annotations

import zlib
from typing import Final

import attrs

from polysnipe.adapters.redis.errors import InvalidStreamsConfig

__all__ = ["SIGNALS_STREAM", "StreamsConfig", "md_stream", "shard_of"]

#: the name (inside its hash tag) of the external-signal stream
SIGNALS_STREAM: Final = "signals.external"


def shard_of(market: str, shards: int) -> int:
    """The shard of a market: stable across processes, hosts and Python versions."""
    return zlib.crc32(market.encode("utf-8", "surrogatepass")) % shards


def md_stream(shard: int) -> str:
    """The market-data stream name of a shard (without prefix or hash tag)."""
    return f"md.{shard}"


def _check_prefix(_: object, __: object, value: str) -> None:
    # a brace in the prefix would become the hash tag of every key and put all shards in one slot
    if "{" in value or "}" in value or any(c.isspace() for c in value):
        raise InvalidStreamsConfig(f"the key prefix may not hold braces or spaces: {value!r}")


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise InvalidStreamsConfig(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen(slots=True, kw_only=True)
class StreamsConfig:
    """Where the streams are and how they are read. Units in the names; no secret here (a Redis
    password belongs in the URL given by the environment)."""

    #: in front of every key (POLYSNIPE_REDIS_PREFIX), e.g. "prod:" or a test's unique id
    prefix: str = attrs.field(default="", validator=_check_prefix)
    #: market-data shards: md.0 .. md.<shards-1>; every ingest and engine must agree on it
    shards: int = attrs.field(default=8, validator=_positive)
    #: approximate cap on each stream's length (XADD MAXLEN ~): the bus is a buffer, not the archive
    maxlen: int = attrs.field(default=1_000_000, validator=_positive)
    #: approximate cap on each dead-letter stream
    dead_maxlen: int = attrs.field(default=100_000, validator=_positive)
    #: the consumer group the engines read in
    group: str = "engine"
    #: entries per stream per XREADGROUP
    batch: int = attrs.field(default=2_048, validator=_positive)
    #: longest single BLOCK of a read (a stop is noticed within it)
    block_ms: int = attrs.field(default=1_000, validator=_positive)
    #: a pending entry idle this long belongs to a consumer presumed dead: XAUTOCLAIM takes it
    claim_idle_ms: int = attrs.field(default=30_000, validator=_positive)
    #: how often a running consumer looks for such entries
    claim_every_ms: int = attrs.field(default=10_000, validator=_positive)
    #: Redis Cluster: reads go one stream at a time (keys of several slots cannot share a command),
    #: polled this often when all are empty
    cluster_poll_ms: int = attrs.field(default=2, validator=_positive)

    def key(self, stream: str) -> str:
        """The Redis key of a stream: prefix, then the stream's name as its hash tag."""
        return f"{self.prefix}{{{stream}}}"

    def dead_key(self, stream: str) -> str:
        return f"{self.prefix}{{{stream}}}.dead"

    def md_key(self, shard: int) -> str:
        return self.key(md_stream(shard))

    @property
    def signals_key(self) -> str:
        return self.key(SIGNALS_STREAM)

    def shard_key(self, market: str) -> str:
        return self.md_key(shard_of(market, self.shards))
