"""The market-metadata loader on real recorded payloads: CLOB and Gamma shapes, merged, failing closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.metadata import load_documents, load_market_files
from polysnipe.core.book import BookState
from polysnipe.core.events import BookSnapshot, Level, Side
from polysnipe.core.messages import OrderRequest, OrderType
from polysnipe.core.portfolio import Portfolio
from polysnipe.core.risk import RiskGatekeeper, RiskPolicy, RiskState
from polysnipe.core.units import MICRO


def rest(shared_data: Path, name: str) -> Path:
    return shared_data / "polymarket" / "rest" / name


def doc(shared_data: Path, name: str) -> Any:
    return json.loads(rest(shared_data, name).read_bytes())


def test_gamma_fee_schedule_gives_rate_exponent_rebate_and_end(shared_data: Path) -> None:
    [m] = load_market_files([rest(shared_data, "nautilus_rs_gamma_market_live.json")]).markets
    assert (40_000, 1, 250_000, True) == (m.fee_rate, m.fee_exponent, m.fee_rebate_rate, m.fees_known)
    assert 1_857_168_000_000 == m.end_ms  # 2028-11-07T00:00:00Z
    assert m.neg_risk


def test_fees_enabled_without_a_schedule_are_unknown_and_refused(shared_data: Path) -> None:
    catalog = load_market_files([rest(shared_data, "nautilus_rs_gamma_market.json")])
    [m] = catalog.markets
    assert not m.fees_known
    assert [m.condition_id] == catalog.fees_unknown
    book = BookState(m.token_ids[0], m.tick_size)
    book.apply_snapshot(BookSnapshot(0, m.token_ids[0], m.condition_id, (Level(490_000, MICRO),),
                                     (Level(500_000, 100 * MICRO),)))  # fmt: skip
    order = OrderRequest("o-0", "o", "c", "s", "aggressive", "0xw", m.condition_id, m.token_ids[0], Side.BUY,
                         500_000, 10 * MICRO, OrderType.FAK, m.tick_size, m.neg_risk)  # fmt: skip
    policy = RiskPolicy(1000 * MICRO, 1000 * MICRO, 1000 * MICRO, 10, 10, 1000, 1000 * MICRO, 10**12)
    decision = RiskGatekeeper(policy).check(order, RiskState(Portfolio.of({"0xw": 1000 * MICRO})), m, book, 0)
    assert "fees_unknown" in decision.reasons and "reject" == decision.outcome


def test_a_clob_row_alone_does_not_say_what_fees_are(shared_data: Path) -> None:
    [m] = load_market_files([rest(shared_data, "nautilus_py_market.json")]).markets
    assert not m.fees_known


def test_clob_structure_and_gamma_fees_merge_by_condition_id(shared_data: Path) -> None:
    clob = doc(shared_data, "nautilus_py_market.json")
    gamma = doc(shared_data, "nautilus_rs_gamma_market_live.json")
    tokens = json.dumps([t["token_id"] for t in clob["tokens"]])
    gamma.update(
        conditionId=clob["condition_id"], clobTokenIds=tokens, orderPriceMinTickSize=0.01, orderMinSize=15
    )
    catalog = load_documents(
        {"clob.json": json.dumps(clob).encode(), "gamma.json": json.dumps(gamma).encode()}
    )
    [m] = catalog.markets
    assert (clob["condition_id"], 40_000, True) == (m.condition_id, m.fee_rate, m.fees_known)
    # the CLOB's structure wins: its tick (0.001) and minimum size (5), not Gamma's (0.01, 15)
    assert (1_000, 5 * MICRO) == (m.tick_size, m.min_order_size)


def test_clob_compact_fees_come_first(shared_data: Path) -> None:
    clob = doc(shared_data, "nautilus_py_market.json")
    compact = {clob["condition_id"]: {"fd": {"r": 0.07, "e": 2}, "nr": clob["neg_risk"]}}
    catalog = load_documents(
        {"clob.json": json.dumps(clob).encode(), "info.json": json.dumps(compact).encode()}
    )
    [m] = catalog.markets
    assert (70_000, 2, True) == (m.fee_rate, m.fee_exponent, m.fees_known)


def test_sources_that_disagree_on_tokens_refuse_the_market(shared_data: Path) -> None:
    clob = doc(shared_data, "nautilus_py_market.json")
    gamma = doc(shared_data, "nautilus_rs_gamma_market_live.json")
    gamma.update(conditionId=clob["condition_id"])  # its own token ids: not the CLOB's
    catalog = load_documents(
        {"clob.json": json.dumps(clob).encode(), "gamma.json": json.dumps(gamma).encode()}
    )
    assert [] == catalog.markets
    [(cid, why)] = catalog.refused
    assert cid == clob["condition_id"] and "disagree on token_ids" in why


def test_an_augmented_event_is_no_complete_basket(shared_data: Path) -> None:
    catalog = load_market_files([rest(shared_data, "nautilus_rs_gamma_event.json")])
    [event] = catalog.events
    assert event.augmented and not event.complete
    assert all(m.augmented for m in catalog.markets)
    assert {} == catalog.registry().complete_baskets()


def test_a_complete_event_is_a_basket(shared_data: Path) -> None:
    [event] = doc(shared_data, "nautilus_rs_gamma_event.json")
    event["negRiskAugmented"] = False
    catalog = load_documents({"event.json": json.dumps([event]).encode()})
    [complete] = catalog.events
    assert complete.complete
    baskets = catalog.registry().complete_baskets()
    assert [complete.event_id] == list(baskets)
    assert 2 == len(baskets[complete.event_id])


def test_an_event_that_does_not_say_whether_it_is_augmented_is_taken_as_augmented(shared_data: Path) -> None:
    [event] = doc(shared_data, "nautilus_rs_gamma_event.json")
    del event["negRiskAugmented"]
    [parsed] = load_documents({"event.json": json.dumps([event]).encode()}).events
    assert parsed.augmented


_UNICODE_TOKEN = json.dumps(
    [{"conditionId": "0xab", "clobTokenIds": json.dumps(["\u0661", "2"]), "outcomes": '["a", "b"]'}]
).encode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"hello": 1}', "not a markets document"),
        (b"[" * 5000 + b"]" * 5000, None),
        (b'[{"conditionId": "0xab", "orderPriceMinTickSize": 1e309}]', None),
        (_UNICODE_TOKEN, None),
        (
            b'{"data": [{"condition_id": "0xab", "tokens": [], "minimum_tick_size": "abc",'
            b' "minimum_order_size": 5, "neg_risk": false}]}',
            "minimum_tick_size",
        ),
    ],
    ids=["unknown-shape", "deep", "huge-tick", "unicode-digits", "bad-tick"],
)
def test_hostile_documents_are_malformed_not_crashes(text: bytes, problem: str | None) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        load_documents({"bad.json": text})


def test_the_recorded_matching_delays_load(shared_data: Path) -> None:
    page = doc(shared_data, "nautilus_py_markets.json")
    stated = {r["condition_id"]: r.get("seconds_delay") for r in page["data"]}
    markets = load_market_files([rest(shared_data, "nautilus_py_markets.json")]).markets
    assert markets
    assert all((stated[m.condition_id] or 0) * 1_000 == m.match_delay_ms for m in markets)
    assert any(m.match_delay_ms == 3_000 for m in markets)
