"""Which stream a market-channel frame goes to: a peek at its `market` fields, nothing more.

Theory of operation: the bus carries what the venue sent, so `ingest` does not parse frames; it only
reads each message's `market` (condition id) to pick the shard, and `event_type` to send external
signals to their own stream. A frame whose messages all go to one stream is appended byte for byte.
A JSON array spanning several streams (the book dump after subscribing covers every market of the
connection) is split into one array per stream, each message's bytes kept exactly as received
(msgspec.Raw), in their order, so every engine gets the snapshots of its own markets.

A frame the peek cannot read (bad JSON, binary junk, a message without a market) is not ingest's to
judge: it goes whole to shard 0, where the engine parses it with the backtest's code and
dead-letters it with the reason, in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import EXTERNAL_SIGNAL, decode_json
from polysnipe.adapters.redis.config import SIGNALS_STREAM, StreamsConfig, md_stream, shard_of

__all__ = ["route_frame"]


class _Peek(msgspec.Struct, gc=False):
    """The fields of a message that choose its stream; everything else is skipped unread."""

    market: str | None = None
    event_type: str | None = None


_peek_one = msgspec.json.Decoder(_Peek)
_peek_many = msgspec.json.Decoder(list[msgspec.Raw])


def _stream_of(message: _Peek, shards: int) -> str | None:
    if message.event_type == EXTERNAL_SIGNAL:
        return SIGNALS_STREAM
    if message.market:
        return md_stream(shard_of(message.market, shards))
    return None


def route_frame(raw: bytes, config: StreamsConfig) -> list[tuple[str, bytes]]:
    """(stream name, bytes) pairs to append for one frame as received; see the module docstring."""
    fallback = [(md_stream(0), raw)]
    head = raw.lstrip()[:1]
    try:
        if head == b"{":
            stream = _stream_of(decode_json(_peek_one, raw, "frame"), config.shards)
            return [(stream, raw)] if stream is not None else fallback
        if head != b"[":
            return fallback
        parts = decode_json(_peek_many, raw, "frame")
        streams = [_stream_of(decode_json(_peek_one, part, "message"), config.shards) for part in parts]
    except MalformedMessage:
        return fallback
    if not parts or None in streams:
        return fallback
    if len(set(streams)) == 1:
        return [(streams[0], raw)]  # type: ignore[list-item]
    return _split(parts, streams)  # type: ignore[arg-type]


def _split(parts: Sequence[msgspec.Raw], streams: Sequence[str]) -> list[tuple[str, bytes]]:
    grouped: dict[str, list[bytes]] = {}
    for part, stream in zip(parts, streams, strict=True):
        grouped.setdefault(stream, []).append(bytes(part))
    return [(stream, b"[" + b",".join(items) + b"]") for stream, items in grouped.items()]
