"""The imperative shell around the pure step, shared by the backtest and paper runners.

It performs the commands the step returns (orders to an ExecutionPort, rows to the journal, alerts),
feeds execution reports back into the step, logs every stage with the opportunity's correlation id,
and audits the risk limits after every placement and fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import structlog

from polysnipe.core.messages import (
    CancelOrder,
    Command,
    ExecutionReport,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    RaiseAlert,
    RecordOpportunity,
    RecordOutcome,
    RecordRiskDecision,
)
from polysnipe.core.pipeline import step
from polysnipe.core.ports import ExecutionPort, Journal
from polysnipe.core.state import EngineState
from polysnipe.core.units import format_micro

__all__ = ["EngineShell", "audit_risk"]

log = structlog.get_logger("polysnipe.engine")


def audit_risk(state: EngineState) -> list[str]:
    """Independent check of the risk limits on the engine's current state (not the gatekeeper's code).

    Run after every order placement and fill: a non-empty answer is a breach the gatekeeper let through.
    """
    policy = state.gatekeeper.policy
    risk = state.risk
    breaches = []
    if len(risk.open_orders) > policy.max_open_orders:
        breaches.append(f"open_orders {len(risk.open_orders)} > {policy.max_open_orders}")
    for name, wallet in risk.portfolio.wallets.items():
        free = risk.free_usdc(name, policy.treasury_for(name))
        if free < 0:
            breaches.append(f"wallet {name} free balance {free} < 0")
        breaches += [f"wallet {name} short {t}" for t, n in wallet.positions.items() if n < 0]
    for market in state.markets:
        per_token = [risk.exposure(t) for t in market.token_ids]
        for token, exposure in zip(market.token_ids, per_token, strict=True):
            if exposure > policy.max_outcome_exposure_usdc_micro:
                breaches.append(f"outcome exposure {token} {exposure}")
        if sum(per_token) > policy.max_market_exposure_usdc_micro:
            breaches.append(f"market exposure {market.condition_id} {sum(per_token)}")
    return breaches


class EngineShell:
    """Performs commands and routes reports; owns the journal, the venue and the measurements."""

    def __init__(self, state: EngineState, venue: ExecutionPort, journal: Journal) -> None:
        self.state = state
        self.venue = venue
        self.journal = journal
        self.now_ms = 0
        self.decision_ns: list[int] = []
        self.audits = 0
        self.breaches: list[str] = []

    def audit(self) -> None:
        self.audits += 1
        found = audit_risk(self.state)
        if found:
            self.breaches.extend(found)
            log.error("risk_breach", breaches=found)

    def perform(self, commands: Sequence[Command]) -> None:
        journal = self.journal
        for cmd in commands:
            if isinstance(cmd, PlaceOrder):
                o = cmd.order
                journal.append("orders", {
                    "order_id": o.order_id, "opportunity_id": o.opportunity_id, "routing": o.routing,
                    "token_id": o.token_id, "side": o.side.name, "price": o.price, "size": o.size,
                    "order_type": o.order_type.value, "post_only": o.post_only, "ts_ms": cmd.ts_ms,
                })  # fmt: skip
                log.info("order_placed", correlation_id=o.correlation_id, order_id=o.order_id,
                         routing=o.routing, side=o.side.name, price=format_micro(o.price),
                         size=format_micro(o.size), order_type=o.order_type.value)  # fmt: skip
                self.venue.submit(o, self.now_ms)
                self.audit()
            elif isinstance(cmd, CancelOrder):
                log.info("order_cancel", correlation_id=cmd.correlation_id, order_id=cmd.order_id,
                         reason=cmd.reason)  # fmt: skip
                self.venue.cancel(cmd.order_id, self.now_ms)
            elif isinstance(cmd, RecordOpportunity):
                opp = cmd.opp
                journal.append("opportunities", {"id": opp.id, "policy": cmd.policy,
                                                 "arrival_price": cmd.arrival_price})  # fmt: skip
                log.info("opportunity", correlation_id=opp.correlation_id, strategy=opp.strategy,
                         token_id=opp.token_id, side=opp.side.name, size=format_micro(opp.size),
                         limit=format_micro(opp.limit_price), edge=format_micro(opp.edge),
                         reason=opp.reason)  # fmt: skip
            elif isinstance(cmd, RecordRiskDecision):
                journal.append("risk_decisions", attrs.asdict(cmd))
                log.info("risk_decision", correlation_id=cmd.correlation_id, approved=cmd.approved,
                         approved_size=format_micro(cmd.approved_size),
                         reasons=list(cmd.reasons))  # fmt: skip
            elif isinstance(cmd, RecordOutcome):
                row = attrs.asdict(cmd)
                row["kind"] = cmd.kind.value
                journal.append("outcomes", row)
                log.info("outcome", correlation_id=cmd.correlation_id, outcome=cmd.kind.value,
                         filled=format_micro(cmd.filled_size), reasons=list(cmd.reasons))  # fmt: skip
            elif isinstance(cmd, RaiseAlert):
                journal.append("alerts", {"severity": cmd.severity, "code": cmd.code,
                                          "message": cmd.message, "ts_ms": cmd.ts_ms})  # fmt: skip
                log.warning("alert", correlation_id=cmd.correlation_id, code=cmd.code, message=cmd.message)

    def deliver(self, reports: Sequence[ExecutionReport]) -> None:
        """Feed the venue's reports into the step in time order, journaling fills on the way."""
        for r in reports:
            rec = self.state.orders.get(r.order_id)
            cid = rec.request.correlation_id if rec is not None else ""
            if isinstance(r, OrderFilled):
                self.journal.append("fills", {
                    "order_id": r.order_id, "trade_id": r.trade_id, "ts_ms": r.ts_ms, "token_id": r.token_id,
                    "side": r.side.name, "price": r.price, "size": r.size, "liquidity": r.liquidity.value,
                    "fee_usdc": r.fee_usdc, "fee_shares": r.fee_shares,
                    "routing": rec.request.routing if rec is not None else "",
                })  # fmt: skip
                log.info("order_filled", correlation_id=cid, order_id=r.order_id, trade_id=r.trade_id,
                         price=format_micro(r.price), size=format_micro(r.size),
                         liquidity=r.liquidity.value)  # fmt: skip
            elif isinstance(r, OrderRejected):
                log.info("order_rejected", correlation_id=cid, order_id=r.order_id, reason=r.reason)
            self.perform(step(self.state, r, r.ts_ms))
            if isinstance(r, OrderFilled):
                self.audit()
