"""Types of the compiled order hashes (src/adapters/clob/_orderhash.c)."""

def order_hashes(
    type_hash: bytes,
    salt: int,
    maker_signer: bytes,
    token: bytes,
    maker_amount: int,
    taker_amount: int,
    side_signature_type: bytes,
    timestamp_ms: int,
    metadata_builder: bytes,
    prefix: bytes,
    /,
) -> tuple[bytes, bytes] | None: ...
def keccak256(data: bytes | bytearray | memoryview, /) -> bytes: ...
