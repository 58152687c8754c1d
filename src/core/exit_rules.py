"""Exit rules and the position manager's state (the handlers live in core/exits.py).

Kept apart from the handlers so that the engine state can hold them without importing the pipeline.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import attrs

from polysnipe.core.units import MICRO

__all__ = ["BASKET_LOT", "DEFAULT_RULES", "ExitParams", "ExitRule", "ExitState", "LotKey", "lot_name"]

#: suffix of the lots of basket legs: hedged as a set, never sold leg by leg on price or time
BASKET_LOT = "/basket"


def lot_name(strategy: str, basket: bool) -> str:
    return strategy + BASKET_LOT if basket else strategy


def _non_negative(_: object, attr: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attr.name} must be >= 0, got {value}")


@attrs.frozen(slots=True)
class ExitRule:
    """When one strategy's lots are sold. A 0 turns a rule off."""

    #: sell once the best bid reaches the fair value the entry claimed
    take_profit: bool = True
    #: sell once the best bid is this far (micro-USDC) below the lot's average cost
    stop_loss_micro: int = attrs.field(default=0, validator=_non_negative)
    #: sell once the lot has been held this long
    max_hold_ms: int = attrs.field(default=0, validator=_non_negative)
    #: sell once the market's end is this near (markets with a known end only)
    exit_before_end_ms: int = attrs.field(default=0, validator=_non_negative)
    #: a stop or time exit may sell down to this many ticks below the best bid
    slippage_ticks: int = attrs.field(default=2, validator=_non_negative)


#: Defaults a trader can defend: a mispricing closes fast or was wrong; news moves last longer.
DEFAULT_RULES: Mapping[str, ExitRule] = {
    "spread_hunter": ExitRule(stop_loss_micro=30_000, max_hold_ms=600_000, exit_before_end_ms=3_600_000),
    "liquidity_vacuum": ExitRule(stop_loss_micro=30_000, max_hold_ms=120_000, exit_before_end_ms=3_600_000),
    "momentum": ExitRule(stop_loss_micro=50_000, max_hold_ms=1_800_000, exit_before_end_ms=3_600_000),
}


@attrs.frozen(slots=True)
class ExitParams:
    rules: Mapping[str, ExitRule] = attrs.field(factory=lambda: dict(DEFAULT_RULES))
    #: the rule of strategies `rules` does not name
    default: ExitRule = ExitRule(stop_loss_micro=50_000, max_hold_ms=3_600_000, exit_before_end_ms=3_600_000)
    merge_complete_sets: bool = True
    #: complete sets below this many micro-shares are not worth a relayer transaction
    min_merge_micro: int = attrs.field(default=MICRO, validator=_non_negative)
    #: after an exit that did not fill, how long before the rule may fire again
    retry_ms: int = attrs.field(default=5_000, validator=_non_negative)
    #: after a merge or conversion the chain side refused, how long before it is asked again
    settlement_retry_ms: int = attrs.field(default=60_000, validator=_non_negative)
    #: convert NO shares of several outcomes of a complete neg-risk event into collateral (exits.py)
    convert_neg_risk: bool = True
    #: NO shares per outcome below this are not worth a relayer transaction
    min_convert_micro: int = attrs.field(default=MICRO, validator=_non_negative)

    def rule_for(self, lot: str) -> ExitRule | None:
        """None for basket lots: they are held to resolution."""
        if lot.endswith(BASKET_LOT):
            return None
        return self.rules.get(lot, self.default)


LotKey = tuple[str, str, str]  # (wallet, token, lot)


@attrs.define(slots=True)
class ExitState:
    params: ExitParams = attrs.field(factory=ExitParams)
    #: lot -> the exit opportunity in flight for it
    exiting: dict[LotKey, str] = attrs.field(factory=dict)
    #: lot -> earliest time its rules may fire again
    retry_at: dict[LotKey, int] = attrs.field(factory=dict)
    #: (due_ms, seq, lot) time rules waiting for their time
    timers: list[tuple[int, int, LotKey]] = attrs.field(factory=list)
    seq: int = 0
    #: tokens some lot holds: only their book changes are judged
    watched: set[str] = attrs.field(factory=set)
    #: lot -> the opening time whose time rules are armed (a lot sold out and bought again re-arms)
    armed: dict[LotKey, int] = attrs.field(factory=dict)
    #: (wallet, market) merges and redemptions in flight
    merging: set[tuple[str, str]] = attrs.field(factory=set)
    redeeming: set[tuple[str, str]] = attrs.field(factory=set)
    #: (wallet, market) -> earliest time a refused merge may be asked again
    merge_retry_at: dict[tuple[str, str], int] = attrs.field(factory=dict)
    #: (wallet, neg-risk event) -> the markets whose NO shares a conversion in flight takes
    converting: dict[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)
    #: (wallet, event) -> earliest time a refused conversion may be asked again
    convert_retry_at: dict[tuple[str, str], int] = attrs.field(factory=dict)
    #: (due_ms, seq, wallet, event): refused conversions to ask again when their time comes
    convert_timers: list[tuple[int, int, str, str]] = attrs.field(factory=list)
    #: counts by reason, for the report
    exits: dict[str, int] = attrs.field(factory=dict)

    def schedule(self, key: LotKey, due_ms: int) -> None:
        self.seq += 1
        heapq.heappush(self.timers, (due_ms, self.seq, key))

    def schedule_convert(self, wallet: str, event: str, due_ms: int) -> None:
        self.seq += 1
        heapq.heappush(self.convert_timers, (due_ms, self.seq, wallet, event))

    def next_due_ms(self, never: int) -> int:
        """When a time rule or a conversion retry next falls due; `never` if nothing waits."""
        rules = self.timers[0][0] if self.timers else never
        converts = self.convert_timers[0][0] if self.convert_timers else never
        return min(rules, converts)
