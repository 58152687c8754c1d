"""Build the CLOB adapters from settings. Secrets come from POLYSNIPE_* environment variables only.

Settings (a mapping, e.g. a TOML table) hold everything that may be printed: hosts, timeouts, rate
budgets. A settings mapping that carries anything secret-looking is refused, so a key can never
travel through a config file or a command line. Secrets are wrapped in `Secret` as soon as they are
read and validated there (a malformed key fails at start-up, naming the variable, never showing the
value). Building opens no socket: `ClobAdapters.start()` does, and `aclose()` releases everything.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
import httpx

from polysnipe.adapters.clob.auth import ApiCreds, ApiKeySigner, LocalSigner, SignerPort
from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.conditions import VenueConditions
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.execution import ClobExecution, OrderIndex, ReconcileConfig, Reconciler
from polysnipe.adapters.clob.heartbeat import Heartbeat, HeartbeatConfig, VenueHealth
from polysnipe.adapters.clob.market_data import MarketDataConfig, MarketDataFeed
from polysnipe.adapters.clob.parsing import FeeOf
from polysnipe.adapters.clob.retry import (
    CANCEL_BUCKET,
    ORDER_BUCKET,
    BucketSpec,
    CircuitBreaker,
    RateBudgets,
    RetryPolicy,
)
from polysnipe.adapters.clob.schemas import WireTrade
from polysnipe.adapters.clob.signing import (
    EcdsaKey,
    InvalidPrivateKey,
    OrderSigner,
    OrderSigningPort,
    ParallelSigner,
    private_key_bytes,
)
from polysnipe.adapters.clob.user_channel import UserChannel, UserReport, UserStream
from polysnipe.adapters.clob.websocket import Connect
from polysnipe.adapters.tasks import cancel_and_wait
from polysnipe.core.events import Event, Side
from polysnipe.core.fees import NO_FEE, TakerFee, taker_fee
from polysnipe.core.market import MarketRegistry
from polysnipe.core.messages import RaiseAlert, VenueCondition
from polysnipe.core.ports import Clock, OrderOutbox, Rng
from polysnipe.core.secret import Secret
from polysnipe.core.units import format_micro

__all__ = [
    "ENV_API_KEY",
    "ENV_API_PASSPHRASE",
    "ENV_API_SECRET",
    "ENV_PRIVATE_KEY",
    "ClobAdapters",
    "ClobSecrets",
    "ClobSettings",
    "RemoteSigning",
    "SecretsError",
    "api_creds_from_env",
    "build_clob_adapters",
    "fee_lookup",
    "secrets_from_env",
    "settings_from_mapping",
]

ENV_PRIVATE_KEY: Final = "POLYSNIPE_CLOB_PRIVATE_KEY"
ENV_API_KEY: Final = "POLYSNIPE_CLOB_API_KEY"
ENV_API_SECRET: Final = "POLYSNIPE_CLOB_API_SECRET"
ENV_API_PASSPHRASE: Final = "POLYSNIPE_CLOB_API_PASSPHRASE"

_SECRET_WORDS: Final = ("private_key", "secret", "passphrase", "api_key", "apikey", "mnemonic")


class SecretsError(KeyError, ValueError):
    """A POLYSNIPE_CLOB_* variable is missing or malformed; the message names it, never its value.

    A KeyError, as a missing variable always was (callers catch that), and a ValueError, as a
    malformed one is; str() is the bare message (KeyError's own str() would quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _key_secret(value: str | Secret[str]) -> Secret[str]:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise InvalidPrivateKey(f"the private key must be a hex string, not {type(value).__name__}")
    return Secret(value)


def _check_private_key(_: object, __: attrs.Attribute[Secret[str]], value: Secret[str]) -> None:
    private_key_bytes(value)


@attrs.frozen(slots=True, repr=False)
class ClobSecrets:
    """The signing key and L2 credentials, wrapped: read them with `.reveal()` where they are used."""

    #: 32-byte secp256k1 key as hex (validated); EcdsaKey/OrderSigner.from_key take the Secret itself
    private_key: Secret[str] = attrs.field(converter=_key_secret, validator=_check_private_key)
    #: None until API credentials were created or derived (L1)
    creds: ApiCreds | None

    def __repr__(self) -> str:
        return f"ClobSecrets(private_key=***, creds={self.creds!r})"


def secrets_from_env(env: Mapping[str, str] | None = None) -> ClobSecrets:
    """The signing key and L2 credentials from POLYSNIPE_CLOB_*; the three L2 values come together.

    Raises SecretsError naming the variable when one is missing or malformed.
    """
    env = os.environ if env is None else env
    private_key = Secret(env.get(ENV_PRIVATE_KEY, ""))
    if not private_key.reveal():
        raise SecretsError(f"{ENV_PRIVATE_KEY} is not set")
    names = (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE)
    parts = [env.get(name, "") for name in names]
    if any(parts) and not all(parts):
        raise SecretsError(f"set all of {ENV_API_KEY}, {ENV_API_SECRET}, {ENV_API_PASSPHRASE}, or none")
    creds = None
    if all(parts):
        try:
            creds = ApiCreds(api_key=parts[0], secret=Secret(parts[1]), passphrase=Secret(parts[2]))
        except ValueError as exc:  # the messages name the field and never show the value
            raise SecretsError(f"{', '.join(names)}: {exc}") from None
    try:
        return ClobSecrets(private_key, creds)
    except InvalidPrivateKey as exc:
        raise SecretsError(f"{ENV_PRIVATE_KEY}: {exc}") from None


@attrs.frozen(slots=True, repr=False)
class RemoteSigning:
    """The trading key is on the signing server: orders are signed through `orders`, and requests are
    authenticated with the key's L2 credentials (L1 auth needs the key, so they must be given)."""

    orders: OrderSigningPort
    creds: ApiCreds

    def __repr__(self) -> str:
        return f"RemoteSigning(orders={self.orders!r}, creds={self.creds!r})"


def api_creds_from_env(env: Mapping[str, str] | None = None) -> ApiCreds:
    """The L2 credentials alone (the trading key being elsewhere); raises SecretsError naming what is
    missing."""
    env = os.environ if env is None else env
    names = (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE)
    parts = [env.get(name, "") for name in names]
    if not all(parts):
        raise SecretsError(
            f"signing through the signing server needs {', '.join(names)}: L1 auth (creating or "
            "deriving them) needs the trading key, which the server holds"
        )
    try:
        return ApiCreds(api_key=parts[0], secret=Secret(parts[1]), passphrase=Secret(parts[2]))
    except ValueError as exc:
        raise SecretsError(f"{', '.join(names)}: {exc}") from None


@attrs.frozen(slots=True)
class ClobSettings:
    clob: ClobConfig = attrs.field(factory=ClobConfig)
    market_data: MarketDataConfig = attrs.field(factory=MarketDataConfig)
    heartbeat: HeartbeatConfig = attrs.field(factory=HeartbeatConfig)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: settling orders whose fate is open: the periodic reconciler, re-post bounds, alerts
    reconcile: ReconcileConfig = attrs.field(factory=ReconcileConfig)
    order_bucket: BucketSpec = ORDER_BUCKET
    cancel_bucket: BucketSpec = CANCEL_BUCKET
    #: consecutive order rejects that stop all posting
    circuit_threshold: int = 5
    #: how long a tick learned from the feed or REST is trusted before it is fetched again
    tick_ttl_ms: int = 300_000
    #: REST catch-up window after the user channel reconnects
    catch_up_window_s: int = 600
    #: at start, place and cancel one post-only order at one tick to verify that the venue's order id
    #: is our EIP-712 hash before any real order (ClobExecution.probe_order_ids). Off: the first order
    #: the venue acknowledges verifies it, and until then reconciliation draws nothing from absence.
    order_id_probe: bool = False
    #: worker threads that sign a basket's legs beside the event loop's (signing.ParallelSigner);
    #: None: the CPUs less one. 0 on a host whose CPUs other processes keep busy: there a worker
    #: without a CPU of its own only makes the event loop wait for the GIL.
    signing_threads: int | None = None


def _refuse_secrets(raw: Mapping[str, Any], where: str = "") -> None:
    for key, value in raw.items():
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            raise ValueError(
                f"settings key {where}{key} looks secret: secrets come from POLYSNIPE_* env only"
            )
        if isinstance(value, Mapping):
            _refuse_secrets(value, f"{where}{key}.")


def settings_from_mapping(raw: Mapping[str, Any]) -> ClobSettings:
    """ClobSettings from a mapping with optional sections `clob`, `market_data`, `heartbeat`,
    `retry`, `reconcile`, `rate_limits` ({"order": {"burst", "per_s"}, "cancel": {...}}) and the
    scalar keys of ClobSettings. Unknown keys raise (a typo must not silently fall back to a default)."""
    _refuse_secrets(raw)
    known = {"clob", "market_data", "heartbeat", "retry", "reconcile", "rate_limits"}
    scalars = {k: v for k, v in raw.items() if k not in known}
    limits = raw.get("rate_limits", {})
    unknown_limits = set(limits) - {"order", "cancel"}
    if unknown_limits:
        raise TypeError(f"unknown rate_limits keys: {sorted(unknown_limits)}")
    defaults = ClobSettings()
    return ClobSettings(
        clob=ClobConfig(**raw.get("clob", {})),
        market_data=MarketDataConfig(**raw.get("market_data", {})),
        heartbeat=HeartbeatConfig(**raw.get("heartbeat", {})),
        retry=RetryPolicy(**raw.get("retry", {})),
        reconcile=ReconcileConfig(**raw.get("reconcile", {})),
        order_bucket=BucketSpec(**limits["order"]) if "order" in limits else defaults.order_bucket,
        cancel_bucket=BucketSpec(**limits["cancel"]) if "cancel" in limits else defaults.cancel_bucket,
        **scalars,
    )


def fee_lookup(registry: MarketRegistry) -> FeeOf:
    """Taker fees of fills (makers pay none): at the rate the trade says it was charged
    (`fee_rate_bps`, 100 bps = 0.01) when it carries one, else at the market's fee parameters.

    A "0" is read as "not stated" on a market whose metadata has fees (payloads of the V1 era carry
    "0" everywhere): the fee is never understated on the word of an empty field.
    """

    def fee_of(token_id: str, side: Side, price: int, size: int, rate_bps: int | None) -> TakerFee:
        market = registry.get_by_token(token_id)
        exponent = market.fee_exponent if market is not None else 1
        if rate_bps:
            return taker_fee(side, size, price, rate_bps * 100, exponent)
        if market is None or not market.fee_rate:
            return NO_FEE
        return taker_fee(side, size, price, market.fee_rate, market.fee_exponent)

    return fee_of


@attrs.define(slots=True)
class ClobAdapters:
    """Everything live trading on the CLOB needs, wired together; start() opens the sockets."""

    settings: ClobSettings
    client: ClobHttpClient
    index: OrderIndex
    execution: ClobExecution
    heartbeat: Heartbeat
    market_data: MarketDataFeed
    user_channel: UserChannel
    user_stream: UserStream
    registry: MarketRegistry | None
    reconciler: Reconciler
    #: the threads that sign a basket's legs in parallel (None: the signing server signs)
    signers: ParallelSigner | None = None
    _tasks: list[asyncio.Task[None]] = attrs.field(factory=list)

    async def start(self, token_ids: Iterable[str], *, market_channel: bool = True) -> None:
        """Subscribe the market channel to `token_ids` (unless the engine reads market data from the
        bus: `market_channel` False); with `order_id_probe`, verify that order ids are our EIP-712
        hashes; start heartbeats, the user channel and the periodic reconciler (its reports go to the
        user channel's sink, the engine loop's inbox)."""
        tokens = list(token_ids)
        if market_channel:
            await self.market_data.subscribe(tokens)
        if self.registry is not None:
            for token_id in tokens:
                market = self.registry.get_by_token(token_id)
                if market is not None:
                    self.market_data.keeper.set_market_meta(
                        token_id, min_order_size=format_micro(market.min_order_size), neg_risk=market.neg_risk
                    )
        if self.signers is not None:
            self.signers.start()
        if self.settings.order_id_probe:
            await self._probe_order_ids(tokens)
        self._tasks.append(asyncio.create_task(self.heartbeat.run()))
        self._tasks.append(asyncio.create_task(self.user_stream.run()))
        self._tasks.append(asyncio.create_task(self.reconciler.run()))

    async def _probe_order_ids(self, tokens: list[str]) -> None:
        """The start-up order-id check (settings.order_id_probe), on the first token we can price."""
        markets = [] if self.registry is None else [self.registry.get_by_token(t) for t in tokens]
        for token_id, market in zip(tokens, markets, strict=False):
            if market is not None:
                await self.execution.probe_order_ids(market, token_id)
                return
        raise ValueError("order_id_probe needs a token of a known market (pass the registry and tokens)")

    async def aclose(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        await self.market_data.close()
        await self.client.aclose()
        if self.signers is not None:
            self.signers.close()


def build_clob_adapters(
    settings: ClobSettings | Mapping[str, Any],
    *,
    clock: Clock,
    rng: Rng,
    alert: Callable[[RaiseAlert], None],
    market_sink: Callable[[list[Event]], None],
    user_sink: Callable[[Sequence[UserReport]], None],
    condition_ids: Iterable[str] = (),
    registry: MarketRegistry | None = None,
    on_health: Callable[[VenueHealth], None] | None = None,
    on_condition: Callable[[VenueCondition], None] | None = None,
    on_gap: Callable[[str, str], None] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: ClobSecrets | RemoteSigning | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    connect: Connect | None = None,
    outbox: OrderOutbox | None = None,
) -> ClobAdapters:
    """Wire client, execution, heartbeat and both channels. `condition_ids` filter the user channel;
    `on_condition` hears the venue's conditions (restart, post-only window, cancel-only, heartbeats
    failing), which the engine's risk acts on; `outbox` is the durable record every order is claimed
    in before it is sent (live: Postgres).

    Secrets come from `env` (POLYSNIPE_CLOB_*) unless the caller already holds them (credentials it
    just created or derived with L1). With RemoteSigning the orders are signed by the signing server
    and this process holds no trading key."""
    if not isinstance(settings, ClobSettings):
        settings = settings_from_mapping(settings)
    if secrets is None:
        secrets = secrets_from_env(env)
    config = settings.clob
    signer: SignerPort
    order_signer: OrderSigningPort
    pool: ParallelSigner | None = None
    if isinstance(secrets, RemoteSigning):
        signer = ApiKeySigner(secrets.orders.address, secrets.creds)
        order_signer = secrets.orders
    else:
        local = LocalSigner.from_private_key(secrets.private_key, config.chain_id, secrets.creds)
        key = secrets.private_key
        # a basket's legs are signed at once, each thread with a key object of its own (signing.py);
        # `local` signs the L1/L2 headers on the event loop's thread
        pool = ParallelSigner(lambda: OrderSigner.for_config(EcdsaKey(key), config), settings.signing_threads)
        signer, order_signer = local, pool
    if secrets.creds is None:
        raise KeyError(f"live execution needs L2 credentials: set {ENV_API_KEY} and its companions")
    client = ClobHttpClient(config, clock, signer, transport=transport)
    index = OrderIndex()
    fee_of = fee_lookup(registry) if registry is not None else None
    conditions = VenueConditions(on_condition, clock) if on_condition is not None else None
    execution = ClobExecution(
        client,
        order_signer,
        owner=secrets.creds.api_key,
        clock=clock,
        rng=rng,
        alert=alert,
        policy=settings.retry,
        budgets=RateBudgets(settings.order_bucket, settings.cancel_bucket),
        circuit=CircuitBreaker(settings.circuit_threshold),
        index=index,
        fee_of=fee_of,
        tick_ttl_ms=settings.tick_ttl_ms,
        reconcile=settings.reconcile,
        conditions=conditions,
        outbox=outbox,
    )

    def health(event: VenueHealth) -> None:
        if on_health is not None:
            on_health(event)
        else:
            alert(event.to_alert())
        if conditions is None:
            return
        if event.healthy:
            conditions.clear("heartbeat", event.reason)
        else:
            conditions.raise_("heartbeat", event.reason)

    heartbeat = Heartbeat(
        client,
        clock=clock,
        should_beat=lambda: index.resting_count > 0,
        on_health=health,
        config=settings.heartbeat,
    )

    # the engine loop shows every market event to `execution` (its MarketEventSink) in order
    feed = MarketDataFeed(
        settings.market_data,
        snapshots=execution.book,
        sink=market_sink,
        clock=clock,
        rng=rng,
        on_gap=on_gap,
        connect=connect,
        on_alert=alert,
    )
    channel = UserChannel(index, fee_of=fee_of)
    window_s = settings.catch_up_window_s

    async def catch_up() -> list[WireTrade]:
        return await execution.trade_list(after_s=clock.now_ms() // 1000 - window_s)

    user_stream = UserStream(
        settings.market_data,
        creds=secrets.creds,
        markets=list(condition_ids),
        channel=channel,
        sink=user_sink,
        clock=clock,
        rng=rng,
        catch_up=catch_up,
        connect=connect,
        on_alert=alert,
    )
    reconciler = Reconciler(
        execution,
        sink=user_sink,
        on_alert=alert,
        clock=clock,
        interval_s=settings.reconcile.interval_s,
    )
    return ClobAdapters(
        settings, client, index, execution, heartbeat, feed, channel, user_stream, registry, reconciler, pool
    )
