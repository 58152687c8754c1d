"""Types of the compiled market-channel fast path (src/adapters/clob/_fastdecode.c)."""

from collections.abc import Callable
from typing import Any

from polysnipe.core.events import Event, PriceChange

def decode_market(data: bytes | bytearray | memoryview | str, /) -> list[Event] | None: ...

class FeedKeeper:
    """BookKeeper.on_frame's compiled common case (the source's comment says which)."""

    def __init__(
        self,
        keeper: object,
        tokens: dict[str, Any],
        token_type: type,
        hash_check_every: int,
        on_price_change: Callable[[PriceChange, int, list[Event], int], None],
        on_text: Callable[[bytes | str, int, list[Event]], None],
    ) -> None: ...
    def on_frame(self, data: bytes | str, recv_ms: int, /) -> list[Event]: ...
