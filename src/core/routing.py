"""Routing: how an approved size becomes a concrete order (price, type, post-only, expiry).

A policy only prices one child order from our view of the book; it never sizes (risk did that) and
never sequences (the pipeline releases iceberg slices one after another and stops them on a kill
switch or expiry). Prices are always on the book's live tick and strictly inside (0, 1), and never
beyond the opportunity's limit. The book's tick is used rather than the market's load-time tick
because `tick_size_change` moves it while the market runs; the limit is rounded to that tick in the
conservative direction (down for BUY, up for SELL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import attrs

from polysnipe.core.book import Book
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.opportunity import Opportunity
from polysnipe.core.ports import Rng
from polysnipe.core.units import ONE, ceil_div

__all__ = [
    "ChildOrder",
    "Iceberg",
    "ImmediateAggressive",
    "PassivePosting",
    "Router",
    "RoutingPolicy",
    "build_router",
]

_BPS = 10_000


@attrs.frozen(slots=True)
class ChildOrder:
    size: int
    price: int
    order_type: OrderType
    post_only: bool
    #: GTD expiry in ms epoch (the adapter converts to the venue's seconds + security margin); 0 = none
    expiration_ms: int


class RoutingPolicy(Protocol):
    @property
    def name(self) -> str: ...

    def child(self, opp: Opportunity, size: int, book: Book, now_ms: int) -> ChildOrder | None:
        """Price one order of `size` now; None when the book gives nothing to route against."""
        ...


def _floor_tick(price: int, tick: int) -> int:
    return price - price % tick


def _ceil_tick(price: int, tick: int) -> int:
    return ceil_div(price, tick) * tick


def _non_negative(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attr.name} must be >= 0, got {value}")


def _positive(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attr.name} must be > 0, got {value}")


def _immediate(_inst: object, attr: attrs.Attribute[OrderType], value: OrderType) -> None:
    if not value.is_immediate:
        raise ValueError(f"{attr.name} must be FAK or FOK, got {value.value}")


@attrs.frozen(slots=True)
class ImmediateAggressive:
    """Cross the spread now with a FAK/FOK limit at most `slippage_ticks` past the touch.

    Returns None when our book shows no liquidity the limit can reach: such an order would only be
    killed by the venue and spend a slot of the rate limit.
    """

    name: ClassVar[str] = "aggressive"
    slippage_ticks: int = attrs.field(default=2, validator=_non_negative)
    order_type: OrderType = attrs.field(default=OrderType.FAK, validator=_immediate)

    def child(self, opp: Opportunity, size: int, book: Book, now_ms: int) -> ChildOrder | None:
        tick = book.tick_size
        if opp.side is Side.BUY:
            ask = book.best_ask()
            if ask is None:
                return None
            price = _floor_tick(min(opp.limit_price, ask + self.slippage_ticks * tick, ONE - tick), tick)
            if price < ask or price < tick:
                return None
        else:
            bid = book.best_bid()
            if bid is None:
                return None
            price = _ceil_tick(max(opp.limit_price, bid - self.slippage_ticks * tick, tick), tick)
            if price > bid or price > ONE - tick:
                return None
        return ChildOrder(size, price, self.order_type, False, 0)


@attrs.frozen(slots=True)
class PassivePosting:
    """Rest a post-only GTD order that improves the touch by `improve_ticks` without crossing.

    The expiry is `now + ttl_ms`, cut to the opportunity's own expiry so nothing rests after the
    edge it was placed for is gone.
    """

    name: ClassVar[str] = "passive"
    improve_ticks: int = attrs.field(default=1, validator=_non_negative)
    ttl_ms: int = attrs.field(default=30_000, validator=_positive)

    def child(self, opp: Opportunity, size: int, book: Book, now_ms: int) -> ChildOrder | None:
        expiration = now_ms + self.ttl_ms
        if 0 < opp.expires_ms < expiration:
            expiration = opp.expires_ms
        if expiration <= now_ms:
            return None
        tick = book.tick_size
        bid = book.best_bid()
        ask = book.best_ask()
        if opp.side is Side.BUY:
            price = min(opp.limit_price, ONE - tick)
            if bid is not None:
                price = min(price, bid + self.improve_ticks * tick)
            if ask is not None:
                price = min(price, ask - tick)
            price = _floor_tick(price, tick)
            if price < tick:
                return None
        else:
            price = max(opp.limit_price, tick)
            if ask is not None:
                price = max(price, ask - self.improve_ticks * tick)
            if bid is not None:
                price = max(price, bid + tick)
            price = _ceil_tick(price, tick)
            if price > ONE - tick:
                return None
        return ChildOrder(size, price, OrderType.GTD, True, expiration)


@attrs.frozen(slots=True)
class Iceberg:
    """Show at most `display_size_micro` at a time; slices and their delays carry seeded jitter.

    `child()` prices one slice with `child_policy` (constructor argument `child`), so an iceberg can
    rest passively or take liquidity slice by slice.
    """

    name: ClassVar[str] = "iceberg"
    display_size_micro: int = attrs.field(validator=_positive)
    #: each slice is the display size shrunk by a uniform 0..size_jitter_bps; never grown past it
    size_jitter_bps: int = attrs.field(validator=_non_negative)
    delay_ms: int = attrs.field(validator=_non_negative)
    #: uniform +-delay_jitter_ms around delay_ms, floored at 0
    delay_jitter_ms: int = attrs.field(validator=_non_negative)
    child_policy: RoutingPolicy = attrs.field(alias="child")

    @size_jitter_bps.validator
    def _check_jitter(self, attr: attrs.Attribute[int], value: int) -> None:
        if value >= _BPS:
            raise ValueError(f"{attr.name} must be < {_BPS}, got {value}")

    def child(self, opp: Opportunity, size: int, book: Book, now_ms: int) -> ChildOrder | None:
        if size > self.display_size_micro:
            raise ValueError(f"slice {size} exceeds the display size {self.display_size_micro}")
        return self.child_policy.child(opp, size, book, now_ms)

    def _display_and_floor(self, min_size: int, size_step: int) -> tuple[int, int]:
        """(the display size rounded down to the step, the least slice the venue takes)."""
        display = self.display_size_micro - self.display_size_micro % size_step
        return display, max(ceil_div(min_size, size_step) * size_step, size_step)

    def can_slice(self, min_size: int, size_step: int) -> bool:
        """Whether a slice within the display size can meet the market's minimum order size: a
        market whose minimum is above the display takes no slice of this iceberg."""
        display, floor = self._display_and_floor(min_size, size_step)
        return display >= floor

    def slices(self, parent_size: int, min_size: int, size_step: int, rng: Rng) -> list[tuple[int, int]]:
        """(size, delay_ms) per slice; the first slice goes at once (delay 0).

        Sizes sum exactly to `parent_size`, never exceed the display size, are multiples of
        `size_step`, and are all at least `min_size` whenever the parent can be cut that way. A
        remainder X can be cut iff ceil(X / display) slices of the minimum fit in it; each slice
        takes its jittered target unless that would leave an uncuttable remainder, in which case it
        is moved to the nearest size that leaves the fewest full slices (merging a too-small tail
        into this slice when the sum fits the display, shaving this slice otherwise). A parent that
        cannot be cut at all gets display-sized slices and a short last one. Raises ValueError when
        the parent is not a multiple of the step or the display size rounded down to the step is
        below the minimum (the venue would refuse every slice).
        """
        if parent_size <= 0:
            return []
        if parent_size % size_step:
            raise ValueError(f"parent size {parent_size} is not a multiple of the size step {size_step}")
        display, floor = self._display_and_floor(min_size, size_step)
        if display < floor:
            raise ValueError(f"display size {self.display_size_micro} is below the minimum slice {floor}")
        jitter_bps = self.size_jitter_bps
        delay_jitter = self.delay_jitter_ms
        out: list[tuple[int, int]] = []
        remaining = parent_size
        delay = 0
        while remaining > 0:
            target = display
            if jitter_bps:
                target -= display * rng.randint(0, jitter_bps) // _BPS
                target = max(target - target % size_step, floor)
            size = min(target, remaining)
            rest = remaining - size
            if rest and ceil_div(rest, display) * floor > rest:
                after = ceil_div(remaining, display) - 1  # fewest slices that can follow this one
                lo = max(floor, remaining - after * display)
                hi = min(display, remaining - after * floor)
                if lo <= hi:
                    size = min(max(size, lo), hi)
            out.append((size, delay))
            remaining -= size
            delay = self.delay_ms
            if delay_jitter:
                delay = max(delay + rng.randint(-delay_jitter, delay_jitter), 0)
        return out


class Router:
    """Chooses a policy per opportunity: by strategy, then by its urgency hint, then the default."""

    __slots__ = ("_by_strategy", "_by_urgency", "default", "policies")

    def __init__(
        self,
        policies: Mapping[str, RoutingPolicy],
        default: str,
        by_strategy: Mapping[str, str],
        by_urgency: Mapping[str, str],
    ) -> None:
        unknown = {default, *by_strategy.values(), *by_urgency.values()} - set(policies)
        if unknown:
            raise ValueError(f"routing config names unknown policies: {sorted(unknown)}")
        self.policies: Mapping[str, RoutingPolicy] = dict(policies)
        self.default = policies[default]
        self._by_strategy = {k: policies[v] for k, v in by_strategy.items()}
        self._by_urgency = {k: policies[v] for k, v in by_urgency.items()}

    def select(self, opp: Opportunity) -> RoutingPolicy:
        policy = self._by_strategy.get(opp.strategy)
        if policy is None:
            policy = self._by_urgency.get(opp.urgency, self.default)
        return policy


_ROUTER_KEYS = frozenset({"default", "by_strategy", "by_urgency", "aggressive", "passive", "iceberg"})
_ICEBERG_DEFAULTS: Mapping[str, Any] = {
    "display_size_micro": 100_000_000,
    "size_jitter_bps": 2_000,
    "delay_ms": 1_000,
    "delay_jitter_ms": 500,
    "child": "passive",
}


def _params(config: Mapping[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    params = dict(config.get(key) or {})
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"routing.{key}: unknown parameters {sorted(unknown)}")
    return params


def build_router(config: Mapping[str, Any]) -> Router:
    """Router from config, e.g.::

        {"default": "aggressive",
         "by_strategy": {"momentum": "iceberg"},
         "by_urgency": {"passive": "passive"},
         "aggressive": {"slippage_ticks": 2, "order_type": "FAK"},
         "passive": {"improve_ticks": 1, "ttl_ms": 30000},
         "iceberg": {"display_size_micro": 50000000, "size_jitter_bps": 2000, "delay_ms": 1000,
                     "delay_jitter_ms": 500, "child": "passive"}}

    Every key is optional; unknown keys raise ValueError so a typo cannot silently fall back to a
    default. The iceberg's `child` names the policy that prices its slices ("aggressive" or "passive").
    """
    unknown = set(config) - _ROUTER_KEYS
    if unknown:
        raise ValueError(f"routing: unknown keys {sorted(unknown)}")
    aggressive_params = _params(config, "aggressive", {"slippage_ticks", "order_type"})
    if "order_type" in aggressive_params:
        aggressive_params["order_type"] = OrderType(aggressive_params["order_type"])
    aggressive = ImmediateAggressive(**aggressive_params)
    passive = PassivePosting(**_params(config, "passive", {"improve_ticks", "ttl_ms"}))
    iceberg_params = {**_ICEBERG_DEFAULTS, **_params(config, "iceberg", set(_ICEBERG_DEFAULTS))}
    inner_name = iceberg_params.pop("child")
    inner: RoutingPolicy
    if inner_name == "aggressive":
        inner = aggressive
    elif inner_name == "passive":
        inner = passive
    else:
        raise ValueError(f"routing.iceberg.child must be 'aggressive' or 'passive', got {inner_name!r}")
    policies: dict[str, RoutingPolicy] = {
        "aggressive": aggressive,
        "passive": passive,
        "iceberg": Iceberg(child=inner, **iceberg_params),
    }
    return Router(
        policies,
        config.get("default", "aggressive"),
        config.get("by_strategy") or {},
        config.get("by_urgency") or {},
    )
