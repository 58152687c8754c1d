"""Exact maker/taker amounts of a CLOB V2 order (PROTOCOL.md sections 3.1-3.7).

A signed order carries no price, only two integer amounts in 6-decimal units; the venue derives the
price from them. The official client computes those amounts with binary floats and sometimes drops a
cent of size or a tick of price (PROTOCOL.md 3.7). Here every step is integer arithmetic on micro-units
(or exact rationals for the decimal strings users type), following the documented rounding rules:

* limit (GTC/GTD): price rounded half-even to the tick's price decimals, size floored to 2 decimals,
  USDC leg = size * price (always exact, so the amount clamp never fires);
* market (FOK/FAK): price floored to the price decimals, `amount` (USDC for BUY, shares for SELL) floored
  to 2 decimals; a BUY's share leg = amount / price through the amount clamp: if it has more than A
  decimals, ceil at A+4 decimals, then floor at A.

BUY gives USDC and takes shares; SELL gives shares and takes USDC, so the two sides are mirror images.

Inputs finer than the protocol allows are rounded exactly as the protocol rounds them, never refused
for their precision: a size of 77.7777777 is 77.77, a limit price of 0.575 at tick 0.01 is 0.58, a
market price of 0.579 is 0.57. What cannot be an order is refused with an OrderMathError that names
the field: a price that rounds off the tick (only the half ticks 0.005 and 0.0025 allow it; the venue
rejects such prices), a size that rounds to zero or exceeds MAX_QUANTITY, and any text that is not a
plain ASCII decimal (see `limit_amounts`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Final, NamedTuple

from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.units import MICRO, ONE, format_micro

__all__ = [
    "MAX_DECIMAL_CHARS",
    "MAX_QUANTITY",
    "ROUNDING",
    "InvalidAmount",
    "InvalidPrice",
    "InvalidTickSize",
    "OrderMathError",
    "RoundConfig",
    "amounts_for_order",
    "check_price",
    "limit_amounts",
    "market_amounts",
    "price_of",
    "rounding_for",
]


class OrderMathError(ValueError):
    """An order that cannot be expressed as valid V2 amounts."""


class InvalidPrice(OrderMathError):
    """Price off the tick, or outside [tick, 1 - tick]."""


class InvalidTickSize(OrderMathError):
    """A tick size the venue does not use."""


class InvalidAmount(OrderMathError):
    """A size or amount that rounds to nothing, is negative, or is not a number."""


class RoundConfig(NamedTuple):
    """Decimals per tick size (PROTOCOL.md 3.1); sizes always have 2."""

    tick: int
    price_decimals: int
    amount_decimals: int


#: The six tick sizes the client's TickSize type accepts, keyed by micro-units.
ROUNDING: dict[int, RoundConfig] = {
    100_000: RoundConfig(100_000, 1, 3),
    10_000: RoundConfig(10_000, 2, 4),
    5_000: RoundConfig(5_000, 3, 5),
    2_500: RoundConfig(2_500, 4, 6),
    1_000: RoundConfig(1_000, 3, 5),
    100: RoundConfig(100, 4, 6),
}

_SIZE_DECIMALS = 2
#: the largest size or amount of one order, micro-units: a billion shares (or USDC) is far beyond any
#: market's depth, and keeps every leg, and size * price, inside a signed 64-bit integer (journal bigint)
MAX_QUANTITY: Final = 10**9 * MICRO
#: decimal strings longer than this are refused before any arithmetic (and never echoed whole)
MAX_DECIMAL_CHARS: Final = 64
#: a plain decimal as users type it: ASCII digits, at most one point, an optional sign; no exponent,
#: spaces, underscores or other scripts' digits (Decimal() would take "1e3", " 5", "1_0" and "١٢")
_PLAIN_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
#: one cent of size or amount in micro-units: everything is floored to this grid first
_CENT = 10_000
#: int powers of ten (an int ** int is typed Any, since a negative exponent would give a float)
_POW10: tuple[int, ...] = tuple(10**i for i in range(12))


def rounding_for(tick_size: int | str) -> RoundConfig:
    """The rounding row for a tick given as micro-units (10_000) or as the venue's string ("0.01")."""
    micro = _tick_micro(tick_size) if isinstance(tick_size, str) else tick_size
    try:
        return ROUNDING[micro]
    except KeyError:
        raise InvalidTickSize(f"invalid tick size {tick_size!r}") from None


def check_price(price: int, tick: int) -> None:
    """Raise InvalidPrice unless `price` (micro) is on `tick` and inside [tick, 1 - tick]."""
    if price % tick or not tick <= price <= ONE - tick:
        raise InvalidPrice(f"invalid price {format_micro(price)} for tick {format_micro(tick)}")


# -- integer core: everything below works on micro-units ----------------------------------------
def _limit(side: Side, price: int, shares: int) -> tuple[int, int]:
    # shares sit on the cent grid and price has at most 4 decimals, so the product has at most
    # 6 decimals: the USDC leg is exact and the amount clamp can never fire for limit orders.
    usdc = shares * price // MICRO
    return (usdc, shares) if side is Side.BUY else (shares, usdc)


def _clamped_quotient(usdc: int, price: int, amount_decimals: int) -> int:
    """usdc / price in micro-units through the amount clamp: ceil at A+4 decimals, then floor at A.

    When the exact quotient already has at most A decimals both steps are the identity, so one
    expression covers both branches of the client's `if decimal_places(x) > A`.
    """
    scaled = -(-usdc * _POW10[amount_decimals + 4] // price)
    return scaled // 10_000 * _POW10[6 - amount_decimals]


def _market(side: Side, price: int, amount: int, cfg: RoundConfig) -> tuple[int, int]:
    if side is Side.BUY:
        return amount, _clamped_quotient(amount, price, cfg.amount_decimals)
    return amount, amount * price // MICRO


def _floor_cents(value: int, what: str = "amount", typed: str | None = None) -> int:
    """`value` floored to the cent, or InvalidAmount naming `what` (and the text `typed`, if any)."""
    cents = value - value % _CENT
    if 0 < cents and value <= MAX_QUANTITY:
        return cents
    # the amount is rendered only for the error: this runs once per order on the signing hot path
    shown = format_micro(value) if typed is None else typed
    if value < 0:
        raise InvalidAmount(f"{what} {shown} is negative")
    if value > MAX_QUANTITY:
        raise InvalidAmount(f"{what} {shown} exceeds the maximum {format_micro(MAX_QUANTITY)}")
    raise InvalidAmount(f"{what} {shown} rounds to zero at {_SIZE_DECIMALS} decimals")


def amounts_for_order(side: Side, price: int, size: int, order_type: OrderType, tick: int) -> tuple[int, int]:
    """(maker_amount, taker_amount) for an engine order: price and size in micro-units.

    The engine always sizes in shares. For a market (FOK/FAK) BUY the venue wants USDC, so the amount
    is size * price floored to the cent: the order never commits more than the notional risk approved,
    at the cost of a few micro-shares less than `size`. Prices must already be on the tick (a rounded
    price would hide a bug upstream); sizes are floored to the cent like the venue's own rounding.
    """
    # This runs once per order on the signing hot path, hence the inlined checks.
    cfg = ROUNDING.get(tick)
    if cfg is None:
        raise InvalidTickSize(f"invalid tick size {format_micro(tick)}")
    check_price(price, tick)
    immediate = order_type is OrderType.FOK or order_type is OrderType.FAK
    if immediate and side is Side.BUY:
        return _market(side, price, _floor_cents(size * price // MICRO), cfg)
    amount = _floor_cents(size, "size")
    return _market(side, price, amount, cfg) if immediate else _limit(side, price, amount)


# -- decimal-string API: what users (and the official client's callers) type --------------------
def _ratio(text: str, error: type[OrderMathError], what: str) -> tuple[int, int]:
    """Exact numerator/denominator of a plain decimal string."""
    if not isinstance(text, str):
        raise error(f"{what} must be a decimal string, got {type(text).__name__}")
    if len(text) > MAX_DECIMAL_CHARS:
        raise error(f"{what} is longer than {MAX_DECIMAL_CHARS} characters: {text[:20]!r}...")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise error(f"{what} {text!r} is not a plain decimal (ASCII digits and at most one point)")
    return Decimal(text).as_integer_ratio()


def _tick_micro(text: str) -> int:
    num, den = _ratio(text, InvalidTickSize, "tick size")
    if (num * MICRO) % den:
        raise InvalidTickSize(f"invalid tick size {text!r}")
    return num * MICRO // den


def _scaled(num: int, den: int, decimals: int, *, half_even: bool) -> int:
    """num/den rounded to `decimals` places (floor, or half-even), returned in micro-units."""
    q, r = divmod(num * _POW10[decimals], den)
    if half_even and (2 * r > den or (2 * r == den and q % 2)):
        q += 1
    return q * _POW10[6 - decimals]


def _price(text: str, cfg: RoundConfig, *, half_even: bool) -> int:
    num, den = _ratio(text, InvalidPrice, "price")
    # The range check runs on the price as typed, before rounding, exactly like the client's check.
    if not cfg.tick * den <= num * MICRO <= (ONE - cfg.tick) * den:
        low, high = format_micro(cfg.tick), format_micro(ONE - cfg.tick)
        raise InvalidPrice(f"invalid price ({text}), min: {low} - max: {high}")
    price = _scaled(num, den, cfg.price_decimals, half_even=half_even)
    if price % cfg.tick:
        rule = "half-even" if half_even else "down"
        raise InvalidPrice(
            f"price {text} rounds ({rule}, {cfg.price_decimals} decimals) to {format_micro(price)}, "
            f"which is off the tick {format_micro(cfg.tick)}"
        )
    return price


def _cents(text: str, what: str) -> int:
    num, den = _ratio(text, InvalidAmount, what)
    return _floor_cents(_scaled(num, den, _SIZE_DECIMALS, half_even=False), what, text)


def limit_amounts(side: Side, price: str, size: str, tick_size: str) -> tuple[int, int]:
    """(maker, taker) of a GTC/GTD order: `size` in shares, all inputs decimal strings.

    Each input is a plain ASCII decimal (digits, at most one point, optional sign, at most
    MAX_DECIMAL_CHARS characters; no exponent, spaces or underscores), else the field's error.
    Precision finer than the protocol's is rounded as the protocol rounds it (PROTOCOL.md 3.4, 3.6):

    * `price`: half-even to the tick's price decimals (the official client's round_normal), after the
      [tick, 1 - tick] check on the price as typed. A result off the tick (possible only for ticks
      0.005 and 0.0025) raises InvalidPrice: the venue rejects it.
    * `size`: floored to 2 decimals, however many are typed (77.7777777 -> 77.77). A result of zero,
      a negative size or one above MAX_QUANTITY raises InvalidAmount.
    * `tick_size`: must be one of the six ticks exactly, else InvalidTickSize.
    """
    cfg = rounding_for(tick_size)
    return _limit(side, _price(price, cfg, half_even=True), _cents(size, "size"))


def market_amounts(side: Side, price: str, amount: str, tick_size: str) -> tuple[int, int]:
    """(maker, taker) of a FOK/FAK order: `amount` is USDC for BUY and shares for SELL.

    As `limit_amounts`, except that `price` is floored (not rounded) to the price decimals
    (PROTOCOL.md 3.5), and `amount` is floored to 2 decimals like a size.
    """
    cfg = rounding_for(tick_size)
    return _market(side, _price(price, cfg, half_even=False), _cents(amount, "amount"), cfg)


def price_of(maker_amount: int, taker_amount: int, side: Side) -> Fraction:
    """The price the venue derives from signed amounts: USDC per share, exact (PROTOCOL.md 3.7)."""
    if maker_amount <= 0 or taker_amount <= 0:
        raise InvalidAmount(f"amounts must be positive: maker {maker_amount}, taker {taker_amount}")
    if side is Side.BUY:
        return Fraction(maker_amount, taker_amount)
    return Fraction(taker_amount, maker_amount)
