"""Types of the compiled market-channel fast path (src/adapters/clob/_fastdecode.c)."""

from polysnipe.core.events import Event, LastTrade, PriceChange

def decode_market(data: bytes | bytearray | memoryview | str, /) -> list[Event] | None: ...
def decode_feed(
    data: bytes | bytearray | memoryview | str, prices: list[str], /
) -> list[PriceChange | LastTrade] | None: ...
