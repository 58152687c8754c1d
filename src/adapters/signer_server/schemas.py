"""Wire types of the signing server: every request body is decoded into one of these, or refused.

msgspec checks types, patterns and ranges while decoding, so a handler only ever sees valid values;
unknown fields are refused, so a caller's typo is a 400 that names it, not a silently ignored field.
The same Structs produce the OpenAPI document (`msgspec.json.schema_components`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from polysnipe.adapters.signer_server.digests import ZERO_ADDRESS

__all__ = [
    "BuilderHeaders",
    "BuilderHeadersRequest",
    "ErrorBody",
    "Health",
    "OrderSignRequest",
    "OrderSignature",
    "SafeCreateSignRequest",
    "SafeTxSignRequest",
    "Signature",
]

Address = Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$", description="0x + 40 hex digits")]
Bytes32 = Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{64}$", description="0x + 64 hex digits")]
HexData = Annotated[
    str, msgspec.Meta(pattern="^0x([0-9a-fA-F]{2})*$", max_length=32_768, description="0x-hex bytes")
]
#: a uint256 as decimal digits (JSON numbers lose precision above 2^53 in JavaScript)
Uint256 = Annotated[str, msgspec.Meta(pattern="^(0|[1-9][0-9]{0,77})$", description="decimal uint256")]
ChainId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Uint63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class BuilderHeadersRequest(msgspec.Struct, forbid_unknown_fields=True):
    """What the builder signing SDKs send in remote mode (RELAYER.md 1.4)."""

    #: HTTP method of the relayer request ("GET", "POST")
    method: Annotated[str, msgspec.Meta(pattern="^[A-Za-z]{1,16}$")]
    #: relayer path without host or query, e.g. "/submit"
    path: Annotated[str, msgspec.Meta(pattern="^/[\\x21-\\x7e]{0,2047}$")]
    #: the exact HTTP body the relayer client will send; absent or null for none
    body: str | None = None
    #: unix seconds to sign for; absent or null: the server's clock
    timestamp: Uint63 | None = None


class BuilderHeaders(msgspec.Struct):
    """The four POLY_BUILDER_* headers, exactly; the TS SDK sends every key of this object."""

    POLY_BUILDER_API_KEY: str
    POLY_BUILDER_PASSPHRASE: str
    POLY_BUILDER_SIGNATURE: str
    POLY_BUILDER_TIMESTAMP: str


class OrderSignRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A CLOB V2 order whose amounts are final; the server computes its EIP-712 digest itself."""

    chain_id: ChainId
    #: the managed key's address (the order's signer EOA)
    signer: Address
    #: the funder (Safe, proxy or deposit wallet); null: the signer's EOA (signature type 0)
    maker: Address | None
    signature_type: Annotated[int, msgspec.Meta(ge=0, le=3)]
    builder_code: Bytes32
    token_id: Uint256
    side: Literal["BUY", "SELL"]
    maker_amount: Uint256
    taker_amount: Uint256
    neg_risk: bool
    salt: Uint63
    timestamp_ms: Uint63
    expiration_s: Uint63 = 0


class OrderSignature(msgspec.Struct):
    """The signed order in wire order and wire types (PROTOCOL.md 5.1), and its EIP-712 digest."""

    salt: int
    maker: str
    signer: str
    tokenId: str
    makerAmount: str
    takerAmount: str
    side: str
    expiration: str
    signatureType: int
    timestamp: str
    metadata: str
    builder: str
    signature: str
    order_hash: str


class SafeTxSignRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A Safe v1.3 transaction to sign as the Safe's owner (RELAYER.md 3.3)."""

    chain_id: ChainId
    signer: Address
    safe: Address
    to: Address
    value: Uint256
    data: HexData
    operation: Annotated[int, msgspec.Meta(ge=0, le=1)]
    nonce: Uint256
    safe_tx_gas: Uint256 = "0"
    base_gas: Uint256 = "0"
    gas_price: Uint256 = "0"
    gas_token: Address = ZERO_ADDRESS
    refund_receiver: Address = ZERO_ADDRESS


class SafeCreateSignRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The CreateProxy authorisation that deploys the signer's Safe through the factory (RELAYER.md 3.2)."""

    chain_id: ChainId
    signer: Address
    payment_token: Address = ZERO_ADDRESS
    payment: Uint256 = "0"
    payment_receiver: Address = ZERO_ADDRESS


class Signature(msgspec.Struct):
    """A signature and the digest it is over (both 0x-hex)."""

    digest: str
    signature: str
    #: SafeTx only: the Safe whose transaction this is; safe_create: the Safe to be deployed
    safe: str = ""


class ErrorBody(msgspec.Struct):
    """Every refusal: why, in one line."""

    error: str


class Health(msgspec.Struct):
    status: str
    keys: int
    builder: bool
