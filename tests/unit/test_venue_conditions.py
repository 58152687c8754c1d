"""Venue conditions (engine restart, post-only window, cancel-only, failing heartbeats): risk refuses
what each forbids while it holds, journaled as a risk reason; cancels stay allowed."""

from __future__ import annotations

import pytest

import kit
from kit import T0, of
from polysnipe.core.messages import (
    CancelOrder,
    KillSwitch,
    OrderAccepted,
    OrderType,
    PlaceOrder,
    RaiseAlert,
    RecordRiskDecision,
    VenueCondition,
)
from polysnipe.core.pipeline import step


@pytest.mark.parametrize(
    ("condition", "post_only", "refused"),
    [
        ("restarting", False, True),
        ("restarting", True, True),
        ("cancel_only", True, True),
        ("heartbeat", True, True),
        ("post_only", False, True),
        ("post_only", True, False),
    ],
)
def test_venue_conditions_refuse_what_they_forbid_until_they_clear(
    condition: str, post_only: bool, refused: bool
) -> None:
    state = kit.engine()
    step(state, kit.snapshot(T0), T0)
    order = kit.order_request(post_only=post_only, order_type=OrderType.GTC, price=470_000)
    book = state.books[kit.YES]

    def reasons() -> tuple[str, ...]:
        return state.gatekeeper.check(order, state.risk, kit.MARKET, book, T0 + 2).reasons

    [alert] = step(state, VenueCondition(T0 + 1, condition, True, "425 on POST /order"), T0 + 1)
    assert isinstance(alert, RaiseAlert)
    assert ("warning", "venue_condition") == (alert.severity, alert.code)
    assert refused == (f"venue:{condition}" in reasons())
    assert [] == step(state, VenueCondition(T0 + 1, condition, True), T0 + 1)  # no news, no alert
    step(state, VenueCondition(T0 + 2, condition, False), T0 + 2)
    assert f"venue:{condition}" not in reasons()


def test_a_refusal_is_journaled_and_cancels_still_go_out() -> None:
    state = kit.engine({T0 + 1: [kit.opportunity("p", urgency="passive", limit_price=490_000)],
                        T0 + 3: [kit.opportunity("a", created_ms=T0 + 3)]})  # fmt: skip
    step(state, kit.snapshot(T0), T0)
    [place] = of(step(state, kit.trade(T0 + 1), T0 + 1), PlaceOrder)
    step(state, OrderAccepted(place.order.order_id, T0 + 2), T0 + 2)
    step(state, VenueCondition(T0 + 2, "restarting", True), T0 + 2)
    out = step(state, kit.trade(T0 + 3), T0 + 3)
    assert [] == of(out, PlaceOrder)
    [decision] = of(out, RecordRiskDecision)
    assert "venue:restarting" in decision.reasons
    cancels = step(state, KillSwitch(T0 + 4, "global", True, "operator"), T0 + 4)
    assert [place.order.order_id] == [c.order_id for c in of(cancels, CancelOrder)]


def test_an_unknown_venue_condition_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown venue condition"):
        VenueCondition(0, "maintenance", True)
