"""Settlement where no on-chain route is configured yet (the live engine until the relayer lands).

Merges, redemptions and neg-risk conversions are CTF (and NegRiskAdapter) transactions of the
trader's wallet, sent through Polymarket's relayer (or, as a fallback, by the Safe's owner on Polygon).
Until this deployment has one, a request is refused with a reason that says exactly what waits, and
the portfolio keeps the shares: nothing is reported done that was not done.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.core.messages import (
    ConvertPositions,
    MergePositions,
    RedeemPositions,
    SettlementRefused,
    SettlementReport,
)

__all__ = ["NoSettlement"]

_WHY = "waits: no relayer or Polygon route is configured"


class NoSettlement:
    """core.ports.SettlementPort that can settle nothing and says so."""

    async def merge(self, request: MergePositions) -> Sequence[SettlementReport]:
        return [
            SettlementRefused(
                "merge", request.wallet, request.market, _WHY, request.ts_ms, request.correlation_id
            )
        ]

    async def redeem(self, request: RedeemPositions) -> Sequence[SettlementReport]:
        return [
            SettlementRefused(
                "redeem", request.wallet, request.market, _WHY, request.ts_ms, request.correlation_id
            )
        ]

    async def convert(self, request: ConvertPositions) -> Sequence[SettlementReport]:
        return [
            SettlementRefused(
                "convert", request.wallet, request.event, _WHY, request.ts_ms, request.correlation_id
            )
        ]
