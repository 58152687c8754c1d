"""Realism seams of the simulated venue: latency, queue position and fees (hftbacktest style).

Each seam is a Protocol with small default implementations, so a backtest configures realism instead
of coding it into strategies, and the same venue serves a quick optimistic run and a pessimistic one.
All models are deterministic given the injected RNG and work in integer micro-units.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from polysnipe.core.book import book_implementation
from polysnipe.core.events import Side
from polysnipe.core.fees import FEE_QUANTUM_MICRO, TakerFee, fee_value_usdc, taker_fee
from polysnipe.core.market import Market
from polysnipe.core.ports import Rng
from polysnipe.core.units import MICRO

_compiled_draws: Callable[[Callable[[int], int], int, int], Callable[[], int]] | None
try:
    from polysnipe.adapters.sim._venue import draws as _compiled_draws
except ImportError:  # not built: the Python closure serves
    _compiled_draws = None

__all__ = [
    "ConstantLatency",
    "FeeModel",
    "FeedLatency",
    "JitteredLatency",
    "LatencyModel",
    "PolymarketFeeModel",
    "PowerProbQueueModel",
    "QueueModel",
    "QueuePosition",
    "RiskAverseQueueModel",
]


# -- latency -------------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class FeedLatency:
    """Delay from the venue publishing a market event to the engine receiving it (a backtest's market-
    data latency; a live run has the real one). Base plus uniform 0..jitter, from the injected RNG."""

    base_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    jitter_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    def delay_ms(self, rng: Rng) -> int:
        return self.base_ms + (rng.randint(0, self.jitter_ms) if self.jitter_ms else 0)

    def draws(self, rng: random.Random) -> Callable[[], int]:
        """The delays successive `delay_ms(rng)` calls give, as one call each, about a microsecond
        cheaper (a backtest draws one per event): rejection sampling on `getrandbits`, which is how
        `randint` draws (tests/unit/test_sim_venue.py holds the two to the same sequence)."""
        base, span = self.base_ms, self.jitter_ms + 1
        if span == 1:
            return lambda: base
        bits = span.bit_length()
        getrandbits = rng.getrandbits
        if _compiled_draws is not None and book_implementation() == "compiled" and base + span <= 1 << 62:
            # the same draws, without a Python frame each (adapters/sim/_venue.c)
            return _compiled_draws(getrandbits, base, span)

        def draw() -> int:
            r = getrandbits(bits)
            while r >= span:
                r = getrandbits(bits)
            return base + r

        return draw

    def describe(self) -> str:
        return f"{self.base_ms} ms" + (f" + 0..{self.jitter_ms} ms" if self.jitter_ms else "")


class LatencyModel(Protocol):
    def order_latency_ms(self, rng: Rng) -> int:
        """Delay from our submit/cancel to its arrival at the matching engine."""
        ...

    def ack_latency_ms(self, rng: Rng) -> int:
        """Delay from the engine producing a report to us receiving it."""
        ...

    def describe(self) -> dict[str, str]:
        """The delays assumed, for the report ("order", "ack")."""
        ...


@attrs.frozen(slots=True)
class ConstantLatency:
    order_ms: int = 0
    ack_ms: int = 0

    def order_latency_ms(self, rng: Rng) -> int:
        return self.order_ms

    def ack_latency_ms(self, rng: Rng) -> int:
        return self.ack_ms

    def describe(self) -> dict[str, str]:
        return {"order": f"{self.order_ms} ms", "ack": f"{self.ack_ms} ms"}


@attrs.frozen(slots=True)
class JitteredLatency:
    """Base delay plus uniform jitter, with an occasional slow spike (a GC pause, a Cloudflare hop).

    Draws come only from the injected RNG, so a seeded run repeats exactly.
    """

    order_ms: int
    ack_ms: int
    jitter_ms: int
    spike_prob: float = 0.0
    spike_ms: int = 0

    def _draw(self, base: int, rng: Rng) -> int:
        delay = base + (rng.randint(0, self.jitter_ms) if self.jitter_ms > 0 else 0)
        if self.spike_prob > 0.0 and rng.random() < self.spike_prob:
            delay += self.spike_ms
        return delay

    def order_latency_ms(self, rng: Rng) -> int:
        return self._draw(self.order_ms, rng)

    def ack_latency_ms(self, rng: Rng) -> int:
        return self._draw(self.ack_ms, rng)

    def describe(self) -> dict[str, str]:
        extra = f" + 0..{self.jitter_ms} ms" if self.jitter_ms else ""
        if self.spike_prob:
            extra += f", {self.spike_prob:.2%} of them {self.spike_ms} ms slower"
        return {"order": f"{self.order_ms} ms{extra}", "ack": f"{self.ack_ms} ms{extra}"}


# -- queue position ------------------------------------------------------------------------------
class QueuePosition:
    """Where a resting order stands in its price level, as far as L2 data lets us estimate.

    `ahead` is the displayed size in front of us; `traded` is size that trades at our level already
    took off the queue and that the next depth update will report again as a decrease (counting it
    twice would move us forward twice).
    """

    __slots__ = ("ahead", "traded")

    def __init__(self, ahead: int) -> None:
        self.ahead = ahead
        self.traded = 0


class QueueModel(Protocol):
    def join(self, visible_size: int) -> QueuePosition:
        """Position of an order joining a level that currently displays `visible_size`."""
        ...

    def on_trade(self, pos: QueuePosition, size: int) -> int:
        """A trade of `size` printed at our price; returns the part of it that reached our order."""
        ...

    def on_depth_change(self, pos: QueuePosition, prev_size: int, new_size: int) -> None:
        """The level's displayed size moved from `prev_size` to `new_size` (not by our own trades)."""
        ...


def _trade_through_queue(pos: QueuePosition, size: int) -> int:
    # Trades take the front of the queue first: this holds for any model, so it is shared.
    pos.traded += size
    if size <= pos.ahead:
        pos.ahead -= size
        return 0
    passed = size - pos.ahead
    pos.ahead = 0
    return passed


@attrs.frozen(slots=True)
class RiskAverseQueueModel:
    """Only trades move us forward; cancels are assumed to come from behind us.

    A level can never display less than what is ahead of us, so a shrinking level still caps `ahead`.
    """

    def join(self, visible_size: int) -> QueuePosition:
        return QueuePosition(visible_size)

    def on_trade(self, pos: QueuePosition, size: int) -> int:
        return _trade_through_queue(pos, size)

    def on_depth_change(self, pos: QueuePosition, prev_size: int, new_size: int) -> None:
        pos.traded = 0
        if new_size < pos.ahead:
            pos.ahead = new_size


@attrs.frozen(slots=True)
class PowerProbQueueModel:
    """hftbacktest's ProbQueueModel with the power-law probability function.

    A decrease not explained by trades is split between the front and the back of the queue: the front
    gets the fraction ahead^n / (ahead^n + behind^n), so a large queue ahead of us absorbs most cancels
    and a small one almost none. n = 1 is proportional; larger n pushes cancels further to the back.
    Done in integers (n is an int), flooring the front's share so the estimate errs towards waiting.
    """

    power: int = 2

    def __attrs_post_init__(self) -> None:
        if self.power < 1:
            raise ValueError(f"power must be >= 1, got {self.power}")

    def join(self, visible_size: int) -> QueuePosition:
        return QueuePosition(visible_size)

    def on_trade(self, pos: QueuePosition, size: int) -> int:
        return _trade_through_queue(pos, size)

    def on_depth_change(self, pos: QueuePosition, prev_size: int, new_size: int) -> None:
        drop = prev_size - new_size - pos.traded
        pos.traded = 0
        front = pos.ahead
        if drop > 0 and front > 0:
            back = max(prev_size - front, 0)
            wf = front**self.power
            from_front = drop * wf // (wf + back**self.power)
            # whatever the back cannot absorb must have come from the front
            overflow = max(drop - from_front - back, 0)
            front = max(front - from_front - overflow, 0)
        pos.ahead = min(front, new_size)


# -- fees ----------------------------------------------------------------------------------------
class FeeModel(Protocol):
    def taker_fee(self, market: Market, side: Side, price: int, size: int) -> TakerFee: ...

    def maker_rebate(self, market: Market, side: Side, price: int, size: int) -> int:
        """USDC a maker earns for this fill: its market's rebate rate times the taker fee paid on it."""
        ...


@attrs.frozen(slots=True)
class PolymarketFeeModel:
    """core.fees with each market's rate/exponent (Market.fee_rate, fee_exponent), optionally overridden.

    `overrides` maps condition id -> (rate micro, exponent): a backtest can replay old data under
    today's schedule, or stress a higher one, without editing market metadata.
    """

    overrides: Mapping[str, tuple[int, int]] = attrs.field(factory=dict)
    quantum_micro: int = FEE_QUANTUM_MICRO

    def taker_fee(self, market: Market, side: Side, price: int, size: int) -> TakerFee:
        rate, exponent = self.overrides.get(market.condition_id, (market.fee_rate, market.fee_exponent))
        return taker_fee(side, size, price, rate, exponent, quantum=self.quantum_micro)

    def maker_rebate(self, market: Market, side: Side, price: int, size: int) -> int:
        """The rebate programme pays makers a share (`fee_rebate_rate`) of the fees takers pay
        (PROTOCOL.md 11.1); per fill, that share of the taker fee of the same match, rounded down."""
        if not market.fee_rebate_rate:
            return 0
        rate, exponent = self.overrides.get(market.condition_id, (market.fee_rate, market.fee_exponent))
        if not rate:
            return 0
        fee = fee_value_usdc(size, price, rate, exponent, quantum=self.quantum_micro)
        return fee * market.fee_rebate_rate // MICRO
