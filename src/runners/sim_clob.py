"""`polysnipe sim-clob`: the CLOB simulator as a server, and in a thread for tests.

Events (`--events`) are replayed into the matching engine at startup unless the config asks for
paced replay, in which case `POST /_sim/advance` feeds them. Wallets the balances file does not name
hold nothing unless `ClobSimConfig.default_usdc_micro` is set explicitly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from polysnipe.adapters.sim.clob_app import create_app
from polysnipe.adapters.sim.clob_state import ClobSimConfig, ClobSimState

__all__ = ["serve", "start_in_thread"]

_TIMEOUT_S = 10.0


def serve(
    host: str,
    port: int,
    markets_path: str | Path,
    events_path: str | Path | None = None,
    balances_path: str | Path | None = None,
    *,
    config: ClobSimConfig | None = None,
) -> None:
    """Run the simulator until interrupted."""
    state = ClobSimState.from_files(markets_path, events_path, balances_path, config=config)
    uvicorn.run(create_app(state), host=host, port=port, log_level="info", lifespan="on")


def start_in_thread(
    markets_path: str | Path,
    events_path: str | Path | None = None,
    balances_path: str | Path | None = None,
    *,
    config: ClobSimConfig | None = None,
    tick_interval_s: float = 0.02,
) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 on a free port in a daemon thread; returns (base_url, stop).

    The listening socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it. `stop()` shuts the server down and joins the thread.
    """
    state = ClobSimState.from_files(markets_path, events_path, balances_path, config=config)
    app = create_app(state, tick_interval_s=tick_interval_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
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
