"""What the simulated CLOB is: its fixed settings (`ClobSimConfig`) and the faults an operator or a
test switches while it runs (`Faults`, POST /_sim/faults). Fault draws come from a seeded RNG, so a
faulted run repeats exactly."""

from __future__ import annotations

import random
from typing import Any, Final

import attrs

from polysnipe.adapters.clob.config import POLYGON

__all__ = ["ClobSimConfig", "Faults"]


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True)
class ClobSimConfig:
    chain_id: int = POLYGON
    #: seeds credentials, heartbeat ids, trade ids and the fault RNG: one seed, one run
    seed: int = 0
    #: GET /version; orders signed for another exchange version get `order_version_mismatch`
    exchange_version: int = 2
    #: HTTP status of that error (UNVERIFIED, PROTOCOL 5.5; the Python client only retries on 200)
    version_mismatch_status: int = 400
    #: allowed |now - POLY_TIMESTAMP| of L1 / L2 headers (the venue's windows are not documented)
    l1_max_skew_s: int = 300
    l2_max_skew_s: int = 300
    #: open orders of a user are cancelled this long after their last good heartbeat (PROTOCOL 9)
    heartbeat_timeout_ms: int = 10_000
    #: GTD expiration must lie at least this far ahead (the docs' one-minute threshold)
    min_gtd_lead_ms: int = 60_000
    #: USDC (micro) credited to a wallet the balances file does not name; None = such wallets hold 0
    default_usdc_micro: int | None = None
    #: per-API-key token buckets (PROTOCOL 11.2): burst per window, refilled evenly over the window
    order_burst: int = 3_500
    cancel_burst: int = 3_000
    rate_window_ms: int = 10_000
    #: trade settlement: MATCHED -> MINED -> CONFIRMED after these delays from the match
    mined_after_ms: int = 2_000
    confirmed_after_ms: int = 5_000
    #: items per page of /markets, /data/orders, /data/trades
    page_size: int = 100
    #: with an events file: False replays it all at startup, True waits for POST /_sim/advance
    paced_replay: bool = False
    #: largest request body accepted; a larger one is answered 413 before the rest is read (a full
    #: batch of 15 orders is ~15 KB, a DELETE /orders of a whole cancel burst ~250 KB)
    max_body_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    #: order requests kept for GET /_sim/orders, newest last; older ones are dropped
    order_log_size: int = attrs.field(default=10_000, validator=_positive)


_MODES: Final = ("normal", "cancel_only", "disabled", "post_only")
#: the longest injected latency (and Retry-After): a minute
MAX_FAULT_LATENCY_MS: Final = 60_000
_FIELDS: Final = frozenset(
    {
        "error_rate",
        "status",
        "status_codes",
        "latency_ms",
        "drop_ws",
        "retry_after_s",
        "engine_restart",
        "mode",
        "exchange_version",
        "answer_lost_rate",
        "answer_lost_status",
        "seed",
    }
)


@attrs.define(slots=True)
class Faults:
    """Injected faults; `from_json` reads the admin payload, fields left out are off."""

    #: share of REST calls (admin excluded) answered with an injected error status, before the venue acts
    error_rate: float = 0.0
    status_codes: tuple[int, ...] = (500,)
    latency_ms: int = 0
    #: close every WebSocket now and refuse new ones while set
    drop_ws: bool = False
    #: Retry-After (s) sent with injected errors and 425s; 0 = none
    retry_after_s: int = 0
    #: the matching engine is restarting: 425 on order endpoints (PROTOCOL 11.3)
    engine_restart: bool = False
    #: "normal" | "cancel_only" | "disabled" | "post_only" (PROTOCOL 11.3)
    mode: str = "normal"
    #: overrides the configured exchange version (simulates a version migration)
    exchange_version: int | None = None
    #: share of order calls (placements and cancels) the venue carries out but whose answer is lost:
    #: the order rests or matches, the caller never hears it
    answer_lost_rate: float = 0.0
    #: how a lost answer looks: 0 drops the connection without a response (a server only), a 5xx is
    #: what a proxy in front of the venue answers when the venue's reply never reached it
    answer_lost_status: int = 0
    seed: int = 0
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), eq=False, repr=False)

    @classmethod
    def from_json(cls, obj: Any) -> Faults:
        """Faults from the admin payload. Raises ValueError on bad input."""
        if not isinstance(obj, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(obj) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        codes = obj.get("status_codes")
        if codes is None:
            codes = [obj.get("status", 500)]
        if not isinstance(codes, list) or not codes or not all(_is_int(c) and 400 <= c <= 599 for c in codes):
            raise ValueError("status / status_codes must be HTTP error statuses (400-599)")
        rates = {k: obj.get(k, 0.0) for k in ("error_rate", "answer_lost_rate")}
        if not all(
            isinstance(r, int | float) and not isinstance(r, bool) and 0.0 <= r <= 1.0 for r in rates.values()
        ):
            raise ValueError("error_rate and answer_lost_rate must be within [0, 1]")
        mode = obj.get("mode", "normal")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}")
        version = obj.get("exchange_version")
        if version is not None and not (_is_int(version) and version in (2, 3)):
            raise ValueError("exchange_version must be 2 or 3")
        lost_status = obj.get("answer_lost_status", 0)
        if not (_is_int(lost_status) and (lost_status == 0 or 500 <= lost_status <= 599)):
            raise ValueError("answer_lost_status must be 0 (drop the connection) or a 5xx status")
        seed = obj.get("seed", 0)
        ints = {k: obj.get(k, 0) for k in ("latency_ms", "retry_after_s")}
        if not _is_int(seed) or not all(_is_int(v) and v >= 0 for v in ints.values()):
            raise ValueError("seed, latency_ms and retry_after_s must be non-negative integers")
        if ints["latency_ms"] > MAX_FAULT_LATENCY_MS or ints["retry_after_s"] > MAX_FAULT_LATENCY_MS // 1000:
            # a request asleep longer holds the server's shutdown; clearing faults cannot wake it
            raise ValueError(
                f"latency_ms and retry_after_s are at most {MAX_FAULT_LATENCY_MS} ms and"
                f" {MAX_FAULT_LATENCY_MS // 1000} s"
            )
        flags = {k: obj.get(k, False) for k in ("drop_ws", "engine_restart")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ValueError("drop_ws and engine_restart must be booleans")
        return cls(
            error_rate=float(rates["error_rate"]),
            status_codes=tuple(codes),
            latency_ms=ints["latency_ms"],
            drop_ws=flags["drop_ws"],
            retry_after_s=ints["retry_after_s"],
            engine_restart=flags["engine_restart"],
            mode=mode,
            exchange_version=version,
            answer_lost_rate=float(rates["answer_lost_rate"]),
            answer_lost_status=lost_status,
            seed=seed,
            rng=random.Random(seed),
        )

    def injected_status(self) -> int:
        """The status to inject into this call before the venue acts, or 0 for none."""
        if self.error_rate <= 0.0 or self.rng.random() >= self.error_rate:
            return 0
        return self.status_codes[self.rng.randrange(len(self.status_codes))]

    def answer_lost(self) -> bool:
        """Whether the answer of this order call, which the venue has carried out, is lost."""
        return self.answer_lost_rate > 0.0 and self.rng.random() < self.answer_lost_rate

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "status_codes": list(self.status_codes),
            "latency_ms": self.latency_ms,
            "drop_ws": self.drop_ws,
            "retry_after_s": self.retry_after_s,
            "engine_restart": self.engine_restart,
            "mode": self.mode,
            "exchange_version": self.exchange_version,
            "answer_lost_rate": self.answer_lost_rate,
            "answer_lost_status": self.answer_lost_status,
            "seed": self.seed,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
