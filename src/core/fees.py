"""Polymarket's taker fee in exact integers (PROTOCOL.md section 11.1).

    fee = C * rate * (p * (1 - p)) ** exponent        (USDC; C shares, p price, all real numbers)

Only takers pay; makers never do. The fee is valued in USDC but collected from what the taker
receives: a BUY taker receives fewer shares (fee_usdc / p), a SELL taker less USDC. The docs round
the fee to 4 decimals (100 micro-units); the quantum is a parameter because the current fee page does
not restate the rule and third-party adapters use 5 decimals.

Everything is computed on integers: with C, rate and p in micro-units the exact fee in micro-units is
C * rate * (p * (ONE - p)) ** e / MICRO ** (1 + 2e), a single division, so the only rounding is the
one the venue documents.
"""

from __future__ import annotations

import attrs

from polysnipe.core.events import Side
from polysnipe.core.units import MICRO, ONE, format_micro

__all__ = [
    "FEE_QUANTUM_MICRO",
    "MAX_FEE_EXPONENT",
    "NO_FEE",
    "TakerFee",
    "check_fee_parameters",
    "div_half_even",
    "fee_value_usdc",
    "taker_fee",
]

#: "Fees are rounded to 4 decimal places" (older docs page): 0.0001 USDC = 100 micro-units.
FEE_QUANTUM_MICRO = 100
#: The largest exponent of p(1-p) accepted. The venue has published 1 (current schedule) and 2 (the
#: older crypto schedule); a little headroom, while the integer formula's cost grows with the exponent
#: (MICRO ** (1 + 2e)), so a corrupt exponent of 100000 would stall every fill it prices.
MAX_FEE_EXPONENT = 4


def check_fee_parameters(rate: int, exponent: int) -> None:
    """Raise ValueError unless 0 <= rate < 1 (`rate` in micro-units) and 1 <= exponent <= MAX_FEE_EXPONENT."""
    if not 0 <= rate < ONE:
        raise ValueError(f"fee rate must be within [0, 1), got {format_micro(rate)}")
    if not 1 <= exponent <= MAX_FEE_EXPONENT:
        raise ValueError(f"fee exponent must be within [1, {MAX_FEE_EXPONENT}], got {exponent}")


@attrs.frozen(slots=True)
class TakerFee:
    """What a taker fill is charged: exactly one field is non-zero (BUY pays shares, SELL pays USDC)."""

    fee_usdc: int
    fee_shares: int


NO_FEE = TakerFee(0, 0)


def div_half_even(num: int, den: int) -> int:
    """num / den rounded half-to-even, for num >= 0 and den > 0."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def fee_value_usdc(
    size: int, price: int, rate: int, exponent: int = 1, *, quantum: int = FEE_QUANTUM_MICRO
) -> int:
    """USDC value (micro) of the taker fee on `size` micro-shares at `price`, rounded to `quantum`.

    Capped at the trade's notional: rounding a sub-quantum trade up must never charge more than was
    traded (only reachable with rates far above any the venue publishes).
    """
    if not 0 < price < ONE:
        raise ValueError(f"price {price} outside (0, 1)")
    if size < 0 or quantum < 1:
        raise ValueError(f"invalid fee inputs: size={size} quantum={quantum}")
    check_fee_parameters(rate, exponent)
    num = size * rate * (price * (ONE - price)) ** exponent
    den = MICRO ** (1 + 2 * exponent) * quantum
    fee = div_half_even(num, den) * quantum
    return min(fee, size * price // MICRO)


def taker_fee(
    side: Side,
    size: int,
    price: int,
    rate: int,
    exponent: int = 1,
    *,
    quantum: int = FEE_QUANTUM_MICRO,
) -> TakerFee:
    """The fee a taker fill pays, in the asset the venue collects it in.

    A BUY's share fee is the rounded USDC fee converted at the fill price (half-even to the micro-share),
    never more than the shares bought.
    """
    if rate == 0:
        return NO_FEE
    usdc = fee_value_usdc(size, price, rate, exponent, quantum=quantum)
    if side is Side.SELL:
        return TakerFee(usdc, 0)
    return TakerFee(0, min(div_half_even(usdc * MICRO, price), size))
