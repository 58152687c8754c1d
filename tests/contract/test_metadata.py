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


_GOOD_ID = "0x" + "1" * 64
_BAD_ID = "0x" + "2" * 64


def _gamma_row(cid: str, tokens: tuple[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "conditionId": cid,
        "clobTokenIds": json.dumps(list(tokens)),
        "outcomes": '["Yes", "No"]',
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "negRisk": False,
        "feesEnabled": False,
        "active": True,
        "closed": False,
        **fields,
    }


def _clob_row(cid: str, tokens: tuple[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "condition_id": cid,
        "tokens": [{"token_id": tokens[0], "outcome": "Yes"}, {"token_id": tokens[1], "outcome": "No"}],
        "minimum_tick_size": 0.01,
        "minimum_order_size": 5,
        "neg_risk": False,
        **fields,
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"hello": 1}', "not a markets document"),
        (b"[" * 5000 + b"]" * 5000, None),
        (b'[{"conditionId": "0xab", "orderPriceMinTickSize": 1e309}]', "out of range"),
        (b'[{"conditionId": 7, "orderMinSize": "x"}]', "conditionId"),
        (b'{"data": [{"condition_id": "0xab", "tokens": []}, {"tokens": 5}]}', "condition_id"),
        (b'[{"markets": [{"conditionId": "0xab"}], "negRiskAugmented": "x"}, {"markets": 5}]', None),
    ],
    ids=[
        "unknown-shape",
        "deep",
        "unreadable-number",
        "unnamed-gamma-row",
        "unnamed-clob-row",
        "unnamed-event-members",
    ],
)
def test_hostile_documents_are_malformed_not_crashes(text: bytes, problem: str | None) -> None:
    """What cannot be read, or names no market, is malformed as a whole document."""
    with pytest.raises(MalformedMessage, match=problem):
        load_documents({"bad.json": text})


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (_gamma_row(_BAD_ID, ("3", "4"), orderPriceMinTickSize=1e300), "orderPriceMinTickSize"),
        (_gamma_row(_BAD_ID, ("\u0661", "4")), "token id"),
        (_gamma_row(_BAD_ID, ("3", "4"), negRisk="yes"), "negRisk"),
        (_gamma_row(_BAD_ID, ("3", "4"), feeSchedule={"rate": 7, "exponent": 1}), "feeSchedule.rate"),
    ],
    ids=["huge-tick", "unicode-digits", "mistyped-flag", "fee-rate-out-of-range"],
)
def test_a_malformed_gamma_market_refuses_itself_and_the_others_load(
    bad: dict[str, Any], problem: str
) -> None:
    page = json.dumps([_gamma_row(_GOOD_ID, ("1", "2")), bad]).encode()
    catalog = load_documents({"gamma_markets.json": page})
    assert [_GOOD_ID] == [m.condition_id for m in catalog.markets]
    [(cid, why)] = catalog.refused
    assert _BAD_ID == cid
    assert why.startswith("malformed in gamma:gamma_markets.json: ")
    assert problem in why


def test_a_malformed_clob_row_refuses_its_market_even_where_gamma_describes_it_well() -> None:
    """What the bad row said cannot be checked against the good source: the market is refused."""
    page = json.dumps(
        {"data": [_clob_row(_GOOD_ID, ("1", "2")), _clob_row(_BAD_ID, ("3", "4"), minimum_tick_size="abc")]}
    ).encode()
    gamma = json.dumps([_gamma_row(_BAD_ID, ("3", "4"))]).encode()
    catalog = load_documents({"markets.json": page, "gamma_markets.json": gamma})
    assert [_GOOD_ID] == [m.condition_id for m in catalog.markets]
    [(cid, why)] = catalog.refused
    assert (_BAD_ID, True) == (cid, "minimum_tick_size" in why)


def test_a_malformed_compact_answer_refuses_that_market() -> None:
    page = json.dumps([_clob_row(_GOOD_ID, ("1", "2")), _clob_row(_BAD_ID, ("3", "4"))]).encode()
    compact = json.dumps(
        {_GOOD_ID: {"fd": {"r": 0.02, "e": 1}}, _BAD_ID: {"fd": {"r": "x", "e": 1}}}
    ).encode()
    catalog = load_documents({"markets.json": page, "clob_markets.json": compact})
    [good] = catalog.markets
    assert (_GOOD_ID, True, 20_000) == (good.condition_id, good.fees_known, good.fee_rate)
    assert [_BAD_ID] == [cid for cid, _ in catalog.refused]


def _event(members: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"id": "9", "negRisk": True, "negRiskMarketID": "0x" + "e" * 64, "negRiskAugmented": False,
            "markets": members, **fields}  # fmt: skip


def test_an_event_with_a_malformed_member_is_no_basket_and_its_other_members_load() -> None:
    good = [_gamma_row("0x" + f"{n}" * 64, (str(2 * n), str(2 * n + 1)), negRisk=True) for n in (3, 4)]
    bad = _gamma_row(_BAD_ID, ("8", "9"), negRisk=True, orderMinSize="lots")
    catalog = load_documents({"gamma_events.json": json.dumps([_event([*good, bad])]).encode()})
    assert sorted(m["conditionId"] for m in good) == sorted(m.condition_id for m in catalog.markets)
    assert [_BAD_ID] == [cid for cid, _ in catalog.refused]
    assert {} == catalog.registry().complete_baskets()
    # the same event whole is a basket: the malformed member alone made it none
    whole = load_documents(
        {
            "gamma_events.json": json.dumps(
                [_event([*good, _gamma_row(_BAD_ID, ("8", "9"), negRisk=True)])]
            ).encode()
        }
    )
    assert 1 == len(whole.registry().complete_baskets())


def test_a_malformed_event_refuses_its_members_and_the_next_event_loads() -> None:
    first = [_gamma_row("0x" + f"{n}" * 64, (str(2 * n), str(2 * n + 1)), negRisk=True) for n in (3, 4)]
    second = [_gamma_row("0x" + f"{n}" * 64, (str(2 * n), str(2 * n + 1)), negRisk=True) for n in (5, 6)]
    text = json.dumps(
        [_event(first, negRiskAugmented="perhaps"), _event(second, id="10", negRiskMarketID="0x" + "f" * 64)]
    ).encode()
    catalog = load_documents({"gamma_events.json": text})
    assert sorted(m["conditionId"] for m in second) == sorted(m.condition_id for m in catalog.markets)
    refused = dict(catalog.refused)
    assert sorted(m["conditionId"] for m in first) == sorted(refused)
    assert all(
        why.startswith("malformed in gamma:gamma_events.json: its event is malformed")
        for why in refused.values()
    )
    assert ["0x" + "f" * 64] == list(catalog.registry().complete_baskets())


def test_the_recorded_matching_delays_load(shared_data: Path) -> None:
    page = doc(shared_data, "nautilus_py_markets.json")
    stated = {r["condition_id"]: r.get("seconds_delay") for r in page["data"]}
    markets = load_market_files([rest(shared_data, "nautilus_py_markets.json")]).markets
    assert markets
    assert all((stated[m.condition_id] or 0) * 1_000 == m.match_delay_ms for m in markets)
    assert any(m.match_delay_ms == 3_000 for m in markets)
