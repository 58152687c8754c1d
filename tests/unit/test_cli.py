"""The command line as a user meets it: every mistake is one line on stderr and exit code 2, a bug is
one "internal error" line and exit code 1, and --debug shows the traceback of either."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from polysnipe.runners.cli import build_parser, main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
MARKETS = str(SAMPLE / "markets.json")
EVENTS = str(SAMPLE / "events.jsonl")
DATABASE_URL = "postgresql://127.0.0.1:5432/test"
#: a public anvil test key: signs nothing that reaches a venue
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "POLYSNIPE_CONFIG",
        "POLYSNIPE_CLOB_PRIVATE_KEY",
        "POLYSNIPE_DATABASE_URL",
        "POLYSNIPE_CHAIN_ID",
    ):
        monkeypatch.delenv(name, raising=False)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def files(tmp_path: Path) -> dict[str, str]:
    """Bad inputs of every kind, by name ("bad.toml" as bad_toml, to fill a str.format template)."""
    (tmp_path / "empty.jsonl").write_text("\n  \n")
    (tmp_path / "no_markets.json").write_text('{"data": []}')
    (tmp_path / "not_markets.json").write_text('{"hello": 1}')
    (tmp_path / "bad.toml").write_text('[venu]\nqueue_model = "prob"\n')
    (tmp_path / "float.toml").write_text("[risk]\nmax_order_notional_usdc = 0.05\n")
    (tmp_path / "labels.jsonl").write_text(
        '{"kind": "news", "token_id": "1", "start_ms": "soon", "end_ms": 2}\n'
    )
    (tmp_path / "balances.json").write_text('{"bob": {"usdc": "1"}}')
    (tmp_path / "a_file").write_text("")
    (tmp_path / "no_sql").mkdir()
    os.mkfifo(tmp_path / "a_fifo")  # reading it waited for a writer for ever
    (tmp_path / "big_int.json").write_text('{"bob": {"usdc": ' + "9" * 5000 + "}}")
    (tmp_path / "negative.json").write_text('{"0x' + "ab" * 20 + '": {"usdc": "-5"}}')
    (tmp_path / "slow.toml").write_text("[venue]\nfeed_latency_ms = 100000000000000000000000000\n")
    return {p.name.replace(".", "_"): str(p) for p in tmp_path.iterdir()} | {
        "missing": str(tmp_path / "missing"),
        "dir": str(tmp_path),
    }


BACKTEST = f"backtest --markets {MARKETS} --events {EVENTS} --out {{dir}}/out --no-progress --no-cache"
PAPER = f"paper --markets {MARKETS} --out {{dir}}"
SIM = f"sim-clob --markets {MARKETS}"
MIGRATE = f"migrate --dir {MIGRATIONS}"

# (id, command line with {file} names from `files` and {port} a closed port, what the one line says)
MISTAKES: list[tuple[str, str, list[str]]] = [
    (
        "backtest: missing file",
        BACKTEST + " --markets {missing}",
        ["missing: no such file (given to --markets)"],
    ),
    ("backtest: a directory", BACKTEST + " --events {dir}", [": is a directory; --events takes a file"]),
    (
        "backtest: not markets",
        BACKTEST + " --markets {not_markets_json}",
        ["not_markets.json: not a markets file"],
    ),
    (
        # an empty answer beside others is accepted (test_the_backtest_generate_prints_next_runs)
        "backtest: no markets",
        f"backtest --markets {{no_markets_json}} --events {EVENTS} --out {{dir}}/out --no-progress",
        ["no_markets.json: holds no market"],
    ),
    (
        "backtest: empty events",
        BACKTEST + " --events {empty_jsonl}",
        ["empty.jsonl: is empty; --events takes"],
    ),
    (
        "backtest: bad labels",
        BACKTEST + " --labels {labels_jsonl}",
        ["labels.jsonl: line 1: start_ms must be"],
    ),
    (
        "backtest: no signals",
        BACKTEST + " --signals {missing}",
        ["missing: no such file (given to --signals)"],
    ),
    (
        "backtest: out is a file",
        BACKTEST + " --out {a_file}",
        ["a_file: exists and is not a directory; --out"],
    ),
    ("backtest: no config", BACKTEST + " --config {missing}", ["missing: settings file not found"]),
    ("backtest: config dir", BACKTEST + " --config {dir}", [": is a directory; --config takes a TOML file"]),
    (
        "backtest: unknown section",
        BACKTEST + " --config {bad_toml}",
        ["bad.toml: [venu]: unknown section; did you mean [venue]?"],
    ),
    (
        "backtest: float money",
        BACKTEST + " --config {float_toml}",
        ["float.toml: risk.max_order_notional_usdc: a float", 'write it as a string, e.g. "0.05"'],
    ),
    (
        "backtest: bad seed",
        BACKTEST + " --seed abc",
        ["polysnipe backtest: argument --seed: expected a whole number"],
    ),
    (
        "backtest: no events",
        f"backtest --markets {MARKETS} --out {{dir}}",
        ["the following arguments are required: --events"],
    ),
    (
        "generate: too short",
        "generate --seed 1 --out {dir} --duration-s 10",
        ["argument --duration-s: must be at least 30, got 10"],
    ),
    (
        "generate: a folder of other files",
        "generate --seed 1 --out {dir}",
        ["which no generated set has: choose a new or empty folder"],
    ),
    (
        "generate: out is a file",
        "generate --seed 1 --out {a_file}",
        ["a_file: exists and is not a directory"],
    ),
    (
        "generate: more resolving markets than binaries",
        "generate --seed 1 --out {dir}/set --markets 2 --resolved-markets 3",
        ["generate: resolved_markets must be between 0 and 2"],
    ),
    (
        "generate: too large",
        "generate --seed 1 --out {dir}/set --markets 100000 --duration-s 30",
        ["generate: 100,004 markets over 30 s is 3,000,120 market-seconds, more than 1,000,000"],
    ),
    ("paper: markets", "paper --markets {missing} --out {dir}", ["no such file (given to --markets)"]),
    ("paper: token", PAPER + " --tokens 42", ["--tokens: 42 is not a token of any market"]),
    (
        "paper: bad url",
        PAPER + " --clob-url ftp://x",
        ['--clob-url: expected a https:// or http:// URL, got "ftp://x"'],
    ),
    (
        "paper: unreachable",
        PAPER + " --clob-url http://127.0.0.1:{port}",
        ["cannot reach the CLOB at http://127.0.0.1:", "check --clob-url or POLYSNIPE_CLOB_URL"],
    ),
    (
        "paper: bad duration",
        PAPER + " --duration-s -1",
        ["--duration-s: expected a positive number of seconds"],
    ),
    ("sim-clob: markets", "sim-clob --markets {not_markets_json}", ["not_markets.json: not a markets file"]),
    (
        "sim-clob: balances",
        SIM + " --balances {balances_json}",
        ["balances.json: bad balances entry for 'bob'; --balances takes JSON"],
    ),
    ("sim-clob: port", SIM + " --port 70000", ["a TCP port is 1..65535"]),
    (
        "sim-clob: usdc",
        SIM + " --default-usdc 0.1234567",
        ["--default-usdc: expected USDC as a decimal with at most"],
    ),
    ("migrate: dir", "migrate --dir {missing}", ["missing: no such directory; --dir takes"]),
    ("migrate: no sql", "migrate --dir {no_sql}", ["no_sql: holds no *.sql migration"]),
    (
        "migrate: password",
        MIGRATE + " --database-url postgresql://u:pw@h/d",
        ["--database-url carries a password"],
    ),
    (
        "migrate: unreachable",
        MIGRATE + " --database-url postgresql://127.0.0.1:{port}/x",
        ["cannot connect to the database at postgresql://127.0.0.1:", "check --database-url"],
    ),
    ("orders: no key", "orders sign {missing}", ["POLYSNIPE_CLOB_PRIVATE_KEY is not set"]),
    ("bench: markets", "bench backtest --markets {missing}", ["no such file (given to --markets)"]),
    ("bench: events", "bench latency --events {empty_jsonl}", ["empty.jsonl: is empty"]),
    ("bench: n", "bench orders -n 0", ["argument -n: must be at least 1, got 0"]),
    (
        "bench: compare markets without events",
        "bench compare-nautilus --markets {missing}",
        ["bench compare-nautilus: --markets needs --events"],
    ),
    (
        "bench: nautilus python",
        "bench compare-nautilus --nautilus-python {missing}",
        ["no such file (given to --nautilus-python)"],
    ),
    ("a pipe: markets", BACKTEST + " --markets {a_fifo}", ["a_fifo: is not a regular file"]),
    ("a device: events", BACKTEST + " --events /dev/zero", ["/dev/zero: is not a regular file"]),
    ("a pipe: config", "config check {a_fifo}", ["a_fifo: is not a regular file"]),
    ("a pipe: balances", SIM + " --balances {a_fifo}", ["a_fifo: is not a regular file"]),
    ("balances: a huge integer", SIM + " --balances {big_int_json}", ["big_int.json: not usable JSON"]),
    ("balances: negative cash", SIM + " --balances {negative_json}", ["usdc '-5' is negative"]),
    (
        "sweep: Arabic-Indic digits",
        BACKTEST + " --latency-sweep ١٢",
        ["--latency-sweep: expected milliseconds"],
    ),
    ("latency: beyond ten minutes", "config check {slow_toml}", ["venue.feed_latency_ms"]),
    (
        "ingest: the channel does not open",
        f"ingest --markets {MARKETS} --ws-url ws://127.0.0.1:{{port}} --duration-s 1",
        ["cannot open the channel at ws://127.0.0.1:"],
    ),
    ("out: the working folder", BACKTEST + " --out .", ["'.' is not a folder of its own"]),
    ("out: the parent folder", BACKTEST + " --out ..", ["'..' is not a folder of its own"]),
    ("url: port out of range", PAPER + " --clob-url http://127.0.0.1:99999", ["Port out of range"]),
    ("url: no control characters", PAPER + " --clob-url http://a\x01b", ["holds no control characters"]),
    ("config: check missing", "config check {missing}", ["missing: settings file not found"]),
    ("config: show bad", "config show --config {bad_toml}", ["[venu]: unknown section"]),
    ("config: no action", "config", ["polysnipe config: the following arguments are required: ACTION"]),
    ("unknown command", "bogus", ["argument COMMAND: invalid choice: 'bogus'"]),
]


@pytest.mark.parametrize(("name", "argv", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_on_stderr_and_exit_code_2(
    name: str,
    argv: str,
    expected: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a later option replaces an earlier one, so each case overrides one of the good defaults
    code, _, err = run(argv.format(port=closed_port(), **files(tmp_path)).split(), capsys)
    assert not (tmp_path / "set").exists()  # a refused generate leaves no empty folder behind
    assert 2 == code
    assert 1 == len(err), err
    assert err[0].startswith("polysnipe: error: ")
    for text in expected:
        assert text in err[0]
    assert "Traceback" not in err[0]


def test_orders_sign_names_a_missing_input_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYSNIPE_CLOB_PRIVATE_KEY", TEST_KEY)
    assert (2, "", [f"polysnipe: error: {tmp_path / 'x'}: no such file (given to FILE)"]) == run(
        ["orders", "sign", str(tmp_path / "x")], capsys
    )


def test_orders_sign_names_a_malformed_key_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYSNIPE_CLOB_PRIVATE_KEY", "0x" + "ab" * 31)
    code, _, err = run(["orders", "sign", str(tmp_path / "x")], capsys)
    assert 2 == code
    assert 1 == len(err)
    assert "POLYSNIPE_CLOB_PRIVATE_KEY" in err[0] and "abab" not in err[0]


def test_sim_clob_names_a_port_in_use(listening: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["sim-clob", "--markets", MARKETS, "--port", str(listening)], capsys)
    assert 2 == code
    assert 1 == len(err)
    assert f"cannot listen on 127.0.0.1:{listening}" in err[0] and "choose another --port" in err[0]


def test_every_problem_of_a_settings_file_gets_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('seed = "abc"\n[venue]\nqueue_model = "fifo-typo"\n[risk]\nmax_open_orders = -1\n')
    code, out, err = run(["config", "check", str(path)], capsys)
    assert (2, "") == (code, out)
    assert [
        f'polysnipe: error: {path}: seed: expected a whole number, got the string "abc"',
        f'polysnipe: error: {path}: venue.queue_model: must be one of "prob", "risk_averse", got "fifo-typo"',
        f"polysnipe: error: {path}: risk.max_open_orders: must be at least 1, got -1",
    ] == err


def test_config_check_says_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[risk]\nmax_order_notional_usdc = "100"\n')
    assert (0, "ok\n", []) == run(["config", "check", str(path)], capsys)


def test_config_show_prints_values_with_their_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("seed = 3\n")
    monkeypatch.setenv("POLYSNIPE_CHAIN_ID", "80002")
    code, out, err = run(["config", "show", "--config", str(path)], capsys)
    assert (0, []) == (code, err)
    lines = out.splitlines()
    assert f"seed = 3  # {path}" in lines
    assert "chain_id = 80002  # environment POLYSNIPE_CHAIN_ID" in lines
    assert 'max_order_notional_usdc = "250"  # default' in lines


def test_debug_shows_the_traceback_of_a_mistake_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["config", "check", str(tmp_path / "missing.toml"), "--debug"], capsys)
    assert 2 == code
    assert "Traceback (most recent call last):" == err[0]
    assert err[-1].startswith("polysnipe: error: ") and "settings file not found" in err[-1]


def _bug(**_: object) -> None:
    raise RuntimeError("a bug")


def test_a_bug_is_one_internal_error_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the only fake here: a defect planted where the backtest runs, to see how main reports one
    monkeypatch.setattr("polysnipe.runners.backtest.run_backtest", _bug)
    argv = ["backtest", "--markets", MARKETS, "--events", EVENTS, "--out", str(tmp_path), "--no-progress"]
    code, _, err = run(argv, capsys)
    assert 1 == code
    assert 1 == len(err)
    assert err[0].startswith("polysnipe: internal error (RuntimeError at ")
    assert "rerun with --debug" in err[0]
    code, _, err = run([*argv, "--debug"], capsys)
    assert 1 == code
    assert "Traceback (most recent call last):" == err[0]
    assert "RuntimeError: a bug" in err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    assert (0, f"polysnipe {importlib.metadata.version('polysnipe')}\n", []) == run(["--version"], capsys)
    code, out, err = run(["--help"], capsys)
    assert (0, []) == (code, err)
    assert "polysnipe finds and trades" in out and "risk gatekeeper" in out and "exit status" in out
    assert "Thin:" not in out  # the module docstring is for developers, not users


def _parsers(
    parser: argparse.ArgumentParser, name: str = "polysnipe"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


def test_every_option_and_command_has_help_text() -> None:
    missing = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert [] == missing


def test_generate_prints_a_readable_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["generate", "--seed", "3", "--out", str(tmp_path), "--duration-s", "60", "--markets", "2"], capsys
    )
    assert (0, []) == (code, err)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "polysnipe generate" == out.splitlines()[0]
    assert "2026-01-01 00:00:00 UTC to 2026-01-01 00:01:00 UTC (60 s)" in rows["time"]
    assert "deliberately malformed" in rows["events.jsonl"]
    assert "planted" in rows["labels"]
    assert f"--markets {tmp_path / 'markets.json'}" in rows["next"]
    assert "GenerateSummary(" not in out


@pytest.mark.parametrize("neg_risk_events", ["0", "1"])
def test_the_backtest_generate_prints_next_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], neg_risk_events: str
) -> None:
    # without neg-risk events, gamma_events.json is Gamma's empty answer ([]): data, not a mistake
    data = tmp_path / "data"
    argv = ["generate", "--seed", "3", "--out", str(data), "--duration-s", "60", "--markets", "2",
            "--neg-risk-events", neg_risk_events]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert 0 == code
    [next_line] = [line for line in out.splitlines() if line.split()[:1] == ["next"]]
    command = next_line.split("polysnipe ", 1)[1].replace("OUT", str(tmp_path / "out")).split()
    code, _, err = run([*command, "--no-progress"], capsys)
    assert (0, []) == (code, err)
    assert (tmp_path / "out" / "report.json").is_file()


def test_migrate_applies_the_migrations(capsys: pytest.CaptureFixture[str]) -> None:
    schema = f"cli_{uuid.uuid4().hex[:10]}"
    try:
        code, out, err = run(
            ["migrate", "--dir", str(MIGRATIONS), "--schema", schema, "--database-url", DATABASE_URL], capsys
        )
        assert (0, []) == (code, err)
        assert out.startswith("applied ") and "0001_journal.sql" in out
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_migration_the_database_refuses_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its SQL error was an internal error (exit 1); so was a migration file that is not UTF-8."""
    schema = f"cli_{uuid.uuid4().hex[:10]}"
    argv = ["migrate", "--dir", str(tmp_path), "--schema", schema, "--database-url", DATABASE_URL]
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE (;")
    try:
        code, _, err = run(argv, capsys)
        assert (2, 1) == (code, len(err))
        assert "a migration failed and was rolled back: syntax error" in err[0]
        (tmp_path / "0001_bad.sql").write_bytes(b"\xff\xfe CREATE")
        code, _, err = run(argv, capsys)
        assert (2, 1) == (code, len(err))
        assert "a migration file cannot be read" in err[0]
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_paper_trades_when_the_venue_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from polysnipe.runners.sim_clob import start_in_thread

    base, stop = start_in_thread(SAMPLE / "markets.json")
    try:
        ws = base.replace("http", "ws") + "/ws/market"
        argv = ["paper", "--markets", MARKETS, "--clob-url", base, "--ws-url", ws,
                "--duration-s", "0.3", "--out", str(tmp_path)]  # fmt: skip
        code, _, err = run(argv, capsys)
    finally:
        stop()
    assert (0, []) == (code, err)
    assert "paper" == json.loads((tmp_path / "report.json").read_text())["inputs"]["mode"]


def test_run_refuses_to_start_blind_when_a_channel_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the WebSocket unreachable, run traded nothing (no market data, no fills) and exited 0."""
    from polysnipe.runners.sim_clob import start_in_thread

    monkeypatch.setenv("POLYSNIPE_CLOB_PRIVATE_KEY", TEST_KEY)
    base, stop = start_in_thread(SAMPLE / "markets.json")
    try:
        argv = ["run", "--markets", MARKETS, "--clob-url", base, "--ws-url", f"ws://127.0.0.1:{closed_port()}",
                "--duration-s", "0.3", "--out", str(tmp_path / "out")]  # fmt: skip
        code, _, err = run(argv, capsys)
    finally:
        stop()
    assert (2, 1) == (code, len(err)), err
    assert "cannot open the channel at ws://127.0.0.1:" in err[0] and "/market" in err[0]


def _one_market_malformed(tmp_path: Path) -> tuple[Path, str]:
    """The sample's markets file with its first market's tick mistyped; that market's condition id."""
    page = json.loads((SAMPLE / "markets.json").read_text())
    page["data"][0]["minimum_tick_size"] = "a cent"
    path = tmp_path / "markets.json"
    path.write_text(json.dumps(page))
    return path, page["data"][0]["condition_id"]


def test_a_backtest_trades_the_other_markets_and_shows_the_refused_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markets, cid = _one_market_malformed(tmp_path)
    argv = ["backtest", "--markets", str(markets), "--markets", str(SAMPLE / "gamma_markets.json"),
            "--events", EVENTS, "--out", str(tmp_path / "out"), "--no-progress", "--no-cache"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert (0, []) == (code, err)
    table = re.sub(r"[\s│]", "", out)  # its cells wrap on a narrow terminal
    assert f"marketsrefused1:{cid}:malformedinclob:markets.json:" in table
    inputs = json.loads((tmp_path / "out" / "report.json").read_text())["inputs"]
    [[refused, why]] = inputs["markets_refused"]
    assert (cid, True) == (refused, why.startswith("malformed in clob:markets.json: "))
    assert inputs["markets_loaded"] > 0


def test_paper_names_the_markets_it_refused_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from polysnipe.runners.sim_clob import start_in_thread

    markets, cid = _one_market_malformed(tmp_path)
    base, stop = start_in_thread(SAMPLE / "markets.json")
    try:
        ws = base.replace("http", "ws") + "/ws/market"
        argv = ["paper", "--markets", str(markets), "--clob-url", base, "--ws-url", ws,
                "--duration-s", "0.3", "--out", str(tmp_path / "out")]  # fmt: skip
        code, _, err = run(argv, capsys)
    finally:
        stop()
    assert 0 == code
    [line] = err
    assert line.startswith(f"polysnipe: market {cid} refused: malformed in clob:markets.json: ")


def test_the_installed_entry_point(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "polysnipe"
    (tmp_path / "c.toml").write_text("[venue]\nqueue_model = 'fifo-typo'\n")
    done = subprocess.run(
        [exe, "config", "check", tmp_path / "c.toml"], capture_output=True, text=True, check=False
    )
    assert 2 == done.returncode
    assert "" == done.stdout
    expected = (
        f'{tmp_path / "c.toml"}: venue.queue_model: must be one of "prob", "risk_averse", got "fifo-typo"'
    )
    assert [f"polysnipe: error: {expected}"] == done.stderr.splitlines()
    missing = tmp_path / "missing.json"
    done = subprocess.run([exe, "backtest", "--markets", missing, "--events", EVENTS, "--out", tmp_path],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert (2, [f"polysnipe: error: {missing}: no such file (given to --markets)"]) == (
        done.returncode, done.stderr.splitlines()
    )  # fmt: skip
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert (0, "polysnipe") == (done.returncode, done.stdout.split()[0])


def test_a_misspelt_pure_python_switch_is_one_line_and_exit_2() -> None:
    env = {**os.environ, "POLYSNIPE_PURE_PYTHON": "true"}
    done = subprocess.run([sys.executable, "-m", "polysnipe.runners.cli", "config", "show"], env=env,
                          capture_output=True, timeout=60)  # fmt: skip
    assert 2 == done.returncode
    err = done.stderr.decode().strip().splitlines()
    assert 1 == len(err) and "POLYSNIPE_PURE_PYTHON must be 1" in err[0], err
