"""Retry policy of the CLOB adapter: named pure predicates, backoff, rate budgets, a circuit breaker.

Theory of operation. Whether a failed request may be sent again is decided on the error's class
alone (errors.py), by the predicates below:

* `is_safe_to_retry`: the venue certainly did not act on the request (429, 425, a connection that
  never opened). Any request may be repeated, an order included, as the same signed bytes.
* `is_retryable_read`: additionally a 5xx or a lost answer. Only for reads and cancels, which are
  idempotent: repeating them cannot trade.
* `needs_reconciliation`: a lost answer to POST /order. The order may be live or filled; the only
  next step is asking the venue by order hash.
* `counts_as_reject`: a refusal that says something is wrong on our side (bad order, no balance,
  bad credentials). N of them in a row open the circuit: stop posting and alert a human.

Nothing here sleeps, reads a clock or draws randomness on its own: delays are computed from an
injected RNG, times are passed in and `retry_idempotent` waits through an injected sleep, so tests and
backtests replay exactly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from polysnipe.adapters.clob.errors import (
    DuplicateOrder,
    EngineRestarting,
    InsufficientBalance,
    InvalidOrder,
    OrderVersionMismatch,
    RateLimited,
    ServerError,
    TransportFailure,
    Unauthorized,
    UnknownOutcome,
    VenueError,
)
from polysnipe.core.ports import Rng

__all__ = [
    "CANCEL_BUCKET",
    "ORDER_BUCKET",
    "BucketSpec",
    "CircuitBreaker",
    "RateBudgets",
    "RetryPolicy",
    "TokenBucket",
    "backoff_s",
    "counts_as_reject",
    "is_retryable_read",
    "is_safe_to_retry",
    "needs_reconciliation",
    "restart_backoff_s",
    "retry_delay_s",
    "retry_idempotent",
]

_T = TypeVar("_T")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen(slots=True)
class RetryPolicy:
    """How hard to retry. Defaults follow PROTOCOL.md 11.2-11.3."""

    #: retries of a safe-to-retry error (429, connect failure) before giving up on the request
    max_attempts: int = 5
    #: backoff grows base_s * 2**attempt, capped, with half of it jittered
    base_s: float = attrs.field(default=0.05, validator=_non_negative)
    cap_s: float = attrs.field(default=2.0, validator=_non_negative)
    #: 425 engine restart: first wait drawn from [restart_min_s, restart_max_s] ("retry with backoff
    #: from 1-2 s"), doubling up to restart_cap_s, for at most restart_budget_s (restarts take ~90 s)
    restart_min_s: float = attrs.field(default=1.0, validator=_non_negative)
    restart_max_s: float = attrs.field(default=2.0, validator=_non_negative)
    restart_cap_s: float = attrs.field(default=8.0, validator=_non_negative)
    restart_budget_s: float = attrs.field(default=180.0, validator=_non_negative)
    #: after a restart the engine takes only post-only orders for 2 minutes
    post_only_window_s: float = attrs.field(default=120.0, validator=_non_negative)
    #: a 503 cancel-only / disabled answer holds new orders back this long; the next one then probes
    halt_probe_s: float = attrs.field(default=10.0, validator=_non_negative)
    #: the longest a 429 may make us wait before we give the order up instead
    max_rate_wait_s: float = attrs.field(default=10.0, validator=_non_negative)
    #: re-posts (same signed bytes) of an order that reconciliation could not find
    max_reposts: int = 2

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 0 or self.max_reposts < 0:
            raise ValueError("max_attempts and max_reposts must be >= 0")
        if self.restart_min_s > self.restart_max_s:
            raise ValueError("restart_min_s must not exceed restart_max_s")


# -- predicates ----------------------------------------------------------------------------------
def is_safe_to_retry(err: BaseException) -> bool:
    """The venue certainly did not act: repeating any request, an order included, is harmless."""
    if isinstance(err, RateLimited | EngineRestarting):
        return True
    return isinstance(err, TransportFailure) and not err.sent


def is_retryable_read(err: BaseException) -> bool:
    """An idempotent request (GET, cancel, heartbeat) may be repeated after this error."""
    return is_safe_to_retry(err) or isinstance(err, ServerError | TransportFailure | UnknownOutcome)


def needs_reconciliation(err: BaseException) -> bool:
    """An order post whose outcome we do not know: ask the venue by hash before anything else."""
    return isinstance(err, UnknownOutcome)


def counts_as_reject(err: BaseException) -> bool:
    """A refusal that points at us (bad orders, no funds, bad keys), not at the market or the venue.

    Market outcomes (FOK killed, post-only would cross) and venue states (429, restart, post-only
    mode) are excluded: they say nothing about whether our orders are sane. A duplicate is the venue
    confirming an earlier post, not a fault.
    """
    if isinstance(err, DuplicateOrder):
        return False
    if isinstance(err, InvalidOrder):
        return err.code != "post_only_would_cross"
    return isinstance(err, InsufficientBalance | Unauthorized | OrderVersionMismatch)


# -- delays --------------------------------------------------------------------------------------
def backoff_s(attempt: int, policy: RetryPolicy, rng: Rng) -> float:
    """Delay before retry number `attempt` (1-based): "equal jitter", so never less than half the
    exponential step (a minimum spacing) and never in lockstep with other clients."""
    step = min(policy.cap_s, policy.base_s * (1 << min(max(0, attempt - 1), 30)))
    return step / 2 + rng.random() * step / 2


def restart_backoff_s(attempt: int, policy: RetryPolicy, rng: Rng) -> float:
    """Delay before retry `attempt` (1-based) while the engine restarts: 1-2 s first, then doubling."""
    first = policy.restart_min_s + rng.random() * (policy.restart_max_s - policy.restart_min_s)
    return min(policy.restart_cap_s, first * (1 << min(max(0, attempt - 1), 30)))


def retry_delay_s(err: BaseException, attempt: int, policy: RetryPolicy, rng: Rng) -> float:
    """How long to wait before repeating a request that failed with `err`.

    A 429's Retry-After is a floor, never shortened; a small jitter on top keeps a fleet of clients
    from returning in the same millisecond.
    """
    if isinstance(err, RateLimited) and err.retry_after_s is not None:
        return err.retry_after_s + rng.random() * policy.base_s
    if isinstance(err, EngineRestarting):
        return restart_backoff_s(attempt, policy, rng)
    return backoff_s(attempt, policy, rng)


async def retry_idempotent(
    send: Callable[[], Awaitable[_T]],
    policy: RetryPolicy,
    rng: Rng,
    sleep: Callable[[float], Awaitable[None]],
) -> _T:
    """Await `send()` until it succeeds, repeating it after the errors an idempotent request (a read,
    a cancel) may be repeated after, at most `policy.max_attempts` times. A 429 that asks for a longer
    wait than `policy.max_rate_wait_s` is raised instead of waited out."""
    attempt = 0
    while True:
        try:
            return await send()
        except VenueError as exc:
            attempt += 1
            if not is_retryable_read(exc) or attempt > policy.max_attempts:
                raise
            delay_s = retry_delay_s(exc, attempt, policy, rng)
            if isinstance(exc, RateLimited) and delay_s > policy.max_rate_wait_s:
                raise
            await sleep(delay_s)


# -- rate budgets --------------------------------------------------------------------------------
@attrs.frozen(slots=True)
class BucketSpec:
    """A token bucket: `burst` tokens at most, refilled at `per_s` tokens per second."""

    burst: float = attrs.field(validator=_non_negative)
    per_s: float = attrs.field(validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.burst <= 0 or self.per_s <= 0:
            raise ValueError("a bucket needs a positive burst and refill rate")


#: documented POST /order limit: bursts of 3,500 per 10 s, sustained 36,000 per 10 min (60/s)
ORDER_BUCKET: BucketSpec = BucketSpec(3500, 60.0)
#: documented DELETE /order limit: bursts of 3,000 per 10 s, sustained 30,000 per 10 min (50/s)
CANCEL_BUCKET: BucketSpec = BucketSpec(3000, 50.0)


class TokenBucket:
    """Reservation-style bucket: taking always succeeds and returns how long to wait first.

    Tokens may go negative (debt): the wait is the time the refill needs to pay the debt back. This
    orders concurrent callers fairly (first to reserve, first to go) and needs no retry loop.
    """

    __slots__ = ("_last_s", "_spec", "_tokens")

    def __init__(self, spec: BucketSpec, now_s: float) -> None:
        self._spec = spec
        self._tokens = spec.burst
        self._last_s = now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self._last_s:
            self._tokens = min(self._spec.burst, self._tokens + (now_s - self._last_s) * self._spec.per_s)
            self._last_s = now_s

    def reserve(self, n: float, now_s: float) -> float:
        """Take n tokens; returns the seconds to wait before using them (0.0 when available now)."""
        self._refill(now_s)
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self._spec.per_s

    def available(self, now_s: float) -> float:
        self._refill(now_s)
        return self._tokens


@attrs.frozen(slots=True)
class _SignerBuckets:
    order: TokenBucket
    cancel: TokenBucket


class RateBudgets:
    """Per-signer token buckets with separate order and cancel budgets (PROTOCOL.md 11.2).

    The defaults are the documented POST /order and DELETE /order limits (ORDER_BUCKET,
    CANCEL_BUCKET). Per-tier rates are unpublished, so they are settings.
    """

    __slots__ = ("_by_signer", "cancel_spec", "order_spec")

    def __init__(
        self,
        order_spec: BucketSpec = ORDER_BUCKET,
        cancel_spec: BucketSpec = CANCEL_BUCKET,
    ) -> None:
        self.order_spec = order_spec
        self.cancel_spec = cancel_spec
        self._by_signer: dict[str, _SignerBuckets] = {}

    def _buckets(self, signer: str, now_s: float) -> _SignerBuckets:
        buckets = self._by_signer.get(signer)
        if buckets is None:
            buckets = _SignerBuckets(
                TokenBucket(self.order_spec, now_s), TokenBucket(self.cancel_spec, now_s)
            )
            self._by_signer[signer] = buckets
        return buckets

    def reserve_orders(self, signer: str, n: int, now_s: float) -> float:
        """POST /order costs 1, POST /orders one per order."""
        return self._buckets(signer, now_s).order.reserve(n, now_s)

    def reserve_cancels(self, signer: str, n: int, now_s: float) -> float:
        """DELETE /order costs 1, DELETE /orders one per id, cancel-all 1 + the number cancelled."""
        return self._buckets(signer, now_s).cancel.reserve(n, now_s)


class CircuitBreaker:
    """Opens after `threshold` consecutive rejects (see counts_as_reject); only a human closes it.

    Closing by itself would let a broken signer or an empty wallet spray the venue again after a
    timeout; a reject streak means something needs a look.
    """

    __slots__ = ("_consecutive", "_open", "last_reason", "threshold")

    def __init__(self, threshold: int = 5) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.threshold = threshold
        self._consecutive = 0
        self._open = False
        self.last_reason = ""

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def consecutive(self) -> int:
        return self._consecutive

    def record_success(self) -> None:
        self._consecutive = 0

    def record_reject(self, reason: str) -> bool:
        """Count one reject; True exactly when this one opened the circuit (alert once)."""
        self._consecutive += 1
        self.last_reason = reason
        if not self._open and self._consecutive >= self.threshold:
            self._open = True
            return True
        return False

    def trip(self, reason: str) -> bool:
        """Open at once, whatever the streak (a fault that one event proves); True if this opened it."""
        self.last_reason = reason
        if self._open:
            return False
        self._open = True
        return True

    def reset(self) -> None:
        self._consecutive = 0
        self._open = False
        self.last_reason = ""
