"""The HTTP metadata loader against hostile or broken venues (httpx.MockTransport): every failure is one
MetadataUnavailable naming the URL and the fault, and what the loader cannot know fails closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from polysnipe.adapters.clob.retry import RetryPolicy
from polysnipe.adapters.metadata import Catalog
from polysnipe.adapters.metadata_http import MetadataHttpConfig, MetadataUnavailable, load_catalog_http

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
ROWS: list[dict[str, Any]] = json.loads((SAMPLE / "markets.json").read_bytes())["data"]
GAMMA: list[dict[str, Any]] = json.loads((SAMPLE / "gamma_markets.json").read_bytes())
CID = ROWS[0]["condition_id"]
END = "LTE="


def _venue(
    pages: dict[str, Any] | None = None,
    gamma: Callable[[httpx.Request], Any] | None = None,
    compact: Callable[[str], httpx.Response] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """CLOB pages by cursor (default: one page of every sample row), Gamma answers, compact answers."""
    pages = pages if pages is not None else {"MA==": {"data": ROWS, "next_cursor": "LTE="}}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/markets":
            page = pages[request.url.params["next_cursor"]]
            return httpx.Response(200, content=page if isinstance(page, bytes) else json.dumps(page).encode())
        if path.startswith("/clob-markets/"):
            if compact is not None:
                return compact(path.rsplit("/", 1)[1])
            return httpx.Response(404, json={"error": "market not found"})
        if path.startswith("/markets/"):
            return httpx.Response(404, json={"error": "market not found"})
        if path in ("/gamma/markets", "/gamma/events"):
            answer = gamma(request) if gamma is not None else []
            return httpx.Response(
                200, content=answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            )
        return httpx.Response(404, json={"error": "not found"})

    return handle


async def _no_sleep(_: float) -> None:
    return None


def _load(handler: Callable[[httpx.Request], httpx.Response], **config: Any) -> Catalog:
    settings = MetadataHttpConfig(clob_url="http://clob", gamma_url="http://clob/gamma", **config)
    return asyncio.run(
        load_catalog_http(
            settings,
            transport=httpx.MockTransport(handler),
            policy=RetryPolicy(max_attempts=1),
            sleep=_no_sleep,
        )
    )


def _refused(handler: Callable[[httpx.Request], httpx.Response], *words: str, **config: Any) -> str:
    with pytest.raises(MetadataUnavailable) as caught:
        _load(handler, **config)
    text = str(caught.value)
    assert "\n" not in text
    for word in words:
        assert word in text
    return text


def test_clob_rows_alone_load_with_fees_unknown() -> None:
    catalog = _load(_venue())
    assert len(ROWS) == len(catalog.markets)
    assert catalog.markets and all(not m.fees_known for m in catalog.markets)  # no source says: fail closed


def test_pages_are_followed_until_the_last_cursor() -> None:
    pages = {
        "MA==": {"data": ROWS[:2], "next_cursor": "Mg=="},
        "Mg==": {"data": ROWS[2:], "next_cursor": "LTE="},
    }
    assert len(ROWS) == len(_load(_venue(pages)).markets)


def test_gamma_fees_and_compact_fd_reach_the_markets() -> None:
    def gamma(request: httpx.Request) -> Any:
        if request.url.path.endswith("/markets"):
            wanted = set(request.url.params.get_list("condition_ids"))
            return [m for m in GAMMA if m["conditionId"] in wanted]
        return []

    def compact(cid: str) -> httpx.Response:
        return httpx.Response(200, json={"fd": {"r": 0.05, "e": 1}} if cid == CID else {})

    by_id = {m.condition_id: m for m in _load(_venue(gamma=gamma, compact=compact)).markets}
    assert (50_000, True) == (by_id[CID].fee_rate, by_id[CID].fees_known)
    in_gamma = {m["conditionId"] for m in GAMMA}
    assert all(m.fees_known for cid, m in by_id.items() if cid in in_gamma)


def test_gamma_fees_enabled_without_a_schedule_stay_unknown() -> None:
    row = next(m for m in GAMMA if m["conditionId"] == CID)
    broken = {k: v for k, v in row.items() if k != "feeSchedule"} | {"feesEnabled": True}
    catalog = _load(_venue(gamma=lambda r: [broken] if r.url.path.endswith("/markets") else []))
    assert CID in catalog.fees_unknown


def test_a_selection_keeps_only_its_rows_and_stops_paging() -> None:
    seen: list[str] = []
    pages = {
        "MA==": {"data": [ROWS[0], {"condition_id": "0xjunk", "tokens": "not a list"}], "next_cursor": "Mg=="}
    }
    handler = _venue(pages)

    def watch(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return handler(request)

    catalog = _load(watch, condition_ids=(CID,))
    assert [CID] == [m.condition_id for m in catalog.markets]
    assert 1 == seen.count("/markets")  # found on the first page: no second page asked for


def test_a_selected_market_the_venue_does_not_list_is_an_error() -> None:
    _refused(_venue(), "does not list market 0x" + "ab" * 32, condition_ids=("0x" + "ab" * 32,))


@pytest.mark.parametrize(
    ("page", "words"),
    [
        ({"data": ROWS, "next_cursor": "!!not base64!!"}, ["next_cursor is not a base64 cursor"]),
        ({"data": ROWS, "next_cursor": "MA=="}, ["repeats an earlier page"]),
        ({"data": ROWS, "next_cursor": "é" * 8}, ["next_cursor is not a base64 cursor"]),
        ({"data": ROWS}, ["carries no next_cursor"]),
        ({"next_cursor": "LTE="}, ["data"]),
        ({"data": [{"tokens": []}], "next_cursor": "LTE="}, ["condition_id"]),
        (b"<html>gateway</html>", ["GET /markets page"]),
        (b'{"data": [], "next_cursor": "LTE="} trailing', ["GET /markets page"]),
    ],
)  # fmt: skip
def test_hostile_pages_are_one_clear_error(page: Any, words: list[str]) -> None:
    _refused(_venue({"MA==": page, "LTE=": page}), "http://clob/markets", *words)


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (ROWS[0] | {"minimum_tick_size": "٠.01"}, "minimum_tick_size"),
        (ROWS[0] | {"tokens": [{"token_id": "１２", "outcome": "Yes"}] * 2}, "token id is not a uint256"),
        ({k: v for k, v in ROWS[0].items() if k != "neg_risk"}, "neg_risk"),
        (ROWS[0] | {"tokens": "not a list"}, "tokens"),
    ],
    ids=["arabic-indic-tick", "full-width-token", "no-neg-risk-flag", "mistyped-tokens"],
)
def test_a_malformed_market_on_a_page_is_refused_alone(row: dict[str, Any], words: str) -> None:
    """One bad row on the venue's listing refuses its market; every other market still loads."""
    catalog = _load(_venue({"MA==": {"data": [row, *ROWS[1:]], "next_cursor": END}}))
    assert sorted(r["condition_id"] for r in ROWS[1:]) == sorted(m.condition_id for m in catalog.markets)
    [(cid, why)] = catalog.refused
    assert (CID, True) == (cid, words in why)


def test_a_malformed_gamma_market_is_refused_alone() -> None:
    """Gamma's row for a market mistypes a field: that market is refused (its CLOB row cannot be
    checked against what Gamma meant), the others load with Gamma's fees."""
    bad = next(m for m in GAMMA if m["conditionId"] == CID) | {"negRisk": "sometimes"}
    rows = [bad, *(m for m in GAMMA if m["conditionId"] != CID)]
    catalog = _load(_venue(gamma=lambda r: rows if r.url.path.endswith("/markets") else []))
    assert CID not in {m.condition_id for m in catalog.markets}
    assert [CID] == [cid for cid, _ in catalog.refused]
    in_gamma = {m["conditionId"] for m in GAMMA} - {CID}
    assert in_gamma and all(m.fees_known for m in catalog.markets if m.condition_id in in_gamma)


def test_a_page_larger_than_the_bound_is_refused() -> None:
    _refused(_venue(), "a page of", "markets (at most 2)", max_page_items=2)


def test_endless_paging_is_bounded() -> None:
    class Pages(dict[str, Any]):
        def __missing__(self, cursor: str) -> Any:
            n = int(cursor[1:]) + 1 if cursor.startswith("p") else 0
            return {"data": [], "next_cursor": f"p{n}"}

    _refused(_venue(Pages()), "more than 50 metadata requests", max_pages=50)


def test_too_many_markets_ask_for_a_selection() -> None:
    _refused(_venue(), "more than 3 markets", "select the markets", max_markets=3)


def test_an_answer_too_large_is_refused() -> None:
    _refused(_venue(), "bytes, more than 100", max_answer_bytes=100)


def test_a_compact_answer_cannot_speak_for_another_market() -> None:
    other = ROWS[1]["condition_id"]
    injected = b'{"fd": {"r": 0, "e": 1}}, "' + other.encode() + b'": {"fd": {"r": 0, "e": 1}}'
    _refused(_venue(compact=lambda cid: httpx.Response(200, content=injected)), "/clob-markets/", "answer")


def test_a_gamma_page_longer_than_asked_is_refused() -> None:
    _refused(_venue(gamma=lambda r: GAMMA), f"{len(GAMMA)} rows, 2 were asked for", gamma_page_size=2)


def test_a_hostile_event_id_refuses_its_market_and_is_never_asked_for() -> None:
    neg = next(m for m in GAMMA if m["negRisk"])
    hostile = neg | {"events": [{"id": "../../admin?x=1"}]}
    rows = [hostile, *(m for m in GAMMA if m["conditionId"] != neg["conditionId"])]
    asked: list[str] = []

    def gamma(request: httpx.Request) -> Any:
        asked.append(str(request.url))
        return rows if request.url.path.endswith("/markets") else []

    catalog = _load(_venue(gamma=gamma))
    [(cid, why)] = catalog.refused
    assert (neg["conditionId"], True) == (cid, "not a Gamma event id" in why)
    assert len(ROWS) - 1 == len(catalog.markets)
    assert not any("admin" in url for url in asked)


def test_server_errors_and_unreachable_venues_are_one_line() -> None:
    _refused(lambda r: httpx.Response(503, json={"error": "down"}), "GET http://clob/markets", "503")

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    _refused(unreachable, "GET http://clob/markets", "connect")


def test_the_config_refuses_what_is_not_a_condition_id() -> None:
    # attrs types the field's converter=tuple as taking Iterable[_T_co], which only Any meets
    condition_ids: Any = ("0x12/../../x",)
    with pytest.raises(ValueError, match="not a condition id"):
        MetadataHttpConfig(clob_url="http://c", gamma_url="http://g", condition_ids=condition_ids)
