"""Evaluators: the filters between a signal's claim and the risk gatekeeper.

`evaluate` answers with the reasons an opportunity fails, or () when it passes. A re-delivered
opportunity (same id: ids are deterministic from the triggering facts) is answered with ("duplicate",)
alone, so the caller can drop it without recording a second outcome for the same id. Every other
evaluation remembers the id, passed or not; only a pass starts the (strategy, token) cooldown.

Dedupe memory is bounded twice: ids older than `dedupe_horizon_ms` are forgotten as time advances, and
at most `max_remembered_ids` are kept whatever the clock does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from polysnipe.core.opportunity import Opportunity

__all__ = ["EvaluatorParams", "Evaluators"]


def _int_map(value: Mapping[str, int]) -> dict[str, int]:
    return {str(k): int(v) for k, v in value.items()}


def _float_map(value: Mapping[str, float]) -> dict[str, float]:
    return {str(k): float(v) for k, v in value.items()}


@attrs.frozen(slots=True)
class EvaluatorParams:
    """Thresholds per strategy name; a strategy missing from a map gets the matching default."""

    min_edge_micro: Mapping[str, int] = attrs.field(factory=dict, converter=_int_map)
    default_min_edge_micro: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    min_confidence: Mapping[str, float] = attrs.field(factory=dict, converter=_float_map)
    default_min_confidence: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    #: per strategy, applied per (strategy, token): time after an accepted opportunity before the next
    cooldown_ms: Mapping[str, int] = attrs.field(factory=dict, converter=_int_map)
    default_cooldown_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    dedupe_horizon_ms: int = attrs.field(default=600_000, validator=attrs.validators.gt(0))
    max_remembered_ids: int = attrs.field(default=1_000_000, validator=attrs.validators.gt(0))

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> EvaluatorParams:
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown EvaluatorParams parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**config)


class Evaluators:
    __slots__ = ("_accepted_ms", "_order", "_seen", "params")

    def __init__(self, params: EvaluatorParams | None = None) -> None:
        self.params = params or EvaluatorParams()
        #: opportunity id -> when it was first evaluated
        self._seen: dict[str, int] = {}
        #: (first evaluated ms, id) in evaluation order: what to forget first
        self._order: deque[tuple[int, str]] = deque()
        #: (strategy, token) -> when an opportunity there was last accepted
        self._accepted_ms: dict[tuple[str, str], int] = {}

    def evaluate(self, opp: Opportunity, now_ms: int) -> tuple[str, ...]:
        p = self.params
        self._forget(now_ms)
        if opp.id in self._seen:
            return ("duplicate",)
        self._seen[opp.id] = now_ms
        self._order.append((now_ms, opp.id))

        reasons: list[str] = []
        if now_ms >= opp.expires_ms:
            reasons.append("expired")
        strategy = opp.strategy
        if opp.edge < p.min_edge_micro.get(strategy, p.default_min_edge_micro):
            reasons.append("min_edge")
        # `not >=` also fails a NaN confidence
        if not opp.confidence >= p.min_confidence.get(strategy, p.default_min_confidence):
            reasons.append("min_confidence")
        key = (strategy, opp.token_id)
        last = self._accepted_ms.get(key)
        if last is not None and now_ms - last < p.cooldown_ms.get(strategy, p.default_cooldown_ms):
            reasons.append("cooldown")
        if reasons:
            return tuple(reasons)
        self._accepted_ms[key] = now_ms
        return ()

    def remember(self, ids: Sequence[tuple[str, int]]) -> None:
        """Opportunities (id, when first evaluated) an earlier run of the engine already handled,
        from its journal: a redelivered input that makes one again is a duplicate, never a trade."""
        for oid, at_ms in sorted(ids, key=lambda pair: pair[1]):
            if oid not in self._seen:
                self._seen[oid] = at_ms
                self._order.append((at_ms, oid))

    def remembered(self) -> int:
        """Ids currently held for dedupe (for metrics and the bounded-memory test)."""
        return len(self._seen)

    def _forget(self, now_ms: int) -> None:
        order = self._order
        seen = self._seen
        horizon = now_ms - self.params.dedupe_horizon_ms
        cap = self.params.max_remembered_ids
        while order and (order[0][0] < horizon or len(order) >= cap):
            _, oid = order.popleft()
            del seen[oid]
