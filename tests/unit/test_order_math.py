"""Exact CLOB V2 amount math (core.order_math) against PROTOCOL.md 3.1-3.7."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.core import order_math
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderType
from polysnipe.core.order_math import (
    ROUNDING,
    InvalidAmount,
    InvalidPrice,
    InvalidTickSize,
    amounts_for_order,
    check_price,
    limit_amounts,
    market_amounts,
    price_of,
    rounding_for,
)
from polysnipe.core.units import MICRO, ONE, format_micro

FAST = settings(max_examples=300, deadline=None)

TICK_STRINGS = {
    "0.1": 100_000,
    "0.01": 10_000,
    "0.005": 5_000,
    "0.0025": 2_500,
    "0.001": 1_000,
    "0.0001": 100,
}
STANDARD_TICKS = [100_000, 10_000, 1_000, 100]

ticks = st.sampled_from(sorted(ROUNDING))
sides = st.sampled_from(list(Side))
#: sizes from one micro-share to ten million shares
sizes = st.integers(min_value=1, max_value=10**13)


@st.composite
def on_tick_prices(draw: st.DrawFn, tick_strategy: st.SearchStrategy[int] = ticks) -> tuple[int, int]:
    tick = draw(tick_strategy)
    return tick, draw(st.integers(min_value=1, max_value=ONE // tick - 1)) * tick


def decimal_strings(max_decimals: int, max_whole: int) -> st.SearchStrategy[str]:
    """Decimal strings as users type them: "12", "0.5", "7.770", "0.123456789"."""
    return st.builds(
        lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
        st.integers(min_value=0, max_value=max_whole),
        st.text(alphabet="0123456789", max_size=max_decimals),
    )


def places(value: Decimal) -> int:
    """Digits after the point of the shortest form (what the client's decimal_places counts)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def reference(kind: str, side: Side, price: str, quantity: str, tick: str) -> tuple[int, int]:
    """PROTOCOL.md 3.6 step by step, with Decimal at a precision where q / p is as good as exact."""
    row = {
        "0.1": (1, 3),
        "0.01": (2, 4),
        "0.005": (3, 5),
        "0.0025": (4, 6),
        "0.001": (3, 5),
        "0.0001": (4, 6),
    }
    price_decimals, amount_decimals = row[tick]
    with localcontext(Context(prec=80)):
        mode = ROUND_HALF_EVEN if kind == "limit" else ROUND_FLOOR
        p = Decimal(price).quantize(Decimal(1).scaleb(-price_decimals), rounding=mode)
        q = Decimal(quantity).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        usdc_leg = q / p if (kind == "market" and side is Side.BUY) else q * p
        if places(usdc_leg) > amount_decimals:
            usdc_leg = usdc_leg.quantize(Decimal(1).scaleb(-(amount_decimals + 4)), rounding=ROUND_CEILING)
            if places(usdc_leg) > amount_decimals:
                usdc_leg = usdc_leg.quantize(Decimal(1).scaleb(-amount_decimals), rounding=ROUND_FLOOR)
        q_units, leg_units = int(q * MICRO), int(usdc_leg * MICRO)
    if kind == "market":
        return q_units, leg_units
    return (leg_units, q_units) if side is Side.BUY else (q_units, leg_units)


# -- tick table and price validity -----------------------------------------------------------------
def test_rounding_table_matches_protocol_3_1() -> None:
    expected = {
        "0.1": (1, 3),
        "0.01": (2, 4),
        "0.005": (3, 5),
        "0.0025": (4, 6),
        "0.001": (3, 5),
        "0.0001": (4, 6),
    }
    actual = {
        text: (rounding_for(text).price_decimals, rounding_for(text).amount_decimals) for text in TICK_STRINGS
    }
    assert expected == actual
    assert {rounding_for(text).tick for text in TICK_STRINGS} == set(ROUNDING)


@pytest.mark.parametrize("bad", ["0.02", "0.00001", "1", "0", "abc", "NaN", "inf", ""])
def test_unknown_tick_sizes_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidTickSize):
        rounding_for(bad)
    with pytest.raises(InvalidTickSize):
        limit_amounts(Side.BUY, "0.5", "10", bad)


def test_engine_rejects_unknown_tick() -> None:
    with pytest.raises(InvalidTickSize):
        amounts_for_order(Side.BUY, 500_000, 10 * MICRO, OrderType.GTC, 20_000)


@pytest.mark.parametrize(
    ("price", "tick"),
    [(0, 10_000), (ONE, 10_000), (5_000, 10_000), (995_000, 10_000), (505_000, 10_000), (-10_000, 10_000)],
)
def test_engine_prices_must_be_on_tick_and_inside_the_band(price: int, tick: int) -> None:
    with pytest.raises(InvalidPrice):
        check_price(price, tick)
    with pytest.raises(InvalidPrice):
        amounts_for_order(Side.SELL, price, 10 * MICRO, OrderType.GTC, tick)


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        ("0", "0.01"),
        ("1", "0.01"),
        ("0.995", "0.01"),
        ("0.0049", "0.01"),
        ("-0.5", "0.1"),
        ("x", "0.1"),
        ("NaN", "0.1"),
    ],
)
def test_string_prices_outside_the_band_are_rejected(price: str, tick: str) -> None:
    with pytest.raises(InvalidPrice):
        limit_amounts(Side.BUY, price, "10", tick)
    with pytest.raises(InvalidPrice):
        market_amounts(Side.BUY, price, "10", tick)


def test_prices_rounding_off_a_half_tick_are_rejected() -> None:
    # 0.123 has the right number of decimals for tick 0.005 but is not on it
    with pytest.raises(InvalidPrice):
        limit_amounts(Side.BUY, "0.123", "10", "0.005")
    assert (1_250_000, 10_000_000) == limit_amounts(Side.BUY, "0.125", "10", "0.005")


def test_limit_price_is_rounded_half_even_and_market_price_floored() -> None:
    # 0.125 at 2 decimals: half-even gives 0.12, floor gives 0.12; 0.135 -> 0.14 vs 0.13
    assert (1_400_000, 10_000_000) == limit_amounts(Side.BUY, "0.135", "10", "0.01")
    assert (1_200_000, 10_000_000) == limit_amounts(Side.BUY, "0.125", "10", "0.01")
    assert (10_000_000, 1_300_000) == market_amounts(Side.SELL, "0.139", "10", "0.01")


# -- amounts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["0", "0.009", "-1", "abc", "inf"])
def test_sizes_that_round_to_nothing_are_rejected(size: str) -> None:
    with pytest.raises(InvalidAmount):
        limit_amounts(Side.BUY, "0.5", size, "0.01")
    with pytest.raises(InvalidAmount):
        market_amounts(Side.SELL, "0.5", size, "0.01")


def test_engine_market_buy_below_one_cent_of_notional_is_rejected() -> None:
    # 0.01 shares at 0.5 is half a cent: nothing to send
    with pytest.raises(InvalidAmount):
        amounts_for_order(Side.BUY, 500_000, 10_000, OrderType.FOK, 10_000)
    with pytest.raises(InvalidAmount):
        amounts_for_order(Side.SELL, 500_000, -10_000, OrderType.GTC, 10_000)


def test_protocol_examples() -> None:
    # PROTOCOL.md 3.7: exact math keeps the cent the float client drops, and the tick it loses
    assert (145_000, 290_000) == limit_amounts(Side.BUY, "0.5", "0.29", "0.01")
    assert (10_000_000, 17_543_800) == market_amounts(Side.BUY, "0.57", "10", "0.01")
    # the market price is floored, the amount floored to the cent
    assert (1_000_000_000, 10_000_000) == market_amounts(Side.SELL, "0.01", "1000.009", "0.01")
    assert (1_230_000, 1_757_142_857) == market_amounts(Side.BUY, "0.0007", "1.23", "0.0001")


def test_engine_market_buy_spends_size_times_price_floored_to_the_cent() -> None:
    # 17.89 shares at 0.123 = 2.20047 USDC -> 2.20 USDC -> 17.88617 shares (A = 5)
    assert (2_200_000, 17_886_170) == amounts_for_order(Side.BUY, 123_000, 17_890_000, OrderType.FAK, 1_000)
    assert (17_890_000, 2_200_470) == amounts_for_order(Side.SELL, 123_000, 17_890_000, OrderType.FAK, 1_000)


def test_clamp_ceil_step_rounds_up_values_just_below_the_grid() -> None:
    # x = 0.29999999999: ceil at A+4 = 8 decimals gives 0.3, which fits A = 4 decimals, so it stays 0.3
    assert 300_000 == order_math._clamped_quotient(29_999_999_999, 100_000_000_000, 4)
    # x = 0.2999999 is further below: ceil at 8 keeps it under, the floor at 4 gives 0.2999
    assert 299_900 == order_math._clamped_quotient(2_999_999, 10_000_000, 4)


@FAST
@given(
    usdc=st.integers(1, 10**15), price=st.integers(1, 10**12), amount_decimals=st.sampled_from([3, 4, 5, 6])
)
def test_clamp_rule_matches_its_decimal_definition(usdc: int, price: int, amount_decimals: int) -> None:
    with localcontext(Context(prec=80)):
        x = Decimal(usdc) / Decimal(price)
        if places(x) > amount_decimals:
            x = x.quantize(Decimal(1).scaleb(-(amount_decimals + 4)), rounding=ROUND_CEILING)
            if places(x) > amount_decimals:
                x = x.quantize(Decimal(1).scaleb(-amount_decimals), rounding=ROUND_FLOOR)
        expected = int(x * MICRO)
    assert expected == order_math._clamped_quotient(usdc, price, amount_decimals)


@FAST
@given(priced=on_tick_prices(), size=sizes, side=sides)
def test_limit_amounts_are_positive_and_carry_the_exact_price(
    priced: tuple[int, int], size: int, side: Side
) -> None:
    tick, price = priced
    if size < 10_000:
        with pytest.raises(InvalidAmount):
            amounts_for_order(side, price, size, OrderType.GTC, tick)
        return
    maker, taker = amounts_for_order(side, price, size, OrderType.GTC, tick)
    assert maker > 0 and taker > 0
    assert Fraction(price, MICRO) == price_of(maker, taker, side)
    shares = taker if side is Side.BUY else maker
    assert size - size % 10_000 == shares


@FAST
@given(
    priced=on_tick_prices(),
    size=sizes.filter(lambda s: s >= 10_000),
    limit_type=st.sampled_from([OrderType.GTC, OrderType.GTD]),
)
def test_buy_and_sell_mirror_each_other(priced: tuple[int, int], size: int, limit_type: OrderType) -> None:
    tick, price = priced
    buy = amounts_for_order(Side.BUY, price, size, limit_type, tick)
    sell = amounts_for_order(Side.SELL, price, size, limit_type, tick)
    assert buy == sell[::-1]
    # a market SELL is a limit SELL: shares out, shares * price in
    assert sell == amounts_for_order(Side.SELL, price, size, OrderType.FAK, tick)
    assert price_of(*buy, Side.BUY) == price_of(*sell, Side.SELL)
    assert price_of(buy[0], buy[1], Side.BUY) == 1 / price_of(buy[0], buy[1], Side.SELL)


@FAST
@given(priced=on_tick_prices(), usdc=st.integers(10_000, 10**12))
def test_market_buy_shares_are_the_quotient_on_the_amount_grid(priced: tuple[int, int], usdc: int) -> None:
    tick, price = priced
    amount_decimals = ROUNDING[tick].amount_decimals
    maker, taker = market_amounts(Side.BUY, format_micro(price), format_micro(usdc), format_micro(tick))
    assert usdc - usdc % 10_000 == maker
    assert taker > 0 and taker % 10 ** (6 - amount_decimals) == 0
    exact = Fraction(maker * MICRO, price)
    assert exact - 10 ** (6 - amount_decimals) < taker <= exact + Fraction(1, 10 ** (amount_decimals - 2))


@FAST
@given(
    tick=st.sampled_from(sorted(TICK_STRINGS)),
    price=decimal_strings(7, 0),
    quantity=decimal_strings(8, 10**7),
    side=sides,
    kind=st.sampled_from(["limit", "market"]),
)
def test_string_api_follows_protocol_3_6(tick: str, price: str, quantity: str, side: Side, kind: str) -> None:
    tick_micro = TICK_STRINGS[tick]
    compute = limit_amounts if kind == "limit" else market_amounts
    in_band = tick_micro <= Decimal(price) * MICRO <= ONE - tick_micro
    if not in_band:
        with pytest.raises(InvalidPrice):
            compute(side, price, quantity, tick)
        return
    try:
        maker, taker = compute(side, price, quantity, tick)
    except InvalidPrice:
        # only the half ticks can round to a price that has the right decimals but is off the tick
        assert tick_micro not in STANDARD_TICKS
        return
    except InvalidAmount:
        assert Decimal(quantity) < Decimal("0.01")
        return
    assert (maker, taker) == reference(kind, side, price, quantity, tick)
    assert maker > 0 and taker > 0
    if kind == "limit":
        assert 0 == price_of(maker, taker, side) * MICRO % tick_micro


@FAST
@given(priced=on_tick_prices(), size=st.integers(10_000, 10**12), side=sides)
def test_engine_api_equals_string_api(priced: tuple[int, int], size: int, side: Side) -> None:
    tick, price = priced
    text = (format_micro(price), format_micro(size), format_micro(tick))
    assert limit_amounts(side, *text) == amounts_for_order(side, price, size, OrderType.GTD, tick)
    if side is Side.SELL:
        assert market_amounts(side, *text) == amounts_for_order(side, price, size, OrderType.FOK, tick)


def test_price_of_is_exact_and_rejects_empty_legs() -> None:
    assert Fraction(10_000_000, 17_543_800) == price_of(10_000_000, 17_543_800, Side.BUY)
    assert Fraction(43, 100) == price_of(12_500_000, 5_375_000, Side.SELL)
    with pytest.raises(InvalidAmount):
        price_of(0, 1, Side.BUY)


# -- inputs finer than the protocol allows, and inputs that are not numbers ------------------------
@pytest.mark.parametrize(
    ("kind", "side", "price", "quantity", "tick"),
    [
        ("limit", Side.BUY, "0.57", "77.7777777", "0.01"),
        ("limit", Side.SELL, "0.57", "77.77777777777777777777777777777777777777777777777", "0.01"),
        ("limit", Side.BUY, "0.575", "10", "0.01"),
        ("limit", Side.BUY, "0.565", "10", "0.01"),
        ("limit", Side.SELL, "0.5712345678", "10.019", "0.01"),
        ("limit", Side.BUY, "0.12345", "3.3333333", "0.0001"),
        ("market", Side.BUY, "0.579", "10.129", "0.01"),
        ("market", Side.BUY, "0.0009999", "1.2399999", "0.0001"),
        ("market", Side.SELL, "0.5555555", "5.5555555", "0.001"),
    ],
)
def test_inputs_finer_than_the_protocol_are_rounded_as_it_rounds_them(
    kind: str, side: Side, price: str, quantity: str, tick: str
) -> None:
    compute = limit_amounts if kind == "limit" else market_amounts
    assert reference(kind, side, price, quantity, tick) == compute(side, price, quantity, tick)


def test_a_size_of_77_7777777_is_77_77_shares() -> None:
    assert (44_328_900, 77_770_000) == limit_amounts(Side.BUY, "0.57", "77.7777777", "0.01")


@pytest.mark.parametrize(
    "text", ["1e3", "1E-2", " 5", "5 ", "1_0", "١٢", "１２", "+-1", "1.2.3", "0x10", ".", "", "∞", "Infinity"]
)
def test_text_that_is_not_a_plain_decimal_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidAmount, match=r"^size .* is not a plain decimal"):
        limit_amounts(Side.BUY, "0.5", text, "0.01")
    with pytest.raises(InvalidAmount, match=r"^amount .* is not a plain decimal"):
        market_amounts(Side.BUY, "0.5", text, "0.01")
    with pytest.raises(InvalidPrice, match=r"^price .* is not a plain decimal"):
        limit_amounts(Side.BUY, text, "10", "0.01")
    with pytest.raises(InvalidTickSize, match=r"^tick size .* is not a plain decimal"):
        limit_amounts(Side.BUY, "0.5", "10", text)


def test_long_text_and_non_text_are_refused_without_arithmetic() -> None:
    with pytest.raises(InvalidAmount, match="longer than 64 characters"):
        limit_amounts(Side.BUY, "0.5", "9" * 5000, "0.01")
    with pytest.raises(InvalidPrice, match="must be a decimal string, got float"):
        limit_amounts(Side.BUY, 0.5, "10", "0.01")  # type: ignore[arg-type]


def test_quantities_are_bounded() -> None:
    top = format_micro(order_math.MAX_QUANTITY)
    assert (order_math.MAX_QUANTITY // 2, order_math.MAX_QUANTITY) == limit_amounts(
        Side.BUY, "0.5", top, "0.01"
    )
    with pytest.raises(InvalidAmount, match=f"^size 1000000000.01 exceeds the maximum {top}$"):
        limit_amounts(Side.BUY, "0.5", "1000000000.01", "0.01")
    with pytest.raises(InvalidAmount, match="exceeds the maximum"):
        amounts_for_order(Side.SELL, 500_000, order_math.MAX_QUANTITY + 10_000, OrderType.GTC, 10_000)
    with pytest.raises(InvalidAmount, match=r"^size -1 is negative$"):
        limit_amounts(Side.BUY, "0.5", "-1", "0.01")


def test_a_price_rounding_off_a_half_tick_names_the_rounding() -> None:
    with pytest.raises(
        InvalidPrice, match=r"^price 0.1237 rounds \(half-even, 3 decimals\) to 0.124, which is off"
    ):
        limit_amounts(Side.BUY, "0.1237", "10", "0.005")
    with pytest.raises(
        InvalidPrice, match=r"^price 0.1239 rounds \(down, 3 decimals\) to 0.123, which is off"
    ):
        market_amounts(Side.SELL, "0.1239", "10", "0.005")
