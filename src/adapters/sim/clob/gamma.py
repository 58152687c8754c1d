"""A stand-in for Polymarket's Gamma API (GET /markets, GET /events), served by the CLOB simulator
under the path prefix `/gamma`, so one `polysnipe sim-clob` is both hosts of the live metadata loader
(adapters/metadata_http.py): set `gamma_url` to the simulator's URL + `/gamma`.

It serves the Gamma documents of the --markets files as recorded (PROTOCOL.md 11.5), so loading them
over HTTP gives the Catalog the files give. Two things are added where the real API has them and a
recording may not: every event has an `id` (`sim-event-N` when its recording has none), and every
market an event holds is listed by GET /markets too, with an `events: [{"id": ...}]` back-reference
to each event that holds it (as Gamma's own market objects carry; the live loader finds a market's
event that way).

Queries, as third-party Gamma clients send them (UNVERIFIED, see metadata_http.py): `condition_ids`
(markets) and `id` (events), repeated to name several; `limit` (1..1000, default 100) and `offset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from polysnipe.adapters.sim.clob.errors import VenueError

__all__ = ["GAMMA_PREFIX", "GammaDocs"]

GAMMA_PREFIX: Final = "/gamma"
_MAX_LIMIT: Final = 1_000
_DEFAULT_LIMIT: Final = 100
_MAX_OFFSET: Final = 10**9


def _whole(text: str, name: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdecimal() and len(text) <= 10):
        raise VenueError(400, f"{name} must be a whole number")
    value = int(text)
    if not low <= value <= high:
        raise VenueError(400, f"{name} must be in {low}..{high}")
    return value


class GammaDocs:
    """The Gamma markets and events the simulator serves (see module doc)."""

    __slots__ = ("_events", "_markets")

    def __init__(self, markets: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> None:
        self._events: list[dict[str, Any]] = []
        refs: dict[str, list[dict[str, Any]]] = {}
        members: dict[str, Mapping[str, Any]] = {}
        for n, recorded in enumerate(events):
            event = dict(recorded)
            if event.get("id") is None:
                event["id"] = f"sim-event-{n}"
            self._events.append(event)
            for market in event.get("markets") or ():
                if isinstance(market, Mapping) and isinstance(market.get("conditionId"), str):
                    cid = market["conditionId"]
                    members.setdefault(cid, market)
                    refs.setdefault(cid, []).append({"id": str(event["id"])})
        listed = {m.get("conditionId") for m in markets}
        docs = [*markets, *(m for cid, m in members.items() if cid not in listed)]
        self._markets: list[dict[str, Any]] = []
        for recorded in docs:
            market = dict(recorded)
            own = market.get("events")
            known = list(own) if isinstance(own, list) else []
            ids = {str(e.get("id")) for e in known if isinstance(e, Mapping)}
            known += [r for r in refs.get(str(market.get("conditionId")), ()) if r["id"] not in ids]
            if known:
                market["events"] = known
            self._markets.append(market)

    def market_id(self, condition_id: str) -> str | None:
        """Gamma's own id of the market (the `id` of `market_resolved`), when a document gives one."""
        for market in self._markets:
            if market.get("conditionId") == condition_id and market.get("id") is not None:
                return str(market["id"])
        return None

    def markets(self, query: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """GET /markets: the markets named by `condition_ids` (every one when none is named)."""
        wanted = set(query.get("condition_ids", ()))
        rows = [m for m in self._markets if not wanted or m.get("conditionId") in wanted]
        return self._page(rows, query)

    def events(self, query: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """GET /events: the events named by `id` (every one when none is named)."""
        wanted = set(query.get("id", ()))
        rows = [e for e in self._events if not wanted or str(e.get("id")) in wanted]
        return self._page(rows, query)

    @staticmethod
    def _page(rows: list[dict[str, Any]], query: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        limit = _whole(query.get("limit", [str(_DEFAULT_LIMIT)])[-1], "limit", 1, _MAX_LIMIT)
        offset = _whole(query.get("offset", ["0"])[-1], "offset", 0, _MAX_OFFSET)
        return rows[offset : offset + limit]
