"""The sample data generator writes venue-format data whose planted inefficiencies are really there.

One 120 s run (default market counts) is generated once per module and replayed through a small
independent order-book model, so every check reads the files the way the backtest would.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from polysnipe.core.units import ONE, parse_micro
from polysnipe.tools.datagen import KINDS, START_MS, GenerateSummary, generate

SEED = 11
DURATION_S = 120
# 0.04 * p(1-p) peaks at 0.01: a tradeable planted edge must beat it at any price.
MAX_TAKER_FEE = 10_000

REQUIRED = {
    "book": ("asset_id", "market", "timestamp", "hash", "bids", "asks"),
    "price_change": ("market", "timestamp", "price_changes"),
    "last_trade_price": ("asset_id", "market", "price", "side", "size", "fee_rate_bps", "timestamp"),
    "tick_size_change": ("asset_id", "market", "old_tick_size", "new_tick_size", "timestamp"),
    "external_signal": ("timestamp", "asset_id", "source", "direction", "confidence", "ttl_ms", "fair_price"),
}
ENTRY_FIELDS = ("asset_id", "price", "size", "side", "hash", "best_bid", "best_ask")


@dataclass
class Data:
    out: Path
    summary: GenerateSummary
    markets: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # well-formed messages in file order (frames flattened)
    bad_lines: int
    labels: list[dict[str, Any]]
    complement: dict[str, str] = field(default_factory=dict)
    tick0: dict[str, int] = field(default_factory=dict)
    market_of: dict[str, dict[str, Any]] = field(default_factory=dict)


def _well_formed(msg: Any) -> bool:
    if not isinstance(msg, dict) or msg.get("event_type") not in REQUIRED:
        return False
    if not all(k in msg for k in REQUIRED[msg["event_type"]]):
        return False
    if msg["event_type"] == "price_change":
        return all(all(k in e for k in ENTRY_FIELDS) for e in msg["price_changes"])
    return True


def _load(out: Path, summary: GenerateSummary) -> Data:
    page = json.loads((out / "markets.json").read_text())
    messages: list[dict[str, Any]] = []
    bad = 0
    for line in (out / "events.jsonl").read_text().splitlines():
        try:
            frame = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        msgs = frame if isinstance(frame, list) else [frame]
        if not all(_well_formed(m) for m in msgs):
            bad += 1
            continue
        messages.extend(msgs)
    labels = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    data = Data(out, summary, page["data"], messages, bad, labels)
    for m in page["data"]:
        yes, no = (t["token_id"] for t in m["tokens"])
        data.complement[yes], data.complement[no] = no, yes
        tick = parse_micro(str(m["minimum_tick_size"]))
        data.tick0[yes] = data.tick0[no] = tick
        data.market_of[yes] = data.market_of[no] = m
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("gen")
    return _load(out, generate(out, seed=SEED, duration_s=DURATION_S))


# -- a small independent replay --------------------------------------------------------------------
@dataclass
class Book:
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def best(self) -> tuple[int | None, int | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)


@dataclass
class Replay:
    """Tops of book per token after every message: (ts, best bid, best ask), in file order."""

    tops: dict[str, list[tuple[int, int | None, int | None]]] = field(default_factory=dict)

    def at(self, token: str, ts: int, *, before: bool = False) -> tuple[int | None, int | None]:
        rows = self.tops[token]
        keys = [r[0] for r in rows]
        i = (bisect_left(keys, ts) if before else bisect_right(keys, ts)) - 1
        assert i >= 0, f"no state for {token} at {ts}"
        return rows[i][1], rows[i][2]


def _replay(data: Data) -> Iterator[tuple[dict[str, Any], dict[str, Book]]]:
    books: dict[str, Book] = {}
    for msg in data.messages:
        et = msg["event_type"]
        if et == "book":
            books[msg["asset_id"]] = Book(
                {parse_micro(x["price"]): parse_micro(x["size"]) for x in msg["bids"]},
                {parse_micro(x["price"]): parse_micro(x["size"]) for x in msg["asks"]},
            )
        elif et == "price_change":
            for e in msg["price_changes"]:
                book = books[e["asset_id"]]
                side = book.bids if e["side"] == "BUY" else book.asks
                price, size = parse_micro(e["price"]), parse_micro(e["size"])
                if size:
                    side[price] = size
                else:
                    del side[price]
        yield msg, books


@pytest.fixture(scope="module")
def replay(data: Data) -> Replay:
    rep = Replay()
    for msg, books in _replay(data):
        ts = int(msg["timestamp"])
        tokens = (
            {e["asset_id"] for e in msg["price_changes"]} if msg["event_type"] == "price_change" else set()
        )
        if msg["event_type"] == "book":
            tokens = {msg["asset_id"]}
        for token in sorted(tokens):
            rep.tops.setdefault(token, []).append((ts, *books[token].best()))
    return rep


def _windows(data: Data, kind: str) -> list[dict[str, Any]]:
    return [lb for lb in data.labels if lb["kind"] == kind]


def _in_pair_window(data: Data, market: str, ts: int) -> bool:
    return any(
        lb["market"] == market and lb["start_ms"] <= ts <= lb["end_ms"]
        for lb in _windows(data, "pair_inconsistency")
    )


# -- files, summary, determinism ---------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for out, seed in zip(runs, (5, 5, 6), strict=True):
        generate(out, seed=seed, duration_s=60)
    for name in ("markets.json", "events.jsonl", "labels.jsonl"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes()
    assert (runs[0] / "events.jsonl").read_bytes() != (runs[2] / "events.jsonl").read_bytes()


def test_summary_counts_what_the_files_hold(data: Data) -> None:
    s = data.summary
    lines = (data.out / "events.jsonl").read_text().splitlines()
    assert s.lines == len(lines)
    assert s.malformed == 3 == data.bad_lines
    assert s.events_by_type == dict(Counter(m["event_type"] for m in data.messages))
    assert s.price_change_entries == sum(
        len(m["price_changes"]) for m in data.messages if m["event_type"] == "price_change"
    )
    assert s.labels_by_kind == {k: len(_windows(data, k)) for k in KINDS}
    assert s.markets == len(data.markets) == 6 + 4
    assert s.bytes_events == (data.out / "events.jsonl").stat().st_size
    assert s.events_by_type["price_change"] > 0.6 * len(data.messages)  # most events are book changes


def test_markets_page_has_the_venue_shape(data: Data) -> None:
    page = json.loads((data.out / "markets.json").read_text())
    assert page["next_cursor"] == "LTE="
    assert page["count"] == page["limit"] == len(page["data"])
    hex64 = re.compile(r"^0x[0-9a-f]{64}$")
    groups: Counter[str] = Counter()
    for m in data.markets:
        assert hex64.match(m["condition_id"])
        assert [t["outcome"] for t in m["tokens"]] == ["Yes", "No"]
        assert all(t["token_id"].isdigit() and len(t["token_id"]) >= 70 for t in m["tokens"])
        assert all(t["winner"] is False for t in m["tokens"])
        assert m["minimum_tick_size"] in (0.01, 0.001)
        assert m["minimum_order_size"] in (5, 15)
        assert m["active"] and m["accepting_orders"] and not m["closed"]
        assert m["fd"]["e"] == 1 and m["fd"]["r"] in (0, 0.04)
        if m["neg_risk"]:
            assert hex64.match(m["neg_risk_market_id"])
            groups[m["neg_risk_market_id"]] += 1
        else:
            assert m["neg_risk_market_id"] == ""
    assert list(groups.values()) == [4]
    assert {m["fd"]["r"] for m in data.markets} == {0, 0.04}


def test_timestamps_are_ms_strings_in_order_within_the_run(data: Data) -> None:
    ts = [int(m["timestamp"]) for m in data.messages]
    assert all(isinstance(m["timestamp"], str) for m in data.messages)
    assert ts == sorted(ts)
    assert START_MS == data.summary.start_ms == ts[0]
    assert ts[-1] < data.summary.end_ms == START_MS + DURATION_S * 1000


# -- the book ----------------------------------------------------------------------------------------
def test_every_price_change_mirrors_yes_and_no_outside_pair_windows(data: Data) -> None:
    unmirrored_in_windows = 0
    for msg in data.messages:
        if msg["event_type"] != "price_change":
            continue
        key = Counter(
            (e["asset_id"], parse_micro(e["price"]), e["side"], e["size"]) for e in msg["price_changes"]
        )
        mirror = Counter(
            (data.complement[a], ONE - p, "SELL" if side == "BUY" else "BUY", size)
            for (a, p, side, size), n in key.items()
            for _ in range(n)
        )
        if _in_pair_window(data, msg["market"], int(msg["timestamp"])):
            unmirrored_in_windows += key != mirror
            continue
        assert key == mirror, msg
        assert all(
            data.market_of[e["asset_id"]]["condition_id"] == msg["market"] for e in msg["price_changes"]
        )
    assert unmirrored_in_windows >= 1


def test_snapshots_sort_bids_up_and_asks_down_for_both_tokens(data: Data) -> None:
    seen: set[str] = set()
    for msg in data.messages:
        if msg["event_type"] != "book":
            continue
        bids = [parse_micro(x["price"]) for x in msg["bids"]]
        asks = [parse_micro(x["price"]) for x in msg["asks"]]
        assert bids and asks
        assert bids == sorted(bids) and len(set(bids)) == len(bids)
        assert asks == sorted(asks, reverse=True) and len(set(asks)) == len(asks)
        assert bids[-1] < asks[-1]  # best bid below best ask (best ask is last)
        assert re.match(r"^[0-9a-f]{40}$", msg["hash"])
        if int(msg["timestamp"]) == START_MS:
            seen.add(msg["asset_id"])
    assert seen == set(data.complement)


def test_prices_are_on_the_current_tick_and_inside_zero_one(data: Data) -> None:
    tick = dict(data.tick0)
    changes = 0

    def check(token: str, text: str) -> None:
        p = parse_micro(text)
        assert 0 < p < ONE and p % tick[token] == 0, (token, text, tick[token])

    for msg in data.messages:
        et = msg["event_type"]
        if et == "tick_size_change":
            assert parse_micro(msg["old_tick_size"]) == tick[msg["asset_id"]]
            tick[msg["asset_id"]] = parse_micro(msg["new_tick_size"])
            changes += 1
        elif et == "book":
            assert parse_micro(msg["tick_size"]) == tick[msg["asset_id"]]
            for lv in msg["bids"] + msg["asks"]:
                check(msg["asset_id"], lv["price"])
                assert parse_micro(lv["size"]) > 0 and parse_micro(lv["size"]) % 10_000 == 0
        elif et == "price_change":
            for e in msg["price_changes"]:
                check(e["asset_id"], e["price"])
                assert parse_micro(e["size"]) % 10_000 == 0
        elif et == "last_trade_price":
            check(msg["asset_id"], msg["price"])
            assert msg["side"] in ("BUY", "SELL") and parse_micro(msg["size"]) > 0
    # the long-shot market crosses 0.04 (or 0.96) and back within 120 s, on both tokens
    assert changes >= 4 and changes % 2 == 0


def test_best_bid_ask_fields_match_the_book_after_each_entry_which_never_crosses(data: Data) -> None:
    books: dict[str, Book] = {}
    for msg in data.messages:
        if msg["event_type"] == "book":
            books[msg["asset_id"]] = Book(
                {parse_micro(x["price"]): parse_micro(x["size"]) for x in msg["bids"]},
                {parse_micro(x["price"]): parse_micro(x["size"]) for x in msg["asks"]},
            )
        elif msg["event_type"] == "price_change":
            for e in msg["price_changes"]:
                book = books[e["asset_id"]]
                side = book.bids if e["side"] == "BUY" else book.asks
                price, size = parse_micro(e["price"]), parse_micro(e["size"])
                if size:
                    side[price] = size
                else:
                    assert price in side, e  # never removes a level that is not there
                    del side[price]
                bb, ba = book.best()
                assert bb is not None and ba is not None and bb < ba, e
                assert (parse_micro(e["best_bid"]), parse_micro(e["best_ask"])) == (bb, ba)


def test_tick_returning_to_coarse_is_followed_by_snapshots_of_both_tokens(data: Data) -> None:
    msgs = data.messages
    back = [
        i
        for i, m in enumerate(msgs)
        if m["event_type"] == "tick_size_change" and m["new_tick_size"] == "0.01"
    ]
    assert back
    for i in back:
        ts = msgs[i]["timestamp"]
        after = {
            m["asset_id"] for m in msgs[i + 1 : i + 5] if m["event_type"] == "book" and m["timestamp"] == ts
        }
        token = msgs[i]["asset_id"]
        assert {token, data.complement[token]} <= after


# -- labels ------------------------------------------------------------------------------------------
def test_labels_name_real_tokens_inside_the_run_with_real_edges(data: Data) -> None:
    assert all(data.summary.labels_by_kind[k] >= 3 for k in KINDS)
    nr_ids = {m["neg_risk_market_id"] for m in data.markets if m["neg_risk"]}
    for lb in data.labels:
        assert set(lb) == {"kind", "token_id", "market", "start_ms", "end_ms", "edge", "note"}
        assert lb["token_id"] in data.complement
        m = data.market_of[lb["token_id"]]
        if lb["kind"] == "complement_arb":
            assert lb["market"] in nr_ids and m["neg_risk_market_id"] == lb["market"]
            assert lb["token_id"] == m["tokens"][0]["token_id"]
        else:
            assert lb["market"] == m["condition_id"] and not m["neg_risk"]
        assert START_MS <= lb["start_ms"] < lb["end_ms"] < data.summary.end_ms
        edge = parse_micro(lb["edge"])
        assert edge > (0 if lb["kind"] == "pair_inconsistency" else MAX_TAKER_FEE), lb
    starts = [lb["start_ms"] for lb in data.labels]
    assert starts == sorted(starts)
    # never two windows at once on one market
    by_market: dict[str, list[tuple[int, int]]] = {}
    for lb in data.labels:
        by_market.setdefault(lb["market"], []).append((lb["start_ms"], lb["end_ms"]))
    for spans in by_market.values():
        spans.sort()
        assert all(a[1] < b[0] for a, b in pairwise(spans))


def test_mispriced_book_shows_a_cheap_ask_below_the_fair_value_of_a_stable_book(
    data: Data, replay: Replay
) -> None:
    for lb in _windows(data, "mispriced_book"):
        token, edge = lb["token_id"], parse_micro(lb["edge"])
        bid_before, ask_before = replay.at(token, lb["start_ms"], before=True)
        _, ask_during = replay.at(token, lb["start_ms"])
        assert bid_before is not None and ask_before is not None and ask_during is not None
        # the fair value the edge is measured from sits inside the book as it was before
        assert bid_before <= ask_during + edge <= ask_before, lb
        assert ask_during < ask_before - MAX_TAKER_FEE
        _, ask_after = replay.at(token, lb["end_ms"])
        assert ask_after is not None and ask_after > ask_during


def test_news_signal_precedes_the_move_that_pays_the_edge(data: Data, replay: Replay) -> None:
    signals = {
        (int(m["timestamp"]), m["asset_id"]): m for m in data.messages if m["event_type"] == "external_signal"
    }
    for lb in _windows(data, "news"):
        token = lb["token_id"]
        sig = signals.get((lb["start_ms"], token)) or signals[(lb["start_ms"], data.complement[token])]
        assert 0.6 <= sig["confidence"] <= 0.95
        assert sig["direction"] == ("up" if sig["asset_id"] == token else "down")
        _, entry_ask = replay.at(token, lb["start_ms"])
        bid, ask = replay.at(token, lb["end_ms"])
        assert entry_ask is not None and bid is not None and ask is not None
        assert (bid + ask) // 2 - entry_ask >= parse_micro(lb["edge"]) - 1
        # the signal's fair price is where the book went
        fair = parse_micro(sig["fair_price"])
        mid_about = replay.at(sig["asset_id"], lb["end_ms"])
        assert mid_about[0] is not None and mid_about[1] is not None
        assert mid_about[0] < fair < mid_about[1]


def test_liquidity_vacuum_empties_the_touch_within_a_second_then_price_jumps(
    data: Data, replay: Replay
) -> None:
    for lb in _windows(data, "liquidity_vacuum"):
        token = lb["token_id"]
        # the label token profits; its complement's side that vanished is the mirror of the token's asks
        bid0, ask0 = replay.at(token, lb["start_ms"], before=True)
        _, ask1 = replay.at(token, lb["start_ms"] + 999)
        assert ask0 is not None and ask1 is not None and bid0 is not None
        assert ask1 > ask0  # liquidity the token's buyers would lift vanished
        bid2, ask2 = replay.at(token, lb["end_ms"])
        assert bid2 is not None and ask2 is not None
        assert (bid2 + ask2) // 2 - ask1 == parse_micro(lb["edge"])
        assert (bid2 + ask2) // 2 > (bid0 + ask0) // 2 + MAX_TAKER_FEE


def test_complement_arb_drops_the_event_yes_asks_below_one(data: Data, replay: Replay) -> None:
    groups: dict[str, list[str]] = {}
    for m in data.markets:
        if m["neg_risk"]:
            groups.setdefault(m["neg_risk_market_id"], []).append(m["tokens"][0]["token_id"])
    for lb in _windows(data, "complement_arb"):
        legs = groups[lb["market"]]
        asks = [replay.at(t, lb["start_ms"])[1] for t in legs]
        assert all(a is not None for a in asks)
        assert ONE - sum(a for a in asks if a is not None) == parse_micro(lb["edge"])
        after = [replay.at(t, lb["end_ms"])[1] for t in legs]
        assert sum(a for a in after if a is not None) >= ONE


def test_neg_risk_yes_quotes_bracket_one_outside_arb_windows(data: Data) -> None:
    legs = [m["tokens"][0]["token_id"] for m in data.markets if m["neg_risk"]]
    arb = _windows(data, "complement_arb")
    mids: list[int] = []
    for msg, books in _replay(data):
        ts = int(msg["timestamp"])
        if msg["event_type"] not in ("book", "price_change") or any(
            lb["start_ms"] <= ts <= lb["end_ms"] + 1000 for lb in arb
        ):
            continue
        if not all(t in books for t in legs):
            continue
        tops = [books[t].best() for t in legs]
        bids = [b for b, _ in tops if b is not None]
        asks = [a for _, a in tops if a is not None]
        assert len(bids) == len(asks) == len(legs)
        assert sum(bids) < ONE < sum(asks), (ts, tops)
        mids.append(sum((b + a) // 2 for b, a in zip(bids, asks, strict=True)))
    # the fair values behind the quotes sum to 1
    assert abs(sum(mids) / len(mids) - ONE) < 15_000


def test_generated_files_parse_with_the_clob_parser(data: Data) -> None:
    parsing = pytest.importorskip("polysnipe.adapters.clob.parsing")
    errors = pytest.importorskip("polysnipe.adapters.clob.errors")
    markets = parsing.parse_markets((data.out / "markets.json").read_bytes())
    assert len(markets) == 10
    assert len(parsing.parse_markets((data.out / "markets.json").read_text())) == 10
    assert sum(1 for m in markets if m.neg_risk) == 4
    assert {m.fee_rate for m in markets} == {0, 40_000}
    bad = 0
    kinds: Counter[str] = Counter()
    for line in (data.out / "events.jsonl").read_bytes().splitlines():
        try:
            events = parsing.parse_market_line(line)
        except errors.MalformedMessage:
            bad += 1
            continue
        kinds.update(type(e).__name__ for e in events)
    assert bad == data.summary.malformed
    assert kinds["ExternalSignal"] == data.summary.events_by_type["external_signal"]
    assert kinds["PriceChange"] == data.summary.events_by_type["price_change"]
