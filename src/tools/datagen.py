"""Sample data generator: Polymarket-format market data with planted, labelled inefficiencies.

`generate(out_dir, seed=N)` writes five files that the backtest reads exactly as it reads recorded
venue data, so the same parsing code runs on both. The metadata is as fetched when the window opens
(every market active, also those that resolve inside it):

- ``markets.json``: one CLOB ``GET /markets`` page (``{"data": [...], "next_cursor": "LTE=", ...}``),
  each row key for key as the recorded rows: ``markets`` standalone binary markets, plus
  ``neg_risk_events`` neg-risk events of ``outcomes_per_event`` binary markets each (``neg_risk``
  true, one shared ``neg_risk_market_id``). The V2 fee schedule is not there, as on the venue:
  ``maker_base_fee``/``taker_base_fee`` are the legacy V1 base fee in bps (1000 on fee markets, as
  Gamma's ``makerBaseFee``; 0 on fee-free ones).
- ``gamma_markets.json``: the same markets as a Gamma ``GET /markets`` list (PROTOCOL.md 11.5):
  ``conditionId``, ``clobTokenIds`` and ``outcomes`` as JSON-encoded strings, ``orderPriceMinTickSize``,
  ``orderMinSize``, ``negRisk`` (with ``negRiskMarketID``/``negRiskRequestID`` on neg-risk markets),
  ``negRiskOther``, ``groupItemTitle``, ``active``, ``closed``, ``acceptingOrders``, ``feesEnabled``,
  ``feeType`` and, on fee markets only, ``feeSchedule {exponent, rate, takerOnly, rebateRate}`` and
  ``makerBaseFee``/``takerBaseFee``. Fee schedules by topic: crypto (``crypto_fees``, rate 0.07,
  rebate 0.2), politics (``politics_fees``, 0.04, 0.25), sports (``sports_fees_v2``, 0.03, 0.25);
  the other topics are fee-free (``feesEnabled`` false, ``feeType`` null).
- ``gamma_events.json``: a Gamma ``GET /events`` list with one event per neg-risk group: ``negRisk``,
  ``enableNegRisk``, ``negRiskMarketID``, ``negRiskAugmented`` and its ``markets[]`` as above. An
  augmented event (``negRiskAugmented`` true) has one more market, the "Other" placeholder
  (``negRiskOther`` true), which trades and takes its share of the event's fair values like any
  outcome; "all current outcomes" of it are not a complete set, so no complement_arb is planted on
  it. The first event is augmented only with ``augment_main_event``; with two or more events the
  last one always is.
- ``events.jsonl``: market-channel WebSocket messages (PROTOCOL.md 10.2), one frame per line, in
  timestamp order. A frame is one message or, as on the wire, a JSON list of messages (the initial
  dump is one list per market). Message types: ``book``, ``price_change`` (``price_changes[]`` form),
  ``last_trade_price``, ``tick_size_change``, ``market_resolved`` and ``external_signal`` (the news
  schema the signal parser documents). ``malformed`` corrupted lines (truncated JSON, or a copy of the
  preceding message with a required field removed) are inserted at random places; dropping them
  loses nothing.
- ``labels.jsonl``: one line per planted inefficiency, ``{"kind", "token_id", "market", "start_ms",
  "end_ms", "edge", "note"}``, sorted by start. ``token_id`` is the token to BUY to capture it;
  ``edge`` is a decimal string per share, measured on the generated book (see each kind below).

How the market is simulated. Every binary market keeps one YES book; the NO book is its mirror, as
on the venue: each YES level change (BUY at p) is emitted in the same ``price_change`` with the NO
entry (SELL at 1-p, same size), and ``best_bid``/``best_ask`` are the book after that entry. Fair
value is a mean-reverting random walk in logit space (a neg-risk event walks all outcomes at once
and normalises, so its YES fair values sum to 1). Makers quote around fair value: the best bid never
rises above, and the best ask never falls below, fair -/+ half a spread of a few ticks, which is what
keeps an event's YES asks summing above 1 (and bids below 1) outside planted windows. Order flow is
a Poisson process per market that switches between calm and burst regimes; most messages resize,
add or cancel levels, and trades print ``last_trade_price`` and deplete the touch. One standalone
market (when ``markets >= 3``) is a long shot whose price drifts through 0.04 (or 0.96), so the
venue's tick moves 0.01 -> 0.001 and back; going back to the coarse tick is followed by fresh ``book``
snapshots of both tokens, because levels off the coarse grid cannot survive it.

Resolution. ``resolved_markets`` standalone binary markets (default one; never the long shot)
resolve near the end: 12 s before, the outcome is drawn (YES with probability the fair value) and
the price heads for 0.95 (or 0.05) in three requotes; then ``market_resolved`` (the recorded
message's fields plus ``question``, ``slug``, ``description``, ``outcomes``) and, in the same
instant, a ``book`` of each token with no bids and no asks: its orders are gone, and nothing more
is published for that market. No planted window overlaps that stretch.

Planted kinds (max(3, duration/200 s) of each, pair_inconsistency max(3, that/3); spaced so windows
never overlap on one market, with a quiet book for 8 s before each so EWMA fair values settle):

- ``mispriced_book``: a seller sweeps the YES bids down to a price 3-8 ticks (more on a 0.001 tick,
  enough to clear fees) below fair and rests a modest ask there; or a buyer sweeps the asks and
  rests a bid above fair, which the NO token sees as a cheap ask (label names NO). After 2-6 s it is
  taken or cancelled and makers restore the book. edge = fair - cheap ask price, for the label token.
- ``complement_arb``: one line per planted window (not per leg): ``market`` is the event's
  ``neg_risk_market_id`` and ``token_id`` the first outcome's YES token; buying YES of every outcome
  of that event captures it. A seller dumps YES of every outcome at once (sweeping bids) and rests
  asks that sum to 1 - edge, for 2-6 s, until arbitrageurs take them all. edge = 1 - sum of the asks.
- ``liquidity_vacuum``: all resting YES bids (or asks) within 3 ticks of the touch are cancelled in
  2-4 messages within 1 s; 1-5 s later fair value jumps several ticks in that direction and makers
  requote. Label token: NO when bids vanished (price falls), YES when asks vanished. edge = the label
  token's mid after the jump minus its best ask right after the vacuum; end = the jump.
- ``news``: an ``external_signal`` (confidence 0.6-0.95, on the YES or the NO token) and, 2-10 s
  later, the book moves in 1-3 steps. The source knows the news and the book at that moment, never
  the market's reaction: its ``fair_price`` is its own estimate, a move worth trading from the
  present book (5-20 ticks or more), and the market then moves by that estimate times a reaction
  drawn independently (log-normal, sd 0.35), again worth trading, and never exactly to the
  estimate. Label token: the one whose price rises. edge = its mid after catch-up minus its best ask
  at the signal; end = catch-up. A few low-confidence (0.2-0.5) signals whose fair_price is the
  current fair value are also emitted, unlabelled: sources are not always right.
- ``pair_inconsistency``: a data-quality event, not a trade (DESIGN.md section 3). The YES price
  jumps by more than its spread, but for 1-4 s only one token's entries are published; the other
  token's book goes stale until a ``book`` snapshot resyncs it. While stale, YES ask + NO ask < 1 and
  entries are not mirrored. token_id = the stale token; edge = 1 - (YES ask + NO ask).

Fees. The planted edges use the fee schedules the metadata publishes: every tradeable edge is at
least 0.015 per share and clears the taker fee of its market (rate * p(1-p) at the price it is
taken, core.fees) by at least 0.005; a complement_arb's edge clears, by as much plus the engine's basket
edge, the fee of the leg that nets the fewest shares (a BUY's fee is taken in shares: core/baskets.py).

Determinism: the only randomness is ``random.Random(seed)``; output is byte-identical for one seed.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from polysnipe.core.fees import fee_value_usdc
from polysnipe.core.units import MICRO, ONE
from polysnipe.core.units import format_micro as _fmt

__all__ = ["GENERATED_METADATA", "KINDS", "MAX_MARKET_SECONDS", "GenerateSummary", "generate"]

#: Label kinds, in the order they are planned.
#: the metadata files `generate` writes, in the order a backtest takes them (--markets each)
GENERATED_METADATA = ("markets.json", "gamma_markets.json", "gamma_events.json")
#: every file a set holds, and what a backtest of it leaves beside (the parsed-events cache)
GENERATED_FILES = frozenset({*GENERATED_METADATA, "events.jsonl", "labels.jsonl", "events.jsonl.cache"})

KINDS = ("mispriced_book", "liquidity_vacuum", "news", "pair_inconsistency", "complement_arb")

#: 2026-01-01T00:00:00Z. A fixed epoch, not the wall clock, keeps output byte-identical per seed.
START_MS = 1_767_225_600_000
#: the largest set written: markets (binaries and neg-risk outcomes) times seconds
MAX_MARKET_SECONDS = 1_000_000

_COARSE = 10_000
_FINE = 1_000
# The venue moves a market to the 0.001 tick near the edges (PROTOCOL.md, tick_size_change); the gap
# between going fine (<0.04) and back (>0.05) keeps a price hovering at 0.04 from flapping.
_FINE_BELOW = 0.04
_COARSE_ABOVE = 0.05
_SHARE_CENT = 10_000  # sizes carry 2 decimals
# A tradeable planted edge clears the taker fee of its market at the price it is taken by this much,
# and is never below _MIN_EDGE (a cent and a half: what a fee-free market's edge is planted at).
_EDGE_MARGIN = 5_000
_MIN_EDGE = 15_000
#: the engine's default basket edge beyond fees (SpreadHunterParams.arb_min_edge_micro): a planted
#: basket is a tradeable label only if it clears it
_ARB_MIN_EDGE = 10_000
_WARMUP_MS = 15_000
_TAIL_MS = 5_000
_GUARD_BEFORE_MS = 8_000
# A resolving market: its price heads for the outcome over the lead, then it resolves this long
# before the end of the window (several are staggered).
_RESOLVE_LEAD_MS = 12_000
_RESOLVE_BEFORE_END_MS = 2_500
_RESOLVE_STAGGER_MS = 3_000
_GUARD_AFTER_MS = 4_000

_BID = 0  # a YES bid (its NO mirror is an ask)
_ASK = 1

#: (side in YES space, price, new total size); size 0 removes the level
_Change = tuple[int, int, int]
_Step = Callable[[int], None]


@attrs.frozen(slots=True)
class _FeeSchedule:
    """A V2 fee schedule as Gamma publishes it (`feeType`, `feeSchedule`; PROTOCOL.md 11.1, 11.5)."""

    fee_type: str
    rate: float
    rebate_rate: float
    exponent: int = 1

    @property
    def rate_micro(self) -> int:
        return round(self.rate * MICRO)


# Rates and rebates of the docs' fee page; the feeType names are the ones recorded Gamma rows carry.
_CRYPTO = _FeeSchedule("crypto_fees", 0.07, 0.2)
_POLITICS = _FeeSchedule("politics_fees", 0.04, 0.25)
_SPORTS = _FeeSchedule("sports_fees_v2", 0.03, 0.25)

#: (question, fee schedule or None for a fee-free market)
_TOPICS: tuple[tuple[str, _FeeSchedule | None], ...] = (
    ("Will Bitcoin close above $120,000 on March 31, 2026?", _CRYPTO),
    ("Will the Fed cut rates at its March 2026 meeting?", None),
    ("Will Ethereum trade above $5,000 before April 2026?", _CRYPTO),
    ("Will the US enter a recession in 2026?", None),
    ("Will SpaceX launch Starship to orbit before May 2026?", None),
    ("Will the Senate confirm a new Fed chair before May 2026?", _POLITICS),
    ("Will the S&P 500 close 2026 Q1 above 7,000?", None),
    ("Will OpenAI release GPT-6 before July 2026?", None),
    ("Will US CPI for February 2026 come in above 3.0%?", None),
    ("Will Real Madrid win the 2025-26 Champions League?", _SPORTS),
    ("Will it snow in New York City on Christmas Day 2026?", None),
    ("Will Solana flip Ethereum in market cap in 2026?", _CRYPTO),
)
#: (title, outcome names, fee schedule of its markets)
_EVENTS: tuple[tuple[str, tuple[str, ...], _FeeSchedule | None], ...] = (
    (
        "the 2028 Democratic presidential nomination",
        ("Gavin Newsom", "Pete Buttigieg", "Josh Shapiro", "Gretchen Whitmer"),
        _POLITICS,
    ),
    (
        "the 2026 Ballon d'Or",
        ("Kylian Mbappe", "Lamine Yamal", "Erling Haaland", "Jude Bellingham"),
        _SPORTS,
    ),
    ("Best Picture at the 2027 Oscars", ("Film A", "Film B", "Film C", "Film D"), None),
)
_EXTRA_NAMES = ("Candidate E", "Candidate F", "Candidate G", "Candidate H", "Candidate I", "Candidate J")


@attrs.frozen(slots=True)
class GenerateSummary:
    """What `generate` wrote; `lines` counts every events.jsonl line, malformed ones included."""

    out_dir: Path
    seed: int
    markets: int
    tokens: int
    start_ms: int
    end_ms: int
    lines: int
    #: messages per event_type (a list frame counts each of its messages)
    events_by_type: dict[str, int]
    #: entries across all price_change messages (each is one normalized level change)
    price_change_entries: int
    labels_by_kind: dict[str, int]
    malformed: int
    bytes_events: int
    #: markets that resolve inside the window (a `market_resolved` each)
    resolved_markets: int
    #: neg-risk events published as augmented (a negRiskOther placeholder market each)
    augmented_events: int


def generate(
    out_dir: Path,
    *,
    seed: int,
    markets: int = 6,
    neg_risk_events: int = 1,
    outcomes_per_event: int = 4,
    duration_s: int = 1800,
    malformed: int = 3,
    resolved_markets: int = 1,
    augment_main_event: bool = False,
) -> GenerateSummary:
    """Write the five files of the module doc into `out_dir` (created if missing).

    `markets` counts standalone binary markets; each neg-risk event adds `outcomes_per_event` more
    (and an augmented one its placeholder). `resolved_markets` standalone binary markets resolve
    near the end of the window. The first neg-risk event is augmented only with
    `augment_main_event`; with two or more events the last one always is.
    """
    if markets < 1:
        raise ValueError("markets must be >= 1: the binary kinds are planted on standalone markets")
    if neg_risk_events < 0 or (neg_risk_events and outcomes_per_event < 2):
        raise ValueError("a neg-risk event needs at least 2 outcomes")
    if duration_s < 30:
        raise ValueError("duration_s must be >= 30")
    if malformed < 0:
        raise ValueError("malformed must be >= 0")
    books = markets + neg_risk_events * outcomes_per_event
    if books * duration_s > MAX_MARKET_SECONDS:
        # about 1.2 kB of events per market and second: a typo in either must not fill the disk
        raise ValueError(
            f"{books:,} markets over {duration_s:,} s is {books * duration_s:,} market-seconds, more than"
            f" {MAX_MARKET_SECONDS:,} (about 1.2 GB of events): fewer markets or a shorter duration"
        )
    binaries = markets - (1 if markets >= 3 else 0)  # the long shot never resolves
    if not 0 <= resolved_markets <= binaries:
        raise ValueError(f"resolved_markets must be between 0 and {binaries} (the standalone binaries)")
    if augment_main_event and not neg_risk_events:
        raise ValueError("augment_main_event needs a neg-risk event")
    gen = _Gen(
        random.Random(seed),
        markets,
        neg_risk_events,
        outcomes_per_event,
        duration_s,
        resolved_markets=resolved_markets,
        augment_main_event=augment_main_event,
    )
    gen.run()
    n_bad = gen.insert_malformed(malformed)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = {"data": gen.market_rows, "next_cursor": "LTE=", "limit": len(gen.mkts), "count": len(gen.mkts)}
    _write(out_dir / "markets.json", json.dumps(page, indent=2, ensure_ascii=False) + "\n")
    _write(out_dir / "gamma_markets.json", json.dumps(gen.gamma_markets, indent=2, ensure_ascii=False) + "\n")
    _write(out_dir / "gamma_events.json", json.dumps(gen.gamma_events, indent=2, ensure_ascii=False) + "\n")
    events_text = "\n".join(gen.lines) + "\n"
    _write(out_dir / "events.jsonl", events_text)
    labels = sorted(gen.labels, key=lambda lb: (lb["start_ms"], lb["kind"], lb["market"]))
    _write(out_dir / "labels.jsonl", "".join(json.dumps(lb) + "\n" for lb in labels))
    by_kind = {k: 0 for k in KINDS}
    for lb in labels:
        by_kind[lb["kind"]] += 1
    return GenerateSummary(
        out_dir=out_dir,
        seed=seed,
        markets=len(gen.mkts),
        tokens=2 * len(gen.mkts),
        start_ms=gen.start_ms,
        end_ms=gen.end_ms,
        lines=len(gen.lines),
        events_by_type=dict(sorted(gen.counts.items())),
        price_change_entries=gen.entries,
        labels_by_kind=by_kind,
        malformed=n_bad,
        bytes_events=len(events_text.encode()),
        resolved_markets=resolved_markets,
        augmented_events=sum(1 for g in gen.groups if g.augmented),
    )


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _hex(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(8 * nbytes):0{2 * nbytes}x}"


class _Group:
    """One neg-risk event: its outcome markets share a fair-value walk that sums to 1."""

    __slots__ = (
        "anchors",
        "augmented",
        "event_id",
        "frozen",
        "logits",
        "mkts",
        "nr_id",
        "sigma",
        "t_ms",
        "title",
    )

    def __init__(
        self,
        nr_id: str,
        title: str,
        fairs: list[float],
        sigma: float,
        t_ms: int,
        event_id: str,
        augmented: bool,
    ) -> None:
        self.nr_id = nr_id
        self.title = title
        self.event_id = event_id
        #: Gamma's negRiskAugmented: outcomes may still be added, and the last market is the
        #: "Other" placeholder (negRiskOther), so the current outcomes are not a complete set
        self.augmented = augmented
        self.logits = [math.log(p) for p in fairs]
        self.anchors = list(self.logits)
        self.sigma = sigma
        self.t_ms = t_ms
        self.frozen = False
        self.mkts: list[_Mkt] = []


class _Mkt:
    """Mutable simulation state of one binary market; the YES book is the only book kept."""

    __slots__ = (
        "anchor",
        "asks",
        "base_tick",
        "bids",
        "burst",
        "busy",
        "calm_rate",
        "condition_id",
        "fair",
        "fair_t",
        "fees",
        "flip",
        "frozen",
        "gamma_id",
        "group",
        "hash_no",
        "hash_yes",
        "item_title",
        "last_no",
        "last_snap",
        "last_yes",
        "longshot",
        "min_size",
        "no",
        "nr_request_id",
        "other",
        "protected",
        "question",
        "question_id",
        "regime_until",
        "sigma",
        "spread_coarse",
        "spread_fine",
        "suppress",
        "tick",
        "yes",
    )

    def __init__(
        self,
        rng: random.Random,
        question: str,
        question_id: str,
        fair: float,
        tick: int,
        fees: _FeeSchedule | None,
        calm_rate: float,
        t_ms: int,
        gamma_id: str,
        group: _Group | None = None,
        item_title: str = "",
        other: bool = False,
        longshot: bool = False,
        flip: bool = False,
    ) -> None:
        self.condition_id = "0x" + _hex(rng, 32)
        self.question = question
        self.question_id = question_id
        self.gamma_id = gamma_id
        # Real token ids are uint256 decimals of 75-78 digits.
        self.yes = str(rng.randrange(10**75, 2**256))
        self.no = str(rng.randrange(10**75, 2**256))
        self.tick = tick
        self.base_tick = tick
        self.min_size = (5 if tick == _FINE else rng.choice((5, 15))) * MICRO
        self.fees = fees
        self.group = group
        self.nr_request_id = "0x" + _hex(rng, 32) if group is not None else ""
        #: Gamma's groupItemTitle: the outcome's name inside its event ("" for a standalone market)
        self.item_title = item_title
        #: Gamma's negRiskOther: the placeholder outcome of an augmented event
        self.other = other
        self.longshot = longshot
        self.flip = flip
        self.fair = fair
        self.anchor = _logit(fair)
        self.sigma = rng.uniform(0.006, 0.015)
        self.fair_t = t_ms
        self.spread_coarse = rng.randint(1, 3)
        self.spread_fine = rng.randint(3, 8)
        self.calm_rate = calm_rate
        self.burst = False
        self.regime_until = t_ms + int(rng.expovariate(1 / 45.0) * 1000)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.hash_yes = _hex(rng, 20)
        self.hash_no = _hex(rng, 20)
        self.last_yes = ""
        self.last_no = ""
        self.last_snap = t_ms
        # 0: normal flow; 1: a planted window owns the touch (background only resizes other levels);
        # 2: nothing but the planted script may publish for this market (for good once it resolved).
        self.frozen = 0
        self.protected: set[int] = set()
        self.suppress: str | None = None  # a token whose entries are withheld (pair_inconsistency)
        self.busy: list[tuple[int, int]] = []

    @property
    def slug(self) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.question.lower())
        return "-".join(part for part in slug.split("-") if part)

    def taker_fee(self, price: int) -> int:
        """The taker fee per share bought at `price`, in micro-USDC, on the schedule it publishes."""
        if self.fees is None:
            return 0
        return fee_value_usdc(ONE, price, self.fees.rate_micro, self.fees.exponent)

    def min_edge(self, price: int) -> int:
        """The least edge per share a tradeable window plants when its token is bought at `price`."""
        return max(self.taker_fee(price) + _EDGE_MARGIN, _MIN_EDGE)


#: Gamma ids are decimal strings; the generator numbers its markets and events from these.
_GAMMA_MARKET_ID0 = 1_900_000
_GAMMA_EVENT_ID0 = 41_000


class _Gen:
    def __init__(
        self,
        rng: random.Random,
        n_markets: int,
        n_events: int,
        n_outcomes: int,
        duration_s: int,
        *,
        resolved_markets: int,
        augment_main_event: bool,
    ) -> None:
        self.rng = rng
        self.duration_s = duration_s
        self.start_ms = START_MS
        self.end_ms = START_MS + duration_s * 1000
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self.entries = 0
        self.labels: list[dict[str, Any]] = []
        self.heap: list[tuple[int, int, _Step]] = []
        self.seq = 0
        self.standalone: list[_Mkt] = []
        self.groups: list[_Group] = []
        self.mkts: list[_Mkt] = []
        self.n_resolved = resolved_markets
        self._make_markets(n_markets, n_events, n_outcomes, augment_main_event)
        # Rendered before the run: the metadata as fetched when the window opens (opening fair
        # values; every market active, including those that resolve inside the window).
        self.market_rows = self._markets_json()
        self.gamma_markets = [self._gamma_market(m) for m in self.mkts]
        self.gamma_events = [self._gamma_event(g) for g in self.groups]

    # -- setup ---------------------------------------------------------------------------------
    def _make_markets(self, n_markets: int, n_events: int, n_outcomes: int, augment_main: bool) -> None:
        rng, t0 = self.rng, self.start_ms
        gamma_ids = itertools.count(_GAMMA_MARKET_ID0)
        for i in range(n_markets):
            question, fees = _TOPICS[i % len(_TOPICS)]
            if i >= len(_TOPICS):
                question = f"{question[:-1]} (series {i // len(_TOPICS) + 1})?"
            longshot = i == 1 and n_markets >= 3
            flip = longshot and rng.random() < 0.5  # a long shot near 1 rather than near 0
            if longshot:
                fair, tick = self._longshot_target_p(t0, flip=flip), _COARSE
            else:
                fair = rng.uniform(0.2, 0.8)
                tick = _FINE if rng.random() < 0.3 else _COARSE
            m = _Mkt(
                rng,
                question,
                "0x" + _hex(rng, 32),
                fair,
                tick,
                fees,
                rng.uniform(0.55, 1.0),
                t0,
                str(next(gamma_ids)),
                longshot=longshot,
                flip=flip,
            )
            self.standalone.append(m)
        for e in range(n_events):
            title, names_, fees = _EVENTS[e % len(_EVENTS)]
            names: tuple[str, ...] = (names_ + _EXTRA_NAMES)[:n_outcomes]
            while len(names) < n_outcomes:
                names = (*names, f"Candidate {len(names) + 1}")
            augmented = (e == 0 and augment_main) or (e > 0 and e == n_events - 1)
            if augmented:
                names = (*names, "Other")
            weights = [rng.uniform(0.5, 3.0) for _ in names]
            total = sum(weights)
            fairs = [w / total for w in weights]
            # A neg-risk question id is the market id with its last byte set to the outcome index.
            nr_id = "0x" + _hex(rng, 31) + "00"
            g = _Group(
                nr_id, title, fairs, rng.uniform(0.006, 0.012), t0, str(_GAMMA_EVENT_ID0 + e), augmented
            )
            tick = _FINE if rng.random() < 0.5 else _COARSE
            for k, name in enumerate(names):
                other = augmented and k == len(names) - 1
                question = f"Will any other candidate win {title}?" if other else f"Will {name} win {title}?"
                m = _Mkt(
                    rng,
                    question,
                    nr_id[:-2] + f"{k:02x}",
                    fairs[k],
                    tick,
                    fees,
                    rng.uniform(0.3, 0.6),
                    t0,
                    str(next(gamma_ids)),
                    group=g,
                    item_title=name,
                    other=other,
                )
                g.mkts.append(m)
            self.groups.append(g)
        self.mkts = self.standalone + [m for g in self.groups for m in g.mkts]

    def _markets_json(self) -> list[dict[str, Any]]:
        """CLOB GET /markets rows, key for key as the recorded ones (no V2 fee schedule: Gamma has it)."""
        out = []
        for m in self.mkts:
            yes_p = round(m.fair, 4)
            # the legacy V1 base fee in bps: 1000 on fee markets (as Gamma's makerBaseFee), else 0
            base_fee = 1000 if m.fees is not None else 0
            out.append(
                {
                    "enable_order_book": True,
                    "active": True,
                    "closed": False,
                    "archived": False,
                    "accepting_orders": True,
                    "accepting_order_timestamp": None,
                    "minimum_order_size": m.min_size // MICRO,
                    "minimum_tick_size": m.base_tick / MICRO,
                    "condition_id": m.condition_id,
                    "question_id": m.question_id,
                    "question": m.question,
                    "description": f"This market will resolve to \u201cYes\u201d if: {m.question}",
                    "market_slug": m.slug,
                    "end_date_iso": "2026-12-31T00:00:00Z",
                    "game_start_time": None,
                    "seconds_delay": 0,
                    "fpmm": "",
                    "maker_base_fee": base_fee,
                    "taker_base_fee": base_fee,
                    "notifications_enabled": True,
                    "neg_risk": m.group is not None,
                    "neg_risk_market_id": m.group.nr_id if m.group else "",
                    "neg_risk_request_id": m.nr_request_id,
                    "icon": "",
                    "image": "",
                    "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
                    "is_50_50_outcome": False,
                    "tokens": [
                        {"token_id": m.yes, "outcome": "Yes", "price": yes_p, "winner": False},
                        {"token_id": m.no, "outcome": "No", "price": round(1 - yes_p, 4), "winner": False},
                    ],
                    "tags": ["All"],
                }
            )
        return out

    def _gamma_market(self, m: _Mkt) -> dict[str, Any]:
        """A Gamma GET /markets object: lists JSON-encoded inside strings, fee schedule when enabled."""
        yes_p = round(m.fair * 10_000) * 100
        row: dict[str, Any] = {
            "id": m.gamma_id,
            "question": m.question,
            "conditionId": m.condition_id,
            "slug": m.slug,
            "resolutionSource": "",
            "endDate": "2026-12-31T00:00:00Z",
            "startDate": "2025-12-01T00:00:00Z",
            "description": f"This market will resolve to \u201cYes\u201d if: {m.question}",
            "outcomes": json.dumps(["Yes", "No"]),
            "outcomePrices": json.dumps([_fmt(yes_p), _fmt(ONE - yes_p)]),
            "active": True,
            "closed": False,
            "archived": False,
            "groupItemTitle": m.item_title,
            "questionID": m.question_id,
            "enableOrderBook": True,
            "orderPriceMinTickSize": m.base_tick / MICRO,
            "orderMinSize": m.min_size // MICRO,
            "clobTokenIds": json.dumps([m.yes, m.no]),
        }
        if m.fees is not None:
            row["makerBaseFee"] = row["takerBaseFee"] = 1000
        row["acceptingOrders"] = True
        row["negRisk"] = m.group is not None
        if m.group is not None:
            row["negRiskMarketID"] = m.group.nr_id
            row["negRiskRequestID"] = m.nr_request_id
        row["negRiskOther"] = m.other
        row["feesEnabled"] = m.fees is not None
        row["feeType"] = m.fees.fee_type if m.fees is not None else None
        if m.fees is not None:
            row["feeSchedule"] = {
                "exponent": m.fees.exponent,
                "rate": m.fees.rate,
                "takerOnly": True,
                "rebateRate": m.fees.rebate_rate,
            }
        return row

    def _gamma_event(self, g: _Group) -> dict[str, Any]:
        """A Gamma GET /events object for a neg-risk event, with its markets."""
        title = g.title[0].upper() + g.title[1:]
        slug = "".join(c if c.isalnum() else "-" for c in g.title.lower())
        slug = "-".join(part for part in slug.split("-") if part)
        return {
            "id": g.event_id,
            "ticker": slug,
            "slug": slug,
            "title": title,
            "description": f"This event resolves to the winner of {g.title}.",
            "resolutionSource": "",
            "startDate": "2025-12-01T00:00:00Z",
            "endDate": "2026-12-31T00:00:00Z",
            "active": True,
            "closed": False,
            "archived": False,
            "enableOrderBook": True,
            "negRisk": True,
            "negRiskMarketID": g.nr_id,
            "markets": [row for row in self.gamma_markets if row.get("negRiskMarketID") == g.nr_id],
            "enableNegRisk": True,
            "negRiskAugmented": g.augmented,
        }

    # -- scheduling ----------------------------------------------------------------------------
    def _push(self, ts: int, step: _Step) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (ts, self.seq, step))

    def run(self) -> None:
        rng, t0 = self.rng, self.start_ms
        for m in self.mkts:
            self._build(m)
            self._emit_frame([self._book_msg(t0, m, m.yes), self._book_msg(t0, m, m.no)])
        for m in self.mkts:
            self._push(t0 + 1 + int(rng.expovariate(m.calm_rate) * 1000), partial(self._background, m))
        for m in self.standalone:
            self._push(t0 + int(rng.expovariate(1 / 2.0) * 1000), partial(self._fair_step, m))
        for g in self.groups:
            self._push(t0 + int(rng.expovariate(1 / 4.0) * 1000), partial(self._group_step, g))
        self._plan()
        while self.heap:
            ts, _, step = heapq.heappop(self.heap)
            if ts >= self.end_ms:
                break
            step(ts)

    # -- output --------------------------------------------------------------------------------
    def _count(self, msg: dict[str, Any]) -> None:
        et = msg["event_type"]
        self.counts[et] = self.counts.get(et, 0) + 1
        if et == "price_change":
            self.entries += len(msg["price_changes"])

    def _emit(self, msg: dict[str, Any]) -> None:
        self._count(msg)
        self.lines.append(json.dumps(msg, separators=(",", ":")))

    def _emit_frame(self, msgs: list[dict[str, Any]]) -> None:
        for msg in msgs:
            self._count(msg)
        self.lines.append(json.dumps(msgs, separators=(",", ":")))

    def _book_msg(self, ts: int, m: _Mkt, token: str) -> dict[str, Any]:
        if token == m.yes:
            bids = sorted(m.bids.items())
            asks = sorted(m.asks.items(), reverse=True)
            h, last = m.hash_yes, m.last_yes
        else:
            bids = sorted((ONE - p, s) for p, s in m.asks.items())
            asks = sorted(((ONE - p, s) for p, s in m.bids.items()), reverse=True)
            h, last = m.hash_no, m.last_no
        return {
            "market": m.condition_id,
            "asset_id": token,
            "timestamp": str(ts),
            "hash": h,
            "bids": [{"price": _fmt(p), "size": _fmt(s)} for p, s in bids],
            "asks": [{"price": _fmt(p), "size": _fmt(s)} for p, s in asks],
            "tick_size": _fmt(m.tick),
            "event_type": "book",
            "last_trade_price": last,
        }

    def _price_change(self, ts: int, m: _Mkt, changes: list[_Change]) -> None:
        msg = self._pc_msg(ts, m, changes)
        if msg is not None:
            self._emit(msg)

    def _pc_msg(self, ts: int, m: _Mkt, changes: list[_Change]) -> dict[str, Any] | None:
        """Apply YES-space changes; return them with their NO mirrors as one price_change message."""
        if not changes:
            return None
        rng, entries = self.rng, []
        for side, price, size in changes:
            book = m.bids if side == _BID else m.asks
            if size:
                book[price] = size
            else:
                del book[price]
            bb, ba = max(m.bids), min(m.asks)
            if m.suppress != m.yes:
                m.hash_yes = _hex(rng, 20)
                entries.append(
                    {
                        "asset_id": m.yes,
                        "price": _fmt(price),
                        "size": _fmt(size),
                        "side": "BUY" if side == _BID else "SELL",
                        "hash": m.hash_yes,
                        "best_bid": _fmt(bb),
                        "best_ask": _fmt(ba),
                    }
                )
            if m.suppress != m.no:
                m.hash_no = _hex(rng, 20)
                entries.append(
                    {
                        "asset_id": m.no,
                        "price": _fmt(ONE - price),
                        "size": _fmt(size),
                        "side": "SELL" if side == _BID else "BUY",
                        "hash": m.hash_no,
                        "best_bid": _fmt(ONE - ba),
                        "best_ask": _fmt(ONE - bb),
                    }
                )
        return {
            "market": m.condition_id,
            "price_changes": entries,
            "timestamp": str(ts),
            "event_type": "price_change",
        }

    def _trade_msg(self, ts: int, m: _Mkt, yes_price: int, size: int, taker_buys_yes: bool) -> dict[str, Any]:
        """A print on YES, or on NO as its mirror: a taker buying YES at p is one selling NO at 1-p."""
        on_yes = self.rng.random() < 0.5
        price = yes_price if on_yes else ONE - yes_price
        buy = taker_buys_yes == on_yes
        if on_yes:
            m.last_yes = _fmt(price)
        else:
            m.last_no = _fmt(price)
        return {
            "asset_id": m.yes if on_yes else m.no,
            "event_type": "last_trade_price",
            "fee_rate_bps": str(round(m.fees.rate * 10_000) if m.fees is not None else 0),
            "market": m.condition_id,
            "price": _fmt(price),
            "side": "BUY" if buy else "SELL",
            "size": _fmt(size),
            "timestamp": str(ts),
            "transaction_hash": "0x" + _hex(self.rng, 32),
        }

    # -- book shaping --------------------------------------------------------------------------
    def _size(self, m: _Mkt, depth: int) -> int:
        shares = math.exp(self.rng.gauss(5.0, 0.9)) * (1 + 0.3 * depth)
        micro = round(min(shares, 50_000.0) * 100) * _SHARE_CENT
        return max(micro, m.min_size)

    def _half_spread(self, m: _Mkt) -> float:
        ticks = m.spread_coarse if m.tick == _COARSE else m.spread_fine
        return ticks * m.tick / 2

    def _targets_at(self, m: _Mkt, fair: float) -> tuple[int, int]:
        """The makers' best bid and best ask for a fair value, on the current tick, inside (0, 1)."""
        t, f, hs = m.tick, fair * MICRO, self._half_spread(m)
        b = math.floor((f - hs) / t) * t
        a = math.ceil((f + hs) / t) * t
        b = max(t, min(b, ONE - 2 * t))
        a = min(ONE - t, max(a, b + t))
        return b, a

    def _build(self, m: _Mkt) -> None:
        rng, t = self.rng, m.tick
        b, a = self._targets_at(m, m.fair)
        fine = t == _FINE
        m.bids.clear()
        m.asks.clear()
        for book, start, step in ((m.bids, b, -t), (m.asks, a, t)):
            n_levels = rng.randint(10, 16) if fine else rng.randint(8, 14)
            gap_p = 0.55 if fine else 0.2
            price, placed = start, 0
            while placed < n_levels and t <= price <= ONE - t:
                if placed == 0 or rng.random() > gap_p:
                    book[price] = self._size(m, placed)
                    placed += 1
                price += step

    def _requote_plan(self, m: _Mkt) -> tuple[list[_Change], list[_Change]]:
        """Changes that bring the book back to the quotes around fair value, in two publishable parts.

        The first part (adds behind the current top, then removals) never improves either top, so it
        can never cross the book or empty a side (the new touch is among the adds whenever the old
        one goes). The second part (adds that improve a top) is safe once the first part is in.
        """
        rng, t = self.rng, m.tick
        b, a = self._targets_at(m, m.fair)
        removals: list[_Change] = [(_BID, p, 0) for p in sorted(m.bids, reverse=True) if p > b]
        removals += [(_ASK, p, 0) for p in sorted(m.asks) if p < a]
        adds: list[_Change] = []
        for side, book, touch, step in ((_BID, m.bids, b, -t), (_ASK, m.asks, a, t)):
            added = set()
            if touch not in book:
                adds.append((side, touch, self._size(m, 0)))
                added.add(touch)
            for j in (1, 2):
                p = touch + j * step
                if t <= p <= ONE - t and p not in book and rng.random() < 0.35:
                    adds.append((side, p, self._size(m, j)))
                    added.add(p)
            kept = sum(1 for p in book if (p <= b if side == _BID else p >= a))
            if kept + len(added) < 5:
                j = rng.randint(3, 10)
                p = touch + j * step
                if t <= p <= ONE - t and p not in book and p not in added:
                    adds.append((side, p, self._size(m, j)))
        bb, ba = max(m.bids), min(m.asks)
        behind = [c for c in adds if (c[1] < bb if c[0] == _BID else c[1] > ba)]
        improving = [c for c in adds if (c[1] > bb if c[0] == _BID else c[1] < ba)]
        return behind + removals, improving

    def _requote(self, m: _Mkt, ts: int) -> None:
        first, second = self._requote_plan(m)
        self._price_change(ts, m, first + second)

    def _release(self, m: _Mkt, ts: int) -> None:
        """End a planted window: makers return to quoting around fair value."""
        m.frozen = 0
        m.protected.clear()
        m.suppress = None
        self._requote(m, ts)

    # -- background flow -----------------------------------------------------------------------
    def _background(self, m: _Mkt, ts: int) -> None:
        rng = self.rng
        if ts >= m.regime_until:
            m.burst = not m.burst
            hold_s = rng.uniform(3.0, 12.0) if m.burst else rng.expovariate(1 / 45.0)
            m.regime_until = ts + int(hold_s * 1000)
        if m.frozen < 2:
            self._flow(m, ts)
        rate = m.calm_rate * (5.0 if m.burst else 1.0)
        self._push(ts + 1 + int(rng.expovariate(rate) * 1000), partial(self._background, m))

    def _flow(self, m: _Mkt, ts: int) -> None:
        rng = self.rng
        r = rng.random()
        if not m.frozen and r >= 0.8:
            self._trade(m, ts)
            return
        n = 1 if rng.random() < 0.75 else rng.choice((2, 2, 3))
        changes: list[_Change] = []
        for _ in range(n):
            c: _Change | None
            if m.frozen or r < 0.55:
                c = self._resize(m)
            elif r < 0.68:
                c = self._add(m)
            else:
                c = self._cancel(m)
            if c is not None:
                changes.append(c)
                # Apply nothing yet: _price_change applies in order; later picks see the old book,
                # so never pick the same level twice in one message.
                if any(x[1] == c[1] and x[0] == c[0] for x in changes[:-1]):
                    changes.pop()
        self._price_change(ts, m, changes)

    def _pick_level(self, m: _Mkt, side: int, skip_touch: bool) -> int | None:
        book = m.bids if side == _BID else m.asks
        prices = sorted(book, reverse=side == _BID)
        if skip_touch:
            prices = prices[1:]
        prices = [p for p in prices if p not in m.protected]
        if not prices:
            return None
        return prices[min(int(self.rng.expovariate(0.6)), len(prices) - 1)]

    def _resize(self, m: _Mkt) -> _Change | None:
        rng = self.rng
        side = _BID if rng.random() < 0.5 else _ASK
        p = self._pick_level(m, side, skip_touch=False)
        if p is None:
            return None
        old = (m.bids if side == _BID else m.asks)[p]
        new = (
            self._size(m, 2)
            if rng.random() < 0.2
            else round(old * rng.uniform(0.4, 1.6) / _SHARE_CENT) * _SHARE_CENT
        )
        new = max(new, MICRO)
        return None if new == old else (side, p, new)

    def _add(self, m: _Mkt) -> _Change | None:
        rng, t = self.rng, m.tick
        side = _BID if rng.random() < 0.5 else _ASK
        b, a = self._targets_at(m, m.fair)
        book, touch, step = (m.bids, b, -t) if side == _BID else (m.asks, a, t)
        j = min(int(rng.expovariate(0.3)), 14)
        p = touch + j * step
        if not (t <= p <= ONE - t) or p in book:
            return self._resize(m)
        return (side, p, self._size(m, j))

    def _cancel(self, m: _Mkt) -> _Change | None:
        side = _BID if self.rng.random() < 0.5 else _ASK
        if len(m.bids if side == _BID else m.asks) <= 4:
            return self._resize(m)
        p = self._pick_level(m, side, skip_touch=self.rng.random() < 0.7)
        return None if p is None else (side, p, 0)

    def _trade(self, m: _Mkt, ts: int) -> None:
        rng = self.rng
        buy = rng.random() < 0.5  # taker buys YES: lifts the YES ask
        book = m.asks if buy else m.bids
        if len(book) < 2:
            return
        p = min(book) if buy else max(book)
        level = book[p]
        size = max(m.min_size, round(math.exp(rng.gauss(3.3, 1.0)) * 100) * _SHARE_CENT)
        if size >= level - MICRO:
            size, left = level, 0
        else:
            left = level - size
        trade = self._trade_msg(ts, m, p, size, buy)
        change = (_ASK if buy else _BID, p, left)
        if rng.random() < 0.3:
            pc = self._pc_msg(ts, m, [change])
            assert pc is not None
            self._emit_frame([trade, pc])
        else:
            self._emit(trade)
            self._price_change(ts, m, [change])
        if ts - m.last_snap >= 60_000 and rng.random() < 0.15:
            self._snapshots(m, ts)

    def _snapshots(self, m: _Mkt, ts: int) -> None:
        m.last_snap = ts
        self._emit(self._book_msg(ts, m, m.yes))
        self._emit(self._book_msg(ts, m, m.no))

    # -- fair value ----------------------------------------------------------------------------
    def _longshot_target_p(self, ts: int, *, flip: bool) -> float:
        period_ms = min(max(self.duration_s * 0.6, 60.0), 900.0) * 1000
        phase = math.pi - math.asin(0.9) + 2 * math.pi * (ts - self.start_ms) / period_ms
        p = 0.04 + 0.022 * math.sin(phase)
        return 1 - p if flip else p

    def _fair_step(self, m: _Mkt, ts: int) -> None:
        rng = self.rng
        self._push(ts + 1 + int(rng.expovariate(1 / 2.0) * 1000), partial(self._fair_step, m))
        if m.frozen:
            return
        dt = (ts - m.fair_t) / 1000
        m.fair_t = ts
        x = _logit(m.fair)
        if m.longshot:
            target = _logit(self._longshot_target_p(ts, flip=m.flip))
            x += (target - x) * min(1.0, dt / 10) + 0.02 * math.sqrt(dt) * rng.gauss(0, 1)
            m.fair = min(max(_sigmoid(x), 0.012), 0.988)
            self._tick_check(m, ts)
        else:
            x += -(x - m.anchor) * dt / 900 + m.sigma * math.sqrt(dt) * rng.gauss(0, 1)
            m.fair = min(max(_sigmoid(x), 0.08), 0.92)
        self._requote(m, ts)

    def _tick_check(self, m: _Mkt, ts: int) -> None:
        edge = min(m.fair, 1 - m.fair)
        if m.tick == _COARSE and edge < _FINE_BELOW:
            new = _FINE
        elif m.tick == _FINE and m.base_tick == _COARSE and edge > _COARSE_ABOVE:
            new = _COARSE
        else:
            return
        for token in (m.yes, m.no):
            self._emit(
                {
                    "asset_id": token,
                    "event_type": "tick_size_change",
                    "market": m.condition_id,
                    "new_tick_size": _fmt(new),
                    "old_tick_size": _fmt(m.tick),
                    "timestamp": str(ts),
                }
            )
        m.tick = new
        if new == _COARSE:
            self._build(m)
            self._snapshots(m, ts)

    def _group_step(self, g: _Group, ts: int) -> None:
        rng = self.rng
        self._push(ts + 1 + int(rng.expovariate(1 / 4.0) * 1000), partial(self._group_step, g))
        if g.frozen:
            return
        dt = (ts - g.t_ms) / 1000
        g.t_ms = ts
        sd = g.sigma * math.sqrt(dt)
        g.logits = [
            x - (x - a) * dt / 600 + sd * rng.gauss(0, 1) for x, a in zip(g.logits, g.anchors, strict=True)
        ]
        top = max(g.logits)
        w = [math.exp(x - top) for x in g.logits]
        total = sum(w)
        for m, wi in zip(g.mkts, w, strict=True):
            m.fair = wi / total
        # First parts across all outcomes, then second parts: no top improves until every outcome
        # has stepped back, so each intermediate state keeps the event's YES asks summing above 1 and
        # its bids below 1 (both hold for the old quotes and for the new ones).
        plans = [self._requote_plan(m) for m in g.mkts]
        for m, (first, _) in zip(g.mkts, plans, strict=True):
            self._price_change(ts, m, first)
        for m, (_, second) in zip(g.mkts, plans, strict=True):
            self._price_change(ts, m, second)

    # -- planting ------------------------------------------------------------------------------
    def _plan(self) -> None:
        rng = self.rng
        lo, hi = self.start_ms + _WARMUP_MS, self.end_ms - _TAIL_MS
        n = max(3, round(self.duration_s / 200))
        binaries = [m for m in self.standalone if not m.longshot]
        specs: list[tuple[str, int, int]] = [
            ("mispriced_book", n, 9_000),
            ("liquidity_vacuum", n, 9_000),
            ("news", n, 15_000),
            ("pair_inconsistency", max(3, n // 3), 6_000),
        ]
        # Markets resolving near the end go first: the rest of the window is theirs alone.
        for j, m in enumerate(rng.sample(binaries, self.n_resolved)):
            at = self.end_ms - _RESOLVE_BEFORE_END_MS - j * _RESOLVE_STAGGER_MS
            settle = max(at - _RESOLVE_LEAD_MS, self.start_ms + 1)
            m.busy.append((settle - _GUARD_BEFORE_MS, self.end_ms))
            self._push(settle, partial(self._settle, m, at))
        starts: dict[str, Callable[[_Mkt, int], None]] = {
            "mispriced_book": self._mispriced,
            "liquidity_vacuum": self._vacuum,
            "news": self._news,
            "pair_inconsistency": self._pair,
        }
        # Round-robin over kinds, so that when a short run has room for few windows every kind
        # still gets some.
        rounds = sorted(
            ((i / count, k, i) for k, (_, count, _) in enumerate(specs) for i in range(count)),
            key=lambda r: r[:2],
        )
        for _, k, i in rounds:
            kind, count, reserve = specs[k]
            slot = self._find_slot(binaries, lo, hi, i, count, reserve)
            if slot is not None:
                m, start = slot
                self._push(start, partial(starts[kind], m))
        # A basket of an augmented event's YES legs is not riskless: no complement_arb is planted there.
        complete = [g for g in self.groups if not g.augmented]
        for i in range(n if complete else 0):
            g = complete[i % len(complete)]
            slot = self._find_slot([g.mkts[0]], lo, hi, i, n, 9_000, also=g.mkts)
            if slot is not None:
                self._push(slot[1], partial(self._arb, g))
        for _ in range(max(1, n // 3)):
            m = rng.choice(binaries)
            ts = rng.randrange(lo, hi)
            if all(e <= ts or ts < s for s, e in m.busy):
                self._push(ts, partial(self._decoy, m))

    def _find_slot(
        self,
        cands: list[_Mkt],
        lo: int,
        hi: int,
        i: int,
        count: int,
        reserve: int,
        also: list[_Mkt] | None = None,
    ) -> tuple[_Mkt, int] | None:
        """A start in segment i of `count`, on a market free (with guards) for the whole window."""
        rng = self.rng
        seg = (hi - lo) // count
        for attempt in range(60):
            # Later attempts widen to the whole run: better off-segment than missing.
            a, b = (lo + i * seg, lo + (i + 1) * seg) if attempt < 30 else (lo, hi)
            if b - a <= reserve:
                a, b = lo, hi
            if b - a <= reserve:
                return None
            start = rng.randrange(a, b - reserve)
            m = rng.choice(cands)
            window = (start - _GUARD_BEFORE_MS, start + reserve + _GUARD_AFTER_MS)
            owners = also if also is not None else [m]
            if all(e <= window[0] or window[1] <= s for o in owners for s, e in o.busy):
                for o in owners:
                    o.busy.append(window)
                return m, start
        return None

    @staticmethod
    def _fee_proof_price(m: _Mkt, fair: int, ticks: int, *, below: bool) -> int:
        """A price at least `ticks` ticks from `fair` (below or above), and as many more as the
        market's least edge at that price needs (`_Mkt.min_edge`)."""
        t = m.tick
        while True:
            price = (fair - ticks * t) // t * t if below else -(-(fair + ticks * t) // t) * t
            edge = fair - price if below else price - fair
            if edge >= m.min_edge(min(max(price, t), ONE - t)) or not t < price < ONE - t:
                return price
            ticks += 1

    def _label(self, kind: str, token: str, market: str, start: int, end: int, edge: int, note: str) -> None:
        self.labels.append(
            {
                "kind": kind,
                "token_id": token,
                "market": market,
                "start_ms": start,
                "end_ms": end,
                "edge": _fmt(edge),
                "note": note,
            }
        )

    def _sweep(self, m: _Mkt, ts: int, side: int, limit: int) -> list[_Change]:
        """A taker sweeps YES `side` through `limit`: prints its trades, returns the level removals.

        A deeper level is added first when the sweep would otherwise empty the side.
        """
        t = m.tick
        if side == _BID:
            victims = sorted((p for p in m.bids if p >= limit), reverse=True)
            book, deeper = m.bids, limit - self.rng.randint(1, 4) * t
        else:
            victims = sorted(p for p in m.asks if p <= limit)
            book, deeper = m.asks, limit + self.rng.randint(1, 4) * t
        changes: list[_Change] = []
        if len(victims) == len(book):
            changes.append((side, min(max(deeper, t), ONE - t), self._size(m, 4)))
        for p in victims:
            self._emit(self._trade_msg(ts, m, p, book[p], taker_buys_yes=side == _ASK))
            changes.append((side, p, 0))
        return changes

    def _mispriced(self, m: _Mkt, ts: int) -> None:
        rng, t = self.rng, m.tick
        m.frozen = 1
        f = round(m.fair * MICRO)
        k = rng.randint(3, 8) + (rng.randint(0, 5) if t == _FINE else 0)
        size = max(m.min_size, round(rng.uniform(20, 250) * 100) * _SHARE_CENT)
        cheap_ask = not self._direction_up(m)  # an ask below fair needs room below
        # the cheap YES ask (or the NO ask 1 - price) is taken at `price`: p(1-p) is symmetric
        price = self._fee_proof_price(m, f, k, below=cheap_ask)
        if cheap_ask:
            changes = [*self._sweep(m, ts, _BID, price), (_ASK, price, size)]
            token, edge = m.yes, f - price
            what = f"YES ask {_fmt(price)} x {_fmt(size)} below fair {_fmt(f)}"
        else:
            changes = [*self._sweep(m, ts, _ASK, price), (_BID, price, size)]
            token, edge = m.no, price - f
            what = f"YES bid {_fmt(price)} x {_fmt(size)} above fair {_fmt(f)} = NO ask {_fmt(ONE - price)}"
        m.protected = {price}
        self._price_change(ts, m, changes)
        hold = rng.randint(2_000, 6_000)
        taken = rng.random() < 0.7

        def finish(ts2: int) -> None:
            if taken:
                self._emit(self._trade_msg(ts2, m, price, size, taker_buys_yes=cheap_ask))
            self._price_change(ts2, m, [(_ASK if cheap_ask else _BID, price, 0)])
            note = f"{what}; {'taken' if taken else 'cancelled'} after {(ts2 - ts) / 1000:.1f} s"
            self._label("mispriced_book", token, m.condition_id, ts, ts2, edge, note)
            self._push(ts2 + rng.randint(200, 800), partial(self._release, m))

        self._push(ts + hold, finish)

    def _direction_up(self, m: _Mkt) -> bool:
        """Which way a planted move goes; away from the nearer edge so it has room."""
        if m.fair < 0.3:
            return True
        if m.fair > 0.7:
            return False
        return self.rng.random() < 0.5

    def _token_ask(self, m: _Mkt, token: str) -> int:
        return min(m.asks) if token == m.yes else ONE - max(m.bids)

    def _token_mid_after(self, m: _Mkt, token: str, fair: float) -> int:
        b, a = self._targets_at(m, fair)
        mid = (b + a) // 2
        return mid if token == m.yes else ONE - mid

    def _jump_ticks(self, m: _Mkt, token: str, up: bool, base: int, entry_ask: int) -> int:
        """Smallest move of at least `base` ticks that pays `entry_ask` back with a real edge."""
        t = m.tick
        anchor = round(m.fair * MICRO) // t * t
        need = m.min_edge(entry_ask) + self.rng.randint(0, 3) * t
        j = base
        while j < 400:
            f2 = (anchor + (j * t if up else -j * t)) / MICRO
            if not 0.03 < f2 < 0.97:
                break
            if self._token_mid_after(m, token, f2) - entry_ask >= need:
                return j
            j += 1
        return j

    @staticmethod
    def _room_ticks(m: _Mkt, up: bool) -> int:
        """The largest move, in ticks, that keeps the fair value inside (0.03, 0.97)."""
        t = m.tick
        anchor = round(m.fair * MICRO) // t * t
        edge = 970_000 - anchor if up else anchor - 30_000
        return max(1, -(-edge // t) - 1)

    def _vacuum(self, m: _Mkt, ts: int) -> None:
        rng, t = self.rng, m.tick
        m.frozen = 1
        bids_vanish = not self._direction_up(m)
        book, side = (m.bids, _BID) if bids_vanish else (m.asks, _ASK)
        touch = max(book) if bids_vanish else min(book)
        victims = sorted((p for p in book if abs(p - touch) <= 3 * t), key=lambda p: abs(p - touch))
        first: list[_Change] = []
        if len(victims) == len(book):
            deeper = touch - rng.randint(4, 7) * t if bids_vanish else touch + rng.randint(4, 7) * t
            first.append((side, min(max(deeper, t), ONE - t), self._size(m, 5)))
        n_msgs = min(len(victims), rng.randint(2, 4))
        offsets = [0, *sorted(rng.sample(range(50, 900), n_msgs - 1))]
        chunks = [victims[i::n_msgs] for i in range(n_msgs)]
        token = m.no if bids_vanish else m.yes
        for i, (off, chunk) in enumerate(zip(offsets, chunks, strict=True)):
            changes = (first if i == 0 else []) + [(side, p, 0) for p in chunk]
            last = i == n_msgs - 1
            step = partial(self._vacuum_chunk, m, ts, changes=changes, last=last, token=token)
            self._push(ts + off, step)

    def _vacuum_chunk(
        self, m: _Mkt, start: int, ts: int, *, changes: list[_Change], last: bool, token: str
    ) -> None:
        self._price_change(ts, m, changes)
        if not last:
            return
        entry_ask = self._token_ask(m, token)
        up = token == m.yes
        jump = self._jump_ticks(m, token, up, self.rng.randint(3, 6), entry_ask)
        anchor = round(m.fair * MICRO) // m.tick * m.tick
        new_fair = (anchor + (jump if up else -jump) * m.tick) / MICRO

        vanish_s = (ts - start) / 1000

        def jump_step(ts2: int) -> None:
            m.fair = new_fair
            m.fair_t = ts2
            self._release(m, ts2)
            edge = self._token_mid(m, token) - entry_ask
            note = (
                f"{'bids' if token == m.no else 'asks'} within 3 ticks vanished in {vanish_s:.2f} s; "
                f"YES fair moved {jump} ticks to {_fmt(round(new_fair * MICRO))}"
            )
            self._label("liquidity_vacuum", token, m.condition_id, start, ts2, edge, note)

        self._push(ts + self.rng.randint(1_000, 5_000), jump_step)

    def _token_mid(self, m: _Mkt, token: str) -> int:
        mid = (max(m.bids) + min(m.asks)) // 2
        return mid if token == m.yes else ONE - mid

    def _news(self, m: _Mkt, ts: int) -> None:
        rng, t = self.rng, m.tick
        m.frozen = 1
        up = self._direction_up(m)
        token = m.yes if up else m.no
        entry_ask = self._token_ask(m, token)
        # The source knows the news, the book now and its own confidence, never the market's reaction:
        # it estimates a move worth trading from the present book. The market then moves by that
        # estimate times a reaction it draws independently, still worth trading but never equal to it.
        room = self._room_ticks(m, up)
        guess = min(self._jump_ticks(m, token, up, rng.randint(5, 20), entry_ask), room)
        reaction = math.exp(rng.gauss(0.0, 0.35))
        shock = min(self._jump_ticks(m, token, up, max(1, round(guess * reaction)), entry_ask), room)
        if shock == guess:
            if shock < room:
                shock += 1
            else:
                guess -= 1
        anchor = round(m.fair * MICRO) // t * t
        target = anchor + (shock if up else -shock) * t
        estimate = min(max(anchor + (guess if up else -guess) * t, t), ONE - t)
        about = rng.choice((m.yes, m.no))
        fair_for = estimate if about == m.yes else ONE - estimate
        self._emit(
            {
                "event_type": "external_signal",
                "timestamp": str(ts),
                "asset_id": about,
                "source": "newswire",
                "direction": "up" if (about == m.yes) == up else "down",
                "confidence": round(rng.uniform(0.6, 0.95), 2),
                "ttl_ms": rng.choice((30_000, 45_000, 60_000)),
                "fair_price": _fmt(fair_for),
                "ref": "nw-" + _hex(rng, 6),
            }
        )
        start_fair = m.fair
        steps = rng.randint(1, 3)
        at = ts + rng.randint(2_000, 10_000)
        for i in range(1, steps + 1):
            fair_i = start_fair + (target / MICRO - start_fair) * i / steps
            step = partial(
                self._news_step, m, ts, fair=fair_i, last=i == steps, token=token, entry_ask=entry_ask
            )
            self._push(at, step)
            at += rng.randint(150, 700)

    def _news_step(
        self, m: _Mkt, start: int, ts: int, *, fair: float, last: bool, token: str, entry_ask: int
    ) -> None:
        m.fair = fair
        m.fair_t = ts
        if not last:
            self._requote(m, ts)
            return
        self._release(m, ts)
        edge = self._token_mid(m, token) - entry_ask
        caught_up = (ts - start) / 1000
        fair_s = _fmt(round(fair * MICRO))
        note = f"signal at {start}; book caught up to YES fair {fair_s} after {caught_up:.1f} s"
        self._label("news", token, m.condition_id, start, ts, edge, note)

    def _decoy(self, m: _Mkt, ts: int) -> None:
        rng = self.rng
        about = rng.choice((m.yes, m.no))
        f = round(m.fair * MICRO) // m.tick * m.tick
        self._emit(
            {
                "event_type": "external_signal",
                "timestamp": str(ts),
                "asset_id": about,
                "source": rng.choice(("newswire", "social")),
                "direction": rng.choice(("up", "down")),
                "confidence": round(rng.uniform(0.2, 0.5), 2),
                "ttl_ms": 30_000,
                "fair_price": _fmt(f if about == m.yes else ONE - f),
                "ref": "nw-" + _hex(rng, 6),
            }
        )

    def _settle(self, m: _Mkt, at: int, ts: int) -> None:
        """The outcome becomes known: the price heads for it in a few requotes, then `_resolve`."""
        rng = self.rng
        m.frozen = 1
        yes_wins = rng.random() < m.fair
        start_fair, end_fair = m.fair, (0.95 if yes_wins else 0.05)
        steps = 3
        for i in range(1, steps + 1):
            fair_i = start_fair + (end_fair - start_fair) * i / steps
            self._push(ts + (at - ts) * i // (steps + 1), partial(self._settle_step, m, fair_i))
        self._push(at, partial(self._resolve, m, yes_wins))

    def _settle_step(self, m: _Mkt, fair: float, ts: int) -> None:
        m.fair = fair
        m.fair_t = ts
        self._requote(m, ts)

    def _resolve(self, m: _Mkt, yes_wins: bool, ts: int) -> None:
        """`market_resolved` (PROTOCOL.md 10.2), then the book goes: both tokens' books empty, and
        nothing more is published for the market."""
        m.frozen = 2  # for good
        self._emit(
            {
                "event_type": "market_resolved",
                "id": m.gamma_id,
                "question": m.question,
                "market": m.condition_id,
                "slug": m.slug,
                "description": f"This market will resolve to \u201cYes\u201d if: {m.question}",
                "assets_ids": [m.yes, m.no],
                "outcomes": ["Yes", "No"],
                "winning_asset_id": m.yes if yes_wins else m.no,
                "winning_outcome": "Yes" if yes_wins else "No",
                "timestamp": str(ts),
                "tags": ["All"],
            }
        )
        m.bids.clear()
        m.asks.clear()
        m.hash_yes = _hex(self.rng, 20)
        m.hash_no = _hex(self.rng, 20)
        self._emit_frame([self._book_msg(ts, m, m.yes), self._book_msg(ts, m, m.no)])

    def _pair(self, m: _Mkt, ts: int) -> None:
        rng, t = self.rng, m.tick
        m.frozen = 2
        # A stale NO with YES falling below its old bid (or a stale YES with YES rising above its
        # old ask) leaves YES ask + NO ask < 1.
        up = self._direction_up(m)
        stale = m.yes if up else m.no
        old_bid, old_ask = max(m.bids), min(m.asks)
        anchor = round(m.fair * MICRO) // t * t
        j = 1
        while True:
            f2 = (anchor + (j if up else -j) * t) / MICRO
            b2, a2 = self._targets_at(m, f2)
            edge = b2 - old_ask if up else old_bid - a2
            if edge >= rng.randint(1, 3) * t or not 0.05 < f2 < 0.95:
                break
            j += 1
        m.fair = f2
        m.fair_t = ts
        m.suppress = stale
        self._requote(m, ts)
        yes_ask = old_ask if up else min(m.asks)
        no_ask = ONE - max(m.bids) if up else ONE - old_bid
        edge = ONE - yes_ask - no_ask

        def resync(ts2: int) -> None:
            m.suppress = None
            if stale == m.yes:
                m.hash_yes = _hex(rng, 20)
            else:
                m.hash_no = _hex(rng, 20)
            self._emit(self._book_msg(ts2, m, stale))
            m.frozen = 0
            note = (
                f"{'YES' if stale == m.yes else 'NO'} book stale while YES moved {j} ticks: "
                f"YES ask {_fmt(yes_ask)} + NO ask {_fmt(no_ask)} < 1; data quality, not a trade"
            )
            self._label("pair_inconsistency", stale, m.condition_id, ts, ts2, edge, note)

        self._push(ts + rng.randint(1_000, 4_000), resync)

    @staticmethod
    def _arb_prices(g: _Group, gap: float) -> list[int]:
        """Each leg's ask the same fraction `gap` below its fair value, on its tick.

        Flooring to ticks loses up to a tick per leg, so ticks go back to the legs furthest below
        their share while the sum stays within 1 - gap (the edge is then "a few cents", not a few
        cents plus n ticks).
        """
        target = int((1 - gap) * MICRO)
        ideal = [m.fair * (1 - gap) * MICRO for m in g.mkts]
        prices = [max(m.tick, int(x) // m.tick * m.tick) for m, x in zip(g.mkts, ideal, strict=True)]
        while True:
            room = [(x - p, i) for i, (x, p) in enumerate(zip(ideal, prices, strict=True))]
            _, i = max(room)
            if sum(prices) + g.mkts[i].tick > target:
                return prices
            prices[i] += g.mkts[i].tick

    def _arb(self, g: _Group, ts: int) -> None:
        rng = self.rng
        g.frozen = True
        gap = rng.uniform(0.02, 0.045)
        while True:
            prices = self._arb_prices(g, gap)
            # A BUY's fee is taken in shares, so the outcome whose leg nets the fewest shares decides
            # what the basket locks (core/baskets.py): the planted edge must clear that leg's fee.
            worst = max(m.taker_fee(p) * ONE // p for m, p in zip(g.mkts, prices, strict=True))
            if ONE - sum(prices) >= max(worst + _EDGE_MARGIN + _ARB_MIN_EDGE, _MIN_EDGE):
                break
            gap += 0.0025
        asks = []
        for m, price in zip(g.mkts, prices, strict=True):
            m.frozen = 1
            size = max(m.min_size, round(rng.uniform(30, 300) * 100) * _SHARE_CENT)
            asks.append((price, size))
            m.protected = {price}
            self._price_change(ts, m, [*self._sweep(m, ts, _BID, price), (_ASK, price, size)])
        total = sum(prices)
        edge = ONE - total

        def take(ts2: int) -> None:
            for m, (price, size) in zip(g.mkts, asks, strict=True):
                self._emit(self._trade_msg(ts2, m, price, size, taker_buys_yes=True))
                self._price_change(ts2, m, [(_ASK, price, 0)])
            note = f"YES asks of all {len(g.mkts)} outcomes of {g.title!r} sum to {_fmt(total)}"
            self._label("complement_arb", g.mkts[0].yes, g.nr_id, ts, ts2, edge, note)
            self._push(ts2 + rng.randint(200, 800), restore)

        def restore(ts3: int) -> None:
            for m in g.mkts:
                self._release(m, ts3)
            g.t_ms = ts3
            g.frozen = False

        self._push(ts + rng.randint(2_000, 6_000), take)

    # -- malformed lines -----------------------------------------------------------------------
    def insert_malformed(self, count: int) -> int:
        """Insert corrupted copies of random lines right after them; returns how many were added."""
        rng = self.rng
        first = len(self.mkts)  # never before the initial dump
        if count == 0 or len(self.lines) <= first:
            return 0
        picks = sorted(rng.sample(range(first, len(self.lines)), min(count, len(self.lines) - first)))
        required = {
            "market_resolved": "winning_asset_id",
            "book": "asset_id",
            "price_change": "price_changes",
            "last_trade_price": "price",
            "tick_size_change": "new_tick_size",
            "external_signal": "asset_id",
        }
        for idx in reversed(picks):
            src = self.lines[idx]
            if rng.random() < 0.5:
                bad = src[: max(1, len(src) // 2)]
            else:
                msg = json.loads(src)
                if isinstance(msg, list):
                    msg = msg[0]
                del msg[required[msg["event_type"]]]
                bad = json.dumps(msg, separators=(",", ":"))
            self.lines.insert(idx + 1, bad)
        return len(picks)
