"""The CLOB simulator: the venue of PROTOCOL.md as the official clients see it, over HTTP and
WebSockets, in front of the same MatchingEngine the backtest trades against.

Modules, one role each:

* `config`     ClobSimConfig (fixed settings) and Faults (switched at run time)
* `errors`     the venue's error texts and VenueError
* `wire`       request bodies and POST /order elements parsed, the order struct hash and price
* `accounts`   API keys, wallets, balances, deposits, which wallet a user trades from
* `auth`       L1 / L2 / user-channel credentials, order signatures, rate-limit buckets
* `market`     markets and books as shown (the engine's merged view), ticks, last trade prices
* `orders`     order intake and execution, the order and trade store, cancels, expiry, settlement
* `records`    what the venue remembers: orders, trades, placements, the order log
* `channels`   the market and user WebSocket channels and their fan-out to sockets
* `heartbeats` chained heartbeats and the cancel-on-silence timer
* `render`     every JSON shape the venue returns
* `state`      ClobSimState, composing the above around one engine, plus event replay and ticks
* `guards`     the request-body limit, fault texts, how a lost answer looks on the wire
* `app`        the ASGI app: routes, auth before parsing, faults, the admin API

Identity. A user is an EOA address: API keys belong to it, heartbeats and the user channel are per
user, and open orders are listed per user. Funds belong to the order's `maker` wallet (accounts.py).
"""

from polysnipe.adapters.sim.clob.accounts import ApiKey, Balances, parse_balances
from polysnipe.adapters.sim.clob.app import create_app
from polysnipe.adapters.sim.clob.auth import TokenBucket, recover_address
from polysnipe.adapters.sim.clob.config import ClobSimConfig, Faults
from polysnipe.adapters.sim.clob.errors import ERRORS, VenueError
from polysnipe.adapters.sim.clob.orders import MAX_BATCH
from polysnipe.adapters.sim.clob.records import OrderLogEntry, Placement, SimOrder, SimTrade
from polysnipe.adapters.sim.clob.render import END_CURSOR, INITIAL_CURSOR
from polysnipe.adapters.sim.clob.state import ClobSimState

__all__ = [
    "END_CURSOR",
    "ERRORS",
    "INITIAL_CURSOR",
    "MAX_BATCH",
    "ApiKey",
    "Balances",
    "ClobSimConfig",
    "ClobSimState",
    "Faults",
    "OrderLogEntry",
    "Placement",
    "SimOrder",
    "SimTrade",
    "TokenBucket",
    "VenueError",
    "create_app",
    "parse_balances",
    "recover_address",
]
