"""The `polysnipe` command line. Thin: parses arguments, checks settings and inputs, runs one job.

Errors have one home, `main`: a `UserError` (a bad argument, file, setting or unreachable service)
is printed as one line per problem with exit code 2; any other exception is a bug in polysnipe, told
as such in one line with exit code 1. `--debug` adds the traceback to either.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import os
import re
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from polysnipe.adapters.redis.errors import BusUnavailable
from polysnipe.runners.errors import InputError, UnreachableService, UsageError, UserError

if TYPE_CHECKING:
    from polysnipe.runners.config import ResolvedConfig
    from polysnipe.tools.datagen import GenerateSummary

__all__ = ["build_parser", "format_generate_summary", "main"]

DESCRIPTION = """\
polysnipe finds and trades "snipes" on Polymarket's order book: asks swept below fair value,
neg-risk outcomes whose prices sum away from 1, liquidity that suddenly vanishes, news the price has
not caught up with. Every order passes a risk gatekeeper (order, market and outcome exposure, rate and
daily-loss limits, treasury policy per wallet, kill switches) and carries builder attribution.

Backtest on recorded or generated data, paper-trade the live feed against a simulated venue, sign
orders, run a local stand-in for Polymarket's CLOB, and inspect or check the settings."""

EPILOG = """\
settings: the embedded defaults, a TOML file (--config, or $POLYSNIPE_CONFIG) and POLYSNIPE_*
environment variables; `polysnipe config show` prints every key with its documentation and source.
Secrets (the signing key and API credentials) come from the environment only.
POLYSNIPE_PURE_PYTHON=1 uses the Python order book and market-frame decoder instead of the compiled
ones (same answers, slower).

exit status: 0 done; 2 a mistake in the command line, an input file, the settings or the environment
(one line says which and how to fix it); 1 an internal error (a bug: rerun with --debug and report it)."""


_WHOLE = re.compile(r"[+-]?[0-9]+")


def _version() -> str:
    return importlib.metadata.version("polysnipe")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as UsageError so `main` prints them like every other mistake."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# -- argument types: a bad value is a one-line usage error naming the option ----------------------
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _WHOLE.fullmatch(text.strip()):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 65_535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text) if text.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _usdc(text: str) -> int:
    from polysnipe.runners.schema import Invalid, Micro

    try:
        return int(Micro("USDC", min=0).parse_env(text))
    except Invalid as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _setting_value(name: str) -> Callable[[str], str]:
    """Parse an option like the `[connections]` key `name` (same checks as the file and environment)."""

    def parse(text: str) -> str:
        import attrs

        from polysnipe.runners.schema import Invalid, spec_of
        from polysnipe.runners.settings import Settings

        kind = spec_of(getattr(attrs.fields(Settings), name)).kind
        assert kind is not None
        try:
            return str(kind.parse_env(text))
        except Invalid as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


# -- shared steps --------------------------------------------------------------------------------
def _resolve(args: argparse.Namespace, seed: int | None = None) -> ResolvedConfig:
    from polysnipe.runners.config import resolve_config

    overrides = {"seed": (seed, "command line --seed")} if seed is not None else None
    return resolve_config(Path(args.config) if args.config else None, overrides=overrides)


def _progress_bar(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
        disable=not enabled,
    )


# -- commands ------------------------------------------------------------------------------------
def _backtest(args: argparse.Namespace) -> int:
    from polysnipe.runners import inputs
    from polysnipe.runners.backtest import run_backtest
    from polysnipe.runners.logging import logging_to_file
    from polysnipe.runners.outputs import write_manifest
    from polysnipe.runners.summary import print_summary
    from polysnipe.runners.sweep import format_sweep, latency_sweep

    resolved = _resolve(args, seed=args.seed)
    config = resolved.config
    markets = [inputs.require_file(m, "--markets") for m in args.markets]
    inputs.read_market_files(markets, "--markets")
    events = inputs.require_lines(args.events, "--events", "market-channel messages")
    labels = inputs.require_file(args.labels, "--labels") if args.labels else None
    if labels is not None:
        inputs.read_labels(labels, "--labels")
    signals = inputs.require_file(args.signals, "--signals") if args.signals else None
    out = inputs.output_dir(args.out, "--out")
    read = {f"markets_{i}": m for i, m in enumerate(markets)} | {"events": events, "labels": labels,
                                                                  "signals": signals}  # fmt: skip
    with _staged(out) as work:
        with logging_to_file(work / "run.log", level=args.log_level), _progress_bar(args.progress) as bar:
            task = bar.add_task("replay", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_backtest(
                markets_paths=markets,
                events_path=events,
                labels_path=labels,
                signals_path=signals,
                out_dir=work,
                config=config,
                progress=progress,
                use_cache=args.cache,
            )
        if args.latency_sweep:
            sweep = latency_sweep(
                args.latency_sweep, markets_paths=markets, events_path=events, labels_path=labels,
                signals_path=signals, out_dir=work, config=config, use_cache=args.cache,
            )  # fmt: skip
        write_manifest(work, command="backtest", inputs=read, settings=_settings_of(resolved))
    print_summary(result.report, result.timing, out)
    if args.latency_sweep:
        print(format_sweep(sweep))
        print(f"latency sweep written to {out / 'latency_sweep.json'} and latency_sweep.csv")
    return 0


def _latencies(text: str) -> list[int]:
    """--latency-sweep: comma-separated whole milliseconds, e.g. 5,50,250,1000."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    # ASCII digits only, as every other number (int() also reads '١٢' and '１２')
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected milliseconds separated by commas, got {text!r}")
    from polysnipe.runners.config import MAX_LATENCY_MS

    values = [int(part) for part in parts]
    if not values or any(v > MAX_LATENCY_MS for v in values):
        raise argparse.ArgumentTypeError(f"expected one or more latencies from 0 to {MAX_LATENCY_MS} ms")
    return values


def _utc(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "none"


def format_generate_summary(s: GenerateSummary) -> str:
    """What `generate` wrote, for a person: sizes, time span, message mix and the planted labels."""
    seconds = (s.end_ms - s.start_ms) // 1000
    size_mb = s.bytes_events / 1_000_000
    rows = [
        (
            "written to",
            f"{s.out_dir}: markets.json, gamma_markets.json, gamma_events.json, events.jsonl, labels.jsonl",
        ),
        ("seed", str(s.seed)),
        (
            "markets",
            f"{s.markets} ({s.tokens} outcome tokens); {s.resolved_markets} resolving, "
            f"{s.augmented_events} augmented neg-risk event(s)",
        ),
        ("time span", f"{_utc(s.start_ms)} to {_utc(s.end_ms)} ({seconds} s)"),
        ("events.jsonl", f"{s.lines:,} lines, {size_mb:.1f} MB; {s.malformed} deliberately malformed"),
        ("messages", _counts(s.events_by_type)),
        ("price changes", f"{s.price_change_entries:,} level changes"),
        ("labels", f"{sum(s.labels_by_kind.values())} planted: {_counts(s.labels_by_kind)}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["polysnipe generate", *(f"  {name.ljust(width)}  {text}" for name, text in rows)]
    from polysnipe.tools.datagen import GENERATED_METADATA

    markets = " ".join(f"--markets {s.out_dir / name}" for name in GENERATED_METADATA)
    lines.append(
        f"  {'next'.ljust(width)}  polysnipe backtest {markets} "
        f"--events {s.out_dir / 'events.jsonl'} --labels {s.out_dir / 'labels.jsonl'} --out OUT"
    )
    return "\n".join(lines)


def _generate(args: argparse.Namespace) -> int:
    from polysnipe.runners import inputs
    from polysnipe.tools.datagen import GENERATED_FILES, generate

    out = Path(args.out)
    # a set replaces its own files only: a folder holding anything else is someone else's
    foreign = sorted(p.name for p in out.iterdir() if p.name not in GENERATED_FILES) if out.is_dir() else []
    if foreign:
        raise InputError(
            out, f"holds {foreign[0]!r}, which no generated set has: choose a new or empty folder"
        )
    existed = out.exists()
    try:
        summary = generate(
            inputs.output_dir(args.out, "--out"),
            seed=args.seed,
            markets=args.markets,
            neg_risk_events=args.neg_risk_events,
            outcomes_per_event=args.outcomes_per_event,
            duration_s=args.duration_s,
            malformed=args.malformed,
            resolved_markets=args.resolved_markets,
            augment_main_event=args.augment_main_event,
        )
    except ValueError as exc:  # options that do not fit together, e.g. more resolving markets than binaries
        if not existed:
            out.rmdir()  # nothing was written: leave no empty folder behind
        raise UsageError(f"generate: {exc}") from None
    print(format_generate_summary(summary))
    return 0


#: the bundled sample (the repository's data/sample/), the benches' default data wherever they run
BUNDLED_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _bench(args: argparse.Namespace) -> int:
    from polysnipe.runners import inputs
    from polysnipe.runners.bench import run_bench_command

    if args.events is None and args.what in ("backtest", "bus", "live"):
        args.events = str(BUNDLED_SAMPLE / "events.jsonl")
    if args.events is not None:
        inputs.require_lines(args.events, "--events", "market-channel messages")
    elif args.markets and args.what == "compare-nautilus":
        raise UsageError("bench compare-nautilus: --markets needs --events (a generated set brings its own)")
    if args.what in ("backtest", "live") or (
        args.what in ("latency", "compare-nautilus", "venue") and args.events is not None
    ):
        from polysnipe.tools.datagen import GENERATED_METADATA

        args.markets = args.markets or [str(BUNDLED_SAMPLE / name) for name in GENERATED_METADATA]
        inputs.read_market_files(args.markets, "--markets")
    if args.nautilus_python is not None:
        inputs.require_file(args.nautilus_python, "--nautilus-python")
    inputs.output_dir(args.out, "--out")
    return run_bench_command(args)


def _orders(args: argparse.Namespace) -> int:
    from polysnipe.adapters.clob.factory import SecretsError, secrets_from_env
    from polysnipe.runners import inputs
    from polysnipe.runners.orders_cli import sign_lines

    settings = _resolve(args).config.connections
    try:
        secrets = secrets_from_env()
    except SecretsError as exc:  # names the variable, never its value
        raise UserError(f"{exc}: orders sign needs the signing key in the environment") from None
    if args.file == "-":
        return sign_lines(sys.stdin, settings, secrets, sys.stdout, sys.stderr)
    path = inputs.require_file(args.file, "FILE")
    # each line is judged alone: one that is not UTF-8 is refused, not the rest of the file
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        return sign_lines(fh, settings, secrets, sys.stdout, sys.stderr)


def _kill(args: argparse.Namespace) -> int:
    return _switch(args, engaged=True)


def _resume(args: argparse.Namespace) -> int:
    return _switch(args, engaged=False)


def _switch(args: argparse.Namespace, *, engaged: bool) -> int:
    from polysnipe.runners.operators import engage, operator_name

    database = _database(_resolve(args))
    print(engage(database, args.scope, engaged=engaged, reason=args.reason, by=args.by or operator_name()))
    return 0


def _status(args: argparse.Namespace) -> int:
    from polysnipe.runners.operators import bus_lines, status_text

    resolved = _resolve(args)
    redis = resolved.config.redis
    bus = asyncio.run(bus_lines(resolved.config.connections.redis_url, redis.prefix, redis.cluster))
    print(status_text(_database(resolved), bus))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from polysnipe.adapters.postgres.migrations import MigrationDrift, apply_migrations
    from polysnipe.runners import inputs
    from polysnipe.runners.settings import url_password

    if args.database_url and url_password(args.database_url):
        raise UsageError(
            "--database-url carries a password, and command lines are visible to every user of the "
            "machine; set POLYSNIPE_DATABASE_URL or put the password in ~/.pgpass"
        )
    from polysnipe.adapters.postgres.database import BUNDLED_MIGRATIONS

    connections = _resolve(args).config.connections
    url = args.database_url or connections.database_url
    schema = args.schema or connections.database_schema
    directory = Path(args.dir) if args.dir else BUNDLED_MIGRATIONS
    if not directory.is_dir():
        raise InputError(directory, "no such directory; --dir takes the folder of *.sql migrations")
    if not any(directory.glob("*.sql")):
        raise InputError(directory, "holds no *.sql migration; --dir takes the folder of the migrations")
    try:
        with inputs.connect_database(url, hint="check --database-url or POLYSNIPE_DATABASE_URL") as conn:
            applied = apply_migrations(conn, directory, schema=schema)
    except MigrationDrift as exc:
        raise UserError(
            f"{directory}: {exc}; a migration once applied is never edited: add a new one"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            directory, f"a migration file cannot be read ({exc}); fix it and migrate again"
        ) from None
    except psycopg.Error as exc:  # the database refused a migration's SQL: it was rolled back
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(directory, f"a migration failed and was rolled back: {reason}") from None
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


async def _check_venue(clob_url: str, *ws_urls: str) -> None:
    """Fail before trading when the CLOB (GET /ok) or one of its channels does not answer."""
    import httpx

    from polysnipe.runners.settings import mask_url

    health = clob_url.rstrip("/") + "/ok"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.get(health)
    except httpx.TransportError as exc:
        raise UnreachableService(
            f"cannot reach the CLOB at {mask_url(clob_url)} ({exc or type(exc).__name__}); "
            "check --clob-url or POLYSNIPE_CLOB_URL (a local stand-in: polysnipe sim-clob)"
        ) from None
    if answer.status_code != 200:
        raise UnreachableService(
            f"{mask_url(health)} answered HTTP {answer.status_code}: is --clob-url a Polymarket CLOB?"
        )
    await _check_channels(*ws_urls)


async def _check_channels(*ws_urls: str) -> None:
    """Fail before starting when one of the venue's WebSocket channels does not open."""
    import websockets

    from polysnipe.runners.settings import mask_url

    for ws_url in ws_urls:
        try:
            async with websockets.connect(ws_url, open_timeout=5.0):
                pass
        except (OSError, TimeoutError, ValueError, websockets.exceptions.WebSocketException) as exc:
            raise UnreachableService(
                f"cannot open the channel at {mask_url(ws_url)} ({exc or type(exc).__name__}); "
                "check --ws-url or POLYSNIPE_CLOB_WS_URL"
            ) from None


def _paper(args: argparse.Namespace) -> int:
    from polysnipe.adapters.postgres.database import JournalUnavailable
    from polysnipe.runners import inputs
    from polysnipe.runners.logging import logging_to_file
    from polysnipe.runners.outputs import write_manifest
    from polysnipe.runners.paper import VenueUnreachable, run_paper
    from polysnipe.runners.summary import print_summary

    resolved = _resolve(args)
    settings = resolved.config.connections
    clob_url = args.clob_url or settings.clob_url
    ws_url = args.ws_url or settings.clob_ws_url.rstrip("/") + "/market"
    catalog = _catalog(args, clob_url, args.gamma_url or settings.gamma_url)
    _check_tokens(args, catalog)
    out = inputs.output_dir(args.out, "--out")
    asyncio.run(_check_venue(clob_url, ws_url))
    read = {f"markets_{i}": Path(m) for i, m in enumerate(args.markets or ())}
    try:
        with _staged(out) as work:
            with logging_to_file(work / "run.log", level=args.log_level):
                result = asyncio.run(
                    run_paper(
                        registry=catalog.registry(),
                        config=resolved.config,
                        clob_url=clob_url,
                        market_ws_url=ws_url,
                        duration_s=args.duration_s,
                        out_dir=work,
                        token_ids=args.tokens,
                        database=_database(resolved) if args.journal else None,
                    )
                )
            write_manifest(work, command="paper", inputs=read, settings=_settings_of(resolved))
    except JournalUnavailable as exc:
        raise UnreachableService(str(exc)) from None
    except VenueUnreachable as exc:  # it answered the check above, then went away
        raise UnreachableService(f"{exc}; check --clob-url or POLYSNIPE_CLOB_URL") from None
    print_summary(result.report, result.timing, out, title="polysnipe paper")
    return 0


#: refused markets named one per line when a live or paper run starts; the rest are counted
_REFUSED_SHOWN = 10


def _catalog(args: argparse.Namespace, clob_url: str, gamma_url: str) -> Any:
    """The markets a live or paper run trades: from the --markets files alone; or, when no file is
    given or --market names markets, from the venue over HTTP (CLOB and Gamma), merged with the files."""
    from polysnipe.adapters.metadata_http import MetadataHttpConfig
    from polysnipe.adapters.text import printable
    from polysnipe.runners import inputs

    if args.markets and not args.market:
        catalog = inputs.read_market_files(args.markets, "--markets")
    else:
        config = MetadataHttpConfig(
            clob_url=clob_url, gamma_url=gamma_url, condition_ids=tuple(args.market or ())
        )
        catalog = inputs.venue_catalog(config, args.markets or ())
    # the run goes on with the others; the operator sees what it will not trade, and why
    for cid, why in catalog.refused[:_REFUSED_SHOWN]:
        print(f"polysnipe: market {printable(cid, 80)} refused: {printable(why, 300)}", file=sys.stderr)
    if len(catalog.refused) > _REFUSED_SHOWN:
        print(f"polysnipe: and {len(catalog.refused) - _REFUSED_SHOWN} more markets refused", file=sys.stderr)
    return catalog


def _check_tokens(args: argparse.Namespace, catalog: Any) -> None:
    known = {t for m in catalog.markets for t in m.token_ids}
    for token in args.tokens or ():
        if token not in known:
            raise UsageError(f"--tokens: {token} is not a token of any market loaded")


def _condition_id(text: str) -> str:
    from polysnipe.adapters.clob.config import validate_bytes32

    try:
        return validate_bytes32(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a market condition id, 0x and 64 hex digits, got {text[:80]!r}"
        ) from None


def _live_metadata_options(p: argparse.ArgumentParser) -> None:
    """--markets, --market and --gamma-url of `paper` and `run`."""
    p.add_argument(
        "--markets", action="append", metavar="FILE",
        help=_MARKETS_HELP + " (default: loaded from the venue: CLOB GET /markets, /clob-markets and Gamma)",
    )  # fmt: skip
    p.add_argument(
        "--market", action="append", type=_condition_id, metavar="CONDITION_ID",
        help="load this market's metadata from the venue (several times for several; default: every"
        " market the CLOB lists, when no --markets file is given); merged with any --markets files",
    )  # fmt: skip
    p.add_argument(
        "--gamma-url", type=_setting_value("gamma_url"), help="Gamma API URL (default: settings' gamma_url)"
    )


def _run(args: argparse.Namespace) -> int:
    from polysnipe.runners import inputs
    from polysnipe.runners.core_objects import clob_config, signer_client_config
    from polysnipe.runners.live import LiveStartError, run_live
    from polysnipe.runners.logging import logging_to_file
    from polysnipe.runners.outputs import write_manifest
    from polysnipe.runners.summary import print_summary

    resolved = _resolve(args)
    settings = resolved.config.connections
    clob = clob_config(settings)
    if args.clob_url:
        clob = attrs.evolve(clob, host=args.clob_url)
    signer = signer_client_config(settings)
    catalog = _catalog(args, clob.host, args.gamma_url or settings.gamma_url)
    _check_tokens(args, catalog)
    out = inputs.output_dir(args.out, "--out")
    ws = (args.ws_url or settings.clob_ws_url).rstrip("/")
    # without them the engine would run blind (no market data, no fills) and end as if all were well;
    # with --bus the market data comes from the bus, the fills still from the user channel
    asyncio.run(_check_venue(clob.host, *(() if args.bus else (ws + "/market",)), ws + "/user"))
    read = {f"markets_{i}": Path(m) for i, m in enumerate(args.markets or ())}
    try:
        with _staged(out) as work:
            with logging_to_file(work / "run.log", level=args.log_level):
                result = asyncio.run(
                    run_live(
                        registry=catalog.registry(),
                        config=resolved.config,
                        clob=clob,
                        market_ws_url=ws + "/market",
                        user_ws_url=ws + "/user",
                        out_dir=work,
                        duration_s=args.duration_s,
                        token_ids=args.tokens,
                        database=_database(resolved),
                        lease_ms=settings.wallet_lease_ms,
                        signing_threads=None if settings.signing_threads < 0 else settings.signing_threads,
                        standby=args.standby,
                        bus=_bus(args, resolved) if args.bus else None,
                        signer=signer,
                    )
                )
            write_manifest(work, command="run", inputs=read, settings=_settings_of(resolved))
    except LiveStartError as exc:
        raise UnreachableService(str(exc)) from None
    print_summary(result.report, result.timing, out, title="polysnipe run")
    return 0


def _bus(args: argparse.Namespace, resolved: Any) -> Any:
    """wallet -> the engine's Redis Streams source: one consumer group per wallet, so every wallet's
    engine reads every event of its shards, and a stable consumer name per wallet, so a restarted or
    standby engine re-reads what its predecessor was handed and never acknowledged."""
    from polysnipe.adapters.clock import WallClock
    from polysnipe.adapters.redis.factory import redis_client
    from polysnipe.adapters.redis.streams import StreamSource

    redis_config = resolved.config.redis
    streams = redis_config.streams()
    shards = sorted(set(args.shards)) if args.shards else list(range(streams.shards))
    bad = [n for n in shards if not 0 <= n < streams.shards]
    if bad:
        raise UsageError(f"--shards: {bad} outside 0..{streams.shards - 1} (redis.shards = {streams.shards})")
    client = redis_client(resolved.config.connections.redis_url, cluster=redis_config.cluster)

    def source(wallet: str) -> StreamSource:
        mine = attrs.evolve(streams, group=f"{streams.group}.{wallet.lower()}")
        return StreamSource(
            client, mine, consumer=f"engine.{wallet.lower()}", shards=shards, clock=WallClock()
        )

    return source


def _database(resolved: Any) -> Any:
    from polysnipe.adapters.postgres.database import DatabaseConfig

    settings = resolved.config.connections
    return DatabaseConfig(url=settings.database_url, schema=settings.database_schema)


def _shard_list(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
        raise argparse.ArgumentTypeError(f"expected shard numbers like 0,1,2, got {text!r}")
    return [int(p) for p in parts]


def _listen_address(text: str) -> tuple[str, int]:
    """--signals-listen HOST:PORT."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8090, got {text!r}")
    return host.strip("[]"), _port(port)


def _speed(text: str) -> float:
    try:
        value = float(text) if text.isascii() else float("nan")
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a speed >= 0 (0: as fast as possible), got {text!r}")
    return value


def _ingest(args: argparse.Namespace) -> int:
    import structlog

    from polysnipe.adapters.redis.errors import BusUnavailable
    from polysnipe.adapters.signals_http import MissingSignalKeys, keys_from_env
    from polysnipe.runners import inputs
    from polysnipe.runners.ingest import IngestJob, ingest_container, run_ingest
    from polysnipe.runners.logging import configure_logging

    resolved = _resolve(args)
    config = resolved.config
    if args.replay is None and not args.markets and args.signals_listen is None:
        raise UsageError(
            "ingest: give --markets (the live feed), --replay FILE, or --signals-listen HOST:PORT"
        )
    if args.replay is not None and args.markets:
        raise UsageError("ingest: --replay replaces the live feed; give --markets or --replay, not both")
    if args.speed is not None and args.replay is None:
        raise UsageError("ingest: --speed paces a --replay; it means nothing for the live feed")
    replay = inputs.require_lines(args.replay, "--replay", "market-channel messages") if args.replay else None
    tokens: list[str] = []
    if args.markets:
        catalog = inputs.read_market_files(args.markets, "--markets")
        _check_tokens(args, catalog)
        tokens = list(args.tokens) if args.tokens else catalog.registry().token_ids()
    elif args.tokens:
        raise UsageError("ingest: --tokens picks among the tokens of --markets; give --markets too")
    if args.record == "":
        raise UsageError("ingest: --record needs a folder for the recording")
    record = inputs.output_dir(args.record, "--record") if args.record is not None else None
    if args.signals_listen is not None:
        if not config.ingest.providers():
            raise UserError(
                "ingest: --signals-listen needs [ingest] signal_providers (or POLYSNIPE_SIGNAL_PROVIDERS)"
            )
        try:
            keys_from_env(config.ingest.providers())
        except MissingSignalKeys as exc:  # names the variables, never a value
            raise UserError(f"ingest: {exc}") from None
        host, port = args.signals_listen
        try:
            with socket.create_server((host, port)):
                pass
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another --signals-listen"
            ) from None
    ws = (args.ws_url or config.connections.clob_ws_url).rstrip("/") + "/market"
    if args.markets:
        # the live feed: a channel that does not open would retry for ever and record nothing
        asyncio.run(_check_channels(ws))
    job = IngestJob(
        replay=replay, speed=args.speed or 0.0, retime=args.retime, token_ids=tokens, market_ws_url=ws,
        record_dir=record, listen=args.signals_listen, duration_s=args.duration_s,
    )  # fmt: skip
    # a service: JSON log lines on stderr, the summary alone on stdout
    configure_logging(mode="json", level=args.log_level)
    try:
        result = asyncio.run(run_ingest(ingest_container(config), config, job))
    except BusUnavailable as exc:
        raise UnreachableService(f"{exc}; check POLYSNIPE_REDIS_URL (connections.redis_url)") from None
    finally:
        # the stream configured above may not outlive this command (a caller's captured stderr)
        structlog.reset_defaults()
    print(
        f"ingest: {result.frames} frames as {result.entries - result.signals} entries on"
        f" {config.redis.shards} shard(s), {result.signals} signal(s)"
        + (f"; recorded to {', '.join(str(p) for p in result.record_files)}" if result.record_files else "")
    )
    return 0


def _staged(out: Path) -> Any:
    """The output folder, written whole or not at all (runners/outputs.py)."""
    from polysnipe.runners.outputs import OutputDirRefused, check_output_dir, staged_output

    try:
        check_output_dir(out)
    except OutputDirRefused as exc:
        raise UsageError(f"--out: {exc}") from None
    return staged_output(out)


def _settings_of(resolved: Any) -> dict[str, Any]:
    """The effective settings as the manifest records them (TOML text: what config show prints)."""
    from polysnipe.runners.config import render_config

    return {"toml": render_config(resolved)}


def _sim_clob(args: argparse.Namespace) -> int:
    from polysnipe.adapters.sim.clob import ClobSimConfig
    from polysnipe.adapters.sim.clob.accounts import parse_balances
    from polysnipe.runners import inputs
    from polysnipe.runners.sim_clob import AdminExposed, admin_token_for, serve

    try:
        admin_token_for(args.host, os.environ)
    except AdminExposed as exc:
        raise UsageError(str(exc)) from None
    inputs.read_market_files(args.markets, "--markets")
    if args.events:
        inputs.require_file(args.events, "--events")
    if args.balances:
        raw = inputs.read_json_file(args.balances, "--balances")
        try:
            parse_balances(raw)
        except ValueError as exc:  # the balances parser's only failure: a malformed entry
            raise InputError(args.balances, f"{exc}; --balances takes {_BALANCES_FORMAT}") from None
    try:
        # fail with a clear line now rather than after loading every event
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port"
        ) from None
    config = ClobSimConfig(seed=args.seed, default_usdc_micro=args.default_usdc or 0, paced_replay=args.paced)
    serve(args.host, args.port, args.markets, args.events, args.balances, config=config)
    return 0


def _signer(args: argparse.Namespace) -> int:
    from polysnipe.runners import signer

    resolved = _resolve(args).config
    settings, url = resolved.signer, resolved.connections.database_url
    action = args.signer_command
    if action == "serve":
        try:
            with socket.create_server((args.host, args.port)):
                pass
        except OSError as exc:
            raise UserError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port"
            ) from None
        for path in (settings.tls_cert_file, settings.tls_key_file):
            if path is not None and not Path(path).is_file():
                raise InputError(path, "TLS file not found; check signer.tls_cert_file / tls_key_file")
        from polysnipe.runners.logging import configure_logging

        # JSON lines through the redaction processor: a machine reads them and no secret shows
        configure_logging(mode="json")
        service = signer.build_service(settings, url, os.environ)
        signer.check_database(settings, url)
        signer.serve(args.host, args.port, service, settings)
        return 0
    if action == "verify-audit":
        return signer.verify_audit(settings, url, os.environ, sys.stdout)
    if action == "callers":
        if args.callers_action == "list":
            return signer.list_callers(settings, url, sys.stdout)
        if not args.name:
            raise UsageError(f"signer callers {args.callers_action} needs NAME")
        if args.callers_action == "add":
            return signer.add_caller(settings, url, args.name, sys.stdout)
        return signer.revoke_caller(settings, url, args.name, sys.stdout)
    if args.keys_action == "create":
        return signer.create_key(settings, os.environ, sys.stdout)
    return signer.list_keys(settings, os.environ, sys.stdout)


def _config_show(args: argparse.Namespace) -> int:
    from polysnipe.runners.config import render_config

    sys.stdout.write(render_config(_resolve(args)))
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from polysnipe.runners.config import check_config_file

    check_config_file(Path(args.file))
    print("ok")
    return 0


# -- the parser ----------------------------------------------------------------------------------
_BALANCES_FORMAT = 'JSON {address: {"usdc": "1000", "positions": {token_id: "10"}}}'
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on any error, print the Python traceback too",
    )
    return common


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings over the embedded defaults (default: $POLYSNIPE_CONFIG)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    p = _Parser(
        prog="polysnipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"polysnipe {_version()}", help="print the version")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int] | None = None
    ) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        if func is not None:
            cmd.set_defaults(func=func)
        return cmd

    bt = command(
        "backtest", "replay Polymarket-format data through the engine and the simulated venue", _backtest
    )
    bt.add_argument("--markets", required=True, action="append", metavar="FILE", help=_MARKETS_HELP)
    bt.add_argument(
        "--events", required=True, metavar="FILE", help="market-channel WebSocket messages, JSON lines"
    )
    _config_option(bt)
    bt.add_argument(
        "--labels", metavar="FILE", help="labels.jsonl of planted inefficiencies to score the run"
    )
    bt.add_argument(
        "--signals", metavar="FILE", help="external signals as JSON lines, if kept apart from --events"
    )
    bt.add_argument(
        "--out", required=True, metavar="DIR", help="folder for report.json, equity.png and the rest"
    )
    bt.add_argument("--seed", type=_int_at_least(0), help="override the settings' seed")
    bt.add_argument(
        "--latency-sweep",
        type=_latencies,
        metavar="MS,MS,...",
        help="also rerun with each latency (market data, orders and acks alike) and write one row per"
        " latency to latency_sweep.json/.csv, e.g. 5,50,250,1000",
    )
    bt.add_argument("--log-level", default="info", choices=_LOG_LEVELS, help="least level written to run.log")
    bt.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")
    bt.add_argument("--no-cache", dest="cache", action="store_false", help=_NO_CACHE_HELP)

    gen = command("generate", "write a synthetic data set with planted inefficiencies", _generate)
    gen.add_argument("--seed", type=_int_at_least(0), required=True, help="the data set is a function of it")
    gen.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the metadata, events.jsonl and labels.jsonl"
    )
    gen.add_argument(
        "--markets", type=_int_at_least(1), default=6, help="standalone binary markets (default 6)"
    )
    gen.add_argument(
        "--neg-risk-events", type=_int_at_least(0), default=1, help="neg-risk events (default 1)"
    )
    gen.add_argument(
        "--outcomes-per-event",
        type=_int_at_least(2),
        default=4,
        help="outcomes of each neg-risk event (default 4)",
    )
    gen.add_argument(
        "--duration-s", type=_int_at_least(30), default=1800, help="seconds of market data (default 1800)"
    )
    gen.add_argument(
        "--malformed", type=_int_at_least(0), default=3, help="malformed lines to plant (default 3)"
    )
    gen.add_argument(
        "--resolved-markets",
        type=_int_at_least(0),
        default=1,
        help="standalone binary markets that resolve near the end (default 1)",
    )
    gen.add_argument(
        "--augment-main-event",
        action="store_true",
        help="publish the first neg-risk event as augmented, with an 'Other' placeholder market",
    )

    paper = command("paper", "trade live market data on paper against the simulated venue", _paper)
    _live_metadata_options(paper)
    paper.add_argument(
        "--tokens", nargs="*", metavar="TOKEN", help="token ids to subscribe (default: every market loaded)"
    )
    paper.add_argument(
        "--clob-url", type=_setting_value("clob_url"), help="CLOB REST URL (default: settings)"
    )
    paper.add_argument(
        "--ws-url",
        type=_setting_value("clob_ws_url"),
        help="market channel URL (default: settings' clob_ws_url/market)",
    )
    _config_option(paper)
    paper.add_argument(
        "--duration-s", type=_positive_seconds, default=60.0, help="how long to trade (default 60)"
    )
    paper.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the report, as a backtest writes"
    )
    paper.add_argument(
        "--log-level", default="info", choices=_LOG_LEVELS, help="least level written to run.log"
    )
    paper.add_argument(
        "--journal",
        action="store_true",
        help="journal every decision to Postgres as a live run does (settings' database_url and "
        "database_schema; kill switches then apply too)",
    )

    run = command(
        "run", "trade live on Polymarket's CLOB (or polysnipe sim-clob) under the risk limits", _run
    )
    _live_metadata_options(run)
    run.add_argument(
        "--bus",
        action="store_true",
        help="read market data and external signals from the Redis Streams bus (polysnipe ingest "
        "writes it) instead of the market WebSocket",
    )
    run.add_argument(
        "--shards",
        type=_shard_list,
        help="with --bus: the md.<k> shards to read, e.g. 0,1,2 (default: all of redis.shards)",
    )
    run.add_argument(
        "--standby",
        action="store_true",
        help="wait while another engine trades the wallet, and take over when it dies (its lease runs out)",
    )
    run.add_argument(
        "--tokens", nargs="*", metavar="TOKEN", help="token ids to subscribe (default: every market loaded)"
    )
    run.add_argument("--clob-url", type=_setting_value("clob_url"), help="CLOB REST URL (default: settings)")
    run.add_argument(
        "--ws-url", type=_setting_value("clob_ws_url"), help="WebSocket base URL, /market and /user added"
    )
    _config_option(run)
    run.add_argument(
        "--duration-s", type=_positive_seconds, help="stop after this long (default: until SIGTERM)"
    )
    run.add_argument("--out", required=True, metavar="DIR", help="folder for the run's report and log")
    run.add_argument(
        "--log-level", default="info", choices=_LOG_LEVELS, help="least level written to run.log"
    )

    ing = command(
        "ingest", "append the market channel (or a recording) and external signals to the bus", _ingest
    )
    ing.add_argument("--markets", action="append", metavar="FILE", help="live: " + _MARKETS_HELP)
    ing.add_argument(
        "--tokens",
        nargs="*",
        metavar="TOKEN",
        help="live: token ids to subscribe (default: all of --markets)",
    )
    ing.add_argument(
        "--ws-url", type=_setting_value("clob_ws_url"), help="live: WebSocket base URL, /market added"
    )
    ing.add_argument(
        "--replay", metavar="FILE", help="replay a JSON-lines recording instead of the live feed"
    )
    ing.add_argument(
        "--speed",
        type=_speed,
        help="--replay pace: 1 as recorded, 10 ten times faster, 0 (default) at once",
    )
    ing.add_argument(
        "--retime",
        action="store_true",
        help="--replay: move the recording's timestamps to start now, so a live engine treats it as a "
        "live feed (its books are fresh); the lines are re-encoded",
    )
    ing.add_argument(
        "--record", metavar="DIR", help="also write what arrives as rotating JSON lines (backtest --events)"
    )
    ing.add_argument(
        "--signals-listen", type=_listen_address, metavar="HOST:PORT",
        help="accept HMAC-signed external signals by HTTP POST /signals",
    )  # fmt: skip
    ing.add_argument("--duration-s", type=_positive_seconds, help="stop after this long (default: SIGTERM)")
    ing.add_argument("--log-level", default="info", choices=_LOG_LEVELS, help="least level logged on stderr")
    _config_option(ing)

    sim = command("sim-clob", "serve a local stand-in for Polymarket's CLOB (REST and WebSockets)", _sim_clob)
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")
    sim.add_argument("--markets", required=True, action="append", metavar="FILE", help=_MARKETS_HELP)
    sim.add_argument("--events", metavar="FILE", help="market-channel JSON lines replayed into the books")
    sim.add_argument("--balances", metavar="FILE", help=_BALANCES_FORMAT)
    sim.add_argument(
        "--default-usdc", type=_usdc, help="USDC of wallets the balances file does not name (default 0)"
    )
    sim.add_argument("--paced", action="store_true", help="feed events only on POST /_sim/advance")
    sim.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="seed of the simulator's ids (default 0)"
    )

    for name, engaged, what in (
        ("kill", True, "engage a kill switch: running engines stop trading its scope before their next "
                       "decision and cancel what rests there"),
        ("resume", False, "release a kill switch: running engines trade its scope again"),
    ):  # fmt: skip
        switch = command(name, what, _kill if engaged else _resume)
        switch.add_argument("--scope", required=True,
                            help="global, strategy:NAME, market:CONDITION_ID or wallet:ADDRESS")  # fmt: skip
        switch.add_argument("--reason", required=True, help="why, in one line (kept in the journal)")
        switch.add_argument("--by", help="who (default: your user name)")
        _config_option(switch)
    st = command(
        "status", "show kill switches, open orders, exposure and the outbox from the journal", _status
    )
    _config_option(st)

    mig = command("migrate", "apply the SQL migrations to the journal database", _migrate)
    mig.add_argument(
        "--database-url",
        type=_setting_value("database_url"),
        help="Postgres URL (default: settings' database_url)",
    )
    _config_option(mig)
    mig.add_argument(
        "--schema",
        type=_setting_value("database_schema"),
        help="schema to migrate, created if missing (default: settings' database_schema, "
        "POLYSNIPE_DATABASE_SCHEMA)",
    )
    mig.add_argument("--dir", help="folder of the *.sql migrations (default: the project's migrations/)")

    orders = command("orders", "order tools for operators")
    orders_sub = orders.add_subparsers(dest="orders_command", required=True, metavar="TOOL")
    sign = orders_sub.add_parser(
        "sign", help="print signed POST /order bodies for JSON-lines order inputs", parents=[common]
    )
    sign.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="JSON lines of order inputs (default: stdin)"
    )
    _config_option(sign)
    sign.set_defaults(func=_orders)

    bench = command("bench", "benchmarks: print figures and write them as JSON", _bench)
    bench.add_argument(
        "what",
        choices=[
            "backtest",
            "compare-nautilus",
            "orders",
            "ws",
            "book",
            "venue",
            "latency",
            "bus",
            "live",
            "signer",
        ],
        help="what to measure; compare-nautilus: our backtest and NautilusTrader's BacktestEngine on the"
        " same book deltas, a run of each in turn, with the ratios; book: the Python and the compiled"
        " order book alone, apply_level and touch reads per delta; venue: the Python and the compiled"
        " simulated venue per replayed event, with orders resting behind every touch",
    )
    bench.add_argument(
        "--markets",
        action="append",
        metavar="FILE",
        help="backtest, latency, compare-nautilus, venue: market metadata, several times (default with"
        " --events: the bundled sample's)",
    )
    bench.add_argument(
        "--events",
        help="events JSON lines; backtest, bus, live: default the bundled sample; ws, book, venue, latency:"
        " default generated sets (datagen defaults, about 27k frames each); compare-nautilus: default the"
        " generated set of seed 11 (datagen defaults, 1800 s)",
    )
    bench.add_argument(
        "-n",
        type=_int_at_least(1),
        default=20_000,
        help="orders, signer: iterations; bus, live: entries (default 20000)",
    )
    bench.add_argument(
        "--repeat",
        type=_int_at_least(1),
        default=3,
        help="runs of every measurement; the median run is reported (default 3)",
    )
    bench.add_argument(
        "--samples",
        type=_int_at_least(1),
        default=1_000,
        help="latency without --events: generate data sets until this many single-order decisions, the"
        " aim's kind (default 1000; a tail quantile needs 10 samples beyond it, p99.9 10000)",
    )
    bench.add_argument(
        "--max-sets",
        type=_int_at_least(1),
        default=100,
        help="latency without --events: at most this many generated sets (default 100)",
    )
    bench.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="latency: leave CPython's garbage collector automatic, pausing inside decisions, rather than"
        " collecting between batches as the live and paper runners do (to compare)",
    )
    bench.add_argument(
        "--nautilus-python",
        metavar="PYTHON",
        help="compare-nautilus: an interpreter with nautilus_trader (default: $POLYSNIPE_NAUTILUS_PYTHON,"
        " else this one if it has it, else a pyenv Python 3.12 that has it; none: skipped, exit 0)",
    )
    bench.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="backtest, compare-nautilus: parse the JSON lines on every run; without it our runs use a link"
        " to the events file, each repeat timing a cold load (parse + write the cache) and a warm one",
    )
    bench.add_argument("--out", default="out/bench", help="folder for the JSON figures (default out/bench)")

    signer_cmd = command(
        "signer", "the signing server: builder headers and managed trader keys, audited", _signer
    )
    signer_sub = signer_cmd.add_subparsers(dest="signer_command", required=True, metavar="ACTION")
    serve = signer_sub.add_parser(
        "serve", help="serve the signing server (ASGI on uvicorn)", parents=[common]
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8700, help="TCP port (default 8700)")
    _config_option(serve)
    callers = signer_sub.add_parser("callers", help="add, list or revoke callers", parents=[common])
    callers.add_argument("callers_action", choices=["add", "list", "revoke"], help="what to do")
    callers.add_argument("name", nargs="?", metavar="NAME", help="the caller (add, revoke)")
    _config_option(callers)
    keys = signer_sub.add_parser("keys", help="create or list managed trader keys", parents=[common])
    keys.add_argument("keys_action", choices=["create", "list"], help="what to do (addresses only)")
    _config_option(keys)
    verify = signer_sub.add_parser(
        "verify-audit", help="check the audit log's hash chain; names any edited, inserted or deleted row",
        parents=[common],
    )  # fmt: skip
    _config_option(verify)

    cfg = command("config", "print or check the settings")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = cfg_sub.add_parser(
        "show", help="print the effective settings, documented, with the source of each key", parents=[common]
    )
    _config_option(show)
    show.set_defaults(func=_config_show)
    check = cfg_sub.add_parser(
        "check", help='check a settings file: prints "ok" or every problem (exit 2)', parents=[common]
    )
    check.add_argument(
        "file", metavar="FILE", help="the TOML settings file to check (the environment is not read)"
    )
    check.set_defaults(func=_config_check)
    return p


_MARKETS_HELP = (
    "market metadata: CLOB GET /markets JSON, GET /clob-markets answers, Gamma GET /markets or"
    " GET /events JSON; give it several times, merged by condition id"
)
_NO_CACHE_HELP = (
    "parse --events (and --signals) on every run; by default the parsed events are cached in FILE.cache/"
    " beside each file, keyed by its hash (a changed file or parser is parsed again), and later runs"
    " read that instead; the report is the same either way"
)


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame of `exc`, relative to the package, for a bug report."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    path = Path(last.filename)
    parts = path.parts
    short = "/".join(parts[parts.index("src") + 1 :]) if "src" in parts else path.name
    return f"{type(exc).__name__} at {short}:{last.lineno}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments
    from polysnipe.runners.implementation import select_book, select_decoder

    try:
        select_book(os.environ)  # before any command makes a book
        select_decoder(os.environ)  # ...or decodes a frame
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit as exc:  # --help and --version print and stop here
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        debug = bool(getattr(args, "debug", False))
        return int(args.func(args))
    except UserError as exc:
        if debug:
            traceback.print_exc()
        for line in exc.lines():
            print(f"polysnipe: error: {line}", file=sys.stderr)
        return exc.exit_code
    except BusUnavailable as exc:  # Redis not answering where the settings say: fixed by the user
        if debug:
            traceback.print_exc()
        print(f"polysnipe: error: {exc}; check POLYSNIPE_REDIS_URL", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("polysnipe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`polysnipe config show | head`): not an error of ours
        sys.stderr.close()
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(
            f"polysnipe: internal error ({_where(exc)}); this is a bug in polysnipe: "
            "rerun with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
