"""The `polysnipe` command line. Thin: parses arguments, builds a container, runs one job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _backtest(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from polysnipe.runners.backtest import run_backtest
    from polysnipe.runners.config import load_config
    from polysnipe.runners.logging import logging_to_file
    from polysnipe.runners.summary import print_summary

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(Path(args.config) if args.config else None)
    if args.seed is not None:
        config["seed"] = args.seed
    err = Console(stderr=True)
    with (
        logging_to_file(out / "run.log", level=args.log_level),
        Progress(
            TextColumn("[bold]backtest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
            disable=not args.progress,
        ) as bar,
    ):
        task = bar.add_task("replay", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_backtest(
            markets_path=Path(args.markets),
            events_path=Path(args.events),
            labels_path=Path(args.labels) if args.labels else None,
            signals_path=Path(args.signals) if args.signals else None,
            out_dir=out,
            config=config,
            progress=progress,
        )
    print_summary(result.report, result.timing, out)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from polysnipe.tools.datagen import generate

    try:
        summary = generate(
            Path(args.out),
            seed=args.seed,
            markets=args.markets,
            neg_risk_events=args.neg_risk_events,
            outcomes_per_event=args.outcomes_per_event,
            duration_s=args.duration_s,
            malformed=args.malformed,
            resolved_markets=args.resolved_markets,
            augment_main_event=args.augment_main_event,
        )
    except ValueError as exc:  # the options do not fit together: the user's mistake
        print(f"polysnipe generate: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from polysnipe.runners.bench import run_bench_command

    return run_bench_command(args)


def _orders(args: argparse.Namespace) -> int:
    from polysnipe.adapters.clob.factory import secrets_from_env
    from polysnipe.runners.orders_cli import sign_lines
    from polysnipe.runners.settings import load_settings

    settings = load_settings()
    try:
        secrets = secrets_from_env()
    except KeyError as exc:
        raise SystemExit(str(exc)) from None
    if args.file == "-":
        return sign_lines(sys.stdin, settings, secrets, sys.stdout, sys.stderr)
    with open(args.file, encoding="utf-8") as fh:
        return sign_lines(fh, settings, secrets, sys.stdout, sys.stderr)


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from polysnipe.adapters.postgres.migrations import apply_migrations
    from polysnipe.runners.settings import load_settings

    url = args.database_url or load_settings().database_url
    with psycopg.connect(url, autocommit=True) as conn:
        applied = apply_migrations(conn, Path(args.dir), schema=args.schema)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _paper(args: argparse.Namespace) -> int:
    import asyncio

    from polysnipe.adapters.files import read_markets
    from polysnipe.runners.config import load_config
    from polysnipe.runners.logging import logging_to_file
    from polysnipe.runners.paper import run_paper
    from polysnipe.runners.settings import load_settings
    from polysnipe.runners.summary import print_summary

    settings = load_settings()
    out = Path(args.out)
    with logging_to_file(out / "run.log", level=args.log_level):
        result = asyncio.run(
            run_paper(
                markets=read_markets(args.markets),
                config=load_config(Path(args.config) if args.config else None),
                clob_url=args.clob_url or settings.clob_url,
                market_ws_url=args.ws_url or settings.clob_ws_url.rstrip("/") + "/market",
                duration_s=args.duration_s,
                out_dir=out,
                token_ids=args.tokens,
            )
        )
    print_summary(result.report, result.timing, out, title="polysnipe paper")
    return 0


def _sim_clob(args: argparse.Namespace) -> int:
    from polysnipe.adapters.sim.clob import ClobSimConfig
    from polysnipe.core.units import parse_micro
    from polysnipe.runners.sim_clob import serve

    config = ClobSimConfig(
        seed=args.seed,
        default_usdc_micro=parse_micro(args.default_usdc) if args.default_usdc else 0,
        paced_replay=args.paced,
    )
    serve(args.host, args.port, args.markets, args.events, args.balances, config=config)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polysnipe", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    bt = sub.add_parser(
        "backtest", help="replay Polymarket-format data through the engine and the simulated venue"
    )
    bt.add_argument("--markets", required=True, help="CLOB GET /markets JSON (page, list or one market)")
    bt.add_argument("--events", required=True, help="market-channel WebSocket messages as JSON lines")
    bt.add_argument("--config", help="TOML file merged over the embedded default config")
    bt.add_argument("--labels", help="labels.jsonl of planted inefficiencies to score the run against")
    bt.add_argument("--signals", help="external signals as JSON lines, when kept beside the events file")
    bt.add_argument("--out", required=True, help="output directory")
    bt.add_argument("--seed", type=int, help="override the config's seed")
    bt.add_argument("--log-level", default="info")
    bt.add_argument("--no-progress", dest="progress", action="store_false")
    bt.set_defaults(func=_backtest)

    gen = sub.add_parser("generate", help="write a synthetic data set with planted inefficiencies")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", required=True)
    gen.add_argument("--markets", type=int, default=6)
    gen.add_argument("--neg-risk-events", type=int, default=1)
    gen.add_argument("--outcomes-per-event", type=int, default=4)
    gen.add_argument("--duration-s", type=int, default=1800)
    gen.add_argument("--malformed", type=int, default=3)
    gen.add_argument(
        "--resolved-markets", type=int, default=1, help="standalone binary markets resolving near the end"
    )
    gen.add_argument(
        "--augment-main-event",
        action="store_true",
        help="publish the first neg-risk event as augmented, with an 'Other' placeholder market",
    )
    gen.set_defaults(func=_generate)

    paper = sub.add_parser("paper", help="live market data, simulated fills (the backtest's venue)")
    paper.add_argument("--markets", required=True, help="CLOB GET /markets JSON of the markets to trade")
    paper.add_argument(
        "--tokens", nargs="*", help="token ids to subscribe (default: every token of --markets)"
    )
    paper.add_argument("--clob-url", help="default: POLYSNIPE_CLOB_URL")
    paper.add_argument("--ws-url", help="market channel URL (default: POLYSNIPE_CLOB_WS_URL + /market)")
    paper.add_argument("--config", help="TOML file merged over the embedded default config")
    paper.add_argument("--duration-s", type=float, default=60.0)
    paper.add_argument("--out", required=True)
    paper.add_argument("--log-level", default="info")
    paper.set_defaults(func=_paper)

    sim = sub.add_parser("sim-clob", help="serve the CLOB simulator (REST + market/user WebSockets)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8080)
    sim.add_argument("--markets", required=True, help="CLOB GET /markets JSON")
    sim.add_argument("--events", help="market-channel JSON lines replayed into the books")
    sim.add_argument("--balances", help='JSON {address: {"usdc": "1000", "positions": {token: "10"}}}')
    sim.add_argument("--default-usdc", help="USDC for wallets the balances file does not name (default 0)")
    sim.add_argument("--paced", action="store_true", help="feed events only on POST /_sim/advance")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=_sim_clob)

    mig = sub.add_parser("migrate", help="apply the SQL migrations to the journal database")
    mig.add_argument("--database-url", help="default: POLYSNIPE_DATABASE_URL")
    mig.add_argument("--schema", default="public")
    mig.add_argument("--dir", default="migrations")
    mig.set_defaults(func=_migrate)

    orders = sub.add_parser("orders", help="order tools for operators")
    orders_sub = orders.add_subparsers(dest="orders_command", required=True)
    sign = orders_sub.add_parser("sign", help="print signed POST /order bodies for JSON-lines order inputs")
    sign.add_argument("file", nargs="?", default="-", help="JSON lines of order inputs (default: stdin)")
    sign.set_defaults(func=_orders)

    bench = sub.add_parser("bench", help="benchmarks: prints figures and writes JSON")
    bench.add_argument("what", choices=["backtest", "orders", "ws", "latency"])
    bench.add_argument("--markets", default="data/sample/markets.json")
    bench.add_argument("--events", default="data/sample/events.jsonl")
    bench.add_argument("-n", type=int, default=20_000, help="orders: iterations")
    bench.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="latency: leave the loaded data in the collector's reach (to compare)",
    )
    bench.add_argument("--repeat", type=int, default=2_000, help="ws: passes over the recorded messages")
    bench.add_argument(
        "--files", nargs="*", help="ws: JSON files of market-channel messages (default: recorded)"
    )
    bench.add_argument("--out", default="out/bench", help="directory for the JSON figures")
    bench.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
