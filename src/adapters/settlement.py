"""Settlement where no on-chain route is configured yet (the live engine until the relayer lands).

Merges and redemptions are CTF transactions of the trader's wallet, sent through Polymarket's relayer
(or, as a fallback, by the Safe's owner on Polygon). Until this deployment has one, a request is
answered with a warning that says exactly what waits, and the portfolio keeps the shares: nothing is
reported done that was not done.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.core.messages import MergePositions, RaiseAlert, RedeemPositions, SettlementReport
from polysnipe.core.units import format_micro

__all__ = ["NoSettlement"]


class NoSettlement:
    """core.ports.SettlementPort that can settle nothing and says so."""

    async def merge(self, request: MergePositions) -> Sequence[SettlementReport | RaiseAlert]:
        return [
            RaiseAlert(
                "warning",
                "settlement_unavailable",
                f"merge of {format_micro(request.size)} sets of {request.market} for {request.wallet} waits:"
                " no relayer or Polygon route is configured",
                request.ts_ms,
                request.correlation_id,
            )
        ]

    async def redeem(self, request: RedeemPositions) -> Sequence[SettlementReport | RaiseAlert]:
        return [
            RaiseAlert(
                "warning",
                "settlement_unavailable",
                f"redemption of {request.market} for {request.wallet} waits:"
                " no relayer or Polygon route is configured",
                request.ts_ms,
                request.correlation_id,
            )
        ]
