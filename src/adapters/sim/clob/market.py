"""The public market data of the simulated venue: the markets it lists (GET /markets documents, the
compact /clob-markets info), and per token the book an order would meet (the matching engine's one
merged view, never a second copy), best prices, the tick and the last trade price."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from polysnipe.adapters.sim.clob import render
from polysnipe.adapters.sim.venue import BookView, MatchingEngine
from polysnipe.core.events import Side
from polysnipe.core.market import Market, MarketRegistry

__all__ = ["MarketData"]


class MarketData:
    """Markets and books as the venue shows them (see module doc)."""

    __slots__ = ("_clock", "_compact", "_docs", "_engine", "_last_trade", "registry")

    def __init__(
        self,
        registry: MarketRegistry,
        engine: MatchingEngine,
        clock: Callable[[], int],
        documents: Sequence[Mapping[str, Any]] = (),
        compact_documents: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        self._engine = engine
        self._clock = clock
        by_id = {str(d.get("condition_id")): d for d in documents}
        self._docs: list[Mapping[str, Any]] = [
            by_id.get(m.condition_id) or render.market_document(m) for m in registry
        ]
        listed = {m.condition_id for m in registry}
        self._docs.extend(d for cid, d in by_id.items() if cid not in listed)
        self._compact = dict(compact_documents or {})
        self._last_trade: dict[str, int] = {}

    # -- markets -------------------------------------------------------------------------------
    def documents(self) -> list[Mapping[str, Any]]:
        return self._docs

    def document(self, condition_id: str) -> Mapping[str, Any] | None:
        return next((d for d in self._docs if d.get("condition_id") == condition_id), None)

    def compact_document(self, condition_id: str) -> Mapping[str, Any] | None:
        """A recorded GET /clob-markets answer for the market, if the metadata files held one."""
        return self._compact.get(condition_id)

    def market(self, condition_id: str) -> Market | None:
        try:
            return self.registry.by_condition(condition_id)
        except KeyError:
            return None

    # -- books ---------------------------------------------------------------------------------
    def view(self, token_id: str) -> BookView:
        """The engine's merged book for a listed token (callers check the token first)."""
        view = self._engine.book_view(token_id)
        if view is None:
            raise KeyError(token_id)
        return view

    def book_json(self, token_id: str, view: BookView | None = None) -> dict[str, Any]:
        market = self.registry.by_token(token_id)
        return render.book_json(
            market, view or self.view(token_id), self._last_trade.get(token_id), self._clock()
        )

    def best(self, token_id: str, side: Side) -> int | None:
        view = self.view(token_id)
        return view.best_bid() if side is Side.BUY else view.best_ask()

    def tick_size(self, token_id: str) -> int:
        """The token's current tick (tick_size_change events move it), for a listed token."""
        book = self._engine.book(token_id)
        return book.tick_size if book is not None else self.registry.by_token(token_id).tick_size

    def last_trade_price(self, token_id: str) -> int | None:
        return self._last_trade.get(token_id)

    def record_last_trade(self, token_id: str, price: int) -> None:
        self._last_trade[token_id] = price
