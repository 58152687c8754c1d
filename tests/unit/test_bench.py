"""The bench commands run on tiny inputs and write their JSON; speed itself is never asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from polysnipe.runners.bench import tail_stats
from polysnipe.runners.bench_nautilus import HOW_TO_GET, find_nautilus_python
from polysnipe.runners.cli import build_parser, main
from polysnipe.tools.datagen import GENERATED_METADATA, generate

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture
def tiny_events(tmp_path: Path) -> Path:
    """The sample's first 400 lines: its opening books and a few hundred deltas."""
    lines = (SAMPLE / "events.jsonl").read_text().splitlines(keepends=True)[:400]
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(lines))
    return path


def _markets() -> list[str]:
    return [arg for name in ("markets.json", "gamma_markets.json", "gamma_events.json")
            for arg in ("--markets", str(SAMPLE / name))]  # fmt: skip


def _run(argv: list[str], out: Path, name: str) -> dict[str, object]:
    assert 0 == main(["bench", *argv, "--repeat", "2", "--out", str(out)])
    result: dict[str, object] = json.loads((out / f"{name}.json").read_text())
    return result


def test_tail_percentiles_are_withheld_under_their_sample_counts() -> None:
    few = tail_stats([1_000 * i for i in range(1, 999)])
    assert 998 == few["samples"]
    assert 499.0 == few["p50_us"]
    assert 899.0 == few["p90_us"]
    assert "n/a (998 samples)" == few["p99_us"] == few["p99_9_us"]
    assert 998.0 == few["max_us"]
    enough = tail_stats([1_000 * i for i in range(1, 1_001)])
    assert 990.0 == enough["p99_us"]
    assert "n/a (1000 samples)" == enough["p99_9_us"]
    assert {"samples": 0} == {k: v for k, v in tail_stats([]).items() if k == "samples"}
    assert "n/a (0 samples)" == tail_stats([])["p50_us"]


def test_bench_ws_times_the_given_stream(tmp_path: Path, tiny_events: Path) -> None:
    result = _run(["ws", "--events", str(tiny_events)], tmp_path, "ws")
    assert {"machine", "repeat", "all_messages", "price_change_only", "events_file"} <= result.keys()
    part = result["all_messages"]
    assert isinstance(part, dict)
    assert part["frames"] > 300
    assert {"cpu_s", "wall_s", "messages_per_s", "deltas_applied_per_s"} <= part["keeper"].keys()
    machine = result["machine"]
    assert isinstance(machine, dict)
    assert {"cpu_count", "python"} <= machine.keys()


def test_bench_book_times_both_books_on_the_given_stream(tmp_path: Path, tiny_events: Path) -> None:
    from polysnipe.core.book import compiled_available

    result = _run(["book", "--events", str(tiny_events)], tmp_path, "book")
    assert {"deltas", "snapshots", "books", "loop_only_ns_per_delta", "machine"} <= result.keys()
    books = result["books"]
    assert isinstance(books, dict)
    assert ({"python", "compiled"} if compiled_available() else {"python"}) == books.keys()
    assert {"cpu_s", "ns_per_delta", "deltas_per_s"} <= books["python"].keys()
    # both books saw the same stream, so the same touches
    assert len({row["two_sided_after"] for row in books.values()}) == 1


def test_bench_backtest_reports_replay_and_end_to_end(tmp_path: Path, tiny_events: Path) -> None:
    result = _run(["backtest", "--events", str(tiny_events), *_markets()], tmp_path, "backtest")
    median = result["median"]
    assert isinstance(median, dict)
    for key in ("replay_events_per_s", "replay_deltas_per_s", "end_to_end_events_per_s",
                "end_to_end_deltas_per_s", "replay_cpu_s", "end_to_end_cpu_s"):  # fmt: skip
        assert key in median
    assert median["end_to_end_s"] >= median["replay_s"]
    runs = result["runs"]
    assert isinstance(runs, list)
    assert 2 == len(runs)
    assert "nautilus" not in result  # the peer has its own command, compare-nautilus
    # each repeat is a cold run (parse, write the cache) and a warm one, beside a private link
    assert {"load_s", "cold_load_s", "cold_end_to_end_s", "cold_replay_s"} <= median.keys()
    assert median["end_to_end_s"] >= median["load_s"]
    assert not (tiny_events.parent / "tiny.jsonl.cache").exists()


def test_the_benches_find_the_bundled_sample_from_any_directory(
    tmp_path: Path, tiny_events: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default --markets was data/sample/... relative to the working directory
    monkeypatch.chdir(tmp_path)
    result = _run(["backtest", "--events", str(tiny_events)], tmp_path / "out", "backtest")
    assert result["median"]


def test_bench_backtest_without_the_cache_parses_every_run(tmp_path: Path, tiny_events: Path) -> None:
    argv = ["backtest", "--events", str(tiny_events), *_markets(), "--no-cache"]
    result = _run(argv, tmp_path, "backtest")
    median = result["median"]
    assert isinstance(median, dict)
    assert "load_s" in median
    assert "cold_load_s" not in median
    assert "off (--no-cache)" == result["event_cache"]


def test_compare_nautilus_parses_its_options() -> None:
    args = build_parser().parse_args(
        ["bench", "compare-nautilus", "--markets", "a.json", "--markets", "b.json", "--events", "e.jsonl",
         "--repeat", "5", "--nautilus-python", "/opt/py", "--out", "figs"]
    )  # fmt: skip
    assert "compare-nautilus" == args.what
    assert ["a.json", "b.json"] == args.markets
    assert ("e.jsonl", 5, "/opt/py", "figs") == (args.events, args.repeat, args.nautilus_python, args.out)
    defaults = build_parser().parse_args(["bench", "compare-nautilus"])
    assert (None, None, 3, None) == (
        defaults.events,
        defaults.markets,
        defaults.repeat,
        defaults.nautilus_python,
    )


@pytest.fixture
def generated(tmp_path: Path) -> list[str]:
    """A 30 s generated set: `--events E --markets M ...`."""
    out = tmp_path / "gen"
    generate(out, seed=11, duration_s=30)
    markets = [arg for name in GENERATED_METADATA for arg in ("--markets", str(out / name))]
    return ["--events", str(out / "events.jsonl"), *markets]


def test_compare_nautilus_without_nautilus_says_how_to_get_it_and_exits_0(
    tmp_path: Path, generated: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # this interpreter (the project's) has no nautilus_trader
    argv = ["bench", "compare-nautilus", *generated, "--nautilus-python", sys.executable]
    assert 0 == main([*argv, "--repeat", "1", "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "compare-nautilus.json").read_text())
    assert "skipped" == result["status"]
    assert f"{sys.executable} (from --nautilus-python) does not run or cannot import" in result["why"]
    assert "pip install nautilus_trader" in result["how"]
    assert result["data"].startswith(generated[1])
    assert {"bench", "data", "how", "machine", "repeat", "status", "why"} == result.keys()
    printed = capsys.readouterr().out.splitlines()
    assert 2 == len(printed)  # the skip, and where the JSON went
    assert printed[0].startswith("compare-nautilus skipped: NautilusTrader not found: ")


def test_compare_nautilus_takes_the_interpreter_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYSNIPE_NAUTILUS_PYTHON", sys.executable)
    assert 0 == main(["bench", "compare-nautilus", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "compare-nautilus.json").read_text())
    assert "skipped" == result["status"]
    assert "(from POLYSNIPE_NAUTILUS_PYTHON)" in result["why"]
    assert "generated: polysnipe generate --seed 11 (datagen defaults, 1800 s)" == result["data"]


def test_compare_nautilus_runs_both_engines_where_nautilus_is_found(
    tmp_path: Path, generated: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    python, why = find_nautilus_python(None)
    if python is None:
        pytest.skip(f"{why}; {HOW_TO_GET}")
    assert 0 == main(
        ["bench", "compare-nautilus", *generated, "--repeat", "1", "--out", str(tmp_path / "out")]
    )
    result = json.loads((tmp_path / "out" / "compare-nautilus.json").read_text())
    assert "ran" == result["status"]
    rates = {"replay_deltas_per_s", "replay_deltas_per_cpu_s", "end_to_end_deltas_per_s",
             "end_to_end_deltas_per_cpu_s"}  # fmt: skip
    assert rates == result["ours_over_nautilus"].keys()
    for side in ("ours", "nautilus"):
        assert 1 == len(result[side]["runs"])
        assert (
            rates | {"replay_s", "replay_cpu_s", "end_to_end_s", "end_to_end_cpu_s"}
            <= result[side]["median"].keys()
        )
    peer = result["nautilus"]["median"]
    # every delta reached the strategy, one at a time, and its reads found books
    assert peer["deltas"] == peer["batches_seen"] >= result["deltas"]
    assert 0 < peer["best_bids_seen"] <= peer["batches_seen"]
    assert result["nautilus"]["version"] in capsys.readouterr().out


def test_bench_latency_withholds_the_p99_of_a_short_run(
    tmp_path: Path, tiny_events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = SAMPLE / "events.jsonl"
    result = _run(["latency", "--events", str(full), *_markets()], tmp_path, "latency")
    median = result["median"]
    assert isinstance(median, dict)
    assert {"all", "single", "basket", "single_step", "ecdsa"} == median.keys()
    # the parts come from the same decisions: a step per single order, a signature per order placed
    assert median["single"]["samples"] == median["single_step"]["samples"]
    assert median["ecdsa"]["samples"] >= median["all"]["samples"]
    assert median["single_step"]["p50_us"] < median["single"]["p50_us"]
    n = median["all"]["samples"]
    assert 0 < n < 1_000
    assert f"n/a ({n} samples)" == median["all"]["p99_us"]
    assert isinstance(median["all"]["p50_us"], float)
    assert f"n/a ({n} samples)" in capsys.readouterr().out
    assert [str(full)] == result["sources"]


def test_bench_live_runs_entries_through_redis_into_the_journaled_engine(tmp_path: Path) -> None:
    result = _run(["live", "-n", "300"], tmp_path, "live")
    assert 300 == result["entries"]
    assert {"entries_per_s", "events_per_s", "wall_s", "cpu_s", "bus_latency_us", "machine"} <= set(result)
    # 1,000 latency samples: the p99 is a figure
    assert isinstance(result["bus_latency_us"]["p99_us"], float)  # type: ignore[index]


def test_bench_latency_signs_a_baskets_legs_together_and_hands_them_on_as_one_batch() -> None:
    import asyncio

    from kit import order_request
    from polysnipe.adapters.clob.signing import OrderSigner, ParallelSigner
    from polysnipe.runners.bench import _SigningExecution
    from polysnipe.runners.bench_orders import ANVIL_TEST_KEY

    token = "71321045679252212594626385532706912750332728571942532289631379312455583992563"

    class Batches:
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        async def submit_many(self, orders: list[object], now_ms: int) -> list[tuple[()]]:
            self.batches.append([o.order_id for o in orders])  # type: ignore[attr-defined]
            return [()] * len(orders)

    signer = ParallelSigner(lambda: OrderSigner.from_key(ANVIL_TEST_KEY, 137), 1)
    signer.start()
    inner = Batches()
    legs = [order_request(f"l{i}-0", token_id=token) for i in range(3)]
    try:
        assert [(), (), ()] == asyncio.run(_SigningExecution(inner, signer).submit_many(legs, 1))
        with pytest.raises(ValueError, match="token id"):
            asyncio.run(
                _SigningExecution(inner, signer).submit_many([*legs, order_request("bad-0", token_id="x")], 1)
            )
    finally:
        signer.close()
    assert [["l0-0", "l1-0", "l2-0"]] == inner.batches  # a leg that cannot be signed stops the batch


def test_bench_venue_replays_both_venues_with_orders_resting(tmp_path: Path, tiny_events: Path) -> None:
    from polysnipe.core.book import compiled_available

    result = _run(["venue", "--events", str(tiny_events), *_markets()], tmp_path, "venue")
    assert {"events", "deltas", "orders_placed", "fills", "venues", "machine"} <= result.keys()
    venues = result["venues"]
    assert isinstance(venues, dict)
    assert ({"python", "compiled"} if compiled_available() else {"python"}) == venues.keys()
    assert {"cpu_s", "events_per_s", "deltas_per_s"} <= venues["python"].keys()
    placed = result["orders_placed"]
    assert isinstance(placed, int) and placed > 0  # orders rested: the queue path was measured
    assert result["same_answers"] is True
    arrivals = result["arrivals"]
    assert isinstance(arrivals, int) and arrivals > 0  # FAKs arrived: the matching was measured
    assert {"arrival_us"} <= venues["python"].keys()
    assert result["same_arrival_reports"] is True


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("ws", "holds no market-channel message"),
        ("book", "holds no book delta"),
    ],
)
def test_an_events_file_without_market_messages_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, expected: str
) -> None:
    # both benches crashed on such a file (ValueError, ZeroDivisionError) instead of naming it
    events = tmp_path / "notes.jsonl"
    events.write_text('{"note": "not a market message"}\n')
    assert 2 == main(["bench", what, "--events", str(events), "--out", str(tmp_path / "out")])
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("polysnipe: error: ") and expected in line
