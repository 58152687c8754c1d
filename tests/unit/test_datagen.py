"""The sample data generator writes venue-format data whose planted inefficiencies are really there.

One 120 s run (default market counts) is generated once per module and replayed through a small
independent order-book model, so every check reads the files the way the backtest would. The
metadata files are held against the recorded venue payloads (the `shared_data` fixture).
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
# every tradeable planted edge is at least this, and clears its market's taker fee by a margin
MIN_EDGE = 15_000
EDGE_MARGIN = 5_000

REQUIRED = {
    "book": ("asset_id", "market", "timestamp", "hash", "bids", "asks"),
    "price_change": ("market", "timestamp", "price_changes"),
    "last_trade_price": ("asset_id", "market", "price", "side", "size", "fee_rate_bps", "timestamp"),
    "tick_size_change": ("asset_id", "market", "old_tick_size", "new_tick_size", "timestamp"),
    "market_resolved": ("market", "assets_ids", "winning_asset_id", "winning_outcome", "timestamp"),
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
    gamma_markets: list[dict[str, Any]]
    gamma_events: list[dict[str, Any]]
    complement: dict[str, str] = field(default_factory=dict)
    tick0: dict[str, int] = field(default_factory=dict)
    market_of: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: condition id -> its Gamma market
    gamma_of: dict[str, dict[str, Any]] = field(default_factory=dict)

    def taker_fee(self, token: str, price: int) -> float:
        """Micro-USDC per share bought at `price`: rate * (p(1-p))^exponent of the published schedule."""
        g = self.gamma_of[self.market_of[token]["condition_id"]]
        if not g["feesEnabled"]:
            return 0.0
        p = price / ONE
        return float(g["feeSchedule"]["rate"] * (p * (1 - p)) ** g["feeSchedule"]["exponent"] * ONE)


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
    gamma_markets = json.loads((out / "gamma_markets.json").read_text())
    gamma_events = json.loads((out / "gamma_events.json").read_text())
    data = Data(out, summary, page["data"], messages, bad, labels, gamma_markets, gamma_events)
    data.gamma_of = {g["conditionId"]: g for g in gamma_markets}
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


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """Two neg-risk events, both augmented: the main one by the option, the last one always."""
    out = tmp_path_factory.mktemp("gen-aug")
    summary = generate(out, seed=SEED, duration_s=60, neg_risk_events=2, augment_main_event=True)
    return _load(out, summary)


def _recorded(shared_data: Path, *parts: str) -> Any:
    return json.loads((shared_data / "polymarket" / Path(*parts)).read_text())


def _same_shape(ours: dict[str, Any], recorded: dict[str, Any], what: str) -> None:
    """Every key we write is one the recorded payload has, with the same decoded type (int is not
    float, a JSON-encoded list is a str)."""
    assert set(ours) <= set(recorded), (what, sorted(set(ours) - set(recorded)))
    for key, value in ours.items():
        assert type(value) is type(recorded[key]), (what, key, value, recorded[key])


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
    return _tops(data)


def _tops(data: Data) -> Replay:
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
    for name in ("markets.json", "gamma_markets.json", "gamma_events.json", "events.jsonl", "labels.jsonl"):
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
    assert s.markets == len(data.markets) == len(data.gamma_markets) == 6 + 4
    assert (1, 0, 1) == (s.resolved_markets, s.augmented_events, s.events_by_type["market_resolved"])
    assert s.bytes_events == (data.out / "events.jsonl").stat().st_size
    assert s.events_by_type["price_change"] > 0.6 * len(data.messages)  # most events are book changes


def test_markets_page_has_the_venue_shape(data: Data, shared_data: Path) -> None:
    page = json.loads((data.out / "markets.json").read_text())
    assert page["next_cursor"] == "LTE="
    assert page["count"] == page["limit"] == len(page["data"])
    recorded = _recorded(shared_data, "rest", "nautilus_py_markets.json")["data"][0]
    hex64 = re.compile(r"^0x[0-9a-f]{64}$")
    groups: Counter[str] = Counter()
    for m in data.markets:
        # the rows real GET /markets pages carry, key for key: no `fd`, no V2 fee schedule
        assert set(recorded) == set(m)
        _same_shape({k: v for k, v in m.items() if v is not None}, recorded, m["condition_id"])
        assert hex64.match(m["condition_id"])
        assert [t["outcome"] for t in m["tokens"]] == ["Yes", "No"]
        assert all(set(t) == set(recorded["tokens"][0]) for t in m["tokens"])
        assert all(t["token_id"].isdigit() and len(t["token_id"]) >= 70 for t in m["tokens"])
        assert all(t["winner"] is False for t in m["tokens"])
        assert m["minimum_tick_size"] in (0.01, 0.001)
        assert m["minimum_order_size"] in (5, 15)
        assert m["active"] and m["accepting_orders"] and not m["closed"]
        # the legacy V1 base fee: 1000 bps where fees are enabled, as Gamma's makerBaseFee
        fees_on = data.gamma_of[m["condition_id"]]["feesEnabled"]
        assert ((1000, 1000) if fees_on else (0, 0)) == (m["maker_base_fee"], m["taker_base_fee"])
        if m["neg_risk"]:
            assert hex64.match(m["neg_risk_market_id"])
            groups[m["neg_risk_market_id"]] += 1
        else:
            assert m["neg_risk_market_id"] == ""
    assert list(groups.values()) == [4]


def _recorded_gamma_market(shared_data: Path, *, neg_risk: bool, fees: bool) -> dict[str, Any]:
    """A recorded Gamma market of the same kind: fee-enabled or not, neg-risk or not."""
    if neg_risk and fees:
        return dict(_recorded(shared_data, "rest", "nautilus_rs_gamma_market_live.json"))
    if neg_risk:
        return dict(_recorded(shared_data, "rest", "nautilus_rs_gamma_event.json")[0]["markets"][0])
    if fees:
        return dict(_recorded(shared_data, "rest", "nautilus_rs_gamma_market_sports_market_money_line.json"))
    return dict(_recorded(shared_data, "rest", "nautilus_rs_gamma_market_closed_binary_accepting_true.json"))


GAMMA_MARKET_FIELDS = {
    "conditionId", "clobTokenIds", "outcomes", "orderPriceMinTickSize", "orderMinSize", "negRisk",
    "negRiskOther", "groupItemTitle", "active", "closed", "acceptingOrders", "feesEnabled", "feeType",
}  # fmt: skip


def test_gamma_markets_have_the_recorded_shape_and_the_fee_schedules(data: Data, shared_data: Path) -> None:
    assert [m["condition_id"] for m in data.markets] == [g["conditionId"] for g in data.gamma_markets]
    for g, m in zip(data.gamma_markets, data.markets, strict=True):
        recorded = _recorded_gamma_market(shared_data, neg_risk=g["negRisk"], fees=g["feesEnabled"])
        _same_shape(g, recorded, g["conditionId"])
        assert GAMMA_MARKET_FIELDS <= set(g)
        # lists inside strings, as Gamma sends them
        assert json.loads(g["clobTokenIds"]) == [t["token_id"] for t in m["tokens"]]
        assert json.loads(g["outcomes"]) == ["Yes", "No"]
        assert (g["orderPriceMinTickSize"], g["orderMinSize"]) == (
            m["minimum_tick_size"],
            m["minimum_order_size"],
        )
        assert (g["negRisk"], g.get("negRiskMarketID", "")) == (m["neg_risk"], m["neg_risk_market_id"])
        assert g["active"] and g["acceptingOrders"] and not g["closed"] and not g["negRiskOther"]
        if g["feesEnabled"]:
            assert set(g["feeSchedule"]) == set(recorded["feeSchedule"])
            _same_shape(g["feeSchedule"], recorded["feeSchedule"], "feeSchedule")
            assert g["feeSchedule"]["takerOnly"] and g["feeSchedule"]["exponent"] == 1
        else:
            assert "feeSchedule" not in g and g["feeType"] is None
    schedules = {
        (g["feeType"], g["feeSchedule"]["rate"], g["feeSchedule"]["rebateRate"])
        for g in data.gamma_markets
        if g["feesEnabled"]
    }
    assert {("crypto_fees", 0.07, 0.2), ("politics_fees", 0.04, 0.25)} <= schedules
    assert any(not g["feesEnabled"] for g in data.gamma_markets)


def test_gamma_events_list_each_neg_risk_group_whole(data: Data, shared_data: Path) -> None:
    recorded = _recorded(shared_data, "rest", "nautilus_rs_gamma_event.json")[0]
    groups: dict[str, list[str]] = {}
    for m in data.markets:
        if m["neg_risk"]:
            groups.setdefault(m["neg_risk_market_id"], []).append(m["condition_id"])
    assert len(groups) == len(data.gamma_events) == 1
    for event in data.gamma_events:
        _same_shape({k: v for k, v in event.items() if k != "markets"}, recorded, event["id"])
        assert event["negRisk"] and event["enableNegRisk"] and not event["negRiskAugmented"]
        assert [g["conditionId"] for g in event["markets"]] == groups[event["negRiskMarketID"]]
        assert event["markets"] == [data.gamma_of[c] for c in groups[event["negRiskMarketID"]]]


def test_an_augmented_event_has_an_other_placeholder_and_no_planted_basket(augmented: Data) -> None:
    assert 2 == augmented.summary.augmented_events == len(augmented.gamma_events)
    for event in augmented.gamma_events:
        assert event["negRiskAugmented"] and event["enableNegRisk"]
        others = [g for g in event["markets"] if g["negRiskOther"]]
        assert 1 == len(others) and others[0]["groupItemTitle"] == "Other"
        assert event["markets"][-1] == others[0]
        # the placeholder is a CLOB market of the event like the others, with a book
        row = augmented.market_of[json.loads(others[0]["clobTokenIds"])[0]]
        assert row["neg_risk"] and row["neg_risk_market_id"] == event["negRiskMarketID"]
        assert any(
            m["event_type"] == "book" and m["asset_id"] == row["tokens"][0]["token_id"]
            for m in augmented.messages
        )
    # a basket of an augmented event's current outcomes is not riskless: none is planted
    assert 0 == augmented.summary.labels_by_kind["complement_arb"]


def test_one_augmented_event_comes_with_two_events_unless_asked_for_the_main(tmp_path: Path) -> None:
    generate(tmp_path, seed=3, duration_s=30, neg_risk_events=2, malformed=0)
    events = json.loads((tmp_path / "gamma_events.json").read_text())
    assert [False, True] == [e["negRiskAugmented"] for e in events]


@pytest.mark.parametrize(
    "options",
    [{"resolved_markets": 6}, {"resolved_markets": -1}, {"augment_main_event": True, "neg_risk_events": 0}],
)
def test_options_that_do_not_fit_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, seed=1, duration_s=30, **options)


def test_trade_prints_carry_the_fee_rate_the_metadata_publishes(data: Data) -> None:
    for msg in data.messages:
        if msg["event_type"] == "last_trade_price":
            g = data.gamma_of[msg["market"]]
            rate = g["feeSchedule"]["rate"] if g["feesEnabled"] else 0
            assert str(round(rate * 10_000)) == msg["fee_rate_bps"]


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
    resolved = {a for m in data.messages if m["event_type"] == "market_resolved" for a in m["assets_ids"]}
    for msg in data.messages:
        if msg["event_type"] != "book":
            continue
        bids = [parse_micro(x["price"]) for x in msg["bids"]]
        asks = [parse_micro(x["price"]) for x in msg["asks"]]
        if not bids and not asks:  # a resolved market's book going away
            assert msg["asset_id"] in resolved
            continue
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
        assert edge >= (1 if lb["kind"] == "pair_inconsistency" else MIN_EDGE), lb
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
        # worth taking at that ask on the fee schedule the market publishes
        assert edge >= data.taker_fee(token, ask_during) + EDGE_MARGIN, lb
        _, ask_after = replay.at(token, lb["end_ms"])
        assert ask_after is not None and ask_after > ask_during


def _news_signal(data: Data, lb: dict[str, Any]) -> dict[str, Any]:
    """The external signal a news label was planted with: at its start, on its token or the complement."""
    token = lb["token_id"]
    for m in data.messages:
        if (
            m["event_type"] == "external_signal"
            and int(m["timestamp"]) == lb["start_ms"]
            and m["asset_id"] in (token, data.complement[token])
        ):
            return m
    raise AssertionError(f"no signal for {lb}")


def _planted_yes_fair(lb: dict[str, Any]) -> int:
    """The YES fair value the book caught up to (the label's note names it)."""
    found = re.search(r"caught up to YES fair ([0-9.]+)", lb["note"])
    assert found, lb
    return parse_micro(found.group(1))


def test_news_signal_precedes_the_move_that_pays_the_edge(data: Data, replay: Replay) -> None:
    for lb in _windows(data, "news"):
        token = lb["token_id"]
        sig = _news_signal(data, lb)
        assert 0.6 <= sig["confidence"] <= 0.95
        assert sig["direction"] == ("up" if sig["asset_id"] == token else "down")
        _, entry_ask = replay.at(token, lb["start_ms"])
        bid, ask = replay.at(token, lb["end_ms"])
        assert entry_ask is not None and bid is not None and ask is not None
        assert (bid + ask) // 2 - entry_ask >= parse_micro(lb["edge"]) - 1
        assert parse_micro(lb["edge"]) >= data.taker_fee(token, entry_ask) + EDGE_MARGIN, lb
        # the source's estimate points the way the book goes, from the book as it was
        estimate = parse_micro(sig["fair_price"])
        if sig["asset_id"] != token:
            estimate = ONE - estimate
        assert estimate > entry_ask, lb


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_no_news_signal_carries_the_price_the_market_moves_to(seed: int, tmp_path: Path) -> None:
    data = _load(tmp_path, generate(tmp_path, seed=seed, duration_s=90, malformed=0))
    news = _windows(data, "news")
    assert news
    for lb in news:
        sig = _news_signal(data, lb)
        fair = parse_micro(sig["fair_price"])
        yes_fair = (
            fair
            if sig["asset_id"] == data.market_of[sig["asset_id"]]["tokens"][0]["token_id"]
            else ONE - fair
        )
        assert yes_fair != _planted_yes_fair(lb), lb


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
        assert (bid2 + ask2) // 2 > (bid0 + ask0) // 2 + MIN_EDGE
        assert parse_micro(lb["edge"]) >= data.taker_fee(token, ask1) + EDGE_MARGIN, lb


def test_complement_arb_drops_the_event_yes_asks_below_one(data: Data, replay: Replay) -> None:
    groups: dict[str, list[str]] = {}
    for m in data.markets:
        if m["neg_risk"]:
            groups.setdefault(m["neg_risk_market_id"], []).append(m["tokens"][0]["token_id"])
    for lb in _windows(data, "complement_arb"):
        legs = groups[lb["market"]]
        asks = [a for a in (replay.at(t, lb["start_ms"])[1] for t in legs) if a is not None]
        assert len(asks) == len(legs)
        assert ONE - sum(asks) == parse_micro(lb["edge"])
        # buying every leg pays every leg's taker fee
        fees = sum(data.taker_fee(t, a) for t, a in zip(legs, asks, strict=True))
        assert parse_micro(lb["edge"]) >= fees + EDGE_MARGIN, lb
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


@pytest.mark.parametrize("seed", range(20, 32))
def test_planted_edges_clear_the_fee_their_market_publishes(seed: int, tmp_path: Path) -> None:
    """At the price each window is entered, on the schedule gamma_markets.json publishes."""
    data = _load(tmp_path, generate(tmp_path, seed=seed, duration_s=120, malformed=0))
    replay = _tops(data)
    legs: dict[str, list[str]] = {}
    for m in data.markets:
        if m["neg_risk"]:
            legs.setdefault(m["neg_risk_market_id"], []).append(m["tokens"][0]["token_id"])
    for lb in data.labels:
        edge = parse_micro(lb["edge"])
        if lb["kind"] == "complement_arb":
            asks = [replay.at(t, lb["start_ms"])[1] for t in legs[lb["market"]]]
            fee = sum(data.taker_fee(t, a) for t, a in zip(legs[lb["market"]], asks, strict=True) if a)
        elif lb["kind"] != "pair_inconsistency":
            # a vacuum is entered once the touch is gone, within its first second
            at = lb["start_ms"] + (999 if lb["kind"] == "liquidity_vacuum" else 0)
            ask = replay.at(lb["token_id"], at)[1]
            assert ask is not None
            fee = data.taker_fee(lb["token_id"], ask)
        else:
            continue
        assert edge >= max(fee + EDGE_MARGIN, MIN_EDGE), lb


# -- resolution -------------------------------------------------------------------------------------
def test_a_binary_market_resolves_near_the_end_and_its_book_goes_away(data: Data, shared_data: Path) -> None:
    recorded = _recorded(shared_data, "ws", "nautilus_rs_ws_market_resolved_msg.json")
    [i] = [i for i, m in enumerate(data.messages) if m["event_type"] == "market_resolved"]
    msg = data.messages[i]
    # the recorded message's fields, with their types, plus PROTOCOL.md 10.2's question/slug/...
    assert set(recorded) <= set(msg)
    _same_shape({k: msg[k] for k in recorded}, recorded, "market_resolved")
    assert {"question", "slug", "description", "outcomes"} <= set(msg)
    market = data.market_of[msg["assets_ids"][0]]
    yes, no = (t["token_id"] for t in market["tokens"])
    assert (msg["market"], msg["assets_ids"]) == (market["condition_id"], [yes, no])
    assert msg["id"] == data.gamma_of[msg["market"]]["id"]
    assert (msg["winning_asset_id"], msg["winning_outcome"]) in ((yes, "Yes"), (no, "No"))
    assert not market["neg_risk"]
    ts = int(msg["timestamp"])
    assert data.summary.end_ms - 15_000 < ts < data.summary.end_ms
    # the price had gone the winner's way; then both books empty, and nothing more for the market
    bids, asks = {}, {}
    for m, books in _replay(data):
        if m is msg:
            bids, asks = books[msg["winning_asset_id"]].bids, books[msg["winning_asset_id"]].asks
            break
    assert bids and asks and (max(bids) + min(asks)) // 2 >= 900_000
    after = data.messages[i + 1 :]
    assert [(m["event_type"], m["asset_id"]) for m in after[:2]] == [("book", yes), ("book", no)]
    assert all(not m["bids"] and not m["asks"] and int(m["timestamp"]) == ts for m in after[:2])
    about = [
        m for m in after[2:] if m.get("market") == market["condition_id"] or m.get("asset_id") in (yes, no)
    ]
    assert [] == about


def test_no_market_resolves_when_asked_for_none(tmp_path: Path) -> None:
    summary = generate(tmp_path, seed=2, duration_s=30, resolved_markets=0, malformed=0)
    assert "market_resolved" not in summary.events_by_type


def test_generated_files_parse_with_the_clob_parser(data: Data) -> None:
    parsing = pytest.importorskip("polysnipe.adapters.clob.parsing")
    errors = pytest.importorskip("polysnipe.adapters.clob.errors")
    markets = parsing.parse_markets((data.out / "markets.json").read_bytes())
    assert len(markets) == 10
    assert len(parsing.parse_markets((data.out / "markets.json").read_text())) == 10
    assert sum(1 for m in markets if m.neg_risk) == 4
    # a CLOB /markets row carries no V2 fee rate; the schedules are Gamma's
    assert {m.fee_rate for m in markets} == {0}
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
