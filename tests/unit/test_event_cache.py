"""The columnar cache of parsed recordings: whatever is cached reads back exactly as parsing gives it,
and a cache that is damaged, foreign, stale or unwritable never changes a run's answers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from kit import SAMPLE, market_files
from polysnipe.adapters.event_cache import MAGIC, cache_dir_of, load_events_cached
from polysnipe.adapters.files import load_events
from polysnipe.core.events import MAX_TS_MS
from polysnipe.core.market import VALID_TICKS
from polysnipe.core.units import format_micro
from polysnipe.runners.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

TOKEN_A = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TOKEN_B = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"


def _wire(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


#: one line of every form the parser maps to events, and of the forms it refuses or ignores
EVERY_FORM = [
    _wire({"event_type": "book", "asset_id": TOKEN_A, "market": MARKET, "timestamp": "1767225600000",
           "hash": "8a6a63ec24ede6a46b4cb2424a23d5962217bead", "tick_size": "0.01",
           "bids": [{"price": "0.48", "size": "100"}, {"price": "0.47", "size": "12.5"}],
           "asks": [{"price": "0.52", "size": "30"}]}),
    # no event_type, no tick size, no hash, an empty side
    _wire({"asset_id": TOKEN_B, "market": MARKET, "timestamp": 1767225600001,
           "bids": [], "asks": [{"price": "0.5", "size": "1"}]}),
    _wire({"event_type": "price_change", "market": MARKET, "timestamp": "1767225600002", "price_changes": [
        {"asset_id": TOKEN_A, "price": "0.49", "size": "7", "side": "BUY", "hash": "ab12",
         "best_bid": "0.49", "best_ask": "0.52"},
        {"asset_id": TOKEN_B, "price": "0.51", "size": "0", "side": "SELL", "best_bid": "",
         "best_ask": "0.51"},
    ]}),
    # the 2024 batch form and the single-change form
    _wire({"event_type": "price_change", "market": MARKET, "asset_id": TOKEN_A, "timestamp": "1767225600003",
           "hash": "ff00", "changes": [{"price": "0.46", "side": "BUY", "size": "3"},
                                       {"price": "0.53", "side": "SELL", "size": "4"}]}),
    _wire({"event_type": "price_change", "market": MARKET, "asset_id": TOKEN_B, "timestamp": "1767225600004",
           "price": "0.5", "size": "2", "side": "BUY", "hash": "00ff"}),
    _wire({"event_type": "last_trade_price", "asset_id": TOKEN_A, "market": MARKET,
           "timestamp": "1767225600005", "price": "0.5", "size": "10", "side": "SELL",
           "fee_rate_bps": "200"}),
    _wire({"event_type": "last_trade_price", "asset_id": TOKEN_B, "market": MARKET,
           "timestamp": "1767225600005", "price": "0.499", "size": "0.5", "side": "BUY"}),
    _wire({"event_type": "tick_size_change", "asset_id": TOKEN_A, "market": MARKET,
           "timestamp": "1767225600006", "old_tick_size": "0.01", "new_tick_size": "0.001"}),
    _wire({"event_type": "external_signal", "asset_id": TOKEN_A, "timestamp": "1767225600007",
           "source": "wire☃", "direction": "up", "confidence": 0.731, "ttl_ms": 60000,
           "fair_price": "0.61", "ref": "https://example.org/ñ"}),
    # an escaped pair outside the BMP; a lone surrogate is malformed
    '{"event_type": "external_signal", "asset_id": "' + TOKEN_B + '", "timestamp": 1767225600008,'
    ' "source": "x\\ud83d\\ude00", "direction": "down", "confidence": 1, "ttl_ms": 1}',
    '{"event_type": "external_signal", "asset_id": "' + TOKEN_B + '", "timestamp": 1767225600008,'
    ' "source": "x\\ud800", "direction": "down", "confidence": 1, "ttl_ms": 1}',
    # an array frame of two messages, and messages that map to no event
    _wire([{"event_type": "last_trade_price", "asset_id": TOKEN_A, "market": MARKET,
            "timestamp": "1767225600009", "price": "0.51", "size": "1", "side": "BUY", "fee_rate_bps": 0},
           {"event_type": "best_bid_ask", "asset_id": TOKEN_A, "best_bid": "0.5", "best_ask": "0.51"}]),
    _wire({"event_type": "new_market", "assets_ids": [TOKEN_A, TOKEN_B]}),
    _wire({"event_type": "something_new", "market": MARKET}),
    "",
    "   ",
    # malformed: not JSON, a price above 1, a bad tick, a non-ASCII raw line
    "{not json",
    _wire({"event_type": "price_change", "market": MARKET, "timestamp": "1767225600010", "price_changes": [
        {"asset_id": TOKEN_A, "price": "1.5", "size": "1", "side": "BUY"}]}),
    _wire({"event_type": "tick_size_change", "asset_id": TOKEN_A, "market": MARKET,
           "timestamp": "1767225600011", "old_tick_size": "0.01", "new_tick_size": "0.3"}),
    '{"event_type": "book", "asset_id": "é", "bids": [}',
    _wire({"event_type": "market_resolved", "market": MARKET, "timestamp": "1767225600012",
           "winning_asset_id": TOKEN_A, "assets_ids": [TOKEN_A, TOKEN_B]}),
    # out of time order in the file: loading sorts, same-millisecond events keep their file order
    _wire({"event_type": "last_trade_price", "asset_id": TOKEN_B, "market": MARKET,
           "timestamp": "1767225600000", "price": "0.5", "size": "1", "side": "BUY"}),
]  # fmt: skip


def _shape(value: Any) -> Any:
    """A value with the type of every part spelled out: Side.BUY == 0 and 1 == 1.0, but a cache that
    rebuilt an int for a Side or a float for an int has not rebuilt the same events."""
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(_shape(v) for v in value))
    return (type(value).__name__, value)


Load = tuple[Any, Any, list[tuple[int, str, bytes]]]


def _load(fn: Callable[..., Any], path: Path, **kw: Any) -> tuple[Load, str]:
    seen: list[tuple[int, str, bytes]] = []
    out = fn(path, on_malformed=lambda n, reason, raw: seen.append((n, reason, raw)), **kw)
    status = out[2] if len(out) == 3 else "parsed"
    return ([_shape(e) for e in out[0]], out[1], seen), status


def _assert_cache_round_trips(path: Path) -> None:
    parsed, _ = _load(load_events, path)
    cold, cold_status = _load(load_events_cached, path)
    warm, warm_status = _load(load_events_cached, path)
    off, off_status = _load(load_events_cached, path, use_cache=False)
    assert ("miss", "hit", "off") == (cold_status, warm_status, off_status)
    assert parsed == cold
    assert parsed == warm
    assert parsed == off


def test_every_event_type_and_malformed_line_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes("\n".join(EVERY_FORM).encode("utf-8", "surrogatepass") + b"\r\n")
    (events, stats, malformed), _ = _load(load_events, path)
    assert {"BookSnapshot", "PriceChange", "LastTrade", "TickSizeChange", "ExternalSignal",
            "MarketResolved"} == {kind for kind, _ in events}  # fmt: skip
    assert 5 == stats.malformed == len(malformed)
    _assert_cache_round_trips(path)


_PRICE = st.sampled_from(["0", "0.001", "0.01", "0.25", "0.5", "0.999", "1", "0.1234"])
_TRADE_PRICE = st.sampled_from(["0.001", "0.3", "0.5", "0.75", "0.999"])
_SIZE = st.sampled_from(["0", "1", "12.5", "100000", "0.000001", "999999999999"])
_TOKEN = st.sampled_from([TOKEN_A, TOKEN_B, "1", "ú"])
_TS = st.integers(0, MAX_TS_MS).map(str) | st.integers(1_767_225_600_000, 1_767_225_700_000)
_SIDE = st.sampled_from(["BUY", "SELL"])
_HASH = st.text("0123456789abcdef", max_size=8)
_TICK = st.sampled_from(sorted(format_micro(t) for t in VALID_TICKS))


def _entry() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"asset_id": _TOKEN, "price": _PRICE, "size": _SIZE, "side": _SIDE},
        optional={"hash": _HASH, "best_bid": _PRICE | st.just(""), "best_ask": _PRICE | st.just("")},
    )


def _message() -> st.SearchStrategy[dict[str, Any]]:
    level = st.fixed_dictionaries({"price": _PRICE, "size": _SIZE})
    common = {"asset_id": _TOKEN, "market": st.just(MARKET), "timestamp": _TS}
    return st.one_of(
        st.fixed_dictionaries(
            {"event_type": st.just("book"), **common, "bids": st.lists(level, max_size=4),
             "asks": st.lists(level, max_size=4)},
            optional={"hash": _HASH, "tick_size": _TICK},
        ),
        st.fixed_dictionaries({"event_type": st.just("price_change"), "market": st.just(MARKET),
                               "timestamp": _TS, "price_changes": st.lists(_entry(), max_size=5)}),
        st.fixed_dictionaries({"event_type": st.just("last_trade_price"), **common, "price": _TRADE_PRICE,
                               "size": _SIZE, "side": _SIDE},
                              optional={"fee_rate_bps": st.integers(0, 9_999)}),
        st.fixed_dictionaries({"event_type": st.just("tick_size_change"), **common,
                               "old_tick_size": _TICK, "new_tick_size": _TICK}),
        st.fixed_dictionaries({"event_type": st.just("market_resolved"), "market": st.just(MARKET),
                               "timestamp": _TS, "winning_asset_id": _TOKEN}),
        st.fixed_dictionaries(
            {"event_type": st.just("external_signal"), "asset_id": _TOKEN, "timestamp": _TS,
             "source": st.text(min_size=1, max_size=5), "direction": st.sampled_from(["up", "down"]),
             "confidence": st.floats(0, 1), "ttl_ms": st.integers(1, MAX_TS_MS)},
            optional={"fair_price": _PRICE, "ref": st.text(max_size=5)},
        ),
    )  # fmt: skip


_LINE = st.one_of(
    _message().map(_wire),
    st.lists(_message(), min_size=1, max_size=3).map(_wire),
    # damaged lines: text of any kind, and valid messages with a character dropped
    st.text(max_size=20),
    _message().map(_wire).map(lambda s: s[: len(s) // 2]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, max_size=25))
def test_any_recording_reads_back_from_its_cache_as_parsed(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        _assert_cache_round_trips(path)


# -- whole backtests: report bytes cold, warm and uncached ----------------------------------------
def _backtest(folder: Path, out: Path, *extra: str) -> bytes:
    markets = [arg for path in market_files(folder) for arg in ("--markets", str(path))]
    labels = ["--labels", str(folder / "labels.jsonl")] if (folder / "labels.jsonl").exists() else []
    argv = ["backtest", *markets, "--events", str(folder / "events.jsonl"), *labels, "--out", str(out),
            "--no-progress", *extra]  # fmt: skip
    assert 0 == main(argv)
    return b"\0".join(
        (out / name).read_bytes() for name in ("report.json", "opportunities.jsonl", "malformed.jsonl")
    )


def _cold_warm_off(folder: Path, out: Path) -> list[bytes]:
    runs = []
    for name, extra in (("cold", ()), ("warm", ()), ("off", ("--no-cache",))):
        runs.append(_backtest(folder, out / name, *extra))
        statuses = json.loads((out / name / "timing.json").read_text())["event_cache"]
        assert {"cold": ["miss"], "warm": ["hit"], "off": ["off"]}[name] == statuses
    return runs


def test_the_sample_backtest_is_byte_identical_cold_warm_and_uncached(tmp_path: Path) -> None:
    data = tmp_path / "sample"
    # not the cache a `make demo` left beside the bundled sample: the first run here must parse
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("*.cache"))
    cold, warm, off = _cold_warm_off(data, tmp_path / "out")
    assert cold == warm == off
    golden = (GOLDEN / "report.json").read_bytes() + b"\0" + (GOLDEN / "opportunities.jsonl").read_bytes()
    assert cold.startswith(golden + b"\0")


def test_a_generated_backtest_is_byte_identical_cold_warm_and_uncached(tmp_path: Path) -> None:
    from polysnipe.tools.datagen import generate

    data = tmp_path / "gen"
    generate(data, seed=11, duration_s=240, malformed=5)
    cold, warm, off = _cold_warm_off(data, tmp_path / "out")
    assert cold == warm == off


# -- damaged, foreign, stale and unwritable caches -----------------------------------------------
@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes("\n".join(EVERY_FORM).encode("utf-8", "surrogatepass"))
    return path


def _cache_file(recording: Path) -> Path:
    [file] = list(cache_dir_of(recording).glob("*.cols"))
    return file


def _rewrite_header(file: Path, edit: Callable[[dict[str, Any], bytearray], None]) -> None:
    """Edit a cache's header and payload, then seal it again as the writer would (a matching hash)."""
    blob = file.read_bytes()
    head_len = int.from_bytes(blob[8:16], "little")
    header = json.loads(blob[16 : 16 + head_len])
    payload = bytearray(blob[16 + head_len :])
    edit(header, payload)
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    head = json.dumps(header).encode()
    head += b" " * (-(16 + len(head)) % 8)
    file.write_bytes(MAGIC + len(head).to_bytes(8, "little") + head + bytes(payload))


def _set_int(name: str, value: int) -> Callable[[dict[str, Any], bytearray], None]:
    def edit(header: dict[str, Any], payload: bytearray) -> None:
        [offset] = [off for col, _, count, off in header["columns"] if col == name and count > 0]
        payload[offset : offset + 8] = value.to_bytes(8, "little", signed=True)

    return edit


def _resealed(name: str, value: int) -> Callable[[Path], None]:
    return lambda f: _rewrite_header(f, _set_int(name, value))


def _first_deltas_to_second(header: dict[str, Any], payload: bytearray) -> None:
    [offset] = [off for col, _, _, off in header["columns"] if col == "PriceChange.changes"]
    first = int.from_bytes(payload[offset : offset + 8], "little")
    second = int.from_bytes(payload[offset + 8 : offset + 16], "little")
    payload[offset : offset + 16] = (0).to_bytes(8, "little") + (first + second).to_bytes(8, "little")


def _other_parser(header: dict[str, Any], payload: bytearray) -> None:
    header["parser"] = "0" * 16


#: each damages the cache file in place (what a write returns is of no interest)
DAMAGE: dict[str, Callable[[Path], object]] = {
    "truncated": lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]),
    "truncated in the header": lambda f: f.write_bytes(f.read_bytes()[:20]),
    "empty": lambda f: f.write_bytes(b""),
    "one byte flipped": lambda f: f.write_bytes(
        (lambda b: b[:-9] + bytes([b[-9] ^ 0x40]) + b[-8:])(f.read_bytes())
    ),
    "foreign bytes": lambda f: f.write_bytes(os.urandom(4096)),
    "a huge header length": lambda f: f.write_bytes(MAGIC + (1 << 62).to_bytes(8, "little") + b"{}"),
    "written by another parser": lambda f: _rewrite_header(f, _other_parser),
    "a price above 1 (resealed)": _resealed("PriceChange.changes.price", 2_000_000),
    "a negative size (resealed)": _resealed("BookSnapshot.bids.size", -5),
    "a timestamp past 2200 (resealed)": _resealed("LastTrade.ts_ms", MAX_TS_MS + 1),
    "a string index out of range (resealed)": _resealed("PriceChange.market", 10**6),
    "an unknown event kind (resealed)": _resealed("kind", 9),
    "a tick off the venue's grid (resealed)": _resealed("TickSizeChange.new_tick", 3),
    "a child count over the children (resealed)": _resealed("PriceChange.changes", 10**6),
    # the first price change's deltas handed to the second: the counts still add up
    "a price change without deltas (resealed)": lambda f: _rewrite_header(f, _first_deltas_to_second),
    "out of time order (resealed)": _resealed("LastTrade.ts_ms", MAX_TS_MS),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_damaged_or_foreign_cache_is_parsed_again_and_rewritten(recording: Path, damage: str) -> None:
    expected, _ = _load(load_events, recording)
    _load(load_events_cached, recording)
    DAMAGE[damage](_cache_file(recording))
    with capture_logs() as logs:
        got, status = _load(load_events_cached, recording)
    assert "miss" == status
    assert expected == got
    assert ["event_cache_invalid"] == [e["event"] for e in logs if e["log_level"] == "warning"]
    again, status = _load(load_events_cached, recording)
    assert ("hit", expected) == (status, again)


def test_a_changed_recording_misses_and_its_stale_cache_is_removed(recording: Path) -> None:
    _load(load_events_cached, recording)
    stale = _cache_file(recording)
    with recording.open("ab") as f:
        f.write(b"\n" + EVERY_FORM[5].encode())
    expected, _ = _load(load_events, recording)
    got, status = _load(load_events_cached, recording)
    assert ("miss", expected) == (status, got)
    assert stale != _cache_file(recording)
    assert not stale.exists()


def test_a_half_written_temporary_file_is_never_read(recording: Path) -> None:
    expected, _ = _load(load_events, recording)
    folder = cache_dir_of(recording)
    folder.mkdir()
    # what a writer that crashed mid-write leaves behind: never under a cache's own name
    (folder / ".tmp-crashed.part").write_bytes(MAGIC + b"\x10")
    got, status = _load(load_events_cached, recording)
    assert ("miss", expected) == (status, got)


def test_where_no_cache_can_be_written_the_run_goes_on_with_one_warning(recording: Path) -> None:
    expected, _ = _load(load_events, recording)
    # a file where the cache folder would go: mkdir fails as on a read-only file system, even as root
    cache_dir_of(recording).write_bytes(b"")
    for _ in range(2):
        with capture_logs() as logs:
            got, status = _load(load_events_cached, recording)
        assert ("unwritable", expected) == (status, got)
        assert ["event_cache_not_written"] == [e["event"] for e in logs if e["log_level"] == "warning"]


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for this process: by its mode, or for root (whom modes do not stop) by the
    immutable attribute, where the file system and the container allow it."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_a_read_only_directory_runs_uncached_with_one_warning(recording: Path) -> None:
    expected, _ = _load(load_events, recording)
    with _read_only(recording.parent):
        with capture_logs() as logs:
            got, status = _load(load_events_cached, recording)
        assert not cache_dir_of(recording).exists()
    assert ("unwritable", expected) == (status, got)
    assert ["event_cache_not_written"] == [e["event"] for e in logs if e["log_level"] == "warning"]
