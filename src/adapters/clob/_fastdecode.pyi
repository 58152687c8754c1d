"""Types of the compiled price_change fast path (src/adapters/clob/_fastdecode.c)."""

from polysnipe.core.events import PriceChange

def decode_price_change(data: bytes | bytearray | memoryview | str, /) -> list[PriceChange] | None: ...
