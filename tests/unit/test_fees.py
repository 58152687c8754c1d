from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.core.events import Side
from polysnipe.core.fees import (
    MAX_FEE_EXPONENT,
    NO_FEE,
    TakerFee,
    check_fee_parameters,
    div_half_even,
    fee_value_usdc,
    taker_fee,
)
from polysnipe.core.units import MICRO, ONE

SHARE = MICRO


def test_current_schedule_sell_pays_usdc() -> None:
    # 100 shares at 0.50, politics rate 0.04, exponent 1: 100 * 0.04 * 0.25 = $1.00
    assert TakerFee(1_000_000, 0) == taker_fee(Side.SELL, 100 * SHARE, 500_000, 40_000)


def test_current_schedule_buy_pays_shares_at_fill_price() -> None:
    # the same $1.00 taken from the shares bought: 1.00 / 0.50 = 2 shares
    assert TakerFee(0, 2 * SHARE) == taker_fee(Side.BUY, 100 * SHARE, 500_000, 40_000)


def test_general_form_with_exponent() -> None:
    # old crypto schedule: rate 0.25, exponent 2: 100 * 0.25 * 0.25^2 = 1.5625 (exact at 4 dp)
    assert 1_562_500 == fee_value_usdc(100 * SHARE, 500_000, 250_000, 2)
    assert TakerFee(0, 3_125_000) == taker_fee(Side.BUY, 100 * SHARE, 500_000, 250_000, 2)


@pytest.mark.parametrize(
    ("shares", "expected"),
    [(1, 0), (3, 200), (5, 200), (7, 400)],  # raw fee 50, 150, 250, 350 micro: ties go to even
)
def test_rounds_half_even_to_four_decimals(shares: int, expected: int) -> None:
    # rate 0.0002 at p = 0.5: fee = shares * 0.00005 USDC
    assert expected == fee_value_usdc(shares * SHARE, 500_000, 200, 1)


def test_quantum_is_a_parameter() -> None:
    assert 150 == fee_value_usdc(3 * SHARE, 500_000, 200, 1, quantum=10)
    assert 150 == fee_value_usdc(3 * SHARE, 500_000, 200, 1, quantum=1)


def test_zero_rate_is_free() -> None:
    assert NO_FEE == taker_fee(Side.BUY, 100 * SHARE, 300_000, 0)


@pytest.mark.parametrize("price", [0, ONE, -1, ONE + 1])
def test_price_outside_open_interval_is_refused(price: int) -> None:
    with pytest.raises(ValueError):
        fee_value_usdc(SHARE, price, 40_000, 1)


@pytest.mark.parametrize(
    ("rate", "exponent"),
    [(40_000, 0), (40_000, -1), (40_000, MAX_FEE_EXPONENT + 1), (40_000, 100_000), (ONE, 1)],
)
def test_fee_parameters_outside_their_range_are_refused(rate: int, exponent: int) -> None:
    # an exponent of 100000 computed MICRO ** 200001 before: a stall, not an answer
    with pytest.raises(ValueError, match="fee"):
        check_fee_parameters(rate, exponent)
    with pytest.raises(ValueError, match="fee"):
        fee_value_usdc(SHARE, 500_000, rate, exponent)


def test_div_half_even() -> None:
    assert [0, 2, 2, 4, 1] == [div_half_even(n, 2) for n in (1, 3, 5, 7, 2)]


_sizes = st.integers(min_value=0, max_value=10**12)
_prices = st.integers(min_value=1, max_value=ONE - 1)
_rates = st.integers(min_value=0, max_value=ONE - 1)
_exps = st.integers(min_value=1, max_value=MAX_FEE_EXPONENT)


@settings(max_examples=300, deadline=None)
@given(_sizes, _prices, _rates, _exps)
def test_fee_properties(size: int, price: int, rate: int, exponent: int) -> None:
    fee = fee_value_usdc(size, price, rate, exponent)
    assert fee >= 0
    assert fee <= size * price // MICRO  # never more than the notional
    if rate <= ONE // 2:
        # symmetric in p <-> 1 - p; above rate 0.5 (no venue schedule comes near: max 0.25) the
        # notional cap can bind on sub-quantum trades and break the symmetry
        assert fee == fee_value_usdc(size, ONE - price, rate, exponent)
    assert 0 == fee % 100 or fee == size * price // MICRO  # on the 4-dp grid unless capped
    assert 0 == fee_value_usdc(size, price, 0, exponent)
    buy = taker_fee(Side.BUY, size, price, rate, exponent)
    sell = taker_fee(Side.SELL, size, price, rate, exponent)
    assert 0 == buy.fee_usdc
    assert 0 <= buy.fee_shares <= size
    assert TakerFee(fee, 0) == sell or (rate == 0 and sell == NO_FEE)
