"""Evaluators: each failure reason, dedupe that answers once, cooldown on acceptance, bounded memory."""

from __future__ import annotations

import attrs
import pytest

from kit import opportunity
from polysnipe.core.evaluators import EvaluatorParams, Evaluators
from polysnipe.core.opportunity import Opportunity


def opp(
    oid: str = "o1",
    *,
    strategy: str = "spread_hunter",
    token: str = "t1",
    edge: int = 20_000,
    confidence: float = 0.8,
    expires_ms: int = 5_000,
) -> Opportunity:
    return opportunity(oid, strategy=strategy, market="m", token_id=token, size=10_000_000,
                       limit_price=450_000, fair_value=450_000 + edge, edge=edge, confidence=confidence,
                       created_ms=1_000, expires_ms=expires_ms)  # fmt: skip


PARAMS = EvaluatorParams(
    min_edge_micro={"momentum": 30_000},
    default_min_edge_micro=10_000,
    min_confidence={"momentum": 0.9},
    default_min_confidence=0.5,
    cooldown_ms={"spread_hunter": 2_000},
    dedupe_horizon_ms=10_000,
)


def test_passes() -> None:
    assert () == Evaluators(PARAMS).evaluate(opp(), 1_000)


@pytest.mark.parametrize(
    ("o", "reasons"),
    [
        (opp(expires_ms=1_000), ("expired",)),
        (opp(edge=9_999), ("min_edge",)),
        (opp(strategy="momentum", confidence=0.95), ("min_edge",)),  # 20_000 < the momentum minimum
        (opp(confidence=0.49), ("min_confidence",)),
        (opp(confidence=float("nan")), ("min_confidence",)),
        (opp(strategy="momentum", edge=40_000, confidence=0.8), ("min_confidence",)),
        (opp(expires_ms=900, edge=0, confidence=0.0), ("expired", "min_edge", "min_confidence")),
    ],
    ids=[
        "expired",
        "min-edge-default",
        "min-edge-per-strategy",
        "min-confidence-default",
        "nan-confidence",
        "min-confidence-per-strategy",
        "all-at-once",
    ],
)
def test_failure_reasons(o: Opportunity, reasons: tuple[str, ...]) -> None:
    assert reasons == Evaluators(PARAMS).evaluate(o, 1_000)


def test_duplicate_is_reported_alone_whatever_the_first_outcome() -> None:
    ev = Evaluators(PARAMS)
    assert ("min_edge",) == ev.evaluate(opp("a", edge=0), 1_000)
    assert ("duplicate",) == ev.evaluate(opp("a", edge=0), 1_001)
    assert () == ev.evaluate(opp("b", token="t2"), 1_000)
    assert ("duplicate",) == ev.evaluate(opp("b", token="t2"), 1_500)


def test_cooldown_per_strategy_and_token_after_acceptance() -> None:
    ev = Evaluators(PARAMS)
    assert () == ev.evaluate(opp("a"), 1_000)
    assert ("cooldown",) == ev.evaluate(opp("b"), 2_999)
    assert () == ev.evaluate(opp("c", token="t2"), 2_999)  # another token
    assert () == ev.evaluate(opp("d", strategy="liquidity_vacuum"), 2_999)  # no cooldown configured
    assert () == ev.evaluate(opp("e", expires_ms=10_000), 3_000)


def test_rejection_does_not_start_cooldown() -> None:
    ev = Evaluators(PARAMS)
    assert ("min_edge",) == ev.evaluate(opp("a", edge=0), 1_000)
    assert () == ev.evaluate(opp("b"), 1_001)


def test_dedupe_memory_forgets_after_horizon() -> None:
    ev = Evaluators(PARAMS)
    for i in range(100):
        ev.evaluate(opp(f"id{i}", token=f"t{i}", expires_ms=10**9), 1_000 + i)
    assert 100 == ev.remembered()
    assert ("duplicate",) == ev.evaluate(opp("id0", expires_ms=10**9), 11_000)
    ev.evaluate(opp("late", token="tx", expires_ms=10**9), 11_050)
    assert 51 == ev.remembered()  # ids first seen before 1_050 are gone; "late" is new
    assert () == ev.evaluate(opp("id0", token="tz", expires_ms=10**9), 11_050)


def test_dedupe_memory_is_capped_even_when_time_stands_still() -> None:
    ev = Evaluators(attrs.evolve(PARAMS, max_remembered_ids=10))
    for i in range(50):
        ev.evaluate(opp(f"id{i}", token=f"t{i}"), 1_000)
    assert 10 == ev.remembered()
    assert ("duplicate",) == ev.evaluate(opp("id49", token="t49"), 1_000)


def test_params_from_mapping() -> None:
    p = EvaluatorParams.from_mapping({"min_edge_micro": {"momentum": 5}, "cooldown_ms": {"momentum": 7}})
    assert ({"momentum": 5}, {"momentum": 7}) == (p.min_edge_micro, p.cooldown_ms)
    with pytest.raises(ValueError, match="known"):
        EvaluatorParams.from_mapping({"min_edge": 1})
