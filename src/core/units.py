"""Money and quantities as integer micro-units.

Collateral (pUSD) and outcome tokens both have 6 decimals on chain, so one micro-unit (1e-6) is the
smallest amount that can exist. Prices are micro-USDC per share, so a price of 0.48 is 480_000 and
tick 0.01 is 10_000. Floats never carry money: the venue's decimal strings are parsed exactly here.
"""

from __future__ import annotations

__all__ = [
    "MAX_AMOUNT_MICRO",
    "MAX_WHOLE_DIGITS",
    "MICRO",
    "ONE",
    "ceil_div",
    "format_micro",
    "notional",
    "parse_micro",
    "parse_micro_or_none",
    "price_from_float",
]

MICRO = 1_000_000
#: Price 1.0: the value of a winning share.
ONE = MICRO

_POW10 = (1, 10, 100, 1000, 10_000, 100_000, 1_000_000)
#: digits before the point that parse_micro reads: 10**24 whole units is far beyond any amount that
#: exists on chain, and the cap keeps int() away from the quadratic cost of huge digit strings
MAX_WHOLE_DIGITS = 24
#: the largest size (shares or USDC, micro-units) a venue message may carry: 10**12 whole units, a
#: thousand times the collateral in existence, so only a corrupt or hostile payload exceeds it
MAX_AMOUNT_MICRO = 10**18


def parse_micro(text: str) -> int:
    """Parse a decimal string ("0.48", ".48", "3149725.72", "-1.5", "5") into exact micro-units.

    Raises ValueError for anything that is not a plain ASCII decimal (an optional leading "-", digits,
    at most one "."), or that carries non-zero digits beyond the sixth decimal (such a value cannot
    exist on chain, so accepting it would hide a bug). Surrounding whitespace, "+", "_" separators and
    non-ASCII digits ("١٢", full-width "１２"), all of which `int()` would take, are refused: the
    venue never sends them, so one that arrives is a corrupt or hostile payload.
    """
    if not text.isascii():
        raise ValueError(f"not a decimal: {text!r}")
    s = text[1:] if text[:1] == "-" else text
    whole, _, frac = s.partition(".")
    # isdigit() on an ASCII string accepts exactly 0-9
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal: {text!r}")
    if len(whole) > MAX_WHOLE_DIGITS:
        raise ValueError(f"too many digits: {text[:40]!r}")
    if len(frac) > 6:
        if frac[6:].strip("0"):
            raise ValueError(f"more than 6 decimals: {text[:40]!r}")
        frac = frac[:6]
    value = int(whole or "0") * MICRO + (int(frac) * _POW10[6 - len(frac)] if frac else 0)
    return -value if text[:1] == "-" else value


def parse_micro_or_none(text: str | None) -> int | None:
    """Like parse_micro, but an absent or empty field (the venue sends "" for "none") is None."""
    if text is None or text == "":
        return None
    return parse_micro(text)


def format_micro(value: int) -> str:
    """Render micro-units as the shortest exact decimal string ("0.48", "5", "-0.000001")."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), MICRO)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


def ceil_div(a: int, b: int) -> int:
    """Ceiling division for positive divisors without floats."""
    return -(-a // b)


def notional(price: int, size: int) -> int:
    """USDC micro-units of `size` micro-shares at `price`, rounded down (never overstate value)."""
    return price * size // MICRO


def price_from_float(value: float, tick: int, *, mode: str = "nearest") -> int:
    """Convert a signal's float fair value into an on-tick price strictly inside (0, 1).

    This is the single boundary where float signal math meets money (DESIGN.md section 3). `mode`
    is "nearest", "down" or "up"; the result is clamped to [tick, ONE - tick].
    """
    scaled = value * MICRO / tick  # signal math: float by design
    if mode == "down":
        ticks = int(scaled // 1)
    elif mode == "up":
        ticks = -int(-scaled // 1)
    else:
        ticks = round(scaled)
    ticks = max(1, min(ticks, ONE // tick - 1))
    return ticks * tick
