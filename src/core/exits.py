"""The position manager: when the engine sells what it holds, merges complete sets and redeems.

Theory of operation
-------------------
Every lot (the shares of one token one strategy bought, core/portfolio.py) is watched by the exit rule
of that strategy. A rule may take profit once the best bid reaches the fair value the entry claimed
(selling at no less than that value), stop a loss once the bid falls a set distance below the lot's
average cost, stop on time once the lot has been held too long, and sell ahead of the market's end.
Price rules are judged when the token's book changes; time rules when their time comes (a timer,
released by `step` like iceberg slices). The lots of basket legs (strategy "<name>/basket") are
hedged only as a whole: no price or time rule sells one leg; they are held to resolution.

An exit is an opportunity of its own (journaled, risk-checked like any order, through the lifecycle's
`place_now`); while one is in flight for a lot no other is sent, and one that did not fill waits
`retry_ms` before the rule may fire again.

Complete sets: a wallet holding both outcomes of one market holds collateral twice over, so after
each fill the free YES and NO shares (not promised to open SELLs) are merged back into USDC
(MergePositions; the venue or the relayer does it and answers PositionsMerged). When a market
resolves, its tokens are marked at 1 and 0, resting orders there are cancelled, new ones refused, and
every wallet holding it redeems (RedeemPositions -> PositionsRedeemed). A settlement the chain side
cannot do now answers SettlementRefused: an alert, and a merge may be asked again after
`settlement_retry_ms` (a redemption on the next market_resolved). Requests and results are journaled.

Neg-risk conversion: exactly one outcome of a complete neg-risk event wins, so NO shares of k >= 2 of
its outcomes pay k - 1 or k, and so do the (k - 1) USDC plus YES of every other outcome they convert
into (ConvertPositions; messages.py has the on-chain call). The payoff is the same whatever wins, so
the conversion never lowers value (at any marks consistent with the event), and k - 1 per share is
cash now instead of at resolution: it frees capital whenever k >= 2. It is asked for after a fill, a
merge or a conversion in the event, over the NO shares a wallet holds free: not promised to open
SELLs (exits in flight included), not pairing with YES of the same market (merging those frees a
whole unit per set and leaves nothing behind, so it goes first), and only in an event whose
completeness the metadata vouches for (MarketRegistry.complete_event: on an augmented event a
conversion would also hand out YES of outcomes the engine does not know) with no market resolved
(redemption settles those). It takes the outcomes that free the most, (k - 1) * size. While one is
in flight for a wallet and event, nothing else takes those NO shares (no merge, no exit sells them);
a refused one is asked again `settlement_retry_ms` later, on a timer.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from polysnipe.core.events import Side
from polysnipe.core.exit_rules import ExitRule, LotKey
from polysnipe.core.market import Market
from polysnipe.core.messages import (
    Command,
    ConvertPositions,
    MergePositions,
    PositionsConverted,
    PositionsMerged,
    PositionsRedeemed,
    RaiseAlert,
    RedeemPositions,
    SettlementRefused,
)
from polysnipe.core.opportunity import Opportunity, opportunity_id
from polysnipe.core.portfolio import Lot
from polysnipe.core.state import EngineState
from polysnipe.core.units import ONE, format_micro

__all__ = [
    "after_fill",
    "judge_lots",
    "on_book_change",
    "on_converted",
    "on_merged",
    "on_redeemed",
    "redeem_resolved",
    "release_due",
    "watch_lot",
]


def watch_lot(state: EngineState, key: LotKey, lot: Lot, now_ms: int) -> None:
    """A lot opened or grew: arm its time rules."""
    rule = state.exits.params.rule_for(key[2])
    if rule is None:
        return
    if rule.max_hold_ms:
        state.exits.schedule(key, lot.opened_ms + rule.max_hold_ms)
    market = state.markets.get_by_token(key[1])
    if rule.exit_before_end_ms and market is not None and market.end_ms:
        state.exits.schedule(key, market.end_ms - rule.exit_before_end_ms)


def on_book_change(state: EngineState, token_id: str, now_ms: int, commands: list[Command]) -> None:
    """The token's book changed: judge the price rules of every lot held in it."""
    rule_for = state.exits.params.rule_for
    for wallet_name, wallet in state.portfolio.wallets.items():
        # judging places orders but moves no shares (fills come later, as reports), so the lots held
        # can be picked first; this runs on every price change of a held token
        held = [(key[1], lot) for key, lot in wallet.lots.items() if key[0] == token_id and lot.shares > 0]
        for lot_label, lot in held:
            key = (wallet_name, token_id, lot_label)
            _judge(state, key, lot, rule_for(lot_label), now_ms, commands, timer=False)


def judge_lots(
    state: EngineState, lots: Sequence[tuple[LotKey, Lot]], now_ms: int, commands: list[Command]
) -> None:
    """`on_book_change` for lots already picked, (key, lot) in the order it would judge them (what
    core._market.price_change hands back for the tokens a price change touched)."""
    rule_for = state.exits.params.rule_for
    for key, lot in lots:
        # a lot no price rule watches (a basket leg) is about half of those a replay holds
        rule = rule_for(key[2])
        if rule is not None:
            _judge(state, key, lot, rule, now_ms, commands, timer=False)


def release_due(state: EngineState, now_ms: int, commands: list[Command]) -> None:
    timers = state.exits.timers
    while timers and timers[0][0] <= now_ms:
        _, _, key = heapq.heappop(timers)
        wallet = state.portfolio.wallets.get(key[0])
        lot = wallet.lots.get((key[1], key[2])) if wallet is not None else None
        if lot is not None and lot.shares > 0:
            _judge(state, key, lot, state.exits.params.rule_for(key[2]), now_ms, commands, timer=True)
    converts = state.exits.convert_timers
    while converts and converts[0][0] <= now_ms:
        _, _, wallet_name, event_id = heapq.heappop(converts)
        convert(state, wallet_name, event_id, now_ms, commands)


def _judge(
    state: EngineState,
    key: LotKey,
    lot: Lot,
    rule: ExitRule | None,
    now_ms: int,
    commands: list[Command],
    *,
    timer: bool,
) -> None:
    """Judge one lot by `rule`, its strategy's exit rule (the caller's rule_for: None, never sold)."""
    exits = state.exits
    if rule is None or key[1] in state.portfolio.resolved:
        return
    if exits.converting and _converting(state, key[0], key[1]):
        if timer:  # the conversion in flight takes these shares; look again once it answered
            exits.schedule(key, now_ms + exits.params.retry_ms)
        return
    pending = exits.exiting.get(key)
    if pending is not None:
        track = state.tracks.get(pending)
        if track is not None and not track.done:
            return
        del exits.exiting[key]
        if track is not None and track.filled_size == 0:
            exits.retry_at[key] = now_ms + exits.params.retry_ms
    if now_ms < exits.retry_at.get(key, 0):
        if timer:
            exits.schedule(key, exits.retry_at[key])
        return
    book = state.books.get(key[1])
    bid = book.best_bid() if book is not None and book.trusted else None
    if bid is None:
        if timer:
            exits.schedule(key, now_ms + exits.params.retry_ms)  # no bid yet: look again later
        return
    tick = book.tick_size if book is not None else 1
    market = state.markets.get_by_token(key[1])
    why = ""
    limit = 0
    if rule.take_profit and lot.fair_value and bid >= lot.fair_value:
        why, limit = "take_profit", lot.fair_value
    elif rule.stop_loss_micro and bid <= lot.avg_price - rule.stop_loss_micro:
        why, limit = "stop_loss", bid - rule.slippage_ticks * tick
    elif rule.max_hold_ms and now_ms - lot.opened_ms >= rule.max_hold_ms:
        why, limit = "time_stop", bid - rule.slippage_ticks * tick
    elif (
        rule.exit_before_end_ms
        and market is not None
        and market.end_ms
        and market.end_ms - now_ms <= rule.exit_before_end_ms
    ):
        why, limit = "before_end", bid - rule.slippage_ticks * tick
    if not why or market is None:
        return
    size = lot.shares - lot.shares % state.gatekeeper.size_step
    if size < market.min_order_size:
        return  # dust no order can carry: held to a merge or the resolution
    strategy = key[2]
    oid = opportunity_id(strategy, key[1], Side.SELL, "exit", why, key[0], lot.opened_ms, now_ms)
    opp = Opportunity(
        id=oid,
        strategy=strategy,
        market=market.condition_id,
        token_id=key[1],
        side=Side.SELL,
        size=size,
        limit_price=min(max(limit, tick), ONE - tick),
        fair_value=lot.fair_value,
        edge=0,
        confidence=1.0,
        created_ms=now_ms,
        expires_ms=now_ms + 60_000,
        reason=(
            f"exit:{why}: {format_micro(size)} held at {format_micro(lot.avg_price)}, bid {format_micro(bid)}"
        ),
        correlation_id="c-" + oid,
    )
    exits.exiting[key] = oid
    exits.exits[why] = exits.exits.get(why, 0) + 1
    # imported here: the lifecycle imports this module for its fill hooks
    from polysnipe.core.lifecycle import place_now

    place_now(state, opp, "aggressive", now_ms, commands, lot=strategy, wallet=key[0])


def after_fill(
    state: EngineState, wallet_name: str, token_id: str, now_ms: int, commands: list[Command]
) -> None:
    """A fill moved a wallet's holdings: arm the time rules of lots it opened, merge complete sets."""
    market = state.markets.get_by_token(token_id)
    if wallet_name not in state.portfolio.wallets or market is None:
        return
    _arm(state, wallet_name, token_id, now_ms)
    _merge(state, wallet_name, market, now_ms, commands)
    if market.neg_risk_market_id:
        convert(state, wallet_name, market.neg_risk_market_id, now_ms, commands)


def _arm(state: EngineState, wallet_name: str, token_id: str, now_ms: int) -> None:
    """Arm the time rules of the lots of `token_id` that opened since they were last armed."""
    wallet = state.portfolio.wallets[wallet_name]
    armed = state.exits.armed
    for (token, lot_label), lot in wallet.lots.items():
        key = (wallet_name, token, lot_label)
        if token == token_id and lot.shares > 0 and armed.get(key) != lot.opened_ms:
            armed[key] = lot.opened_ms
            watch_lot(state, key, lot, now_ms)
    if any(t == token_id and lot.shares > 0 for (t, _), lot in wallet.lots.items()):
        state.exits.watched.add(token_id)


def _merge(
    state: EngineState, wallet_name: str, market: Market, now_ms: int, commands: list[Command]
) -> None:
    """Merge the wallet's free complete sets of `market`, unless one is in flight or was just refused."""
    params = state.exits.params
    pair = (wallet_name, market.condition_id)
    if not params.merge_complete_sets or pair in state.exits.merging:
        return
    if state.exits.merge_retry_at.get(pair, 0) > now_ms:
        return
    yes, no = market.token_ids
    if _converting(state, wallet_name, no):
        return
    free = min(state.risk.available_shares(wallet_name, yes), state.risk.available_shares(wallet_name, no))
    free -= free % state.gatekeeper.size_step
    if free >= max(params.min_merge_micro, 1) and yes not in state.portfolio.resolved:
        state.exits.merging.add(pair)
        commands.append(MergePositions(wallet_name, market.condition_id, free, now_ms))


def _converting(state: EngineState, wallet_name: str, token_id: str) -> bool:
    """Whether a conversion in flight takes the wallet's shares of `token_id` (a NO token)."""
    if not state.exits.converting:
        return False
    market = state.markets.get_by_token(token_id)
    if market is None or not market.neg_risk_market_id or token_id != market.token_ids[1]:
        return False
    markets = state.exits.converting.get((wallet_name, market.neg_risk_market_id), ())
    return market.condition_id in markets


def convert(
    state: EngineState, wallet_name: str, event_id: str, now_ms: int, commands: list[Command]
) -> None:
    """Convert the wallet's free NO shares of the complete event `event_id` when that frees capital
    (module doc): the outcomes and size that free the most, (k - 1) * size."""
    exits = state.exits
    params = exits.params
    key = (wallet_name, event_id)
    if not params.convert_neg_risk or key in exits.converting or exits.convert_retry_at.get(key, 0) > now_ms:
        return
    members = state.markets.complete_event(event_id)
    if members is None or wallet_name not in state.portfolio.wallets:
        return
    resolved = state.portfolio.resolved
    if any(m.token_ids[0] in resolved or (wallet_name, m.condition_id) in exits.merging for m in members):
        return
    risk = state.risk
    step_size = state.gatekeeper.size_step
    free: list[tuple[int, int]] = []  # (convertible NO shares, position in the event)
    for i, m in enumerate(members):
        yes, no = m.token_ids
        n = risk.available_shares(wallet_name, no)
        if params.merge_complete_sets:
            n -= max(min(n, risk.available_shares(wallet_name, yes)), 0)
        n -= n % step_size
        if n >= max(params.min_convert_micro, 1):
            free.append((n, i))
    if len(free) < 2:
        return
    free.sort(key=lambda f: (-f[0], f[1]))
    # the k largest holdings convert at the k-th largest size: keep the k that frees the most, the
    # larger on a tie (fewer YES shares of other outcomes left to hold)
    k = max(range(2, len(free) + 1), key=lambda k: ((k - 1) * free[k - 1][0], k))
    size = free[k - 1][0]
    markets = tuple(members[i].condition_id for _, i in sorted(free[:k], key=lambda f: f[1]))
    exits.converting[key] = markets
    commands.append(
        ConvertPositions(
            wallet_name, event_id, markets, size, now_ms, f"convert:{wallet_name}:{event_id}:{now_ms}"
        )
    )


def redeem_resolved(state: EngineState, market_id: str, now_ms: int, commands: list[Command]) -> None:
    """Every wallet holding the resolved market redeems it."""
    market = state.markets.by_condition(market_id)
    for wallet_name, wallet in state.portfolio.wallets.items():
        held = any(wallet.positions.get(t, 0) > 0 for t in market.token_ids)
        if held and (wallet_name, market_id) not in state.exits.redeeming:
            state.exits.redeeming.add((wallet_name, market_id))
            commands.append(RedeemPositions(wallet_name, market_id, now_ms))


def on_merged(state: EngineState, report: PositionsMerged, now_ms: int, commands: list[Command]) -> None:
    market = state.markets.get(report.market)
    state.exits.merging.discard((report.wallet, report.market))
    commands.append(report)
    if market is None or report.wallet not in state.portfolio.wallets:
        state.bump("settlements_unknown")
        return
    state.bump("merges")
    state.portfolio.apply_merge(report.wallet, market.token_ids, report.size, report.ts_ms)
    if market.neg_risk_market_id:
        convert(state, report.wallet, market.neg_risk_market_id, now_ms, commands)


def on_converted(
    state: EngineState, report: PositionsConverted, now_ms: int, commands: list[Command]
) -> None:
    """The conversion is done: the portfolio moves exactly what the venue says it moved; the YES shares
    received may complete sets with NO of their markets, and what is left may convert again."""
    state.exits.converting.pop((report.wallet, report.event), None)
    commands.append(report)
    converted = [state.markets.get(m) for m in report.markets]
    received = [state.markets.get(m) for m in report.yes_markets]
    if report.wallet not in state.portfolio.wallets or any(m is None for m in [*converted, *received]):
        state.bump("settlements_unknown")
        return
    state.bump("conversions")
    state.portfolio.apply_conversion(
        report.wallet,
        tuple(m.token_ids[1] for m in converted if m is not None),
        tuple(m.token_ids[0] for m in received if m is not None),
        report.size,
        report.collateral,
        report.yes_size,
        report.ts_ms,
    )
    for m in received:
        if m is not None:
            _arm(state, report.wallet, m.token_ids[0], now_ms)
            _merge(state, report.wallet, m, now_ms, commands)
    convert(state, report.wallet, report.event, now_ms, commands)


def on_redeemed(state: EngineState, report: PositionsRedeemed, now_ms: int, commands: list[Command]) -> None:
    market = state.markets.get(report.market)
    state.exits.redeeming.discard((report.wallet, report.market))
    commands.append(report)
    if market is None or report.wallet not in state.portfolio.wallets:
        state.bump("settlements_unknown")
        return
    state.bump("redemptions")
    state.portfolio.apply_redemption(report.wallet, market.token_ids, report.winning_token, report.ts_ms)


def on_settlement_refused(
    state: EngineState, report: SettlementRefused, now_ms: int, commands: list[Command]
) -> None:
    """Nothing changed on chain: the request is no longer in flight, and a merge or conversion waits
    before it is asked again (a refusal every fill would only repeat itself)."""
    key = (report.wallet, report.market)
    exits = state.exits
    if report.kind == "merge":
        exits.merging.discard(key)
        exits.merge_retry_at[key] = now_ms + exits.params.settlement_retry_ms
    elif report.kind == "convert":
        # asked again on a timer: unlike merges, no later fill need come to the event
        if exits.converting.pop(key, None) is not None:
            exits.convert_retry_at[key] = now_ms + exits.params.settlement_retry_ms
            exits.schedule_convert(key[0], key[1], exits.convert_retry_at[key])
    else:
        exits.redeeming.discard(key)
    state.bump(f"{report.kind}s_refused")
    commands.append(
        RaiseAlert(
            "warning",
            f"{report.kind}_refused",
            f"{report.kind} of {report.market} for {report.wallet}: {report.reason}",
            now_ms,
            report.correlation_id,
        )
    )
