"""CLOB error mapping, retry predicates, backoff, token buckets and the circuit breaker (all pure)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.adapters.clob.errors import (
    DuplicateOrder,
    EngineRestarting,
    HeartbeatMismatch,
    InsufficientBalance,
    InvalidOrder,
    NotFound,
    OrderNotFilled,
    OrderVersionMismatch,
    PostOnlyMode,
    RateLimited,
    ServerError,
    TradingHalted,
    TransportFailure,
    Unauthorized,
    UnknownOutcome,
    VenueError,
    error_from_order_message,
    error_from_response,
)
from polysnipe.adapters.clob.retry import (
    BucketSpec,
    CircuitBreaker,
    RateBudgets,
    RetryPolicy,
    TokenBucket,
    backoff_s,
    counts_as_reject,
    is_retryable_read,
    is_safe_to_retry,
    needs_reconciliation,
    restart_backoff_s,
    retry_delay_s,
)


def body(message: str, key: str = "error") -> bytes:
    return json.dumps({key: message}).encode()


# -- error mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "payload", "cls", "code"),
    [
        (429, body("Too Many Requests"), RateLimited, "rate_limited"),
        (425, b"", EngineRestarting, "engine_restarting"),
        (401, body("Unauthorized/Invalid api key"), Unauthorized, "unauthorized"),
        (401, body("Invalid L1 Request headers"), Unauthorized, "unauthorized"),
        (
            503,
            body("Trading is currently disabled. Check polymarket.com for updates"),
            TradingHalted,
            "trading_disabled",
        ),
        (
            503,
            body("Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."),
            TradingHalted,
            "cancel_only",
        ),
        (500, body("Internal server error"), ServerError, "server_error"),
        (502, b"<html>bad gateway</html>", ServerError, "server_error"),
        (404, body("No orderbook exists for the requested token id"), NotFound, "not_found"),
        (400, body("Invalid token id"), VenueError, "bad_request"),
        (
            400,
            body("post-only mode: only post-only orders and cancels are allowed"),
            PostOnlyMode,
            "post_only_mode",
        ),
        (
            400,
            body("not enough balance / allowance"),
            InsufficientBalance,
            "insufficient_balance_or_allowance",
        ),
        (400, body("the allowance is not enough"), InsufficientBalance, "insufficient_balance_or_allowance"),
        (400, body("invalid post-only order: order crosses book"), InvalidOrder, "post_only_would_cross"),
        (
            400,
            body("order couldn't be fully filled. FOK orders are fully filled or killed."),
            OrderNotFilled,
            "fok_not_filled",
        ),
        (
            400,
            body(
                "no orders found to match with FAK order. "
                "FAK orders are partially filled or killed if no match is found."
            ),
            OrderNotFilled,
            "fak_not_filled",
        ),
        (
            400,
            body("order is invalid. Duplicated. Same order has already been placed, can't be placed again"),
            DuplicateOrder,
            "duplicate_order",
        ),
        (
            400,
            body("order is invalid. Price breaks minimum tick size rules"),
            InvalidOrder,
            "invalid_tick_size",
        ),
        (400, body("order is invalid. Size lower than the minimum"), InvalidOrder, "below_min_size"),
        (400, body("the market is not yet ready to process new orders"), InvalidOrder, "market_not_ready"),
        (400, body("order_version_mismatch"), OrderVersionMismatch, "order_version_mismatch"),
        # the Python client matches a JSON-dumped non-string `error` too
        (
            400,
            json.dumps({"error": {"code": "order_version_mismatch"}}).encode(),
            OrderVersionMismatch,
            "order_version_mismatch",
        ),
    ],
)
def test_error_from_response_maps_status_and_text(status: int, payload: bytes, cls: type, code: str) -> None:
    err = error_from_response(status, payload)
    assert cls is type(err)
    assert code == err.code
    assert status == err.status


def test_errors_keep_the_venue_message_verbatim() -> None:
    text = "not enough balance / allowance: balance 3.2, needed 5"
    err = error_from_response(400, body(text))
    assert text == err.message


def test_rate_limited_reads_retry_after_from_header_then_json() -> None:
    assert 2.5 == error_from_response(429, b"", retry_after="2.5").retry_after_s  # type: ignore[attr-defined]
    json_wait = error_from_response(429, json.dumps({"retry_after_seconds": 7}).encode())
    assert 7.0 == json_wait.retry_after_s  # type: ignore[attr-defined]
    assert None is error_from_response(429, b"").retry_after_s  # type: ignore[attr-defined]
    # an HTTP date is legal but not what the venue sends: no crash, no wait taken from it
    assert None is error_from_response(429, b"", retry_after="Wed, 21 Oct 2026 07:28:00 GMT").retry_after_s  # type: ignore[attr-defined]


def test_heartbeat_mismatch_carries_the_expected_id() -> None:
    payload = json.dumps({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-42"}).encode()
    err = error_from_response(400, payload)
    assert isinstance(err, HeartbeatMismatch)
    assert "hb-42" == err.expected_id


def test_posting_turns_5xx_into_unknown_outcome_and_unknown_text_into_rejection() -> None:
    assert isinstance(error_from_response(500, body("Internal server error"), posting=True), UnknownOutcome)
    assert isinstance(error_from_response(504, b"", posting=True), UnknownOutcome)
    refused = error_from_response(400, body("something new"), posting=True)
    assert isinstance(refused, InvalidOrder)
    assert "order_rejected" == refused.code
    # a 503 halt is a refusal, not an unknown outcome, even for an order
    assert isinstance(
        error_from_response(503, body("Trading is currently disabled."), posting=True), TradingHalted
    )


def test_error_from_order_message_for_200_errors() -> None:
    assert isinstance(error_from_order_message("Insufficient balance"), InvalidOrder)
    assert isinstance(error_from_order_message("not enough balance / allowance"), InsufficientBalance)
    assert isinstance(error_from_order_message("order_version_mismatch"), OrderVersionMismatch)


# -- predicates ----------------------------------------------------------------------------------
def test_predicates_split_errors_by_what_the_venue_may_have_done() -> None:
    never_sent = TransportFailure("connect_failed", "refused", sent=False)
    maybe_sent = TransportFailure("no_answer", "read timeout", sent=True)
    unknown = UnknownOutcome(0, "unknown_outcome", "timeout")
    limited = RateLimited(429, "rate_limited", "x", 1.0)
    restarting = EngineRestarting(425, "engine_restarting", "x")
    server = ServerError(500, "server_error", "x")
    safe: list[VenueError] = [never_sent, limited, restarting]
    unsafe: list[VenueError] = [maybe_sent, unknown, server]
    for err in safe:
        assert is_safe_to_retry(err)
        assert is_retryable_read(err)
    for err in unsafe:
        assert not is_safe_to_retry(err)
        assert is_retryable_read(err)
    assert needs_reconciliation(unknown)
    assert not needs_reconciliation(server)
    assert not is_retryable_read(InvalidOrder(400, "invalid_tick_size", "x"))
    assert not is_retryable_read(Unauthorized(401, "unauthorized", "x"))


def test_counts_as_reject_only_for_faults_on_our_side() -> None:
    assert counts_as_reject(InvalidOrder(400, "invalid_tick_size", "x"))
    assert counts_as_reject(InsufficientBalance(400, "insufficient_balance_or_allowance", "x"))
    assert counts_as_reject(Unauthorized(401, "unauthorized", "x"))
    assert not counts_as_reject(InvalidOrder(400, "post_only_would_cross", "x"))
    assert not counts_as_reject(DuplicateOrder(400, "duplicate_order", "x"))
    assert not counts_as_reject(OrderNotFilled(400, "fok_not_filled", "x"))
    assert not counts_as_reject(PostOnlyMode(400, "post_only_mode", "x"))
    assert not counts_as_reject(RateLimited(429, "rate_limited", "x"))


# -- delays --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(attempt=st.integers(1, 40), seed=st.integers(0, 2**32))
def test_backoff_stays_within_half_and_full_step(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=3.0)
    step = min(3.0, 0.1 * 2 ** (attempt - 1))
    delay = backoff_s(attempt, policy, random.Random(seed))
    assert step / 2 <= delay <= step


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_first_restart_wait_is_one_to_two_seconds(seed: int) -> None:
    delay = restart_backoff_s(1, RetryPolicy(), random.Random(seed))
    assert 1.0 <= delay <= 2.0
    assert RetryPolicy().restart_cap_s >= restart_backoff_s(30, RetryPolicy(), random.Random(seed))


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(3)
    policy = RetryPolicy()
    for wait in (0.0, 0.4, 2.0, 30.0):
        err = RateLimited(429, "rate_limited", "slow down", wait)
        delay = retry_delay_s(err, 1, policy, rng)
        assert wait <= delay <= wait + policy.base_s


def test_same_seed_same_delays() -> None:
    err = ServerError(500, "server_error", "x")
    first = [retry_delay_s(err, n, RetryPolicy(), random.Random(11)) for n in range(1, 6)]
    second = [retry_delay_s(err, n, RetryPolicy(), random.Random(11)) for n in range(1, 6)]
    assert first == second


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(restart_min_s=3, restart_max_s=2)
    with pytest.raises(ValueError):
        RetryPolicy(base_s=-1)


# -- token buckets -------------------------------------------------------------------------------
def test_bucket_reserves_burst_then_makes_callers_wait_in_order() -> None:
    bucket = TokenBucket(BucketSpec(3, 10.0), now_s=0.0)
    assert [0.0, 0.0, 0.0] == [bucket.reserve(1, 0.0) for _ in range(3)]
    assert pytest.approx(0.1) == bucket.reserve(1, 0.0)
    assert pytest.approx(0.2) == bucket.reserve(1, 0.0)
    # time refills the debt
    assert 0.0 == bucket.reserve(1, 1.0)
    assert pytest.approx(2.0) == bucket.available(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2), st.integers(1, 5)), min_size=1, max_size=60))
def test_bucket_never_exceeds_its_rate(calls: list[tuple[float, int]]) -> None:
    """Whatever the call pattern, tokens used by time t never exceed burst + rate * t."""
    spec = BucketSpec(5, 20.0)
    bucket = TokenBucket(spec, 0.0)
    now = 0.0
    used = 0
    for gap, n in calls:
        now += gap
        wait = bucket.reserve(n, now)
        used += n
        start = now + wait
        assert used <= spec.burst + spec.per_s * start + 1e-6


def test_budgets_are_per_signer_and_separate_for_orders_and_cancels() -> None:
    budgets = RateBudgets(BucketSpec(2, 1.0), BucketSpec(1, 1.0))
    assert 0.0 == budgets.reserve_orders("0xA", 2, 0.0)
    assert 0.0 < budgets.reserve_orders("0xA", 1, 0.0)
    assert 0.0 == budgets.reserve_orders("0xB", 2, 0.0)  # another signer, its own bucket
    assert 0.0 == budgets.reserve_cancels("0xA", 1, 0.0)  # cancels have their own budget
    assert 0.0 < budgets.reserve_cancels("0xA", 1, 0.0)


# -- circuit -------------------------------------------------------------------------------------
def test_circuit_opens_after_n_consecutive_rejects_and_stays_open() -> None:
    circuit = CircuitBreaker(3)
    assert not circuit.record_reject("a")
    circuit.record_success()
    assert not circuit.record_reject("a")
    assert not circuit.record_reject("b")
    assert circuit.record_reject("c")  # the third in a row opens it, reported once
    assert circuit.is_open
    assert not circuit.record_reject("d")
    circuit.record_success()
    assert circuit.is_open  # only a human closes it
    circuit.reset()
    assert not circuit.is_open
    assert 0 == circuit.consecutive
