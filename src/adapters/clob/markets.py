"""Market metadata over CLOB REST: markets, tick sizes, neg-risk flags, fee parameters, the exchange
order version and the venue's clock (PROTOCOL.md 8).

Theory of operation: every call here is a public (L0) read, so each is retried like any idempotent
request (retry.retry_idempotent) and none needs a signer: paper trading and tools can use this client
without keys. Answers are decoded and range-checked by parsing.py; one that cannot be read raises
MalformedMessage, a refusal the typed VenueError. The order version is cached, since it changes only
when the exchange migrates (an `order_version_mismatch` asks for a refresh).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from polysnipe.adapters.clob.client import ClobHttpClient
from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import (
    next_cursor,
    parse_clob_market_fees,
    parse_markets,
    parse_neg_risk,
    parse_server_time,
    parse_tick_size,
    parse_version,
)
from polysnipe.adapters.clob.retry import RetryPolicy, retry_idempotent
from polysnipe.core.market import Market
from polysnipe.core.ports import Rng

__all__ = ["FIRST_PAGE", "LAST_PAGE", "MAX_PAGES", "ClobMarkets", "Cursor"]

#: pagination cursors of every paginated CLOB answer (PROTOCOL.md 8)
FIRST_PAGE: Final = "MA=="
LAST_PAGE: Final = "LTE="
#: the most pages one paged read follows: a venue whose cursors never end must not hold it for ever
MAX_PAGES: Final = 10_000
#: what a cursor is (base64 of an offset): it goes into the next request's query
_CURSOR: Final = re.compile(r"[A-Za-z0-9+/]{1,64}={0,2}")


class Cursor:
    """Where a paged read is: FIRST_PAGE, then each page's `next_cursor`, until LAST_PAGE (or none).

    A cursor that is not base64, one the read has already followed, or more than MAX_PAGES pages,
    is MalformedMessage: a venue that echoes the cursor it was sent would otherwise loop the read,
    and with it whatever waits on it (reconciliation holds its lock while it reads the trades)."""

    __slots__ = ("_seen", "value")

    def __init__(self) -> None:
        self.value = FIRST_PAGE
        self._seen = {FIRST_PAGE}

    @property
    def more(self) -> bool:
        return self.value != LAST_PAGE

    def advance(self, next_cursor: str | None) -> None:
        cursor = next_cursor or LAST_PAGE
        if cursor != LAST_PAGE:
            if not (cursor.isascii() and _CURSOR.fullmatch(cursor)):
                raise MalformedMessage(f"next_cursor is not a base64 cursor: {cursor[:80]!r}")
            if cursor in self._seen:
                raise MalformedMessage(f"next_cursor {cursor!r} repeats an earlier page")
            if len(self._seen) >= MAX_PAGES:
                raise MalformedMessage(f"more than {MAX_PAGES} pages")
            self._seen.add(cursor)
        self.value = cursor


class ClobMarkets:
    """The CLOB's market metadata reads. Raise VenueError when the venue refuses (or stays
    unreachable after the retries), MalformedMessage when its answer cannot be read."""

    __slots__ = ("_client", "_policy", "_rng", "_sleep", "_version")

    def __init__(
        self,
        client: ClobHttpClient,
        *,
        rng: Rng,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._rng = rng
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._version: int | None = None

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        return await retry_idempotent(
            lambda: self._client.request("GET", path, params=params), self._policy, self._rng, self._sleep
        )

    async def markets(self) -> list[Market]:
        """Every market of GET /markets (all pages)."""
        out: list[Market] = []
        cursor = Cursor()
        while cursor.more:
            raw = await self._get("/markets", {"next_cursor": cursor.value})
            out.extend(parse_markets(raw))
            cursor.advance(next_cursor(raw))
        return out

    async def fee_parameters(self, condition_id: str) -> tuple[int, int] | None:
        """(taker fee rate in micro-units, exponent) of a market from GET /clob-markets/{condition_id};
        None when the answer carries no fee details (PROTOCOL.md 11.1)."""
        return parse_clob_market_fees(await self._get(f"/clob-markets/{condition_id}"))

    async def tick_size(self, token_id: str) -> int:
        """The token's current tick in micro-units (GET /tick-size)."""
        return parse_tick_size(await self._get("/tick-size", {"token_id": token_id}))

    async def neg_risk(self, token_id: str) -> bool:
        """Whether the token trades on the neg-risk exchange. A missing flag is an error: False means
        known-false, and signing for the wrong exchange makes an invalid order."""
        return parse_neg_risk(await self._get("/neg-risk", {"token_id": token_id}))

    async def server_time(self) -> int:
        """The venue's clock, unix seconds."""
        return parse_server_time(await self._get("/time"))

    async def version(self, *, refresh: bool = False) -> int:
        """The exchange order version (GET /version), cached until `refresh`."""
        if self._version is None or refresh:
            self._version = parse_version(await self._get("/version"))
        return self._version
