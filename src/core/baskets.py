"""Neg-risk baskets: what one share of every YES leg of a complete event returns, after fees, in the
worst case.

Exactly one outcome of a complete, non-augmented neg-risk event wins, and its YES share pays 1. Buying
`size` shares of every leg at prices p_i costs sum_i buy_cost(p_i, size). The taker fee of a BUY is
taken in shares (PROTOCOL.md 11.1), so leg j nets size - fee_shares_j, and a cheap leg nets the fewest
(its fee in shares is largest: rate * (1 - p_j) per share with exponent 1). If leg j's outcome wins
the basket returns size - fee_shares_j, so the profit it locks is

    min_j (size - fee_shares_j) - sum_i buy_cost(p_i, size)

in USDC micro-units (a winning share is worth exactly 1 USDC). Summing each leg's fee in USDC, as a
naive rule does, gets this wrong in both directions: only the winner's fee matters, and it is lost in
shares worth 1 each, not in USDC at the leg's price.
"""

from __future__ import annotations

from collections.abc import Sequence

from polysnipe.core.events import Side
from polysnipe.core.fees import taker_fee
from polysnipe.core.market import Market
from polysnipe.core.units import MICRO, ceil_div

__all__ = ["buy_cost", "worst_case_profit"]


def buy_cost(price: int, size: int) -> int:
    """USDC a buyer pays for `size` at `price`, rounded up: never count on paying less than owed."""
    return ceil_div(price * size, MICRO)


def worst_case_profit(legs: Sequence[tuple[Market, int]], size: int) -> int:
    """Profit (USDC micro) of `size` shares of every leg (market, price) if the outcome that nets the
    fewest shares wins; negative when the basket can lose."""
    if not legs or size <= 0:
        return 0
    cost = 0
    least_net = size
    for market, price in legs:
        cost += buy_cost(price, size)
        fee = taker_fee(Side.BUY, size, price, market.fee_rate, market.fee_exponent).fee_shares
        least_net = min(least_net, size - fee)
    return least_net - cost
