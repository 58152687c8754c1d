"""`polysnipe run`: the live engine on Polymarket's CLOB (or `polysnipe sim-clob`, which speaks it).

The same engine loop as the backtest and paper runs (runners/loop.py), composed by the Live
container: the market channel (or, with `bus`, the Redis Streams the ingest writes) and the user
channel feed the loop, signed CLOB V2 orders go out through the REST adapter, which is also the loop's
market-event sink (it follows tick sizes). Orders are signed in process or, with `signer`, by the
signing server. The wallet is this engine's only while it holds the wallet's lease in the journal.

Before the first event, the runner makes sure it can trade for real, and fails with one clear line if
not: the signing key comes from POLYSNIPE_CLOB_PRIVATE_KEY; without L2 credentials in the environment
it creates or derives them with L1 auth, as the official client does; the wallet it trades is the
order maker (the funder for signature types 1-3, else the signer), and its balance is the one the
venue reports (GET /balance-allowance), never the config's. The config's treasury and risk limits
apply to that wallet. The journal is Postgres (a schema `polysnipe migrate` brought up to date):
every decision is in it, every order is claimed in its outbox before it is sent, and operators' kill
switches reach the engine through it. Before the first decision the engine takes over from the runs
before it (adapters/restart.py): unanswered orders resolved by hash, resting ones cancelled, missed
fills journaled, positions taken from the venue.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
import redis.exceptions
from dependency_injector import providers

from polysnipe.adapters.clob.account import collateral_balance, create_or_derive_creds
from polysnipe.adapters.clob.auth import ApiKeySigner, LocalSigner
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import MalformedMessage, VenueError
from polysnipe.adapters.clob.factory import (
    ClobAdapters,
    ClobSecrets,
    RemoteSigning,
    api_creds_from_env,
    secrets_from_env,
)
from polysnipe.adapters.clob.signing import OrderSigner
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.logs import get_logger
from polysnipe.adapters.postgres.database import DatabaseConfig, JournalUnavailable, open_database
from polysnipe.adapters.postgres.leases import LeaseHeld, WalletLeases
from polysnipe.adapters.redis.streams import StreamSource
from polysnipe.adapters.restart import take_over
from polysnipe.adapters.signer_client.config import SignerClientConfig
from polysnipe.adapters.signer_client.errors import SignerUnavailable
from polysnipe.adapters.signer_client.factory import build_remote_order_signer
from polysnipe.adapters.signer_client.orders import RemoteOrderSigner
from polysnipe.adapters.sim.journal import MemoryJournal
from polysnipe.core.market import MarketRegistry
from polysnipe.runners.collector import between_batches
from polysnipe.runners.config import EngineConfig, WalletConfig, as_sections
from polysnipe.runners.containers import Live
from polysnipe.runners.loop import EngineLoop
from polysnipe.runners.results import InputStats, build_report, write_outputs

__all__ = ["LiveResult", "LiveStartError", "run_live"]

log = get_logger("polysnipe.live")


class LiveStartError(RuntimeError):
    """The live engine cannot start: no key, no venue, no credentials, no balance."""


@attrs.define
class LiveResult:
    report: dict[str, Any]
    timing: dict[str, Any]
    loop: EngineLoop
    journal: MemoryJournal
    wallet: str


async def _remote_account(
    clob: ClobConfig, env: Mapping[str, str] | None, orders: RemoteOrderSigner
) -> tuple[RemoteSigning, str, int]:
    """_account when the signing server holds the trading key: the L2 credentials must be given (L1
    auth would need the key), and the server must answer before the engine starts."""
    try:
        creds = api_creds_from_env(env)
        health = await orders.health()
    except KeyError as exc:
        raise LiveStartError(str(exc).strip("'\"")) from None
    except SignerUnavailable as exc:
        raise LiveStartError(f"cannot start: {exc}") from None
    log.info("signing_server", server=repr(orders), keys=health.keys)
    client = ClobHttpClient(clob, WallClock(), ApiKeySigner(orders.address, creds))
    try:
        balance = await collateral_balance(client, int(clob.signature_type))
    except VenueError as exc:
        raise LiveStartError(f"cannot start on the CLOB at {clob.host}: {exc}") from None
    finally:
        await client.aclose()
    return RemoteSigning(orders, creds), orders.maker, balance


async def _account(clob: ClobConfig, env: Mapping[str, str] | None) -> tuple[ClobSecrets, str, int]:
    """The secrets (credentials created or derived when absent), the maker wallet and its balance."""
    try:
        secrets = secrets_from_env(env)
    except KeyError as exc:
        raise LiveStartError(str(exc).strip("'\"")) from None
    signer = LocalSigner.from_private_key(secrets.private_key, clob.chain_id, secrets.creds)
    clock = WallClock()
    try:
        if secrets.creds is None:
            bare = ClobHttpClient(clob, clock, signer)
            try:
                creds = await create_or_derive_creds(bare, signer, clock.now_ms() // 1000)
            finally:
                await bare.aclose()
            secrets = ClobSecrets(secrets.private_key, creds)
            signer = LocalSigner.from_private_key(secrets.private_key, clob.chain_id, creds)
            log.info("api_credentials", source="l1_create_or_derive", address=signer.address)
        client = ClobHttpClient(clob, clock, signer)
        try:
            balance = await collateral_balance(client, int(clob.signature_type))
        finally:
            await client.aclose()
    except VenueError as exc:
        raise LiveStartError(f"cannot start on the CLOB at {clob.host}: {exc}") from None
    maker = OrderSigner.for_config(signer, clob).maker
    return secrets, maker, balance


def _live_config(config: EngineConfig, wallet: str, balance: int) -> EngineConfig:
    """The engine config with its wallets replaced by the one wallet the venue says we trade."""
    return attrs.evolve(config, wallets={wallet: WalletConfig(balance_usdc_micro=balance)})


async def run_live(
    *,
    registry: MarketRegistry,
    config: EngineConfig,
    clob: ClobConfig,
    market_ws_url: str,
    user_ws_url: str,
    out_dir: Path,
    duration_s: float | None = None,
    database: DatabaseConfig,
    lease_ms: int = 15_000,
    signing_threads: int | None = None,
    standby: bool = False,
    bus: Callable[[str], StreamSource] | None = None,
    env: Mapping[str, str] | None = None,
    token_ids: Sequence[str] | None = None,
    signer: SignerClientConfig | None = None,
) -> LiveResult:
    """Trade the markets of `registry` live until `duration_s` passes or SIGTERM/SIGINT arrives, then
    cancel what rests. Every decision is journaled in `database`, and before the first one the engine
    takes over from the runs before it (adapters/restart.py). With `signer`, orders are signed by
    the signing server's key `signer.order_key` and this process holds no trading key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trade = functools.partial(_run_live, registry, config, clob, market_ws_url, user_ws_url, out_dir,
                              duration_s, database, lease_ms, signing_threads, standby, token_ids,
                              bus)  # fmt: skip
    if signer is None:
        return await trade(await _account(clob, env))
    try:
        orders = build_remote_order_signer(signer, clob, env)
    except (KeyError, ValueError) as exc:
        raise LiveStartError(str(exc).strip("'\"")) from None
    try:
        account = await _remote_account(clob, env, orders)
        return await trade(account)
    finally:
        await orders.aclose()


async def _run_live(
    registry: MarketRegistry,
    config: EngineConfig,
    clob: ClobConfig,
    market_ws_url: str,
    user_ws_url: str,
    out_dir: Path,
    duration_s: float | None,
    database: DatabaseConfig,
    lease_ms: int,
    signing_threads: int | None,
    standby: bool,
    token_ids: Sequence[str] | None,
    bus: Callable[[str], StreamSource] | None,
    account: tuple[ClobSecrets | RemoteSigning, str, int],
) -> LiveResult:
    secrets, wallet, balance = account
    log.info("live_wallet", wallet=wallet, balance_usdc_micro=balance, host=clob.host)
    incarnation = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    # one consumer per wallet, stable across restarts: a restarted or standby engine re-reads what its
    # predecessor was handed and never acknowledged
    stream = bus(wallet) if bus is not None else None
    with ExitStack() as stack:
        # SIGTERM/SIGINT are handled from before the wallet's lease is taken: a signal while the
        # engine starts stops it cleanly once started (or ends a standby's wait), not midway
        stop = stack.enter_context(_stop_on_signals())
        try:
            db = stack.enter_context(open_database(database))
        except JournalUnavailable as exc:
            raise LiveStartError(str(exc)) from None
        leases = WalletLeases(db.connection(), incarnation, ttl_ms=lease_ms)
        async with _owned(leases, wallet, standby=standby, stop=stop):
            settings = {
                "clob": attrs.asdict(clob, recurse=False),
                "market_data": {"market_url": market_ws_url, "user_url": user_ws_url},
                # worker threads signing a basket's legs (None: the CPUs less one)
                "signing_threads": signing_threads,
            }
            container = Live(
                registry=providers.Object(registry),
                clob=providers.Object(settings),
                secrets=providers.Object(secrets),
                database=providers.Object(db),
                incarnation=providers.Object(incarnation),
                bus=providers.Object(stream),
            )
            container.config.from_dict(as_sections(_live_config(config, wallet, balance)))
            loop: EngineLoop = container.loop()
            journal: MemoryJournal = container.view()
            adapters: ClobAdapters = container.gateways.adapters()
            tokens = list(token_ids) if token_ids else registry.token_ids()
            started = time.monotonic()
            try:
                try:
                    takeover = await take_over(
                        conn=db.connection(),
                        outbox=container.outbox(),
                        execution=adapters.execution,
                        client=adapters.client,
                        state=loop.state,
                        wallet=wallet,
                        signature_type=int(clob.signature_type),
                        now_ms=container.clock().now_ms(),
                        dedupe_horizon_ms=loop.state.evaluators.params.dedupe_horizon_ms,
                    )
                except (VenueError, MalformedMessage) as exc:
                    why = f"cannot take over from the previous run on {clob.host}: {exc}"
                    raise LiveStartError(why) from None
                starting_equity = loop.state.portfolio.equity().total_usdc_micro
                if stream is not None:
                    try:
                        await stream.start()
                    except (redis.exceptions.RedisError, OSError) as exc:
                        raise LiveStartError(f"cannot read the bus: {exc}"[:500]) from None
                await adapters.start(tokens, market_channel=stream is None)
                # cyclic garbage is collected between batches, never inside a decision (collector.py)
                loop.on_batch = stack.enter_context(between_batches())
                runner = asyncio.create_task(loop.run())
                waiter = asyncio.create_task(stop.wait())
                lost = asyncio.Event()
                keeper = asyncio.create_task(_keep_lease(leases, wallet, lost))
                lease_lost = asyncio.create_task(lost.wait())
                await asyncio.wait(
                    {runner, waiter, lease_lost}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED
                )
                loop.stop()
                container.inbox().close()
                await runner
                for task in (waiter, keeper, lease_lost):
                    task.cancel()
                if lost.is_set():
                    loop.state.bump("wallet_lease_lost")
                # resting orders are cancelled through the venue before the sockets close
                await loop.drain("live_stopped")
            finally:
                await adapters.aclose()
                if stream is not None:
                    # the last batches' acknowledgements: their journal transactions committed
                    await _flush(stream)
            elapsed = time.monotonic() - started
            inputs = {"mode": "live", "clob_url": clob.host, "market_ws_url": market_ws_url, "wallet": wallet,
                      "incarnation": incarnation, "takeover": takeover.as_dict()}  # fmt: skip
            report = build_report(
                loop,
                journal,
                inputs=inputs,
                stats=InputStats(lines=sum(loop.counts.values())),
                starting_equity=starting_equity,
            )
            timing = {"duration_s": round(elapsed, 3), "events": sum(loop.counts.values())}
            write_outputs(out_dir, report, timing, loop, journal, title="live")
            return LiveResult(report, timing, loop, journal, wallet)


async def _flush(stream: StreamSource) -> None:
    try:
        await stream.flush()
    except (redis.exceptions.RedisError, OSError) as exc:
        # unacknowledged entries are read again by the next run, and its dedupe drops what they repeat
        log.warning("bus_final_ack_failed", error=f"{type(exc).__name__}: {exc}"[:300])
    stream.close()


@contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (the running loop's handlers)."""
    stop = asyncio.Event()
    aio = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        aio.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            aio.remove_signal_handler(sig)


@asynccontextmanager
async def _owned(
    leases: WalletLeases, wallet: str, *, standby: bool, stop: asyncio.Event
) -> AsyncIterator[None]:
    """The wallet, this engine's while the block runs (module doc); released at the end, so a
    standby or the next run takes it over at once."""
    await _acquire(leases, wallet, standby=standby, stop=stop)
    try:
        yield
    finally:
        leases.release(wallet)


async def _acquire(leases: WalletLeases, wallet: str, *, standby: bool, stop: asyncio.Event) -> None:
    """Take the wallet, waiting out a lease its last engine left behind (a crash: the lease runs out
    within its time); a lease that is renewed meanwhile belongs to a live engine: refuse to start,
    unless this engine is its `standby`, which waits until that engine dies and then takes over.
    A stop (SIGTERM) while waiting ends the wait: nothing was traded."""
    deadline = None if standby else time.monotonic() + leases.ttl_ms / 1000 + 1.0
    logged = False
    while True:
        try:
            leases.acquire(wallet)
            if logged:
                log.info("wallet_lease_taken", wallet=wallet, holder=leases.holder)
            return
        except LeaseHeld as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise LiveStartError(str(exc)) from None
            if not logged:
                log.info("wallet_lease_wait", wallet=wallet, reason=str(exc), standby=standby)
                logged = True
        if stop.is_set():
            raise LiveStartError(f"stopped while waiting for the lease of wallet {wallet}: nothing traded")
        await asyncio.sleep(min(0.2, leases.ttl_ms / 5000))


async def _keep_lease(leases: WalletLeases, wallet: str, lost: asyncio.Event) -> None:
    """Renew the wallet's lease a few times per lease; on any failure the wallet may be someone
    else's before long, so the engine stops trading it (fail closed)."""
    while True:
        await asyncio.sleep(leases.ttl_ms / 3000)
        try:
            kept = leases.renew(wallet)
        except psycopg.Error as exc:
            log.critical(
                "wallet_lease_unrenewable", wallet=wallet, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            kept = False
        if not kept:
            log.critical("wallet_lease_lost", wallet=wallet, holder=leases.holder)
            lost.set()
            return
