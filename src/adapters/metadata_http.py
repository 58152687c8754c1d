"""The market-metadata loader over HTTP: what adapters/metadata.py reads from files, fetched live.

Theory of operation
-------------------
The live engine needs the same merged Catalog a backtest builds from files (PROTOCOL.md 11.5), so
this module only fetches: every answer is kept as the document it is (a CLOB GET /markets page, a
GET /clob-markets answer keyed by its condition id, a Gamma GET /markets or GET /events page) and
handed to `metadata.read_document` / `metadata.load_documents`, the one parser and the one merge.
A market whose fees are enabled but unknown, or whose neg-risk event is incomplete, therefore comes
out untradable exactly as it does from files.

The requests, in order:

1. CLOB `GET /markets?next_cursor=C`, from `MA==` until `LTE=` (PROTOCOL.md 8). With a selection
   of condition ids only their rows are kept (an unrelated row the venue lists never fails the load),
   and paging stops once every selected market was seen; without one every listed market is kept.
2. Gamma `GET /markets?condition_ids=..&limit=L&offset=O` for those markets, in chunks, paged by
   offset until a page comes back shorter than `limit`: fee schedules, `negRiskOther`, open/closed,
   and each market's `events[].id`.
3. Gamma `GET /events?id=..&limit=L&offset=O` for the events of the neg-risk markets: the event's
   members and whether it is augmented (basket completeness).
4. CLOB `GET /markets/{condition_id}` for the members of those events paging did not reach (the
   legs of a basket), and `GET /clob-markets/{condition_id}` for every market loaded: `fd`, the fee
   rate and exponent. A 404 says nothing (the market's fees then come from Gamma or stay unknown:
   fail closed).

Gamma's query parameters (`condition_ids`, `id`, `limit`, `offset`) are not in PROTOCOL.md: they are
the ones third-party Gamma clients send (nautilus_polymarket GetGammaMarketsParams /
GetGammaEventsParams), UNVERIFIED against Polymarket's docs. Extra rows a page returns beyond what
was asked are dropped, so a filter the venue ignored costs pages, never wrong markets.

Everything is bounded and validated: pages, items per page, markets, the bytes of an answer, the
cursor (ASCII base64, never repeated), the ids put into URLs. A market whose own row is malformed is
refused alone, as from files (metadata.py); any other failure is one MetadataUnavailable naming the
URL and what was wrong, which the CLI prints as one line.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import attrs
import httpx
import msgspec

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.config import ClobConfig
from polysnipe.adapters.clob.errors import MalformedMessage, NotFound, VenueError
from polysnipe.adapters.clob.markets import Cursor
from polysnipe.adapters.clob.parsing import decode_json
from polysnipe.adapters.clob.retry import RetryPolicy, retry_idempotent
from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.metadata import (
    Catalog,
    MarketFacts,
    load_documents,
    market_name,
    read_document,
)

__all__ = ["MetadataHttpConfig", "MetadataUnavailable", "fetch_documents", "load_catalog_http"]

_CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")


class MetadataUnavailable(Exception):
    """The venue's metadata could not be loaded: unreachable, refused, malformed or beyond a bound."""


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _condition_ids(_: object, __: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    for cid in value:
        if not _CONDITION_ID.fullmatch(cid):
            raise ValueError(f"not a condition id (0x and 64 hex digits): {cid[:80]!r}")


def _as_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """`condition_ids` as given (any iterable of ids), kept as a tuple."""
    return tuple(ids)


@attrs.frozen(slots=True, kw_only=True)
class MetadataHttpConfig:
    """Where the metadata comes from, which markets, and the bounds on what the venue may send."""

    clob_url: str
    gamma_url: str
    #: the markets to load (the ones the engine trades); empty = every market the CLOB lists
    condition_ids: tuple[str, ...] = attrs.field(default=(), converter=_as_ids, validator=_condition_ids)
    max_pages: int = attrs.field(default=2_000, validator=_positive)
    max_page_items: int = attrs.field(default=1_000, validator=_positive)
    max_markets: int = attrs.field(default=5_000, validator=_positive)
    max_answer_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_positive)
    #: rows asked of Gamma per page, and condition / event ids per Gamma query (URL length)
    gamma_page_size: int = attrs.field(default=100, validator=_positive)
    ids_per_query: int = attrs.field(default=40, validator=_positive)
    #: GET /clob-markets requests in flight at once
    concurrency: int = attrs.field(default=8, validator=_positive)
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 15.0


class _Rows(msgspec.Struct, gc=False):
    data: list[msgspec.Raw]
    next_cursor: str | None = None


class _EventKey(msgspec.Struct, gc=False):
    id: str | int | None = None


_rows = msgspec.json.Decoder(_Rows)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_event_key = msgspec.json.Decoder(_EventKey)
_object = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _list_document(rows: Sequence[msgspec.Raw]) -> bytes:
    """Kept rows as a JSON list: the recorded "list of markets" shape metadata.read_document reads."""
    return b"[" + b",".join(bytes(r) for r in rows) + b"]"


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Fetcher:
    """One load: the two clients, the bounds, and the documents gathered so far."""

    def __init__(
        self,
        config: MetadataHttpConfig,
        transport: httpx.AsyncBaseTransport | None,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.config = config

        def client(host: str) -> ClobHttpClient:
            # public (L0) reads: no signer, so the clock is never read for a signature
            clob = ClobConfig(
                host=host,
                connect_timeout_s=config.connect_timeout_s,
                request_timeout_s=config.request_timeout_s,
            )
            return ClobHttpClient(clob, WallClock(), transport=transport)

        self.clob = client(config.clob_url)
        self.gamma = client(config.gamma_url)
        self._policy = policy
        self._sleep = sleep
        self._rng = random.Random()  # retry jitter only
        self.documents: dict[str, bytes] = {}
        self.facts: list[MarketFacts] = []
        self.event_members: list[str] = []
        self._requests = 0

    async def aclose(self) -> None:
        await self.clob.aclose()
        await self.gamma.aclose()

    async def get(
        self,
        client: ClobHttpClient,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        absent_ok: bool = False,
    ) -> bytes | None:
        """The body of one bounded GET; None for a 404 when `absent_ok`, else MetadataUnavailable."""
        self._requests += 1
        if self._requests > self.config.max_pages:
            raise MetadataUnavailable(
                f"more than {self.config.max_pages} metadata requests: select the markets to trade"
            )
        where = f"{client.config.host.rstrip('/')}{path}"
        try:
            body = await retry_idempotent(
                lambda: client.request("GET", path, params=params or None),
                self._policy,
                self._rng,
                self._sleep,
            )
        except NotFound as exc:
            if absent_ok:
                return None
            raise MetadataUnavailable(f"GET {where}: {exc}") from None
        except VenueError as exc:
            raise MetadataUnavailable(f"GET {where}: {exc}") from None
        if len(body) > self.config.max_answer_bytes:
            raise MetadataUnavailable(
                f"GET {where}: answer of {len(body)} bytes, more than {self.config.max_answer_bytes}"
            )
        return body

    async def require(self, client: ClobHttpClient, path: str, params: Sequence[tuple[str, str]]) -> bytes:
        body = await self.get(client, path, params)
        assert body is not None  # only absent_ok returns None
        return body

    def keep(self, name: str, data: bytes, where: str) -> list[MarketFacts]:
        """Read one document with the file loader's parser (it validates every field) and keep it."""
        try:
            facts, events = read_document(data, name)
        except MalformedMessage as exc:
            raise MetadataUnavailable(f"{where}: {exc.reason}") from None
        self.documents[name] = data
        self.facts += facts
        for event in events:
            self.event_members += event.condition_ids
        return facts

    # -- 1. CLOB GET /markets ------------------------------------------------------------------
    async def clob_markets(self) -> list[str]:
        wanted = set(self.config.condition_ids)
        found: list[str] = []
        cursor = Cursor()
        page = 0
        while cursor.more:
            where = f"GET {self.config.clob_url.rstrip('/')}/markets?next_cursor={cursor.value}"
            raw = await self.require(self.clob, "/markets", [("next_cursor", cursor.value)])
            try:
                rows = decode_json(_rows, raw, "GET /markets page")
                if len(rows.data) > self.config.max_page_items:
                    raise MalformedMessage(
                        f"a page of {len(rows.data)} markets (at most {self.config.max_page_items})"
                    )
                keys = [market_name(r, "clob") for r in rows.data]
                if rows.next_cursor is None:  # (the CLOB always says; LTE= ends the listing)
                    raise MalformedMessage("the page carries no next_cursor")
                cursor.advance(rows.next_cursor)
            except MalformedMessage as exc:
                raise MetadataUnavailable(f"{where}: {exc.reason}") from None
            kept = [(k, r) for k, r in zip(keys, rows.data, strict=True) if not wanted or k in wanted]
            if kept:
                self.keep(f"clob-markets-page-{page}", _list_document([r for _, r in kept]), where)
                found += [k for k, _ in kept]
            if len(found) > self.config.max_markets:
                raise MetadataUnavailable(
                    f"{where}: the CLOB lists more than {self.config.max_markets} markets: select the markets"
                    " to trade"
                )
            page += 1
            if wanted and wanted <= set(found):
                break
        missing = sorted(wanted - set(found))
        if missing:
            raise MetadataUnavailable(
                f"GET {self.config.clob_url.rstrip('/')}/markets does not list market {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return list(dict.fromkeys(found))

    # -- 2., 3. Gamma GET /markets and GET /events ---------------------------------------------
    async def _gamma_pages(
        self, path: str, filter_key: str, ids: Sequence[str], key_of: Callable[[msgspec.Raw], str], label: str
    ) -> list[msgspec.Raw]:
        """Every row Gamma returns for `ids`, paged by offset; rows not asked for are dropped."""
        kept: list[msgspec.Raw] = []
        limit = self.config.gamma_page_size
        for n, chunk in enumerate(_chunks(ids, self.config.ids_per_query)):
            wanted = set(chunk)
            offset = 0
            while True:
                params = [(filter_key, i) for i in chunk] + [("limit", str(limit)), ("offset", str(offset))]
                where = f"GET {self.config.gamma_url.rstrip('/')}{path} ({label} {n}, offset {offset})"
                raw = await self.require(self.gamma, path, params)
                try:
                    rows = decode_json(_raw_list, raw, f"Gamma GET {path} page")
                    if len(rows) > limit:
                        raise MalformedMessage(f"a page of {len(rows)} rows, {limit} were asked for")
                    kept += [r for r in rows if key_of(r) in wanted]
                except MalformedMessage as exc:
                    raise MetadataUnavailable(f"{where}: {exc.reason}") from None
                if len(rows) < limit:
                    break
                offset += limit
        return kept

    async def gamma_markets(self, condition_ids: Sequence[str]) -> list[str]:
        """Gamma's markets for `condition_ids`; returns the event ids of the neg-risk ones."""
        rows = await self._gamma_pages(
            "/markets", "condition_ids", condition_ids, lambda row: market_name(row, "gamma"), "markets"
        )
        if not rows:
            return []
        facts = self.keep("gamma-markets", _list_document(rows), f"GET {self.config.gamma_url}/markets")
        # a malformed row (an invalid event id among what can be wrong) refuses its market, whose
        # events are then not asked for
        event_ids = [e for f in facts if f.neg_risk and f.malformed is None for e in f.event_ids or ()]
        return list(dict.fromkeys(event_ids))

    async def gamma_events(self, event_ids: Sequence[str]) -> None:
        def key_of(row: msgspec.Raw) -> str:
            ident = decode_json(_event_key, row, "Gamma event").id
            return "" if ident is None else str(ident)

        rows = await self._gamma_pages("/events", "id", event_ids, key_of, "events")
        if rows:
            self.keep("gamma-events", _list_document(rows), f"GET {self.config.gamma_url}/events")

    # -- 4. CLOB GET /markets/{condition_id}, GET /clob-markets/{condition_id} -----------------
    async def _each(self, path: str, condition_ids: Sequence[str]) -> list[tuple[str, bytes]]:
        """GET path/{cid} for each id, a few at a time; a 404 says nothing and is left out."""
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(cid: str) -> tuple[str, bytes | None]:
            async with gate:
                return cid, await self.get(self.clob, f"{path}/{cid}", absent_ok=True)

        answers = await asyncio.gather(*(one(cid) for cid in condition_ids))
        return [(cid, body) for cid, body in answers if body is not None]

    async def clob_rows(self, condition_ids: Sequence[str]) -> None:
        """The CLOB's own row of each market paging did not reach (a leg of a selected market's event)."""
        for cid, body in await self._each("/markets", condition_ids):
            where = f"GET {self.config.clob_url.rstrip('/')}/markets/{cid}"
            try:
                if market_name(body, "clob") != cid:
                    raise MalformedMessage("the answer is another market")
            except MalformedMessage as exc:
                raise MetadataUnavailable(f"{where}: {exc.reason}") from None
            self.keep(f"clob-market-row-{cid}", body, where)

    async def compact(self, condition_ids: Sequence[str]) -> None:
        # a 404 means the CLOB has no compact info: fees then come from Gamma, or stay unknown
        for cid, body in await self._each("/clob-markets", condition_ids):
            where = f"GET {self.config.clob_url.rstrip('/')}/clob-markets/{cid}"
            try:
                # exactly one JSON object, so the wrapping below cannot be made to say more
                decode_json(_object, body, "GET /clob-markets answer")
            except MalformedMessage as exc:
                raise MetadataUnavailable(f"{where}: {exc.reason}") from None
            # keyed by its condition id: the shape a recording of GET /clob-markets has
            self.keep(f"clob-market-{cid}", b'{"' + cid.encode() + b'":' + body + b"}", where)


async def fetch_documents(
    config: MetadataHttpConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, bytes]:
    """The metadata documents of `config`'s markets (name -> bytes), each already validated; merge
    them, alone or with files, with metadata.load_documents. Raises MetadataUnavailable."""
    fetcher = _Fetcher(config, transport, policy or RetryPolicy(), sleep)
    try:
        listed = await fetcher.clob_markets()
        with_tokens = [f.condition_id for f in fetcher.facts if f.token_ids is not None]
        event_ids = await fetcher.gamma_markets(listed)
        if event_ids:
            await fetcher.gamma_events(event_ids)
        # event members paging did not reach are basket legs: the venue's row and fees matter as much
        known = set(listed)
        legs = [
            c for c in dict.fromkeys(fetcher.event_members) if c not in known and _CONDITION_ID.fullmatch(c)
        ]
        await fetcher.clob_rows(legs)
        await fetcher.compact([c for c in dict.fromkeys(with_tokens + legs) if _CONDITION_ID.fullmatch(c)])
    finally:
        await fetcher.aclose()
    return fetcher.documents


async def load_catalog_http(
    config: MetadataHttpConfig,
    *,
    files: Mapping[str, bytes] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Catalog:
    """The merged Catalog of what the venue serves for `config`'s markets, plus any `files` documents
    (name -> bytes) merged with them by condition id."""
    documents = await fetch_documents(config, transport=transport, policy=policy, sleep=sleep)
    return load_documents({**(files or {}), **documents})
