"""The NautilusTrader side of `polysnipe bench compare-nautilus`: run by path under an interpreter
that has nautilus_trader (it needs neither polysnipe nor its dependencies), as
`python bench_nautilus_peer.py DELTAS REPEAT`; prints one JSON object.

DELTAS is written by the bench from the events polysnipe parsed: one line per book delta,
`ts_ms token action side price size last` (price and size in integer micro-units, as polysnipe holds
them; made exact decimal strings here, never floats), action C (clear: a snapshot starts), A (a snapshot
level), N (a new level), U (a level's new size) or D (a level removed); `last` is 1 on an event's
last delta of that token. The clears count as deltas here.
Each token becomes a BinaryOption on one L2 (MBP) venue, so the venue's matching engine applies
every delta to its book as ours does, and one strategy subscribes to every token's deltas with a
book the data engine manages (a second book per token, as our engine keeps its own beside the
venue's) and reads that book's best bid on every delta it is handed, so it is not a no-op.
Load (read + build the OrderBookDelta objects + add_data), replay (BacktestEngine.run) and report
(the engine's result and the trader's fills, positions and account reports) are timed apart, wall
clock and CPU, `REPEAT` times with a fresh engine.
"""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig  # type: ignore[import-not-found]
from nautilus_trader.config import LoggingConfig  # type: ignore[import-not-found]
from nautilus_trader.model.currencies import USDC  # type: ignore[import-not-found]
from nautilus_trader.model.data import BookOrder, OrderBookDelta  # type: ignore[import-not-found]
from nautilus_trader.model.enums import (  # type: ignore[import-not-found]
    AccountType,
    AssetClass,
    BookAction,
    BookType,
    OmsType,
    OrderSide,
    RecordFlag,
)
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue  # type: ignore[import-not-found]
from nautilus_trader.model.instruments import BinaryOption  # type: ignore[import-not-found]
from nautilus_trader.model.objects import Money, Price, Quantity  # type: ignore[import-not-found]
from nautilus_trader.trading.strategy import Strategy  # type: ignore[import-not-found]

_VENUE = Venue("POLYMARKET")
_ACTIONS = {
    "C": BookAction.CLEAR,
    "A": BookAction.ADD,
    "N": BookAction.ADD,
    "U": BookAction.UPDATE,
    "D": BookAction.DELETE,
}
_SIDES = {"B": OrderSide.BUY, "S": OrderSide.SELL}


class _Subscribed(Strategy):  # type: ignore[misc]
    """Subscribed to every token's deltas; on each batch it is handed (one delta each: the data
    engine does not buffer them) it reads the managed book's best bid, the least a strategy does."""

    def __init__(self, ids: list[Any]) -> None:
        super().__init__()
        self.ids = ids
        self.batches = 0
        self.bids_seen = 0

    def on_start(self) -> None:
        for instrument_id in self.ids:
            self.subscribe_order_book_deltas(instrument_id, book_type=BookType.L2_MBP)

    def on_order_book_deltas(self, deltas: Any) -> None:
        self.batches += 1
        if self.cache.order_book(deltas.instrument_id).best_bid_price() is not None:
            self.bids_seen += 1


def _instrument(n: int) -> Any:
    symbol = Symbol(f"token-{n}")
    return BinaryOption(
        instrument_id=InstrumentId(symbol=symbol, venue=_VENUE),
        raw_symbol=symbol,
        outcome="Yes",
        description="bench",
        asset_class=AssetClass.ALTERNATIVE,
        currency=USDC,
        price_precision=3,
        price_increment=Price.from_str("0.001"),
        size_precision=6,
        size_increment=Quantity.from_str("0.000001"),
        activation_ns=0,
        expiration_ns=2**62,
        max_quantity=None,
        min_quantity=None,
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
        ts_event=0,
        ts_init=0,
    )


def _decimal(micro: int, places: int) -> str:
    """`micro` micro-units as a decimal string with `places` decimals: exact for prices on the
    instruments' 0.001 tick (multiples of 1,000) and for sizes (6 decimals)."""
    whole, frac = divmod(micro, 1_000_000)
    step = 10 ** (6 - places)
    if frac % step:
        raise ValueError(f"{micro} micro-units do not fit {places} decimals: the peer would round them")
    return f"{whole}.{frac // step:0{places}d}"


def _load(path: str) -> tuple[list[Any], list[Any], int]:
    """(instruments, deltas, delta lines)."""
    tokens: dict[str, Any] = {}
    deltas: list[Any] = []
    clear_order = BookOrder(OrderSide.NO_ORDER_SIDE, Price(0, 3), Quantity(0, 6), 0)
    seq = 0
    with open(path, encoding="ascii") as f:
        for line in f:
            ts, token, action, side, price, size, last = line.split()
            inst = tokens.get(token)
            if inst is None:
                inst = tokens[token] = _instrument(len(tokens))
            ns = int(ts) * 1_000_000
            flags = RecordFlag.F_LAST if last == "1" else 0
            if action == "C":
                order = clear_order
                flags |= RecordFlag.F_SNAPSHOT
            else:
                order = BookOrder(_SIDES[side], Price.from_str(_decimal(int(price), 3)),
                                  Quantity.from_str(_decimal(int(size), 6)), 0)  # fmt: skip
                if action == "A":
                    flags |= RecordFlag.F_SNAPSHOT
            seq += 1
            deltas.append(OrderBookDelta(inst.id, _ACTIONS[action], order, flags, seq, ns, ns))
    return list(tokens.values()), deltas, seq


def _once(path: str) -> dict[str, Any]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    instruments, deltas, n = _load(path)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        venue=_VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USDC,
        starting_balances=[Money(1_000_000, USDC)],
        book_type=BookType.L2_MBP,
    )
    for inst in instruments:
        engine.add_instrument(inst)
    engine.add_data(deltas)
    strategy = _Subscribed([inst.id for inst in instruments])
    engine.add_strategy(strategy)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    engine.run()
    wall2, cpu2 = time.perf_counter(), time.process_time()
    engine.get_result()
    engine.trader.generate_order_fills_report()
    engine.trader.generate_positions_report()
    engine.trader.generate_account_report(_VENUE)
    wall3, cpu3 = time.perf_counter(), time.process_time()
    engine.dispose()
    return {
        "deltas": n,
        "tokens": len(instruments),
        "batches_seen": strategy.batches,
        "best_bids_seen": strategy.bids_seen,
        "load_s": wall1 - wall0,
        "load_cpu_s": cpu1 - cpu0,
        "replay_s": wall2 - wall1,
        "replay_cpu_s": cpu2 - cpu1,
        "report_s": wall3 - wall2,
        "report_cpu_s": cpu3 - cpu2,
    }


def main() -> None:
    import nautilus_trader  # type: ignore[import-not-found]

    path, repeat = sys.argv[1], int(sys.argv[2])
    runs = [_once(path) for _ in range(repeat)]
    print(
        json.dumps({"version": nautilus_trader.__version__, "python": sys.version.split()[0], "runs": runs})
    )


if __name__ == "__main__":
    main()
