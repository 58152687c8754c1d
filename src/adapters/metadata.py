"""The one market-metadata loader: every shape Polymarket publishes, merged by condition id.

Theory of operation
-------------------
No single endpoint says everything the engine needs about a market (PROTOCOL.md 11.5):

- CLOB GET /markets (a page, a list or one): token ids, outcomes, tick, minimum size, the neg-risk
  flag and event id, the end date;
- CLOB GET /clob-markets/{id} (recorded as `{condition_id: answer}`): tokens, tick, neg-risk flag,
  fee rate and exponent (`fd`);
- Gamma GET /markets: tokens (as JSON strings), tick, minimum size, neg-risk, `negRiskOther`, fees
  (`feesEnabled`, `feeSchedule` with the maker rebate), the end date, open or closed;
- Gamma GET /events: the event's markets, and whether the event is augmented.

Each document is recognised by its shape, read into per-market facts, and the facts are merged by
condition id: structure from the CLOB first (it is the venue orders trade on), then the compact CLOB
info, then Gamma; fee parameters from the compact CLOB info first, then Gamma's schedule. Sources
that disagree on a market's tokens or neg-risk flag make that market unusable, never a guess.

One malformed market refuses that market alone: a row that names its condition id but whose fields
cannot be read becomes a refusal (Catalog.refused, with the field and the document) and the rest of
the document loads, because one bad row on a page of the venue's listing must not stop an engine
loading every other market. A market malformed in any source is refused even where another source
describes it well: what the bad row said cannot be checked against the others. A row that does not
even name its market, or a document of another shape, is a MalformedMessage for the whole document.

Fail closed on fees: a market is traded only when its fee parameters are known (a rate from `fd` or a
`feeSchedule`), or a source says fees are off (`feesEnabled: false`). A CLOB /markets row alone says
neither (its `taker_base_fee` is the legacy V1 field), so such a market is loaded with fees unknown
and the risk gatekeeper refuses to trade it. Neg-risk events come only from Gamma events (and from the
`negRiskOther` flag of Gamma markets); a basket trades only on an event described as complete
(core.market.MarketRegistry.complete_baskets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import attrs
import msgspec

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.clob.parsing import decimal_micro, decode_json, match_delay_ms, token_id_text
from polysnipe.adapters.clob.schemas import WireFeeDetails, WireMarket
from polysnipe.adapters.gamma.schemas import WireEventRef, WireGammaEvent, WireGammaMarket
from polysnipe.core.fees import check_fee_parameters
from polysnipe.core.market import Market, MarketRegistry, NegRiskEvent
from polysnipe.core.units import MAX_AMOUNT_MICRO, MICRO

__all__ = [
    "Catalog",
    "MarketFacts",
    "document_shape",
    "load_documents",
    "load_market_files",
    "market_name",
    "merge_facts",
    "read_document",
]

_TICK_BOUND = Decimal(1)
_SIZE_BOUND = Decimal(MAX_AMOUNT_MICRO // MICRO)
#: what a Gamma event id may be: it goes into GET /events?id=
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@attrs.frozen(slots=True)
class MarketFacts:
    """What one document says about one market; None where it says nothing."""

    condition_id: str
    source: str
    token_ids: tuple[str, str] | None = None
    outcomes: tuple[str, str] | None = None
    tick_size: int | None = None
    min_order_size: int | None = None
    neg_risk: bool | None = None
    neg_risk_market_id: str | None = None
    fees_enabled: bool | None = None
    fee_rate: int | None = None
    fee_exponent: int | None = None
    fee_rebate_rate: int | None = None
    other: bool | None = None
    is_open: bool | None = None
    end_ms: int | None = None
    question: str | None = None
    match_delay_ms: int | None = None
    #: the Gamma events the market belongs to (the loader asks for those of neg-risk markets)
    event_ids: tuple[str, ...] | None = None
    #: why this document's row for the market could not be read (the market is then refused)
    malformed: str | None = None


@attrs.frozen(slots=True)
class _EventFacts:
    event_id: str
    condition_ids: tuple[str, ...]
    augmented: bool | None


@attrs.define
class Catalog:
    """The merged metadata: markets, their neg-risk events, and the markets that could not be used."""

    markets: list[Market] = attrs.field(factory=list)
    events: list[NegRiskEvent] = attrs.field(factory=list)
    #: (condition id, why): markets some document named but that cannot be traded as described
    refused: list[tuple[str, str]] = attrs.field(factory=list)

    def registry(self) -> MarketRegistry:
        registry = MarketRegistry.of(self.markets)
        for event in self.events:
            registry.add_event(event)
        return registry

    @property
    def fees_unknown(self) -> list[str]:
        return [m.condition_id for m in self.markets if not m.fees_known]


# -- reading one document ------------------------------------------------------------------------------
class _ClobPage(msgspec.Struct, gc=False):
    #: each row decoded alone (_market_facts), so that a malformed one refuses its market only
    data: list[msgspec.Raw]


class _ClobName(msgspec.Struct, gc=False):
    """Just the condition id of a CLOB row: the market a malformed row is refused for."""

    condition_id: str


class _GammaName(msgspec.Struct, gc=False, rename="camel"):
    """Just the condition id of a Gamma market row."""

    condition_id: str


class _GammaEventNames(msgspec.Struct, gc=False):
    """The members of a Gamma event whose own fields are malformed: each is refused."""

    markets: list[_GammaName]


class _CompactToken(msgspec.Struct, gc=False):
    t: str
    o: str = ""


class _ClobCompact(msgspec.Struct, gc=False):
    """GET /clob-markets/{condition_id}: `t` tokens, `mts` tick, `nr` neg-risk, `fd` fees."""

    t: list[_CompactToken] | None = None
    mts: msgspec.Raw = msgspec.Raw()
    nr: bool | None = None
    fd: WireFeeDetails | None = None


_any = msgspec.json.Decoder()
_page = msgspec.json.Decoder(_ClobPage)
_rows = msgspec.json.Decoder(list[msgspec.Raw])
_row_map = msgspec.json.Decoder(dict[str, msgspec.Raw])
_clob_row = msgspec.json.Decoder(WireMarket)
_clob_name = msgspec.json.Decoder(_ClobName)
_compact = msgspec.json.Decoder(_ClobCompact)
_gamma_market = msgspec.json.Decoder(WireGammaMarket)
_gamma_name = msgspec.json.Decoder(_GammaName)
_gamma_event = msgspec.json.Decoder(WireGammaEvent)
_gamma_event_names = msgspec.json.Decoder(_GammaEventNames)
_str_list = msgspec.json.Decoder(list[str])


def document_shape(doc: Any) -> str:
    """Which document this is, from the keys only its shape has: clob_page, clob_rows, clob_row,
    clob_compact, gamma_markets, gamma_market, gamma_events, gamma_event or empty."""
    item = doc[0] if isinstance(doc, list) and doc else doc
    if isinstance(doc, list) and not doc:
        return "empty"
    if not isinstance(item, dict):
        raise MalformedMessage("not a markets document: expected JSON objects")
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        return "clob_page"
    if "condition_id" in item and "tokens" in item:
        return "clob_rows" if isinstance(doc, list) else "clob_row"
    if "conditionId" in item:
        return "gamma_markets" if isinstance(doc, list) else "gamma_market"
    if isinstance(item.get("markets"), list):
        return "gamma_events" if isinstance(doc, list) else "gamma_event"
    if isinstance(doc, dict) and doc and all(isinstance(k, str) and k.startswith("0x") for k in doc):
        return "clob_compact"
    raise MalformedMessage(
        "not a markets document this loader knows: expected CLOB GET /markets, GET /clob-markets"
        " ({condition_id: answer}), Gamma GET /markets or GET /events"
    )


def read_document(data: bytes | str, name: str) -> tuple[list[MarketFacts], list[_EventFacts]]:
    """The facts of one recorded (or fetched) metadata document named `name`, whatever its shape; a
    malformed market among them comes back as facts that say so (MarketFacts.malformed)."""
    shape = document_shape(decode_json(_any, data, name))
    kind = "gamma" if shape.startswith("gamma") else "compact" if shape == "clob_compact" else "clob"
    source = f"{kind}:{name}"
    try:
        if shape == "empty":
            return [], []
        if shape == "clob_compact":
            return [_market_facts(r, _COMPACT, source, cid) for cid, r in _row_map.decode(data).items()], []
        if not shape.startswith("gamma_event"):
            row_kind = _GAMMA_MARKET if kind == "gamma" else _CLOB_ROW
            return [_market_facts(r, row_kind, source) for r in _rows_of(shape, data)], []
        facts: list[MarketFacts] = []
        out: list[_EventFacts] = []
        for raw in _rows_of(shape, data):
            try:
                event = _gamma_event.decode(raw)
            except (msgspec.DecodeError, ValueError) as exc:
                # its members cannot be judged as a set, nor trusted alone: each is refused
                why = f"its event is malformed: {_reason(exc)}"
                facts += [
                    MarketFacts(m.condition_id, source, malformed=why)
                    for m in _gamma_event_names.decode(raw).markets
                ]
                continue
            members = [_market_facts(m, _GAMMA_MARKET, source) for m in event.markets]
            facts += members
            event_id = event.neg_risk_market_id or next(
                (m.neg_risk_market_id for m in members if m.neg_risk_market_id), None
            )
            if event_id and (event.neg_risk or event.enable_neg_risk or any(m.neg_risk for m in members)):
                out.append(
                    _EventFacts(event_id, tuple(m.condition_id for m in members), event.neg_risk_augmented)
                )
        return facts, out
    except (msgspec.DecodeError, ValueError) as exc:
        raise MalformedMessage(f"{source}: {_reason(exc)}") from None


def _rows_of(shape: str, data: bytes | str) -> list[msgspec.Raw]:
    """The rows of a document, each left undecoded (a CLOB page's `data`, a list's items, or the one)."""
    if shape == "clob_page":
        return _page.decode(data).data
    if shape in ("clob_rows", "gamma_markets", "gamma_events"):
        return _rows.decode(data)
    return [msgspec.Raw(data)]


def market_name(row: bytes | msgspec.Raw, kind: Literal["clob", "gamma"]) -> str:
    """The condition id a CLOB or a Gamma market row names, however malformed its other fields
    (such a row refuses that market alone); MalformedMessage when it names none."""
    if kind == "clob":
        return decode_json(_clob_name, row, "clob market").condition_id
    return decode_json(_gamma_name, row, "gamma market").condition_id


@attrs.frozen
class _RowKind:
    """How one shape's market row is read: its wire type, its facts, and how it names its market."""

    wire: msgspec.json.Decoder[Any]
    facts: Callable[[Any, str, str], MarketFacts]
    #: reads just the condition id of a row that names its market inside it (None: keyed by it)
    name: Callable[[msgspec.Raw], str] | None


def _market_facts(raw: msgspec.Raw, kind: _RowKind, source: str, cid: str | None = None) -> MarketFacts:
    """One row's facts (`cid`: the condition id, when the document keys the row by it). A row that
    names its market but cannot be read refuses that market alone; one that does not name it raises
    (msgspec.DecodeError), making the whole document malformed."""
    try:
        wire = kind.wire.decode(raw)
        return kind.facts(wire, cid if cid is not None else wire.condition_id, source)
    except (msgspec.DecodeError, ValueError) as exc:
        if cid is None:
            assert kind.name is not None  # only rows keyed by their condition id come without one
            cid = kind.name(raw)
        return MarketFacts(cid, source, malformed=_reason(exc))


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, MalformedMessage) else str(exc)


def _clob_facts(w: WireMarket, cid: str, source: str) -> MarketFacts:
    tokens = _two_tokens([t.token_id for t in w.tokens])
    outcomes = _two([t.outcome for t in w.tokens]) if tokens else None
    rate, exponent = _fee(w.fd)
    return MarketFacts(
        cid,
        source,
        token_ids=tokens,
        outcomes=outcomes,
        tick_size=decimal_micro(w.minimum_tick_size, "minimum_tick_size", _TICK_BOUND),
        min_order_size=decimal_micro(w.minimum_order_size, "minimum_order_size", _SIZE_BOUND),
        neg_risk=w.neg_risk,
        neg_risk_market_id=w.neg_risk_market_id or None,
        # `fd` on a /markets row is the compact form's fee details carried along: known fees
        fees_enabled=None if w.fd is None else rate > 0,
        fee_rate=rate if w.fd is not None else None,
        fee_exponent=exponent if w.fd is not None else None,
        end_ms=_iso_ms(w.end_date_iso),
        question=w.question or None,
        match_delay_ms=match_delay_ms(w.seconds_delay),
    )


def _compact_facts(c: _ClobCompact, cid: str, source: str) -> MarketFacts:
    tokens = _two_tokens([t.t for t in c.t]) if c.t else None
    outcomes = _two([t.o for t in c.t]) if c.t and all(t.o for t in c.t) else None
    rate, exponent = _fee(c.fd)
    return MarketFacts(
        cid,
        source,
        token_ids=tokens,
        outcomes=outcomes,
        tick_size=_decimal_or_none(c.mts, "mts", _TICK_BOUND),
        neg_risk=c.nr,
        fees_enabled=None if c.fd is None else rate > 0,
        fee_rate=rate if c.fd is not None else None,
        fee_exponent=exponent if c.fd is not None else None,
    )


def _gamma_event_ids(refs: Sequence[WireEventRef] | None) -> tuple[str, ...]:
    """The ids of a Gamma market's events; ValueError for one that is not a Gamma event id (it goes
    into a URL when the event is asked for)."""
    out: list[str] = []
    for ref in refs or ():
        text = "" if ref.id is None else str(ref.id)
        if not _EVENT_ID.fullmatch(text):
            raise ValueError(f"names event {text[:80]!r}, not a Gamma event id")
        out.append(text)
    return tuple(out)


def _gamma_facts(w: WireGammaMarket, cid: str, source: str) -> MarketFacts:
    tokens = _two_tokens(_strings(w.clob_token_ids)) if w.clob_token_ids else None
    outcomes = _two(_strings(w.outcomes)) if w.outcomes else None
    schedule = w.fee_schedule
    rate = exponent = rebate = None
    if schedule is not None:
        rate = decimal_micro(schedule.rate, "feeSchedule.rate", Decimal(1))
        exponent = schedule.exponent
        check_fee_parameters(rate, exponent)
        rebate = _decimal_or_none(schedule.rebate_rate, "feeSchedule.rebateRate", Decimal(1))
    if w.fees_enabled and schedule is None:
        rate = exponent = None  # enabled but no schedule: unknown, and the market is refused trading
    elif w.fees_enabled is False:
        rate, exponent = 0, 1
    is_open = None
    if w.active is not None or w.closed is not None or w.accepting_orders is not None:
        is_open = bool(w.active is not False and not w.closed and w.accepting_orders is not False)
    return MarketFacts(
        cid,
        source,
        token_ids=tokens,
        outcomes=outcomes,
        tick_size=_decimal_or_none(w.order_price_min_tick_size, "orderPriceMinTickSize", _TICK_BOUND),
        min_order_size=_decimal_or_none(w.order_min_size, "orderMinSize", _SIZE_BOUND),
        neg_risk=w.neg_risk,
        neg_risk_market_id=w.neg_risk_market_id or None,
        fees_enabled=w.fees_enabled,
        fee_rate=rate,
        fee_exponent=exponent,
        fee_rebate_rate=rebate,
        other=w.neg_risk_other,
        event_ids=_gamma_event_ids(w.events),
        is_open=is_open,
        end_ms=_iso_ms(w.end_date),
        question=w.group_item_title or w.question,
        match_delay_ms=match_delay_ms(w.seconds_delay),
    )


_CLOB_ROW = _RowKind(_clob_row, _clob_facts, lambda raw: market_name(raw, "clob"))
_COMPACT = _RowKind(_compact, _compact_facts, None)
_GAMMA_MARKET = _RowKind(_gamma_market, _gamma_facts, lambda raw: market_name(raw, "gamma"))


def _decimal_or_none(raw: msgspec.Raw, name: str, bound: Decimal) -> int | None:
    """An optional decimal field: absent (or null) says nothing."""
    if not raw or bytes(raw) == b"null":
        return None
    return decimal_micro(raw, name, bound)


def _strings(value: str | list[str]) -> list[str]:
    """A list Gamma sends JSON-encoded inside a string, or (some SDKs' recordings) as a list."""
    return _str_list.decode(value) if isinstance(value, str) else value


def _fee(fd: WireFeeDetails | None) -> tuple[int, int]:
    if fd is None:
        return 0, 1
    rate = decimal_micro(fd.r, "fd.r", Decimal(1))
    check_fee_parameters(rate, fd.e)
    return rate, fd.e


def _two(values: Sequence[str]) -> tuple[str, str]:
    if len(values) != 2:
        raise ValueError(f"expected 2 outcomes, got {len(values)}")
    return values[0], values[1]


def _two_tokens(ids: Sequence[str]) -> tuple[str, str] | None:
    if not any(ids):
        return None  # listed without an order book: nothing to trade
    a, b = _two(ids)
    return token_id_text(a), token_id_text(b)


def _iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None  # a date the venue wrote in another form says nothing we need
    if stamp.tzinfo is None:
        return None
    return int(stamp.timestamp() * 1000)


# -- merging -------------------------------------------------------------------------------------------
#: which source's structure (tokens, tick, sizes) wins: the CLOB rows, then the compact info, then Gamma
_STRUCTURE_ORDER = ("clob", "compact", "gamma")
#: and whose fee parameters: the CLOB's compact info, then Gamma's schedule, then fd carried on a row
_FEE_ORDER = ("compact", "gamma", "clob")


def _kind(source: str) -> str:
    return source.partition(":")[0]


def _first(facts: Iterable[MarketFacts], order: Sequence[str], name: str) -> Any:
    ranked = sorted(facts, key=lambda f: order.index(_kind(f.source)))
    for f in ranked:
        value = getattr(f, name)
        if value is not None:
            return value
    return None


def merge_facts(facts: Sequence[MarketFacts], events: Sequence[_EventFacts]) -> Catalog:
    by_market: dict[str, list[MarketFacts]] = {}
    for f in facts:
        by_market.setdefault(f.condition_id, []).append(f)
    catalog = Catalog()
    augmented_members: set[str] = set()
    for event in events:
        members = [by_market.get(cid, []) for cid in event.condition_ids]
        has_other = any(f.other for fs in members for f in fs)
        opens = [_first(fs, _STRUCTURE_ORDER, "is_open") for fs in members]
        augmented = event.augmented is not False  # unknown counts as augmented: fail closed
        if augmented or has_other:
            augmented_members.update(event.condition_ids)
        catalog.events.append(
            NegRiskEvent(
                event.event_id, event.condition_ids, augmented, has_other, all(o is True for o in opens)
            )
        )
    for cid, fs in by_market.items():
        bad = next((f for f in fs if f.malformed is not None), None)
        if bad is not None:
            catalog.refused.append((cid, f"malformed in {bad.source}: {bad.malformed}"))
            continue
        for name in ("token_ids", "neg_risk"):
            values = {getattr(f, name) for f in fs if getattr(f, name) is not None}
            if len(values) > 1:
                sources = ", ".join(sorted({f.source for f in fs}))
                catalog.refused.append((cid, f"sources disagree on {name} ({sources})"))
                break
        else:
            market = _market(cid, fs, cid in augmented_members)
            if isinstance(market, str):
                catalog.refused.append((cid, market))
            else:
                catalog.markets.append(market)
    return catalog


def _market(cid: str, fs: Sequence[MarketFacts], augmented: bool) -> Market | str:
    tokens = _first(fs, _STRUCTURE_ORDER, "token_ids")
    outcomes = _first(fs, _STRUCTURE_ORDER, "outcomes")
    tick = _first(fs, _STRUCTURE_ORDER, "tick_size")
    min_size = _first(fs, _STRUCTURE_ORDER, "min_order_size")
    neg_risk = _first(fs, _STRUCTURE_ORDER, "neg_risk")
    named = (("token ids", tokens), ("outcomes", outcomes), ("tick", tick), ("minimum size", min_size),
             ("neg-risk flag", neg_risk))  # fmt: skip
    missing = [n for n, v in named if v is None]
    if missing:
        return f"no source gives its {', '.join(missing)}"
    rate = _first(fs, _FEE_ORDER, "fee_rate")
    exponent = _first(fs, _FEE_ORDER, "fee_exponent")
    enabled = _first(fs, _FEE_ORDER, "fees_enabled")
    fees_known = rate is not None or enabled is False
    try:
        return Market(
            condition_id=cid,
            token_ids=tokens,
            outcomes=outcomes,
            tick_size=tick,
            min_order_size=min_size,
            neg_risk=neg_risk,
            neg_risk_market_id=_first(fs, _STRUCTURE_ORDER, "neg_risk_market_id"),
            augmented=augmented,
            fee_rate=rate or 0,
            fee_exponent=exponent or 1,
            fees_known=fees_known,
            fee_rebate_rate=_first(fs, _FEE_ORDER, "fee_rebate_rate") or 0,
            question=_first(fs, _STRUCTURE_ORDER, "question") or "",
            end_ms=_first(fs, _STRUCTURE_ORDER, "end_ms") or 0,
            match_delay_ms=_first(fs, _STRUCTURE_ORDER, "match_delay_ms") or 0,
        )
    except ValueError as exc:
        return str(exc)


def load_market_files(paths: Sequence[Path]) -> Catalog:
    """Every metadata file given (any of the shapes above), merged by condition id.

    Raises MalformedMessage naming the file for a document that is not one of them.
    """
    return load_documents({str(path): path.read_bytes() for path in paths})


def load_documents(documents: Mapping[str, bytes]) -> Catalog:
    """The same merge over in-memory documents (name -> bytes): fetched answers, tests."""
    facts: list[MarketFacts] = []
    events: list[_EventFacts] = []
    for name, data in documents.items():
        got, evs = read_document(data, Path(name).name)
        facts += got
        events += evs
    return merge_facts(facts, events)
