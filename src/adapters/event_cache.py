"""A parsed recording cached as numpy columns beside its JSON-lines file: a backtest parses a recording
once, and later runs rebuild the same events from the columns without decoding any JSON.

Where: `<events file>.cache/<sha256 of the file>-f<FORMAT_VERSION>-p<parser fingerprint>.cols`. The
key is the hash of the recording's bytes, so an edited or replaced file misses; the parser fingerprint
is a hash of the parsing code itself (the modules in _PARSER_MODULES), so a parser change misses too
without anyone remembering to bump a number (code that takes over decoding belongs in that list).
After a cache is written, the other `.cols` files of that directory (stale keys) are removed.

One file per recording, written to a temporary name and renamed into place, so a crash or a concurrent
run never leaves a half-written cache under the real name:

    MAGIC (8 bytes) | header length (8 bytes, little endian) | header (JSON, space-padded) | payload

The header repeats the key (source sha256, format, parser fingerprint) and gives the payload's length
and sha256 and each column's (name, dtype, count, offset). Columns are little-endian int64 (None as
-1: every optional field is non-negative), float64 or bytes; strings (token ids, markets, hashes, ...)
are indices into one string table (UTF-8). Nested tuples (a price change's deltas, a book's levels)
are a count column on the parent and flat child columns. `_SCHEMA` spells every event type field by
field; an import-time check refuses a field or an event type it does not cover, so a new one cannot
be silently dropped.

Trust: a file that is truncated, corrupted or foreign fails the header, the length or the payload
hash and is parsed again (one warning, then rewritten). A deliberately edited cache could carry a
matching hash, so every column is also range-checked on load against the parser's own bounds
(prices in [0, 1], venue ticks, timestamps in the accepted window, ...), and the events must be in
time order: a cache can never hand the engine a field outside what the parser accepts for it.
(Checks across a message that leave no trace in the event, such as a market_resolved winner being
one of its assets_ids, rest on the hash.)

Why read rather than mmap the file: every column becomes Python objects at once, so a mapping would
save one memcpy, and a mapped file truncated by another process faults (SIGBUS) instead of raising.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import json
import os
import tempfile
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import chain, compress, pairwise, repeat
from pathlib import Path
from typing import Any, Literal, NamedTuple

import attrs
import numpy as np

from polysnipe.adapters.clob.parsing import _MAX_FEE_BPS
from polysnipe.adapters.files import OnMalformedLine, ReadStats, collect_events, load_events
from polysnipe.adapters.logs import get_logger
from polysnipe.core.events import (
    MAX_TS_MS,
    MIN_TS_MS,
    BookDelta,
    BookSnapshot,
    Event,
    ExternalSignal,
    LastTrade,
    Level,
    MarketResolved,
    PriceChange,
    Side,
    TickSizeChange,
)
from polysnipe.core.market import VALID_TICKS
from polysnipe.core.units import MAX_AMOUNT_MICRO, ONE

__all__ = ["FORMAT_VERSION", "CacheStatus", "cache_dir_of", "load_events_cached"]

log = get_logger("polysnipe.event_cache")

#: bump when the file layout or the column encoding changes
FORMAT_VERSION = 1
MAGIC = b"PSNCOLS\x00"
_HEADER_MAX = 1 << 20
_ALIGN = 8

#: what load_events_cached did: "off" (not asked to), "hit" (rebuilt from the cache), "miss" (parsed
#: and wrote the cache), "unwritable" (parsed; the cache could not be written, one warning logged)
CacheStatus = Literal["off", "hit", "miss", "unwritable"]

#: the code whose behaviour the cached columns reflect: a change to any of them invalidates every cache
_PARSER_MODULES = (
    "polysnipe.adapters.clob.parsing",
    "polysnipe.adapters.clob.schemas",
    "polysnipe.adapters.clob.errors",
    "polysnipe.adapters.files",
    "polysnipe.core.events",
    "polysnipe.core.market",
    "polysnipe.core.units",
    __name__,
)
#: compiled code that decodes in their place when it is built: its absence is part of the fingerprint
#: too (same events either way, by the fast path's construction, but a cache must never outlive the code
#: that wrote it)
_COMPILED_PARSER_MODULES = ("polysnipe.adapters.clob._fastdecode",)


class _Invalid(Exception):
    """A cache file that must not be used (it is parsed again and rewritten)."""


# -- the schema: one codec per field -------------------------------------------------------------
_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")
_U1 = np.dtype("u1")
_NONE = -1


@attrs.frozen
class _Int:
    """An int field within [low, high]; optional fields store None as -1 (all bounds are >= 0)."""

    low: int
    high: int
    optional: bool = False

    def encode(self, values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return _ints(values, self.optional)

    def check(self, name: str, col: np.ndarray[Any, Any]) -> None:
        values = col[col != _NONE] if self.optional else col
        if len(values) and (values.min() < self.low or values.max() > self.high):
            raise _Invalid(f"{name} outside [{self.low}, {self.high}]")

    def decode(self, col: np.ndarray[Any, Any]) -> list[Any]:
        return _int_list(col, self.optional)


def _ints(values: Sequence[Any], optional: bool) -> np.ndarray[Any, np.dtype[np.int64]]:
    if optional:
        return np.array([_NONE if v is None else v for v in values], dtype=_I8)
    return np.array(values, dtype=_I8)


def _int_list(col: np.ndarray[Any, Any], optional: bool) -> list[Any]:
    values: list[Any] = col.tolist()
    if optional and _NONE in values:
        return [None if v == _NONE else v for v in values]
    return values


@attrs.frozen
class _OneOf:
    """An int field taking one of a few values (a venue tick, a direction), optionally None (-1)."""

    values: frozenset[int]
    optional: bool = False

    def encode(self, values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return _ints(values, self.optional)

    def check(self, name: str, col: np.ndarray[Any, Any]) -> None:
        allowed = sorted(self.values | {_NONE}) if self.optional else sorted(self.values)
        if not np.isin(col, allowed).all():
            raise _Invalid(f"{name} not one of {allowed}")

    def decode(self, col: np.ndarray[Any, Any]) -> list[Any]:
        return _int_list(col, self.optional)


@attrs.frozen
class _Side:
    def encode(self, values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.array(values, dtype=_I8)

    def check(self, name: str, col: np.ndarray[Any, Any]) -> None:
        if not np.isin(col, (Side.BUY, Side.SELL)).all():
            raise _Invalid(f"{name} not a side")

    def decode(self, col: np.ndarray[Any, Any]) -> list[Any]:
        return list(map(_SIDE_OF.__getitem__, col.tolist()))


_SIDE_OF = (Side.BUY, Side.SELL)


@attrs.frozen
class _Unit:
    """A float field within [0, 1] (a confidence): float64 holds a Python float exactly."""

    def encode(self, values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array(values, dtype=_F8)

    def check(self, name: str, col: np.ndarray[Any, Any]) -> None:
        # NaN fails both comparisons, so it is refused too
        if not ((col >= 0.0) & (col <= 1.0)).all():
            raise _Invalid(f"{name} outside [0, 1]")

    def decode(self, col: np.ndarray[Any, Any]) -> list[Any]:
        values: list[Any] = col.tolist()
        return values


@attrs.frozen
class _Str:
    """A str field: its index into the string table."""


@attrs.frozen
class _Tuple:
    """A tuple of NamedTuples: a count column here, the children's columns under `name.`."""

    of: type[tuple[Any, ...]]
    #: the fewest children the parser gives a row (it drops a price_change with no deltas)
    min_count: int = 0


_Codec = _Int | _OneOf | _Side | _Unit | _Str | _Tuple

_TS = _Int(MIN_TS_MS, MAX_TS_MS)
_PRICE = _Int(0, ONE)
_OPT_PRICE = _Int(0, ONE, optional=True)
_SIZE = _Int(0, MAX_AMOUNT_MICRO)
_TICK = _OneOf(frozenset(VALID_TICKS))
_STR = _Str()

#: every field of every event type, in field order, with the bounds its parser enforces
_SCHEMA: dict[type[tuple[Any, ...]], tuple[tuple[str, _Codec], ...]] = {
    Level: (("price", _PRICE), ("size", _SIZE)),
    BookDelta: (
        ("token_id", _STR),
        ("side", _Side()),
        ("price", _PRICE),
        ("size", _SIZE),
        ("hash", _STR),
        ("best_bid", _OPT_PRICE),
        ("best_ask", _OPT_PRICE),
    ),
    PriceChange: (("ts_ms", _TS), ("market", _STR), ("changes", _Tuple(BookDelta, min_count=1))),
    BookSnapshot: (
        ("ts_ms", _TS),
        ("token_id", _STR),
        ("market", _STR),
        ("bids", _Tuple(Level)),
        ("asks", _Tuple(Level)),
        ("hash", _STR),
        ("tick_size", _OneOf(frozenset(VALID_TICKS), optional=True)),
    ),
    LastTrade: (
        ("ts_ms", _TS),
        ("token_id", _STR),
        ("market", _STR),
        # the venue matches only strictly inside (0, 1)
        ("price", _Int(1, ONE - 1)),
        ("size", _SIZE),
        ("side", _Side()),
        ("fee_rate_bps", _Int(0, _MAX_FEE_BPS)),
    ),
    TickSizeChange: (
        ("ts_ms", _TS),
        ("token_id", _STR),
        ("market", _STR),
        ("old_tick", _TICK),
        ("new_tick", _TICK),
    ),
    MarketResolved: (("ts_ms", _TS), ("market", _STR), ("winning_token", _STR)),
    ExternalSignal: (
        ("ts_ms", _TS),
        ("token_id", _STR),
        ("source", _STR),
        ("direction", _OneOf(frozenset({1, -1}))),
        ("confidence", _Unit()),
        ("ttl_ms", _Int(1, MAX_TS_MS)),
        ("fair_price", _OPT_PRICE),
        ("ref", _STR),
    ),
}
#: the event types, in the order of their code in the `kind` column
_EVENT_TYPES: tuple[type[tuple[Any, ...]], ...] = (
    PriceChange,
    BookSnapshot,
    LastTrade,
    TickSizeChange,
    MarketResolved,
    ExternalSignal,
)
_MALFORMED_LINE = _Int(1, 1 << 62)


def _check_schema() -> None:
    """Refuse (at import) an event type or a field the schema does not spell out."""
    if set(typing.get_args(Event)) != set(_EVENT_TYPES):
        raise RuntimeError(f"event cache: the Event union is not {[t.__name__ for t in _EVENT_TYPES]}")
    for cls, fields in _SCHEMA.items():
        if tuple(name for name, _ in fields) != getattr(cls, "_fields", None):
            raise RuntimeError(f"event cache: the schema of {cls.__name__} does not match its fields")


_check_schema()


# -- encoding ------------------------------------------------------------------------------------
class _Strings:
    """The string columns of a file, gathered first and turned into indices at the end: deduplicating
    and indexing whole columns with dict.fromkeys and map keeps the per-string work in C."""

    def __init__(self) -> None:
        self.columns: dict[str, Sequence[str]] = {}

    def add(self, key: str, values: Sequence[str]) -> None:
        self.columns[key] = values

    def encode(self, out: dict[str, np.ndarray[Any, Any]]) -> None:
        table = list(dict.fromkeys(chain.from_iterable(self.columns.values())))
        index = dict(zip(table, range(len(table)), strict=True))
        for key, values in self.columns.items():
            out[key] = np.fromiter(map(index.__getitem__, values), dtype=_I8, count=len(values))
        text = "".join(table)
        if text.isascii():
            # one encode for the whole table (token ids and hex hashes are ASCII): lengths in
            # characters are lengths in bytes
            lengths = list(map(len, table))
            blob = text.encode("ascii")
        else:
            encoded = [s.encode() for s in table]
            lengths = list(map(len, encoded))
            blob = b"".join(encoded)
        out["strings@"] = np.zeros(len(table) + 1, dtype=_I8)
        np.cumsum(lengths, out=out["strings@"][1:])
        out["strings"] = np.frombuffer(blob, dtype=_U1)


def _bytes_table(values: Iterable[bytes]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    items = list(values)
    offsets = np.zeros(len(items) + 1, dtype=_I8)
    np.cumsum([len(b) for b in items], out=offsets[1:])
    return np.frombuffer(b"".join(items), dtype=_U1), offsets


def _encode_rows(
    cls: type[tuple[Any, ...]],
    rows: Sequence[tuple[Any, ...]],
    prefix: str,
    strings: _Strings,
    out: dict[str, np.ndarray[Any, Any]],
) -> None:
    fields = _SCHEMA[cls]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    if len(columns) != len(fields):
        raise ValueError(f"{cls.__name__} rows do not have {len(fields)} fields")
    out[prefix + "#"] = np.array([len(rows)], dtype=_I8)
    for (name, codec), values in zip(fields, columns, strict=True):
        key = prefix + name
        if isinstance(codec, _Str):
            strings.add(key, values)
        elif isinstance(codec, _Tuple):
            out[key] = np.fromiter(map(len, values), dtype=_I8, count=len(values))
            _encode_rows(codec.of, list(chain.from_iterable(values)), key + ".", strings, out)
        else:
            out[key] = codec.encode(values)


class _Malformed(NamedTuple):
    line: int
    reason: str
    raw: bytes


def _encode(
    events: Sequence[Event], stats: ReadStats, malformed: Sequence[_Malformed]
) -> dict[str, np.ndarray[Any, Any]]:
    strings = _Strings()
    out: dict[str, np.ndarray[Any, Any]] = {}
    code = {cls: i for i, cls in enumerate(_EVENT_TYPES)}
    kinds = np.fromiter(map(code.__getitem__, map(type, events)), dtype=_I8, count=len(events))
    out["kind"] = kinds
    for i, cls in enumerate(_EVENT_TYPES):
        rows = list(compress(events, (kinds == i).tolist()))
        _encode_rows(cls, rows, cls.__name__ + ".", strings, out)
    out["stats"] = np.array([stats.lines, stats.events, stats.malformed], dtype=_I8)
    out["malformed.line"] = _MALFORMED_LINE.encode([m.line for m in malformed])
    strings.add("malformed.reason", [m.reason for m in malformed])
    out["malformed.raw"], out["malformed.raw@"] = _bytes_table(m.raw for m in malformed)
    strings.encode(out)
    return out


def _pack(columns: dict[str, np.ndarray[Any, Any]], key: dict[str, Any]) -> bytes:
    layout = []
    chunks: list[bytes] = []
    offset = 0
    for name, col in columns.items():
        data = np.ascontiguousarray(col).tobytes()
        layout.append([name, col.dtype.str, len(col), offset])
        chunks.append(data)
        pad = -len(data) % _ALIGN
        chunks.append(b"\0" * pad)
        offset += len(data) + pad
    payload = b"".join(chunks)
    header = {
        **key,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "columns": layout,
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(len(MAGIC) + 8 + len(head)) % _ALIGN)
    return MAGIC + len(head).to_bytes(8, "little") + head + payload


# -- decoding ------------------------------------------------------------------------------------
class _Columns:
    """The columns of a verified file, each read once with the dtype its codec expects."""

    def __init__(self, blob: bytes, key: dict[str, Any]) -> None:
        if blob[: len(MAGIC)] != MAGIC or len(blob) < len(MAGIC) + 8:
            raise _Invalid("not an event cache file")
        head_len = int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 8], "little")
        start = len(MAGIC) + 8 + head_len
        if head_len > _HEADER_MAX or start > len(blob):
            raise _Invalid("truncated header")
        header = json.loads(blob[len(MAGIC) + 8 : start])
        if not isinstance(header, dict) or any(header.get(k) != v for k, v in key.items()):
            raise _Invalid("written for another file, format or parser")
        payload = memoryview(blob)[start:]
        if header.get("payload_bytes") != len(payload):
            raise _Invalid("truncated payload")
        if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
            raise _Invalid("payload hash mismatch")
        self._blob = blob
        self._start = start
        self._layout: dict[str, tuple[str, int, int]] = {
            str(name): (str(dtype), int(count), int(offset))
            for name, dtype, count, offset in header["columns"]
        }

    def get(self, name: str, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        if name not in self._layout:
            raise _Invalid(f"missing column {name}")
        stored, count, offset = self._layout[name]
        if stored != dtype.str or count < 0 or offset < 0:
            raise _Invalid(f"column {name} has dtype {stored}, expected {dtype.str}")
        return np.frombuffer(self._blob, dtype=dtype, count=count, offset=self._start + offset)

    def count(self, name: str, expected: int, dtype: np.dtype[Any] = _I8) -> np.ndarray[Any, Any]:
        col = self.get(name, dtype)
        if len(col) != expected:
            raise _Invalid(f"column {name} has {len(col)} rows, expected {expected}")
        return col

    def bytes_table(self, name: str) -> list[bytes]:
        data = self.get(name, _U1).tobytes()
        offsets = self.get(name + "@", _I8)
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
            raise _Invalid(f"{name}: offsets do not cover the table")
        bounds = offsets.tolist()
        return [data[a:b] for a, b in pairwise(bounds)]


def _strings(cols: _Columns) -> list[str]:
    data = cols.get("strings", _U1).tobytes()
    offsets = cols.get("strings@", _I8)
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any():
        raise _Invalid("strings: offsets do not cover the table")
    bounds = offsets.tolist()
    if data.isascii():
        # the common case (token ids, hex hashes): one decode, then str slices at the byte offsets
        text = data.decode("ascii")
        return [text[a:b] for a, b in pairwise(bounds)]
    return [data[a:b].decode() for a, b in pairwise(bounds)]


def _string_refs(name: str, col: np.ndarray[Any, Any], table: list[str]) -> list[str]:
    if len(col) and (col.min() < 0 or col.max() >= len(table)):
        raise _Invalid(f"{name}: string index out of range")
    return list(map(table.__getitem__, col.tolist()))


_new = tuple.__new__


def _decode_rows(
    cls: type[tuple[Any, ...]], prefix: str, cols: _Columns, table: list[str]
) -> tuple[list[Any], np.ndarray[Any, Any] | None]:
    """The rows of one type (and its ts_ms column when it has one), built as the parser builds them."""
    n = int(cols.count(prefix + "#", 1)[0])
    if n < 0:
        raise _Invalid(f"{prefix}: negative row count")
    fields: list[list[Any]] = []
    ts: np.ndarray[Any, Any] | None = None
    for name, codec in _SCHEMA[cls]:
        key = prefix + name
        col = cols.count(key, n, _F8 if isinstance(codec, _Unit) else _I8)
        if isinstance(codec, _Str):
            fields.append(_string_refs(key, col, table))
            continue
        if isinstance(codec, _Tuple):
            children, _ = _decode_rows(codec.of, key + ".", cols, table)
            out_of_range = len(col) and (col.min() < codec.min_count or col.max() > len(children))
            if out_of_range or int(col.sum()) != len(children):
                raise _Invalid(f"{key}: counts do not match the children")
            # slicing a tuple makes each row's tuple in one allocation
            flat = tuple(children)
            ends = np.cumsum(col).tolist()
            fields.append([flat[a:b] for a, b in pairwise([0, *ends])])
            continue
        codec.check(key, col)
        if name == "ts_ms":
            ts = col
        fields.append(codec.decode(col))
    return list(map(_new, repeat(cls, n), zip(*fields, strict=True))) if n else [], ts


def _decode(blob: bytes, key: dict[str, Any]) -> tuple[list[Event], ReadStats, list[_Malformed]]:
    cols = _Columns(blob, key)
    table = _strings(cols)
    kinds = cols.get("kind", _I8)
    if len(kinds) and (kinds.min() < 0 or kinds.max() >= len(_EVENT_TYPES)):
        raise _Invalid("kind: unknown event type")
    counts = np.bincount(kinds, minlength=len(_EVENT_TYPES)) if len(kinds) else np.zeros(len(_EVENT_TYPES))
    ts_all = np.empty(len(kinds), dtype=_I8)
    nexts: list[Callable[[], Event]] = []
    for code, cls in enumerate(_EVENT_TYPES):
        rows, ts = _decode_rows(cls, cls.__name__ + ".", cols, table)
        if len(rows) != counts[code] or ts is None:
            raise _Invalid(f"{cls.__name__}: {len(rows)} rows, the kind column says {counts[code]}")
        ts_all[kinds == code] = ts
        nexts.append(iter(rows).__next__)
    if (ts_all[1:] < ts_all[:-1]).any():
        raise _Invalid("events out of time order")
    events: list[Event] = [nexts[k]() for k in kinds.tolist()]

    stats_col = cols.count("stats", 3)
    lines, n_events, n_malformed = stats_col.tolist()
    lines_col = cols.get("malformed.line", _I8)
    _MALFORMED_LINE.check("malformed.line", lines_col)
    reasons = _string_refs("malformed.reason", cols.count("malformed.reason", len(lines_col)), table)
    raws = cols.bytes_table("malformed.raw")
    if not (n_events == len(events) and n_malformed == len(lines_col) == len(raws) and 0 <= lines):
        raise _Invalid("stats do not match the columns")
    malformed = [_Malformed(*m) for m in zip(lines_col.tolist(), reasons, raws, strict=True)]
    stats = ReadStats(lines=lines, events=n_events)
    for m in malformed:
        stats.record_malformed(m.line, m.reason)
    return events, stats, malformed


# -- the cache on disk ---------------------------------------------------------------------------
@cache
def _parser_fingerprint() -> str | None:
    """A hash of the parsing code's files; None (no caching) when one has no file to hash."""
    h = hashlib.sha256()
    for name in _PARSER_MODULES:
        file = importlib.import_module(name).__file__
        if file is None:
            return None
        h.update(Path(file).read_bytes())
    for name in _COMPILED_PARSER_MODULES:
        try:
            file = importlib.import_module(name).__file__
        except ImportError:  # not built: the Python path alone decodes
            h.update(b"absent:" + name.encode())
            continue
        if file is None:
            return None
        h.update(Path(file).read_bytes())
    return h.hexdigest()[:16]


def cache_dir_of(events_path: Path) -> Path:
    """The folder beside a recording that holds its cache (`*.cache/` is in .gitignore)."""
    return events_path.with_name(events_path.name + ".cache")


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _hashed(lines: Iterable[bytes], h: Any) -> Iterator[bytes]:
    """The lines, each added to `h` as it passes: the cache key is the hash of exactly what was parsed."""
    update = h.update
    for line in lines:
        update(line)
        yield line


def _key(source_sha256: str, parser: str) -> dict[str, Any]:
    return {"source_sha256": source_sha256, "format": FORMAT_VERSION, "parser": parser}


def _file_name(key: dict[str, Any]) -> str:
    return f"{key['source_sha256']}-f{key['format']}-p{key['parser']}.cols"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """As in load_events: the events and their columns are acyclic, and the collector rescanning the
    growing heap while they are built or taken apart would cost more than the work itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read(path: Path, key: dict[str, Any]) -> tuple[list[Event], ReadStats, list[_Malformed]] | None:
    target = cache_dir_of(path) / _file_name(key)
    try:
        blob = target.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        # no cache yet (a file in the folder's place is reported once, when writing fails)
        return None
    except OSError as exc:
        log.warning("event_cache_unreadable", cache=str(target), error=str(exc))
        return None
    try:
        with _gc_paused():
            return _decode(blob, key)
    except (_Invalid, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        log.warning("event_cache_invalid", cache=str(target), reason=str(exc), action="parsing the recording")
        return None


def _write(path: Path, key: dict[str, Any], columns: dict[str, np.ndarray[Any, Any]]) -> bool:
    """Write the cache atomically; False (one warning) when the folder cannot take it."""
    folder = cache_dir_of(path)
    target = folder / _file_name(key)
    data = _pack(columns, key)
    try:
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                # mkstemp makes it private (0600); a cache beside shared data serves every reader
                os.fchmod(f.fileno(), 0o644)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("event_cache_not_written", cache=str(target), error=str(exc), action="running uncached")
        return False
    for stale in folder.glob("*.cols"):
        if stale.name != target.name:
            with contextlib.suppress(OSError):
                stale.unlink()
    return True


def load_events_cached(
    path: str | os.PathLike[str], *, on_malformed: OnMalformedLine | None = None, use_cache: bool = True
) -> tuple[list[Event], ReadStats, CacheStatus]:
    """load_events through the cache beside the file: the same events, ReadStats and on_malformed
    calls (same order, same arguments) as parsing, and what the cache did."""
    source = Path(path)
    parser = _parser_fingerprint() if use_cache else None
    if parser is None:
        events, stats = load_events(source, on_malformed=on_malformed)
        return events, stats, "off"
    cached = _read(source, _key(_file_sha256(source), parser))
    if cached is not None:
        events, stats, malformed = cached
        if on_malformed is not None:
            for m in malformed:
                on_malformed(m.line, m.reason, m.raw)
        return events, stats, "hit"

    seen: list[_Malformed] = []

    def keep(line: int, reason: str, raw: bytes) -> None:
        seen.append(_Malformed(line, reason, raw))
        if on_malformed is not None:
            on_malformed(line, reason, raw)

    h = hashlib.sha256()
    with source.open("rb") as f:
        events, stats = collect_events(_hashed(f, h), on_malformed=keep)
    try:
        with _gc_paused():
            columns = _encode(events, stats, seen)
    except (TypeError, ValueError, OverflowError) as exc:
        # an event the schema cannot hold exactly is never cached half right
        log.warning(
            "event_cache_not_encodable", events=str(source), error=str(exc), action="running uncached"
        )
        return events, stats, "unwritable"
    written = _write(source, _key(h.hexdigest(), parser), columns)
    return events, stats, "miss" if written else "unwritable"
