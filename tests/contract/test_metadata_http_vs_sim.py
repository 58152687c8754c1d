"""The live metadata loader against the CLOB simulator: the Catalog loaded over HTTP (CLOB GET /markets,
GET /clob-markets, Gamma under /gamma) equals the file loader's for the same files; and a market the
simulator resolves reaches a subscriber as the recorded `market_resolved`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from polysnipe.adapters.clob.parsing import parse_market_message
from polysnipe.adapters.metadata import Catalog, load_market_files
from polysnipe.adapters.metadata_http import MetadataHttpConfig, load_catalog_http
from polysnipe.adapters.sim.clob import ClobSimConfig, ClobSimState, create_app
from polysnipe.core.events import MarketResolved
from polysnipe.runners.cli import main
from polysnipe.runners.sim_clob import start_in_thread

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE_FILES = [SAMPLE / "markets.json", SAMPLE / "gamma_markets.json", SAMPLE / "gamma_events.json"]
RECORDED = [
    "nautilus_py_markets.json",
    "nautilus_py_market.json",
    "nautilus_rs_gamma_event.json",
    "nautilus_rs_gamma_market.json",
    "nautilus_rs_gamma_market_live.json",
    "nautilus_rs_gamma_market_sports_market_money_line.json",
    "nautilus_rs_clob_market_closed_binary_accepting_true.json",
]


def _same(expected: Catalog, actual: Catalog) -> None:
    assert sorted(expected.markets, key=lambda m: m.condition_id) == sorted(
        actual.markets, key=lambda m: m.condition_id
    )
    assert sorted(expected.events, key=lambda e: e.event_id) == sorted(
        actual.events, key=lambda e: e.event_id
    )
    assert sorted(c for c, _ in expected.refused) == sorted(c for c, _ in actual.refused)


def _over_asgi(files: list[Path], condition_ids: Sequence[str] = ()) -> Catalog:
    transport = httpx.ASGITransport(app=create_app(ClobSimState.from_files(files)))
    config = MetadataHttpConfig(
        clob_url="http://sim", gamma_url="http://sim/gamma", condition_ids=condition_ids
    )
    return asyncio.run(load_catalog_http(config, transport=transport))


def test_the_sample_over_http_is_the_sample_from_files() -> None:
    expected = load_market_files(SAMPLE_FILES)
    actual = _over_asgi(SAMPLE_FILES)
    _same(expected, actual)
    assert [e.complete for e in actual.events] == [True]
    assert any(m.fee_rate for m in actual.markets) and any(
        m.fees_known and not m.fee_rate for m in actual.markets
    )


def test_recorded_payloads_over_http_are_the_recorded_files(shared_data: Path) -> None:
    files = [shared_data / "polymarket" / "rest" / name for name in RECORDED]
    expected = load_market_files(files)
    actual = _over_asgi(files)
    _same(expected, actual)
    assert expected.fees_unknown  # the fail-closed markets are there, and fail closed over HTTP too
    assert sorted(expected.fees_unknown) == sorted(actual.fees_unknown)


def test_recorded_compact_answers_are_served_as_recorded(tmp_path: Path) -> None:
    market = json.loads((SAMPLE / "markets.json").read_bytes())["data"][0]
    cid = market["condition_id"]
    tokens = [{"t": t["token_id"], "o": t["outcome"]} for t in market["tokens"]]
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps({cid: {"t": tokens, "mts": 0.01, "nr": False, "fd": {"r": 0.05, "e": 1}}}))
    files = [SAMPLE / "markets.json", compact]
    actual = _over_asgi(files)
    _same(load_market_files(files), actual)
    got = next(m for m in actual.markets if m.condition_id == cid)
    assert (50_000, 1, True) == (got.fee_rate, got.fee_exponent, got.fees_known)


def test_a_selection_loads_its_markets_and_the_legs_of_their_event() -> None:
    everything = load_market_files(SAMPLE_FILES)
    [event] = everything.events
    plain = next(m for m in everything.markets if not m.neg_risk)
    selected = (plain.condition_id, event.condition_ids[0])
    actual = _over_asgi(SAMPLE_FILES, condition_ids=selected)
    assert set(selected) | set(event.condition_ids) == {m.condition_id for m in actual.markets}
    assert [event] == actual.events
    by_id = {m.condition_id: m for m in everything.markets}
    assert all(by_id[m.condition_id] == m for m in actual.markets)
    assert actual.registry().complete_baskets()


def test_over_a_real_server_too() -> None:
    base, stop = start_in_thread(SAMPLE_FILES)
    try:
        config = MetadataHttpConfig(clob_url=base, gamma_url=base + "/gamma")
        _same(load_market_files(SAMPLE_FILES), asyncio.run(load_catalog_http(config)))
    finally:
        stop()


# -- resolution --------------------------------------------------------------------------------------
async def _resolution(
    base: str, condition_id: str, tokens: list[str], winner: str
) -> tuple[dict[str, Any], list[str | bytes]]:
    ws_url = base.replace("http://", "ws://") + "/ws/market"
    async with websockets.connect(ws_url) as plain, websockets.connect(ws_url) as custom:
        await plain.send(json.dumps({"type": "market", "assets_ids": tokens}))
        await custom.send(
            json.dumps({"type": "market", "assets_ids": tokens, "custom_feature_enabled": True})
        )
        for sock in (plain, custom):
            json.loads(await asyncio.wait_for(sock.recv(), 5))  # the initial books
        async with httpx.AsyncClient(base_url=base) as client:
            answer = await client.post(
                "/_sim/resolve", json={"market": condition_id, "winning_asset_id": winner}
            )
            assert 200 == answer.status_code, answer.text
            again = await client.post(
                "/_sim/resolve", json={"market": condition_id, "winning_asset_id": winner}
            )
            assert 409 == again.status_code
        message = json.loads(await asyncio.wait_for(custom.recv(), 5))
        others = []
        with pytest.raises(TimeoutError):
            others.append(await asyncio.wait_for(plain.recv(), 0.3))
        return message, others


def test_a_resolved_market_reaches_subscribers_as_the_recorded_message(shared_data: Path) -> None:
    recorded = json.loads(
        (shared_data / "polymarket" / "ws" / "nautilus_rs_ws_market_resolved_msg.json").read_bytes()
    )
    catalog = load_market_files(SAMPLE_FILES)
    market = next(m for m in catalog.markets if not m.neg_risk)
    base, stop = start_in_thread(SAMPLE_FILES, config=ClobSimConfig())
    try:
        message, others = asyncio.run(
            _resolution(base, market.condition_id, list(market.token_ids), market.token_ids[1])
        )
    finally:
        stop()
    assert sorted(recorded) == sorted(message)
    assert [type(v) for _, v in sorted(recorded.items())] == [type(v) for _, v in sorted(message.items())]
    assert (market.condition_id, market.token_ids[1], market.outcomes[1]) == (
        message["market"], message["winning_asset_id"], message["winning_outcome"]
    )  # fmt: skip
    assert [] == others  # without custom_feature_enabled the venue does not send it (PROTOCOL 10.1)
    [event] = parse_market_message(message)
    assert MarketResolved(int(message["timestamp"]), market.condition_id, market.token_ids[1]) == event


def test_resolve_refuses_what_is_not_a_market_or_its_token() -> None:
    state = ClobSimState.from_files(SAMPLE_FILES)
    market = next(iter(state.registry))

    async def post(body: object) -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.post("/_sim/resolve", json=body)

    assert (
        404
        == asyncio.run(post({"market": "0x" + "0" * 64, "winning_asset_id": market.token_ids[0]})).status_code
    )
    assert 400 == asyncio.run(post({"market": market.condition_id, "winning_asset_id": "1"})).status_code
    assert 400 == asyncio.run(post({"market": market.condition_id})).status_code
    assert {} == state.resolved


# -- the CLI -----------------------------------------------------------------------------------------
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # a public anvil test key


@pytest.mark.parametrize("command", ["paper", "run"])
def test_paper_and_run_load_their_markets_from_the_venue(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    journal_env: str,
) -> None:
    monkeypatch.setenv("POLYSNIPE_CLOB_PRIVATE_KEY", KEY)
    base, stop = start_in_thread(SAMPLE_FILES, config=ClobSimConfig(default_usdc_micro=1_000_000_000))
    ws = base.replace("http://", "ws://") + "/ws" + ("/market" if command == "paper" else "")
    try:
        code = main([command, "--clob-url", base, "--gamma-url", base + "/gamma", "--ws-url", ws,
                     "--duration-s", "1", "--out", str(tmp_path / "out")])  # fmt: skip
    finally:
        stop()
    assert 0 == code, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert command == report["inputs"]["mode"] or report["inputs"]["mode"] == "live"


def test_a_venue_without_metadata_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, stop = start_in_thread(SAMPLE_FILES)
    try:
        code = main(["paper", "--clob-url", base, "--gamma-url", base + "/nowhere", "--duration-s", "1",
                     "--out", str(tmp_path / "out")])  # fmt: skip
    finally:
        stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert 2 == code
    assert 1 == len(err) and "cannot load market metadata" in err[0] and "/nowhere/markets" in err[0]
    assert "Traceback" not in err[0]


def test_an_unknown_market_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, stop = start_in_thread(SAMPLE_FILES)
    try:
        code = main(["paper", "--clob-url", base, "--gamma-url", base + "/gamma",
                     "--market", "0x" + "cd" * 32, "--out", str(tmp_path / "out")])  # fmt: skip
    finally:
        stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert 2 == code and 1 == len(err) and "does not list market 0x" + "cd" * 32 in err[0]
