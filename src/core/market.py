"""Market metadata: a binary condition with two outcome tokens that complement each other.

One share of YES plus one share of NO is always worth exactly 1 pUSD (they merge back into collateral),
so every order on one token is mirrored on the other: BUY YES at p is SELL NO at 1-p. `complement()`
is how the book, the venue and the signals find the other side of that mirror.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from polysnipe.core.fees import check_fee_parameters
from polysnipe.core.units import MAX_AMOUNT_MICRO, ONE, format_micro

__all__ = ["VALID_TICKS", "Market", "MarketRegistry", "NegRiskEvent", "UnknownToken", "mirror_price"]

#: Tick sizes the venue accepts (PROTOCOL.md section 3.1), in micro-units.
VALID_TICKS = frozenset({100_000, 10_000, 5_000, 2_500, 1_000, 100})


class UnknownToken(KeyError):
    """An event or order names a token that no loaded market owns."""


#: a matching delay beyond this is not a delay but a market that does not trade (the venue uses seconds)
_MAX_MATCH_DELAY_MS = 3_600_000


@attrs.frozen(slots=True)
class Market:
    """One binary market (a CTF condition) as the CLOB lists it.

    `tick_size` and `min_order_size` are the values at load time; the live tick lives in each token's
    BookState because `tick_size_change` messages move it while the market runs.
    """

    condition_id: str
    #: token ids in the order the venue lists them; index 0 is the first outcome ("Yes" for binaries)
    token_ids: tuple[str, str]
    outcomes: tuple[str, str]
    #: price tick in micro-units (10_000 = 0.01)
    tick_size: int
    #: minimum order size in micro-shares
    min_order_size: int
    #: neg-risk markets sign against the neg-risk exchange; False means known-false, never "unknown"
    neg_risk: bool
    #: markets of one neg-risk event share this id; the cross-outcome arbitrage lives there
    neg_risk_market_id: str | None = None
    #: an augmented neg-risk event has an implicit "Other" outcome that can win
    augmented: bool = False
    #: taker fee parameters (PROTOCOL.md 11.1): fee = C * rate * (p(1-p))^exponent;
    #: rate in micro-units (0.04 = 40_000)
    fee_rate: int = 0
    fee_exponent: int = 1
    #: False when the metadata enables fees without giving their schedule, or says nothing about
    #: them: the gatekeeper refuses to trade such a market (adapters/metadata.py decides)
    fees_known: bool = True
    #: share of the taker fees the venue pays back to makers (micro-units: 0.25 = 250_000)
    fee_rebate_rate: int = 0
    question: str = ""
    #: when the market is scheduled to end (ms epoch); 0 when the metadata does not say
    end_ms: int = 0
    #: how long the venue holds a marketable order before matching it (`seconds_delay`; sports
    #: markets use 3 s); 0 = none
    match_delay_ms: int = 0

    def __attrs_post_init__(self) -> None:
        # Checked here, once, rather than where they are used: a fee exponent of 0 would otherwise
        # load fine and fail at the first fill, mid-run.
        if self.tick_size not in VALID_TICKS:
            raise ValueError(f"invalid tick size {_text(self.tick_size)} for market {self.condition_id}")
        if self.token_ids[0] == self.token_ids[1]:
            raise ValueError(f"market {self.condition_id} lists the same token twice")
        if not 0 <= self.min_order_size <= MAX_AMOUNT_MICRO:
            raise ValueError(
                f"invalid minimum order size {_text(self.min_order_size)} for market {self.condition_id}"
            )
        try:
            check_fee_parameters(self.fee_rate, self.fee_exponent)
        except ValueError as exc:
            raise ValueError(f"market {self.condition_id}: {exc}") from None
        if not 0 <= self.match_delay_ms <= _MAX_MATCH_DELAY_MS:
            raise ValueError(f"invalid matching delay {self.match_delay_ms} ms, market {self.condition_id}")

    def complement(self, token_id: str) -> str:
        if token_id == self.token_ids[0]:
            return self.token_ids[1]
        if token_id == self.token_ids[1]:
            return self.token_ids[0]
        raise UnknownToken(token_id)

    def outcome_of(self, token_id: str) -> str:
        return self.outcomes[self.token_ids.index(token_id)]


@attrs.frozen(slots=True)
class NegRiskEvent:
    """A neg-risk event as Gamma describes it (PROTOCOL.md 11.5): which markets make it up and whether
    "all of its outcomes" is really a complete set.

    Exactly one outcome of a complete event wins, so one YES share of each of its markets pays exactly
    1. An augmented event can gain outcomes later and may hold a placeholder "Other" market, so its
    current outcomes are not a complete set; a closed or unknown member breaks the set too.
    """

    event_id: str  # the events' shared neg_risk_market_id
    #: every market of the event, as Gamma lists them
    condition_ids: tuple[str, ...]
    augmented: bool
    #: a negRiskOther placeholder market is among them
    has_other: bool
    #: every member is active, not closed and accepting orders
    all_open: bool

    @property
    def complete(self) -> bool:
        return not self.augmented and not self.has_other and self.all_open and len(self.condition_ids) >= 2


@attrs.define(slots=True)
class MarketRegistry:
    """Markets by condition id and by token id, plus neg-risk event groups."""

    _by_condition: dict[str, Market] = attrs.field(factory=dict)
    _by_token: dict[str, Market] = attrs.field(factory=dict)
    _events: dict[str, NegRiskEvent] = attrs.field(factory=dict)
    #: bumped by every addition, so a reader can tell the registry changed since it last looked
    revision: int = 0
    #: event id -> event_tokens' answer, valid while `revision` is `_tokens_revision`: the answer
    #: scans every market, and the risk check of each order in a neg-risk market asks for it
    _tokens_by_event: dict[str, tuple[str, ...]] = attrs.field(init=False, factory=dict, eq=False, repr=False)
    _tokens_revision: int = attrs.field(init=False, default=-1, eq=False, repr=False)

    @classmethod
    def of(cls, markets: Iterable[Market]) -> MarketRegistry:
        reg = cls()
        for m in markets:
            reg.add(m)
        return reg

    def add(self, market: Market) -> None:
        self.revision += 1
        self._by_condition[market.condition_id] = market
        for t in market.token_ids:
            self._by_token[t] = market

    def by_token(self, token_id: str) -> Market:
        try:
            return self._by_token[token_id]
        except KeyError:
            raise UnknownToken(token_id) from None

    def get_by_token(self, token_id: str) -> Market | None:
        return self._by_token.get(token_id)

    def get(self, condition_id: str) -> Market | None:
        return self._by_condition.get(condition_id)

    def by_condition(self, condition_id: str) -> Market:
        return self._by_condition[condition_id]

    def complement(self, token_id: str) -> str:
        return self.by_token(token_id).complement(token_id)

    def add_event(self, event: NegRiskEvent) -> None:
        self.revision += 1
        self._events[event.event_id] = event

    def event(self, event_id: str) -> NegRiskEvent | None:
        return self._events.get(event_id)

    def event_tokens(self, event_id: str | None) -> tuple[str, ...]:
        """Every loaded token of the markets that share `event_id` (neg_risk_market_id); () for None."""
        if not event_id:
            return ()
        cache = self._tokens_by_event
        if self._tokens_revision != self.revision:
            cache.clear()
            self._tokens_revision = self.revision
        tokens = cache.get(event_id)
        if tokens is None:
            markets = self._by_condition.values()
            tokens = tuple(t for m in markets if m.neg_risk_market_id == event_id for t in m.token_ids)
            cache[event_id] = tokens
        return tokens

    def complete_baskets(self) -> dict[str, tuple[Market, ...]]:
        """The markets of each neg-risk event whose YES legs form a complete set, by event id.

        Fail closed: only events the metadata describes as complete, with every member market loaded
        and flagged neg-risk; anything in doubt (no event metadata, an augmented event, a member
        missing or closed) is no basket.
        """
        out: dict[str, tuple[Market, ...]] = {}
        for event_id in self._events:
            members = self.complete_event(event_id)
            if members is not None:
                out[event_id] = members
        return out

    def complete_event(self, event_id: str) -> tuple[Market, ...] | None:
        """The markets of `event_id` when they form a complete set (complete_baskets' rule), else None."""
        event = self._events.get(event_id)
        if event is None or not event.complete:
            return None
        members = [self._by_condition.get(cid) for cid in event.condition_ids]
        if all(m is not None and m.neg_risk and not m.augmented for m in members):
            return tuple(m for m in members if m is not None)
        return None

    def token_ids(self) -> list[str]:
        return list(self._by_token)

    def __iter__(self) -> Iterator[Market]:
        return iter(self._by_condition.values())

    def __len__(self) -> int:
        return len(self._by_condition)

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._by_token


def _text(micro: int) -> str:
    """A micro-unit value for an error message (a corrupt one may be too long to print, or to divide
    into a float: a tick of 1e309 once overflowed right here)."""
    return format_micro(micro) if abs(micro) < 10**30 else f"~2**{micro.bit_length()} micro-units"


def mirror_price(price: int) -> int:
    """The complement's price: BUY YES at p is SELL NO at 1 - p."""
    return ONE - price
