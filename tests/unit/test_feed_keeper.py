"""BookKeeper's compiled common case (adapters/clob/_fastdecode FeedKeeper) against the Python keeper.

The compiled keeper runs BookKeeper._price_change's usual path itself and hands everything else to the
Python methods, so both keepers must agree on every stream: the events returned (same types, down to the
Side members), MalformedMessage reasons, gaps (take_gaps), checks, every book level and every field of
the per-token state. The reference keeper is made with the compiled decoder off (msgspec and the Python
methods alone, as under POLYSNIPE_PURE_PYTHON=1); either keeper's books may be DenseBooks or BookStates
(a BookState makes the compiled keeper hand every delta to Python). Hypothesis drives random streams:
tracked and unknown tokens, REST and wire snapshots, backwards timestamps, hash changes, sampled checks
due (hash_check_every small) with the hash inputs known, trade prints, invalidations, quiet books,
small buffers that overflow, and hostile frames; the recorded burst, whose hashes match, covers checks
that pass.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_compiled_book, require_compiled_decoder
from polysnipe.adapters.clob import parsing
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.market_data import BookKeeper, MarketDataConfig
from polysnipe.adapters.clob.parsing import RestBook
from polysnipe.core import book as core_book
from polysnipe.core.events import BookSnapshot, Level, PriceChange, Side

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKENS = [
    "71321045679252212594626385532706912750332728571942532289631379312455583992563",
    "52114319501245915516055106046884209969926127482827954674443846427813813222426",
    "1234567890123",
]
UNKNOWN = "99999999999999999999999999999999999999999999999999999999999999999999999999999"
MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
TS0 = 1_767_225_600_000
STATE = (
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


@pytest.fixture(scope="module")
def compiled() -> None:
    require_compiled_decoder()
    require_compiled_book()


@pytest.fixture(autouse=True)
def _restore_selection() -> Iterator[None]:
    yield
    parsing.use_pure_python(False)
    core_book.use_pure_python(False)


def _typed(value: Any) -> Any:
    """`value` with the type of every tuple and enum spelled out (NamedTuples equal plain tuples and
    Side.BUY equals 0, so equality alone would not notice a wrong type)."""
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(_typed(v) for v in value))
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _keeper(
    config: MarketDataConfig, *, compiled_keeper: bool, pure_books: bool, meta: list[bool]
) -> BookKeeper:
    parsing.use_pure_python(not compiled_keeper)
    core_book.use_pure_python(pure_books)
    try:
        k = BookKeeper(config)
        k.track(TOKENS, 0)
    finally:
        parsing.use_pure_python(False)
        core_book.use_pure_python(False)
    assert (_compiled_keeper(k) is not None) == compiled_keeper
    for token, known in zip(TOKENS, meta, strict=True):
        if known:
            k.set_market_meta(token, min_order_size="5", neg_risk=False)
    return k


def _compiled_keeper(k: BookKeeper) -> Any:
    """The compiled keeper whose on_frame `k.on_frame` is, or None when it is the Python one."""
    from polysnipe.adapters.clob._fastdecode import FeedKeeper

    owner = getattr(k.on_frame, "__self__", None)
    return owner if isinstance(owner, FeedKeeper) else None


def _view(k: BookKeeper) -> Any:
    """Everything the keeper holds that a rule could change."""
    tokens = {}
    for token_id in k.tokens():
        state = k._tokens[token_id]
        book = state.book
        tokens[token_id] = (
            [(lv.price, lv.size) for lv in book.levels(Side.BUY)],
            [(lv.price, lv.size) for lv in book.levels(Side.SELL)],
            book.trusted,
            book.last_ts_ms,
            book.tick_size,
            None if state.buffer is None else _typed(list(state.buffer)),
            {name: _typed(getattr(state, name)) for name in STATE},
        )
    return tokens, k.take_gaps(), k.checks, k.malformed


def _run(k: BookKeeper, op: tuple[Any, ...], recv_ms: int) -> Any:
    kind = op[0]
    if kind == "frame":
        try:
            return _typed(k.on_frame(op[1], recv_ms))
        except MalformedMessage as exc:
            k.malformed += 1
            return ("malformed", exc.reason)
    if kind == "rest":
        _, token, ts, bids, asks, ltp, min_size = op
        snap = BookSnapshot(ts, token, MARKET, bids, asks, "", 10_000)
        rest = RestBook(snap, min_size, None, None if min_size is None else False, ltp, False)
        return _typed(k.on_rest_book(rest, recv_ms))
    if kind == "invalidate":
        k.invalidate([op[1]], "reconnect")
        return None
    return k.quiet_tokens(recv_ms, op[1])


# -- streams -----------------------------------------------------------------------------------------
prices = st.sampled_from(
    ["0.01", "0.1", "0.25", "0.4", "0.45", "0.5", "0.55", "0.6", "0.99", "0.4567", "0.5"]
)
sizes = st.sampled_from(["0", "0", "1", "2.5", "10", "100", "1304.72"])
hashes = st.sampled_from(["", "h1", "h1", "h2", "h3", "bdba19ebabf100b0d5bc9f746b6cd23aadd763fa"])
tokens = st.sampled_from([*TOKENS, TOKENS[0], UNKNOWN])
stamps = st.integers(0, 40).map(lambda dt: str(TS0 + dt))


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "asset_id": draw(tokens),
        "price": draw(prices),
        "size": draw(sizes),
        "side": draw(st.sampled_from(["BUY", "SELL"])),
    }
    h = draw(hashes)
    if h:
        entry["hash"] = h
    if draw(st.booleans()):
        entry["best_bid"], entry["best_ask"] = "0.4", "0.6"
    return entry


price_changes = st.builds(
    lambda ts, changes: {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": ts,
        "price_changes": changes,
    },
    stamps,
    st.lists(entries(), min_size=0, max_size=6),
)
trades = st.builds(
    lambda token, ts, price, side: {
        "event_type": "last_trade_price",
        "asset_id": token,
        "market": MARKET,
        "timestamp": ts,
        "price": price,
        "size": "10",
        "side": side,
        "fee_rate_bps": "0",
    },
    tokens,
    stamps,
    st.sampled_from(["0.5", "0.50", "0.500", "0.45", "0.4567"]),
    st.sampled_from(["BUY", "SELL"]),
)
levels = st.lists(
    st.builds(lambda p, s: {"price": p, "size": s}, prices, sizes.filter(lambda s: s != "0")), max_size=3
)
#: what the keepers know of every token when `meta` says so (_keeper): a book hash made with these can
#: match
MIN_SIZE = "5"


def _summary_hash(doc: dict[str, Any], min_size: str = MIN_SIZE, neg_risk: bool = False) -> str:
    """The venue's hash of a book message, from its own strings (parsing.book_hash, the reference)."""
    return parsing.book_hash(
        doc["market"],
        doc["asset_id"],
        doc["timestamp"],
        [(lv["price"], lv["size"]) for lv in doc["bids"]],
        [(lv["price"], lv["size"]) for lv in doc["asks"]],
        min_order_size=min_size,
        tick_size=doc.get("tick_size"),
        neg_risk=neg_risk,
        last_trade_price=doc.get("last_trade_price"),
    )


#: a book field's absent, null, empty and usual values ("absent" drops the key)
ABSENT = "absent"


@st.composite
def wire_books(draw: st.DrawFn) -> dict[str, Any]:
    """A book message whose hash is the right one as often as not (then a check passes, if it is due:
    the compiled keeper's own hash), a wrong one, empty, null or absent; tick_size and
    last_trade_price present, empty, null or absent, so that checkable and not both come."""
    doc: dict[str, Any] = {
        "event_type": "book",
        "asset_id": draw(tokens),
        "market": MARKET,
        "timestamp": draw(stamps),
        "bids": draw(levels),
        "asks": draw(levels),
    }
    for key, values in (("tick_size", ["0.01", "0.001", None, ""]), ("last_trade_price", ["0.5", "", None])):
        value = draw(st.sampled_from([*values, values[0], ABSENT]))
        if value != ABSENT:
            doc[key] = value
    kind = draw(st.sampled_from(["right", "right", "wrong", "", None, ABSENT]))
    if kind == "right":
        doc["hash"] = _summary_hash(doc)
    elif kind == "wrong":
        doc["hash"] = draw(hashes.filter(bool))
    elif kind != ABSENT:
        doc["hash"] = kind
    if draw(st.booleans()):  # the venue's key order is not fixed
        doc = dict(draw(st.permutations(list(doc.items()))))
    return doc


messages = st.one_of(price_changes, price_changes, price_changes, trades, wire_books())


@st.composite
def frames(draw: st.DrawFn) -> tuple[str, bytes | str]:
    msgs = draw(st.lists(messages, min_size=1, max_size=4))
    doc: Any = msgs if len(msgs) > 1 or draw(st.booleans()) else msgs[0]
    text = json.dumps(doc, separators=(",", ":") if draw(st.booleans()) else None)
    hostile = draw(st.integers(0, 9))
    if hostile == 0:  # cut short
        text = text[: draw(st.integers(0, len(text)))]
    elif hostile == 1:  # a byte changed
        at = draw(st.integers(0, len(text) - 1))
        text = (
            text[:at]
            + draw(st.sampled_from(['"', "{", "]", "-", "9", "\\", "\x00", "é", ","]))
            + text[at + 1 :]
        )
    return ("frame", text.encode() if draw(st.booleans()) else text)


book_levels = st.lists(
    st.builds(Level, st.integers(1, 99).map(lambda p: p * 10_000), st.integers(1, 50_000_000)), max_size=3
)
rests = st.builds(
    lambda token, dt, bids, asks, ltp, min_size: (
        "rest",
        token,
        TS0 + dt,
        tuple(bids),
        tuple(asks),
        ltp,
        min_size,
    ),
    tokens,
    st.integers(0, 40),
    book_levels,
    book_levels,
    st.sampled_from([None, "", "0.5", "0.500"]),
    st.sampled_from([None, "5"]),
)
ops = st.one_of(
    frames(),
    frames(),
    frames(),
    frames(),
    rests,
    st.builds(lambda t: ("invalidate", t), tokens),
    st.builds(lambda q: ("quiet", q), st.integers(0, 30)),
)


@FUZZ
@given(
    stream=st.lists(ops, min_size=1, max_size=30),
    every=st.sampled_from([0, 1, 2, 3, 256]),
    buffered=st.integers(1, 6),
    meta=st.lists(st.booleans(), min_size=len(TOKENS), max_size=len(TOKENS)),
    ref_books=st.booleans(),
    fast_books=st.booleans(),
)
def test_random_streams_give_the_same_events_gaps_checks_and_books(
    compiled: None,
    stream: list[tuple[Any, ...]],
    every: int,
    buffered: int,
    meta: list[bool],
    ref_books: bool,
    fast_books: bool,
) -> None:
    config = MarketDataConfig(hash_check_every=every, max_buffered_deltas=buffered)
    ref = _keeper(config, compiled_keeper=False, pure_books=ref_books, meta=meta)
    fast = _keeper(config, compiled_keeper=True, pure_books=fast_books, meta=meta)
    # every book starts trusted, so most deltas take the compiled path
    for token in TOKENS:
        snap = BookSnapshot(
            TS0, token, MARKET, (Level(400_000, 5_000_000),), (Level(600_000, 5_000_000),), "", 10_000
        )
        for k in (ref, fast):
            k.on_rest_book(RestBook(snap, None, None, None, "0.5", False), 0)
    assert _view(ref) == _view(fast)
    for recv_ms, op in enumerate(stream, 1):
        assert _run(ref, op, recv_ms) == _run(fast, op, recv_ms), op
        assert _view(ref) == _view(fast), op


def test_the_compiled_keeper_takes_plain_frames_itself(compiled: None) -> None:
    """Without this the differential test would pass with every delta handed to Python."""
    k = _keeper(MarketDataConfig(), compiled_keeper=True, pure_books=False, meta=[False] * len(TOKENS))
    snap = BookSnapshot(TS0, TOKENS[0], MARKET, (), (), "", 10_000)
    k.on_rest_book(RestBook(snap, None, None, None, None, False), 0)
    handed: list[int] = []
    python = k._price_change

    def spy(event: Any, recv_ms: int, out: Any, start: int = 0) -> None:
        handed.append(start)
        python(event, recv_ms, out, start)

    from polysnipe.adapters.clob._fastdecode import FeedKeeper

    k.on_frame = FeedKeeper(k, k._tokens, type(k._tokens[TOKENS[0]]), 256, spy, k._decode_frame).on_frame
    entry = {"asset_id": TOKENS[0], "price": "0.4", "size": "3", "side": "BUY", "hash": "h1"}
    doc = {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": str(TS0 + 1),
        "price_changes": [entry],
    }
    (event,) = k.on_frame(json.dumps(doc), 7)
    assert type(event) is PriceChange
    assert [] == handed
    assert [(400_000, 3_000_000)] == [
        (lv.price, lv.size) for lv in k._tokens[TOKENS[0]].book.levels(Side.BUY)
    ]
    state = k._tokens[TOKENS[0]]
    assert (state.pending_hash, state.pending_ts, state.since_check, state.last_recv_ms) == (
        "h1",
        TS0 + 1,
        1,
        7,
    )
    # an unknown token is Python's: from its delta on
    doc["price_changes"] = [entry, {**entry, "asset_id": UNKNOWN}]
    doc["timestamp"] = str(TS0 + 2)
    k.on_frame(json.dumps(doc), 8)
    assert [1] == handed


def _burst(shared_data: Path) -> list[bytes]:
    path = shared_data / "polymarket" / "ws" / "nautilus_rs_ws_market_price_change_crossing_burst.json"
    return [json.dumps(m, separators=(",", ":")).encode() for m in json.loads(path.read_text())]


@pytest.mark.parametrize("every", [1, 2, 3, 10, 256])
def test_the_recorded_burst_checks_the_same_hashes(compiled: None, shared_data: Path, every: int) -> None:
    """Its hashes are the venue's, so the sampled checks pass: the path where a check due matches."""
    frames_ = _burst(shared_data)
    token = json.loads(frames_[0])["asset_id"]
    keepers = []
    for compiled_keeper in (False, True):
        parsing.use_pure_python(not compiled_keeper)
        k = BookKeeper(MarketDataConfig(hash_check_every=every))
        parsing.use_pure_python(False)
        k.track([token], 0)
        k.set_market_meta(token, min_order_size="5", neg_risk=False)
        keepers.append(k)
    ref, fast = keepers
    for recv_ms, f in enumerate(frames_[:-1]):
        assert _typed(ref.on_frame(f, recv_ms)) == _typed(fast.on_frame(f, recv_ms))
        assert _view(ref) == _view(fast)
    assert ref.checks > 0


# -- books and trade prints -----------------------------------------------------------------------------
def _spied(k: BookKeeper) -> list[str]:
    """Give `k` a compiled keeper whose hand-overs to Python are recorded: "delta" for a price change
    from a delta on, "message" for one message of a frame, "frame" for a frame whole."""
    from polysnipe.adapters.clob._fastdecode import FeedKeeper

    handed: list[str] = []
    by_delta, by_text = k._price_change, k._decode_frame
    frame: list[Any] = [None]

    def price_change(event: Any, recv_ms: int, out: Any, start: int = 0) -> None:
        handed.append("delta")
        by_delta(event, recv_ms, out, start)

    def text(data: bytes | str, recv_ms: int, out: Any) -> None:
        handed.append("frame" if data is frame[0] else "message")
        by_text(data, recv_ms, out)

    on_frame = FeedKeeper(k, k._tokens, type(k._tokens[TOKENS[0]]), 256, price_change, text).on_frame

    def spied(data: bytes | str, recv_ms: int) -> list[Any]:
        frame[0] = data
        return on_frame(data, recv_ms)

    k.on_frame = spied
    return handed


def _book_doc(ts: int = TS0 + 1, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_type": "book",
        "asset_id": TOKENS[0],
        "market": MARKET,
        "timestamp": str(ts),
        "bids": [{"price": "0.4", "size": "10"}, {"price": "0.45", "size": "2.5"}],
        "asks": [{"price": "0.6", "size": "100"}],
        "tick_size": "0.01",
        "last_trade_price": "0.5",
        **fields,
    }
    if "hash" not in fields:
        doc["hash"] = _summary_hash(doc)
    return doc


def _pair(meta: bool = True) -> tuple[BookKeeper, BookKeeper, list[str]]:
    """A Python keeper and a compiled one with spies, every token tracked, the hash inputs known."""
    ref = _keeper(MarketDataConfig(), compiled_keeper=False, pure_books=False, meta=[meta] * len(TOKENS))
    fast = _keeper(MarketDataConfig(), compiled_keeper=True, pure_books=False, meta=[meta] * len(TOKENS))
    return ref, fast, _spied(fast)


def _both(ref: BookKeeper, fast: BookKeeper, frame: bytes | str, recv_ms: int = 5) -> Any:
    out = _run(ref, ("frame", frame), recv_ms)
    assert out == _run(fast, ("frame", frame), recv_ms), frame
    assert _view(ref) == _view(fast), frame
    return out


def test_the_compiled_keeper_keeps_books_and_prints_itself(compiled: None) -> None:
    """Without this the differential tests would pass with every book and print handed to Python."""
    ref, fast, handed = _pair()
    # a checkable book whose hash matches: checked, applied and forwarded in C
    (snap,) = _both(ref, fast, json.dumps(_book_doc()))
    assert "BookSnapshot" == snap[0]
    assert [] == handed and 1 == fast.checks
    state = fast._tokens[TOKENS[0]]
    assert ("0.5", None, state.book.hash, TS0 + 1, 0, None) == (
        state.ltp,
        state.ltp_print,
        state.pending_hash,
        state.pending_ts,
        state.since_check,
        state.buffer,
    )
    assert [(400_000, 10_000_000), (450_000, 2_500_000)] == [
        (lv.price, lv.size) for lv in sorted(state.book.levels(Side.BUY))
    ]
    # a trade print: its price kept as sent, with the price its other spellings come from
    trade = {
        "event_type": "last_trade_price",
        "asset_id": TOKENS[0],
        "market": MARKET,
        "timestamp": str(TS0 + 2),
        "price": "0.50",
        "size": "10",
        "side": "BUY",
    }
    _both(ref, fast, json.dumps(trade).encode())
    assert [] == handed and ("0.50", 500_000) == (state.ltp, state.ltp_print)
    # a book that is not checkable (no tick), an older one, and one for a token not tracked
    _both(ref, fast, json.dumps(_book_doc(TS0 + 3, tick_size=None)))
    assert [] == _both(ref, fast, json.dumps(_book_doc(TS0)))
    assert [] == _both(ref, fast, json.dumps(_book_doc(asset_id=UNKNOWN)))
    assert [] == handed and 1 == fast.checks
    # a hash that does not match is Python's to report
    _both(ref, fast, json.dumps(_book_doc(TS0 + 4, hash="h1")))
    assert ["message"] == handed and 2 == fast.checks
    assert not state.book.trusted  # (the gap itself is compared, and taken, by _both's _view)
    # deltas buffered while untrusted are replayed by Python's _snapshot
    entry = {"asset_id": TOKENS[0], "price": "0.4", "size": "3", "side": "BUY", "hash": "h9"}
    pc = {"event_type": "price_change", "market": MARKET, "timestamp": str(TS0 + 6), "price_changes": [entry]}
    assert [] == _both(ref, fast, json.dumps(pc))
    handed.clear()
    events = _both(ref, fast, json.dumps([_book_doc(TS0 + 5), trade]))
    assert ["BookSnapshot", "PriceChange", "LastTrade"] == [e[0] for e in events]
    assert ["message"] == handed


@FUZZ
@given(
    doc=wire_books(),
    min_size=st.sampled_from(["5", "0.001", "15", "", "x y~\x7f"]),
    neg_risk=st.booleans(),
    indent=st.sampled_from([None, None, 0, 1, "\t"]),
    compact=st.booleans(),
)
def test_book_hashes_computed_in_c_are_book_hash(
    compiled: None, doc: dict[str, Any], min_size: str, neg_risk: bool, indent: Any, compact: bool
) -> None:
    """The compiled keeper's book summary is parsing.book_hash's, whatever the message's key order,
    level key order and whitespace: a right hash is checked in C (never handed over), a wrong one is
    handed to Python, which counts the check and reports the gap."""
    doc = {**doc, "asset_id": TOKENS[0], "tick_size": doc.get("tick_size") or "0.01"}
    doc["last_trade_price"] = doc.get("last_trade_price") or "0.5"
    doc["bids"] = [dict(reversed(lv.items())) if i % 2 else lv for i, lv in enumerate(doc["bids"])]
    right = _summary_hash(doc, min_size, neg_risk)
    for claimed in (right, right[::-1]):
        ref, fast, handed = _pair(meta=False)
        for k in (ref, fast):
            k.set_market_meta(TOKENS[0], min_order_size=min_size, neg_risk=neg_risk)
        text = json.dumps({**doc, "hash": claimed}, indent=indent, separators=(",", ":") if compact else None)
        _both(ref, fast, text)
        assert 1 == fast.checks
        assert ([] if claimed == right else ["message"]) == handed


def test_hash_inputs_the_compiled_keeper_does_not_spell_go_to_python(compiled: None) -> None:
    """A min_order_size json.dumps would escape, or a neg_risk that is not a bool: Python's check."""
    for min_size, neg_risk in (('5"', False), ("5\\", True), ("é", False), ("\n", True), ("5", 1)):
        ref, fast, handed = _pair(meta=False)
        for k in (ref, fast):
            k.set_market_meta(TOKENS[0], min_order_size=min_size, neg_risk=neg_risk)  # type: ignore[arg-type]
        doc = _book_doc()
        doc["hash"] = _summary_hash(doc, min_size, neg_risk)  # type: ignore[arg-type]
        _both(ref, fast, json.dumps(doc))
        assert ["message"] == handed and 1 == fast.checks == ref.checks


# -- hostile frames --------------------------------------------------------------------------------------
HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            "9" * 400,
            "1" + "0" * 30,
            "0." + "0" * 30 + "1",
            "0.5000001",
            "-0",
            "-0.5",
            "1e3",
            "0x10",
            " 0.5",
            "0.5 ",
            "\u0661\u0662",
            "\uff10.5",
            "0\u00b75",
            "0.5\x00",
            "",
            "BUY",
            "SELL",
            "buy",
            "9" * 14,
            "1767225600000",
        ]
    ),
    st.sampled_from([None, True, 0, 1e999, -1, 10**30, 0.5, [], {}, ["0.5"], {"price": "0.5"}]),
    st.text(max_size=20),
)
#: a fresh copy each time: the lists and dicts above must not be shared between messages
HOSTILE = HOSTILE_VALUES.map(copy.deepcopy)


@st.composite
def hostile_frames(draw: st.DrawFn) -> bytes | str:
    """Books, trade prints and price changes (alone or in arrays) with a field, a level field or a
    key made hostile: huge numbers, non-ASCII digits, wrong types, control bytes; then perhaps cut."""
    msgs = draw(st.lists(st.one_of(wire_books(), trades, price_changes), min_size=1, max_size=3))
    for _ in range(draw(st.integers(1, 3))):
        msg = msgs[draw(st.integers(0, len(msgs) - 1))]
        where = draw(st.sampled_from(["top", "level", "entry", "drop"]))
        if where == "top":
            msg[draw(st.sampled_from([*sorted(msg), "hash", "tick_size", "neg_risk", "min_order_size"]))] = (
                draw(HOSTILE)
            )
        elif (
            where == "level"
            and isinstance(msg.get("bids"), list)
            and msg["bids"]
            and isinstance(msg["bids"][0], dict)
        ):
            msg["bids"][0][draw(st.sampled_from(["price", "size", "x"]))] = draw(HOSTILE)
        elif (
            where == "entry"
            and isinstance(msg.get("price_changes"), list)
            and msg["price_changes"]
            and isinstance(msg["price_changes"][0], dict)
        ):
            msg["price_changes"][0][
                draw(st.sampled_from(["price", "size", "side", "asset_id", "best_bid"]))
            ] = draw(HOSTILE)
        elif msg:
            msg.pop(draw(st.sampled_from(sorted(msg))))
    doc: Any = msgs if len(msgs) > 1 else msgs[0]
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), separators=(",", ":"))
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text


@FUZZ
@given(frames_=st.lists(hostile_frames(), min_size=1, max_size=6))
def test_hostile_frames_give_the_same_events_errors_and_books(
    compiled: None, frames_: list[bytes | str]
) -> None:
    """Whatever the bytes, the compiled keeper never crashes and agrees with the Python keeper on every
    event, MalformedMessage reason, gap, check and book level."""
    ref, fast, _ = _pair()
    for token in TOKENS:
        snap = BookSnapshot(TS0, token, MARKET, (Level(400_000, 5_000_000),), (), "", 10_000)
        for k in (ref, fast):
            k.on_rest_book(RestBook(snap, None, None, None, "0.5", False), 0)
    for recv_ms, frame in enumerate(frames_, 1):
        _both(ref, fast, frame, recv_ms)


def test_on_frame_arguments_and_other_buffers(compiled: None) -> None:
    on_frame = _keeper(MarketDataConfig(), compiled_keeper=True, pure_books=False, meta=[False] * 3).on_frame
    bad_args: list[tuple[Any, ...]] = [(), (b"{}",), (b"{}", 1, [])]
    for bad in bad_args:
        with pytest.raises(TypeError):
            on_frame(*bad)
    # what the decoder does not take (other buffers, non-ASCII text) goes whole to Python
    ref, fast, handed = _pair()
    text = json.dumps(_book_doc())
    for data in (bytearray(text.encode()), memoryview(text.encode()), text.replace("book", "bo\u00f6k")):
        assert _typed(ref.on_frame(data, 1)) == _typed(fast.on_frame(data, 1))  # type: ignore[arg-type]
        assert _view(ref) == _view(fast)
    assert ["frame"] * 3 == handed
