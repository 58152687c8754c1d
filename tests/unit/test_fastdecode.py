"""The compiled fast path (adapters/clob/_fastdecode) against the msgspec path it shortcuts: plain
price_change, last_trade_price and book frames.

The fast path is a strict subset: on any frame it does not fully understand it answers None and
parse_market_line decodes with msgspec. So every frame, taken or not, must give the same events (same
types, down to the Side members) or the same MalformedMessage reason with the fast path on and off.
Hypothesis feeds both real frames (the venue recordings, the bundled sample, a generated set) and
their mutations: byte edits, hostile field values, unknown, missing and duplicate keys, escapes,
whitespace, arrays, and random JSON. A last group checks the fast path does take the common frames.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_compiled_decoder, require_shared_data
from polysnipe.adapters.clob import parsing
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.market_data import BookKeeper, MarketDataConfig
from polysnipe.adapters.clob.parsing import RestBook, parse_market_line
from polysnipe.core.events import BookDelta, BookSnapshot, Event, LastTrade, Level, PriceChange, Side
from polysnipe.runners.cli import main
from polysnipe.runners.implementation import PURE_PYTHON_ENV, select_decoder
from polysnipe.tools.datagen import generate

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = Path(__file__).parents[2] / "data" / "sample" / "events.jsonl"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
MKT = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"


@pytest.fixture(scope="module")
def compiled() -> None:
    require_compiled_decoder()


@pytest.fixture(autouse=True)
def _restore_selection() -> Iterator[None]:
    yield
    parsing.use_pure_python(False)


# -- the two paths -----------------------------------------------------------------------------------
def _typed(value: Any) -> Any:
    """`value` with the type of every tuple and enum spelled out: NamedTuples compare as plain tuples
    and Side.BUY equals 0, so equality alone would not notice a wrong type."""
    if isinstance(value, tuple):
        return (type(value).__name__, tuple(_typed(v) for v in value))
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _outcome(data: Any, *, pure: bool) -> Any:
    parsing.use_pure_python(pure)
    try:
        return _typed(parse_market_line(data))
    except MalformedMessage as exc:
        return ("malformed", exc.reason)
    finally:
        parsing.use_pure_python(False)


def _same(data: Any) -> Any:
    fast = _outcome(data, pure=False)
    assert _outcome(data, pure=True) == fast
    return fast


def _taken(data: Any) -> bool:
    """Does parse_market_line's compiled path decode `data` itself?"""
    fast = parsing._fast_decode
    assert fast is not None
    return fast(data) is not None


#: the message types the fast path maps (a price_change only in its current form)
FAST_TYPES = ("price_change", "last_trade_price", "book")


def _fast_shape(doc: Any) -> bool:
    """Is this decoded JSON a frame of only messages of the types the fast path maps?"""
    msgs = doc if isinstance(doc, list) and doc else [doc]
    return all(
        isinstance(m, dict)
        and m.get("event_type") in FAST_TYPES
        and (m["event_type"] != "price_change" or "price_changes" in m)
        for m in msgs
    )


# -- real frames -----------------------------------------------------------------------------------
def _recorded() -> list[bytes]:
    ws = require_shared_data() / "polymarket" / "ws"
    return [p.read_bytes() for p in sorted(ws.glob("*.json"))]


def _sample_lines() -> list[bytes]:
    return [line.strip() for line in SAMPLE.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = tmp_path_factory.mktemp("gen")
    generate(out, seed=5, duration_s=60)
    return [line for line in (out / "events.jsonl").read_bytes().splitlines() if line.strip()]


# A handful of short real price_change frames to mutate (short keeps each hypothesis example cheap).
_SEEDS = [line for line in _sample_lines() if b'"price_changes"' in line and len(line) < 900][:40]
# and short real trade prints, arrays mixing them with price changes, and books
_OTHER_SEEDS = (
    [line for line in _sample_lines() if line.startswith(b'{"asset_id"') and b"last_trade_price" in line][:10]
    + [line for line in _sample_lines() if line.startswith(b"[") and b"last_trade_price" in line][:10]
    + sorted((line for line in _sample_lines() if b'"bids"' in line), key=len)[:10]
)


def _pc_doc() -> dict[str, Any]:
    return {
        "event_type": "price_change",
        "market": MKT,
        "price_changes": [
            {
                "asset_id": TOKEN,
                "price": "0.51",
                "size": "150.0",
                "side": "BUY",
                "hash": "0xhash001",
                "best_bid": "0.51",
                "best_ask": "0.52",
            }
        ],
        "timestamp": "1703875201000",
    }


def _lt_doc() -> dict[str, Any]:
    return {
        "asset_id": TOKEN,
        "event_type": "last_trade_price",
        "fee_rate_bps": "400",
        "market": MKT,
        "price": "0.3",
        "side": "BUY",
        "size": "54.28",
        "timestamp": "1767225601468",
        "transaction_hash": "0xf1bf55edb6143f78ea16b18fc17a4f81de27a24ee134f9f810e1fec9aa069dd3",
    }


def _book_doc() -> dict[str, Any]:
    return {
        "market": MKT,
        "asset_id": TOKEN,
        "timestamp": "1767225600000",
        "hash": "8a6a63ec24ede6a46b4cb2424a23d5962217bead",
        "bids": [{"price": "0.353", "size": "1281.94"}, {"price": ".36", "size": "0"}],
        "asks": [{"price": "0.999", "size": "10500100"}],
        "event_type": "book",
        "tick_size": "0.001",
        "last_trade_price": "0.36",
    }


#: each fast-path message type's model document, its top-level keys, and its nested objects' keys
DOCS = {"price_change": _pc_doc, "last_trade_price": _lt_doc, "book": _book_doc}
LT_KEYS = sorted(_lt_doc())
BOOK_KEYS = sorted(_book_doc())
LEVEL_KEYS = ["price", "size"]


def test_recorded_frames_equal_on_both_paths(compiled: None) -> None:
    frames = _recorded()
    for frame in frames:
        _same(frame)
    # the recordings of the types it maps (pretty-printed, so whitespace is handled) take the fast
    # path, those without an event_type do not
    taken = [json.loads(f) for f in frames if _taken(f)]
    kinds = sorted(m["event_type"] for doc in taken for m in (doc if isinstance(doc, list) else [doc]))
    assert len(taken) >= 4
    assert {"price_change", "last_trade_price", "book"} == set(kinds)
    assert all(_fast_shape(doc) for doc in taken)


def test_sample_and_generated_lines_equal_on_both_paths(compiled: None, generated: list[bytes]) -> None:
    for line in _sample_lines() + generated:
        _same(line)
        _same(line.decode())


def test_the_fast_path_takes_the_common_frames(
    compiled: None, generated: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plain price_change, last_trade_price and book line of the sample and of a generated set,
    and every array of them, is decoded by the compiled path, counted at the hook parse_market_line
    calls."""
    fast = parsing._fast_decode
    assert fast is not None
    hits = [0]

    def counting(data: Any) -> list[Event] | None:
        events = fast(data)
        hits[0] += events is not None
        return events

    monkeypatch.setattr(parsing, "_fast_decode", counting)
    lines = _sample_lines() + generated
    expected = 0
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # the generator's planted malformed lines
        expected += _fast_shape(doc)
    for line in lines:
        with contextlib.suppress(MalformedMessage):
            parse_market_line(line)
    assert expected > 1_000
    assert expected == hits[0]
    # the sample's arrays that mix price changes and trade prints (392 of them) are among them
    mixed = [line for line in _sample_lines() if line.startswith(b"[") and b"last_trade_price" in line]
    assert len(mixed) > 300
    assert all(_taken(line) for line in mixed)


def test_every_prefix_and_every_single_byte_deletion(compiled: None) -> None:
    frame = json.dumps(_pc_doc()).encode()
    for i in range(len(frame) + 1):
        _same(frame[:i])
        _same(frame[:i] + frame[i + 1 :])


def test_input_types(compiled: None) -> None:
    frame = json.dumps(_pc_doc()).encode()
    expected = _same(frame)
    for data in (frame.decode(), bytearray(frame), memoryview(frame), memoryview(frame)[::2]):
        _same(data)
    assert _outcome(frame.decode(), pure=False) == expected
    assert _taken(frame.decode())
    # a str with non-ASCII text is msgspec's, as is everything that is not bytes or str
    doc = _pc_doc()
    doc["market"] = "é"
    assert not _taken(json.dumps(doc, ensure_ascii=False))
    assert not _taken(bytearray(frame))


def test_values_convert_as_the_python_path_does(compiled: None) -> None:
    doc = _pc_doc()
    doc["price_changes"] = [
        {"asset_id": TOKEN, "price": ".5", "size": "0", "side": "SELL"},
        {
            "asset_id": "",
            "price": "-0",
            "size": "1000000000000",
            "side": "BUY",
            "best_bid": None,
            "best_ask": "",
        },
        {"asset_id": TOKEN, "price": "1.0000000000", "size": "0.000001", "side": "BUY", "hash": ""},
    ]
    doc["timestamp"] = "0000000000042"
    frame = json.dumps(doc).encode()
    assert _taken(frame)
    assert _same(frame) == _typed(
        [
            PriceChange(
                42,
                MKT,
                (
                    BookDelta(TOKEN, Side.SELL, 500_000, 0, "", None, None),
                    BookDelta("", Side.BUY, 0, 10**18, "", None, None),
                    BookDelta(TOKEN, Side.BUY, 1_000_000, 1, "", None, None),
                ),
            )
        ]
    )


def test_many_distinct_ids(compiled: None) -> None:
    """Token and market ids are shared through a small table of the decoder's: thousands of distinct
    ids, colliding in it, and ids that differ only in the middle, still come out as sent."""
    rng = random.Random(3)
    ids = [str(rng.getrandbits(256)) for _ in range(3_000)]
    ids += [f"{TOKEN[:30]}{i:018d}{TOKEN[48:]}" for i in range(500)]
    ids += ["x" * n for n in (0, 1, 7, 8, 9, 127, 128, 129, 100_000)]
    for i in range(0, len(ids), 3):
        doc = _pc_doc()
        doc["market"] = ids[-1 - i]
        doc["price_changes"] = [{**doc["price_changes"][0], "asset_id": t} for t in ids[i : i + 3]]
        events = parsing._fast_decode(json.dumps(doc)) if parsing._fast_decode else None
        assert events is not None
        assert all(type(e) is PriceChange for e in events)
        changes = cast(list[PriceChange], events)  # every one a PriceChange, as just checked
        assert [ids[-1 - i]] == [e.market for e in changes]
        assert ids[i : i + 3] == [d.token_id for d in changes[0].changes]
        _same(json.dumps(doc))


def test_empty_price_changes_and_arrays(compiled: None) -> None:
    doc = _pc_doc()
    one = json.dumps(doc)
    assert _taken(f"[{one}, {one}]") and len(_same(f"[{one},\n{one}]")) == 2
    doc["price_changes"] = []
    assert _taken(json.dumps(doc)) and _same(json.dumps(doc)) == []
    for frame in ("[]", f"[{one},]", f"[{one}", f"{one} x", f"[{one}] {one}"):
        assert not _taken(frame)
        _same(frame)


# -- mutations -----------------------------------------------------------------------------------------
#: edge spellings of every field that the Python path accepts or refuses, and other JSON types
EDGE_VALUES: list[Any] = [
    *["", "0", "-0", "-0.0", "-.0", "-0.", "-", "--0", ".", "0.", ".0", "1", "1.", "1.0", "1.000001"],
    *["0.9999999", "0.1234560", "0.1234567", "0.5.5", "-0.5", "-1", "+0.5", " 0.5", "0.5 ", "1e-3"],
    *["0x1", "0_5", "١", "０.5", "0" * 24 + "1", "0" * 25 + "1", "0" * 25 + ".5", "0" * 24 + ".5"],
    *["1000000000000", "1000000000000.000001", "999999999999.999999", "1000000000001", "9" * 30],
    *["0." + "0" * 300, "0.5" + "0" * 300 + "1", "1.0000000", "1.0000001", "0.000001", "0.0000001"],
    *["BUY", "SELL", "buy", "BUY ", "price_change", "book", "last_trade_price", "Price_change"],
    *["1703875201000", "7258118399999", "7258118400000", "17038752010000", "00000000000001", "0" * 13],
    *["1", "0", "123456789012", "-1703875201000", "1703875201000.0", "1.7e12", "\x7f", "a\x00b"],
    *["\\u0030", "é", 'a"b', "x\\ny", "\t", "0xhash001", TOKEN, MKT],
    *["0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025", "0.002", "0.01000000", "1e-2", ".01"],
    *["400", "9999", "10000", "09999", "0400", "00000", "-1", "4.0", "1000000", "0.999999"],
    *[0, 1, -1, 1703875201000, 2**64, 0.5, 1e300, None, True, False, [], {}, ["0.5"], {"a": "b"}],
]
HOSTILE_VALUES = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.from_regex(r"-?[0-9]{0,26}(\.[0-9]{0,9})?", fullmatch=True),
    st.text(alphabet="0123456789.-+e ", max_size=30),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([None, True, False, [], {}, [1], {"a": "b"}]),
)
TOP_KEYS = ["event_type", "market", "timestamp", "price_changes"]
ENTRY_KEYS = ["asset_id", "price", "size", "side", "hash", "best_bid", "best_ask"]
OTHER_KEYS = st.sampled_from(
    ["asset_id", "changes", "price", "bids", "hash", "extra", "Market", "event_type "]
)


def test_every_field_with_every_edge_value(compiled: None) -> None:
    for key in TOP_KEYS + ENTRY_KEYS:
        for value in EDGE_VALUES:
            doc = _pc_doc()
            (doc if key in TOP_KEYS else doc["price_changes"][0])[key] = value
            _same(json.dumps(doc))
            _same(json.dumps(doc, ensure_ascii=False).encode())


def test_missing_duplicate_and_unknown_keys(compiled: None) -> None:
    text = json.dumps(_pc_doc())
    assert _taken(text)
    for key in TOP_KEYS + ENTRY_KEYS:
        doc = _pc_doc()
        target = doc if key in TOP_KEYS else doc["price_changes"][0]
        value = target.pop(key)
        _same(json.dumps(doc))
        assert _taken(json.dumps(doc)) == (key in ("hash", "best_bid", "best_ask"))
        for twin in (value, "0.5", "SELL", "1"):
            at = text.index(f'"{key}"')
            doubled = f'{text[:at]}"{key}": {json.dumps(twin)}, {text[at:]}'
            assert not _taken(doubled)
            _same(doubled)
        target[key] = value
        target["extra"] = "x"
        assert not _taken(json.dumps(doc))
        _same(json.dumps(doc))


def test_whitespace_between_tokens(compiled: None) -> None:
    compact = _same(json.dumps(_pc_doc(), separators=(",", ":")))
    for indent in (0, 1, "\t", "\r\n", " \n\t\r"):
        text = json.dumps(_pc_doc(), indent=indent)
        assert _taken(text) and _same(f" \n{text}\r\n\t ") == compact
    for odd in ("\x0b", "\x0c", "\xa0", "\u2028"):  # not JSON whitespace
        text = json.dumps(_pc_doc(), indent=odd)
        assert not _taken(text)
        _same(text)


@st.composite
def mutated_docs(draw: st.DrawFn) -> str:
    doc = json.loads(draw(st.sampled_from(_SEEDS))) if draw(st.booleans()) else _pc_doc()
    entries = doc["price_changes"]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        what = draw(st.sampled_from(["top", "entry", "drop", "add", "entries"]))
        if what == "top":
            doc[draw(st.sampled_from(TOP_KEYS))] = draw(HOSTILE_VALUES)
        elif what == "entry" and entries:
            entry = entries[draw(st.integers(0, len(entries) - 1))]
            if isinstance(entry, dict):
                entry[draw(st.sampled_from(ENTRY_KEYS))] = draw(HOSTILE_VALUES)
        elif what == "drop":
            target = doc if draw(st.booleans()) or not entries else entries[0]
            if isinstance(target, dict) and target:
                target.pop(draw(st.sampled_from(sorted(target))))
        elif what == "add":
            target = doc if draw(st.booleans()) or not entries else entries[0]
            if isinstance(target, dict):
                target[draw(OTHER_KEYS)] = draw(HOSTILE_VALUES)
        elif isinstance(entries, list):
            entries.append(draw(st.sampled_from([{}, [], "x", None, dict(_pc_doc()["price_changes"][0])])))
    indent = draw(st.sampled_from([None, None, 0, 2, "\t", " \r\n"]))
    text = json.dumps(doc, indent=indent, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        # a key twice: msgspec keeps one of them; the fast path must not guess which
        key = draw(st.sampled_from(TOP_KEYS + ENTRY_KEYS))
        value = json.dumps(draw(HOSTILE_VALUES))
        at = text.find(f'"{key}"')
        if at >= 0:
            text = f'{text[:at]}"{key}": {value}, {text[at:]}'
    if draw(st.booleans()):
        text = "[" + ",".join([text] * draw(st.integers(1, 3))) + "]"
    return text


@FUZZ
@given(text=mutated_docs(), as_bytes=st.booleans())
def test_mutated_documents_equal_on_both_paths(compiled: None, text: str, as_bytes: bool) -> None:
    _same(text.encode("utf-8", "surrogatepass") if as_bytes else text)


@st.composite
def byte_edits(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS + _OTHER_SEEDS)))
    special = st.sampled_from([*b'"\\{}[],:-.0123456789 \t\n\r\x00\x7f\xc3\xa9\xff\x80'])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "dup", "cut"]))
        byte = draw(st.one_of(special, st.integers(0, 255)))
        if op == "insert":
            data.insert(at, byte)
        elif op == "replace" and at < len(data):
            data[at] = byte
        elif op == "delete" and at < len(data):
            del data[at]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
        elif op == "cut":
            del data[at:]
    return bytes(data)


@FUZZ
@given(data=byte_edits())
def test_byte_mutations_equal_on_both_paths(compiled: None, data: bytes) -> None:
    _same(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(TOP_KEYS + ENTRY_KEYS + LT_KEYS + BOOK_KEYS), inner)
    ),
    max_leaves=20,
)


@FUZZ
@given(value=JSON)
def test_random_json_equal_on_both_paths(compiled: None, value: Any) -> None:
    _same(json.dumps(value))


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_equal_on_both_paths(compiled: None, data: bytes) -> None:
    _same(data)
    _same(b'{"event_type":"price_change","price_changes":[' + data)


# -- trade prints and books ---------------------------------------------------------------------------
def test_trade_prints_and_books_convert_as_the_python_path_does(compiled: None) -> None:
    trade, book = _lt_doc(), _book_doc()
    expected_trade = LastTrade(1767225601468, TOKEN, MKT, 300_000, 54_280_000, Side.BUY, 400)
    expected_book = BookSnapshot(
        1767225600000,
        TOKEN,
        MKT,
        (Level(353_000, 1_281_940_000), Level(360_000, 0)),
        (Level(999_000, 10_500_100_000_000),),
        "8a6a63ec24ede6a46b4cb2424a23d5962217bead",
        1_000,
    )
    for doc, expected in ((trade, expected_trade), (book, expected_book)):
        assert _taken(json.dumps(doc))
        assert _typed([expected]) == _same(json.dumps(doc))
    # optional fields absent, null or empty: the defaults the Python path gives
    for fee in (None, ""):
        doc = {**trade, "fee_rate_bps": fee, "transaction_hash": None}
        assert _taken(json.dumps(doc))
        assert _typed([expected_trade._replace(fee_rate_bps=0)]) == _same(json.dumps(doc))
    bare = {k: v for k, v in trade.items() if k not in ("fee_rate_bps", "transaction_hash")}
    assert _taken(json.dumps(bare)) and _typed([expected_trade._replace(fee_rate_bps=0)]) == _same(
        json.dumps(bare)
    )
    for tick in (None, ""):
        doc = {**book, "tick_size": tick, "hash": None, "last_trade_price": None, "bids": []}
        assert _taken(json.dumps(doc))
        assert _typed([expected_book._replace(tick_size=None, hash="", bids=())]) == _same(json.dumps(doc))
    bare = {k: v for k, v in book.items() if k not in ("tick_size", "hash", "last_trade_price")}
    assert _taken(json.dumps(bare))
    assert _typed([expected_book._replace(tick_size=None, hash="")]) == _same(json.dumps(bare))
    # trade prices strictly inside (0, 1), every venue tick, and what is not a tick
    for price in ("0", "-0", "1", "1.0", "0.000001", "0.999999"):
        _same(json.dumps({**trade, "price": price}))
    assert not _taken(json.dumps({**trade, "price": "0"}))
    for tick in ("0.1", "0.01", "0.001", "0.0001", "0.005", "0.0025", "0.002", "1", "0"):
        _same(json.dumps({**book, "tick_size": tick}))


def test_mixed_arrays(compiled: None) -> None:
    docs = [_pc_doc(), _lt_doc(), _book_doc(), _lt_doc()]
    frame = json.dumps(docs)
    assert _taken(frame)
    assert ["PriceChange", "LastTrade", "BookSnapshot", "LastTrade"] == [e[0] for e in _same(frame)]
    # the live feed's keeper takes the same frames (tests/unit/test_feed_keeper.py holds it to the
    # Python keeper)
    assert _keeper_takes(frame.encode())
    # one message outside the subset sends the whole frame to msgspec
    odd: object
    for odd in ({**_lt_doc(), "event_type": "tick_size_change"}, {**_lt_doc(), "price": "2"}, {}, [], "x"):
        text = json.dumps([*docs, odd])
        assert not _taken(text)
        _same(text)


def test_trade_and_book_fields_with_every_edge_value(compiled: None) -> None:
    for make, keys in ((_lt_doc, LT_KEYS), (_book_doc, BOOK_KEYS)):
        for key in keys:
            for value in EDGE_VALUES:
                doc = make()
                doc[key] = value
                _same(json.dumps(doc))
                _same(json.dumps(doc, ensure_ascii=False).encode())
    for side in ("bids", "asks"):
        for key in LEVEL_KEYS:
            for value in EDGE_VALUES:
                doc = _book_doc()
                doc[side][0][key] = value
                _same(json.dumps(doc))


def test_trade_and_book_missing_duplicate_and_unknown_keys(compiled: None) -> None:
    optional = {"fee_rate_bps", "transaction_hash", "hash", "tick_size", "last_trade_price"}
    for make, keys in ((_lt_doc, LT_KEYS), (_book_doc, BOOK_KEYS)):
        text = json.dumps(make())
        assert _taken(text)
        for key in keys:
            doc = make()
            value = doc.pop(key)
            _same(json.dumps(doc))
            assert _taken(json.dumps(doc)) == (key in optional)
            for twin in (value, "0.5", "SELL", "1", None):
                at = text.index(f'"{key}"')
                doubled = f'{text[:at]}"{key}": {json.dumps(twin)}, {text[at:]}'
                assert not _taken(doubled)
                _same(doubled)
            # another type's keys are not this type's
            for extra in ("extra", "price_changes", "bids", "price", "min_order_size", "neg_risk", "changes"):
                if extra not in keys:
                    doc = {**make(), extra: value}
                    assert not _taken(json.dumps(doc))
                    _same(json.dumps(doc))
    for level in ({"price": "0.5"}, {"size": "1"}, {"price": "0.5", "size": "1", "x": "1"}, {}):
        doc = _book_doc()
        doc["asks"] = [level]
        assert not _taken(json.dumps(doc))
        _same(json.dumps(doc))
    text = json.dumps(_book_doc())
    doubled = text.replace('"size": "0"', '"size": "0", "size": "1"')
    assert not _taken(doubled)
    _same(doubled)


@st.composite
def mutated_other_docs(draw: st.DrawFn) -> str:
    """Trade prints, books and arrays of them (with price changes), mutated."""
    if draw(st.booleans()):
        doc = json.loads(draw(st.sampled_from(_OTHER_SEEDS)))
    else:
        doc = [DOCS[kind]() for kind in draw(st.lists(st.sampled_from(FAST_TYPES), min_size=1, max_size=3))]
    msgs = doc if isinstance(doc, list) else [doc]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        msg = msgs[draw(st.integers(0, len(msgs) - 1))]
        if not isinstance(msg, dict):
            continue
        what = draw(st.sampled_from(["top", "level", "drop", "add", "type"]))
        levels = msg.get(draw(st.sampled_from(["bids", "asks"])))
        if what == "top":
            msg[draw(st.sampled_from(LT_KEYS + BOOK_KEYS))] = draw(HOSTILE_VALUES)
        elif what == "level" and isinstance(levels, list) and levels and isinstance(levels[0], dict):
            levels[0][draw(st.sampled_from(LEVEL_KEYS))] = draw(HOSTILE_VALUES)
        elif what == "drop" and msg:
            msg.pop(draw(st.sampled_from(sorted(msg))))
        elif what == "add":
            msg[draw(st.sampled_from([*TOP_KEYS, *LT_KEYS, *BOOK_KEYS, "extra", "neg_risk"]))] = draw(
                HOSTILE_VALUES
            )
        else:
            msg["event_type"] = draw(st.sampled_from([*FAST_TYPES, "tick_size_change", "best_bid_ask"]))
    text = json.dumps(
        doc, indent=draw(st.sampled_from([None, None, 0, 2, "\t"])), ensure_ascii=draw(st.booleans())
    )
    if draw(st.booleans()):
        key = draw(st.sampled_from(LT_KEYS + BOOK_KEYS + LEVEL_KEYS))
        at = text.find(f'"{key}"')
        if at >= 0:
            text = f'{text[:at]}"{key}": {json.dumps(draw(HOSTILE_VALUES))}, {text[at:]}'
    return text


@FUZZ
@given(text=mutated_other_docs(), as_bytes=st.booleans())
def test_mutated_trade_and_book_documents_equal_on_both_paths(
    compiled: None, text: str, as_bytes: bool
) -> None:
    _same(text.encode("utf-8", "surrogatepass") if as_bytes else text)


# -- the live feed's keeper ------------------------------------------------------------------------------
def _keeper_takes(line: bytes) -> bool:
    """Does the live feed's compiled keeper take this frame itself (on a keeper tracking nothing), or
    hand it whole to the Python path?"""
    from polysnipe.adapters.clob._fastdecode import FeedKeeper
    from polysnipe.adapters.clob.market_data import _Token

    keeper = BookKeeper(MarketDataConfig())
    handed: list[Any] = []

    def python_path(data: bytes | str, recv_ms: int, out: list[Event]) -> None:
        handed.append(data)
        keeper._decode_frame(data, recv_ms, out)

    fast = FeedKeeper(keeper, keeper._tokens, _Token, 256, keeper._price_change, python_path)
    with contextlib.suppress(MalformedMessage):
        fast.on_frame(line, 7)
    return line not in handed


def _keeper_run(lines: list[bytes], *, pure: bool) -> list[Any]:
    """What BookKeeper.on_frame forwards for each line, and the books at the end."""
    parsing.use_pure_python(pure)
    first: dict[str, BookSnapshot] = {}
    for line in lines:
        for event in _quiet(line):
            if isinstance(event, BookSnapshot):
                first.setdefault(event.token_id, event)
    keeper = BookKeeper(MarketDataConfig())
    keeper.track(sorted(first), 0)
    for snap in first.values():
        keeper.on_rest_book(RestBook(snap, None, None, None, None, False), 0)
    out: list[Any] = []
    for line in lines:
        try:
            out.append(_typed(keeper.on_frame(line, 7)))
        except MalformedMessage as exc:
            out.append(("malformed", exc.reason))
    for token_id in sorted(first):
        book = keeper.book(token_id)
        assert book is not None
        out.append((token_id, book.trusted, book.levels(Side.BUY), book.levels(Side.SELL)))
    return out


def _quiet(line: bytes) -> list[Any]:
    try:
        return parse_market_line(line)
    except MalformedMessage:
        return []


def test_book_keeper_forwards_the_same_events_on_both_paths(compiled: None, generated: list[bytes]) -> None:
    lines = generated[:3_000]
    assert _keeper_run(lines, pure=False) == _keeper_run(lines, pure=True)


def test_book_keeper_on_the_sample(compiled: None) -> None:
    """The sample's price changes, trade prints and books (alone and in arrays) take the keeper's fast
    path; the books it keeps, and what it forwards, are those of the msgspec path."""
    lines = _sample_lines()
    assert sum(map(_keeper_takes, lines)) > 8_000
    assert _keeper_run(lines, pure=False) == _keeper_run(lines, pure=True)


# -- selection -------------------------------------------------------------------------------------------
def test_pure_python_env_turns_the_fast_path_off() -> None:
    assert select_decoder({PURE_PYTHON_ENV: "1"}) == "python"
    assert parsing.feed_keeper() is None
    keeper = BookKeeper(MarketDataConfig())
    assert keeper.on_frame == keeper._on_frame
    assert parsing._fast_decode is None
    built = parsing.compiled_decoder_available()
    assert select_decoder({}) == ("compiled" if built else "python")
    assert select_decoder({PURE_PYTHON_ENV: "0"}) == ("compiled" if built else "python")


def test_the_cli_reads_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`polysnipe bench ws` reports the decoder it ran with: msgspec alone under PURE_PYTHON_ENV=1."""
    events = tmp_path / "tiny.jsonl"
    events.write_bytes(b"\n".join(_sample_lines()[:200]) + b"\n")
    for env, expected in (("1", "python"), ("0", parsing.decoder_implementation())):
        monkeypatch.setenv(PURE_PYTHON_ENV, env)
        assert 0 == main(["bench", "ws", "--events", str(events), "--repeat", "1", "--out", str(tmp_path)])
        result = json.loads((tmp_path / "ws.json").read_text())
        assert expected == result["decoder"]
        assert result["book"] in ("compiled", "python")
