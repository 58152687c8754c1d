"""`polysnipe sim-clob`: the CLOB simulator as a server, and in a thread for tests.

Events (`--events`) are replayed into the matching engine at startup unless the config asks for
paced replay, in which case `POST /_sim/advance` feeds them. Wallets the balances file does not name
hold nothing unless `ClobSimConfig.default_usdc_micro` is set explicitly.

The admin API (`/_sim/...`) steers the venue: faults, replay, injected books. It is served beyond
loopback only with an admin token (POLYSNIPE_SIM_ADMIN_TOKEN), which every admin call must then
present as `Authorization: Bearer <token>`; a non-loopback bind without one is refused.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import uvicorn

from polysnipe.adapters.sim.clob import ClobSimConfig, ClobSimState, create_app

__all__ = ["ENV_ADMIN_TOKEN", "AdminExposed", "admin_token_for", "serve", "start_in_thread"]

ENV_ADMIN_TOKEN: Final = "POLYSNIPE_SIM_ADMIN_TOKEN"
_TIMEOUT_S = 10.0


class AdminExposed(ValueError):
    """A bind beyond loopback without an admin token: anyone who reaches the port could steer the venue."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def admin_token_for(host: str, env: Mapping[str, str]) -> str | None:
    """The admin token the admin API will require (None: open, loopback only).

    Raises AdminExposed when `host` is not a loopback address and the environment sets no token.
    """
    token = env.get(ENV_ADMIN_TOKEN) or None
    if token is None and not _is_loopback(host):
        raise AdminExposed(
            f"sim-clob: refusing to serve the admin API on {host}: set {ENV_ADMIN_TOKEN} "
            "(admin calls then need it as a bearer token) or bind 127.0.0.1"
        )
    return token


def serve(
    host: str,
    port: int,
    markets_paths: str | Path | Sequence[str | Path],
    events_path: str | Path | None = None,
    balances_path: str | Path | None = None,
    *,
    config: ClobSimConfig | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run the simulator until interrupted; a refused bind is one line on stderr and exit code 2."""
    try:
        token = admin_token_for(host, os.environ if env is None else env)
    except AdminExposed as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    state = ClobSimState.from_files(markets_paths, events_path, balances_path, config=config)
    uvicorn.run(
        create_app(state, admin_token=token),
        host=host,
        port=port,
        log_level="info",
        lifespan="on",
        ws_max_size=state.config.max_body_bytes,
    )


def start_in_thread(
    markets_paths: str | Path | Sequence[str | Path],
    events_path: str | Path | None = None,
    balances_path: str | Path | None = None,
    *,
    config: ClobSimConfig | None = None,
    tick_interval_s: float = 0.02,
    admin_token: str | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 on a free port in a daemon thread; returns (base_url, stop).

    The listening socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it. `stop()` shuts the server down and joins the thread.
    """
    state = ClobSimState.from_files(markets_paths, events_path, balances_path, config=config)
    app = create_app(state, tick_interval_s=tick_interval_s, admin_token=admin_token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws_max_size=state.config.max_body_bytes,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sim-clob")
    thread.start()
    deadline = time.monotonic() + _TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("CLOB simulator did not start")
        time.sleep(0.005)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=_TIMEOUT_S)
        sock.close()

    return f"http://127.0.0.1:{port}", stop
