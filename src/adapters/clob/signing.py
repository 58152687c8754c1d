"""EIP-712 hashing and signing of CLOB V2 orders, and their exact POST /order bodies.

Theory of operation. Everything that does not depend on the order is computed once per OrderSigner:
the two exchange domain separators (normal and neg-risk, PROTOCOL.md 1.1-1.2), the Order type hash,
the 32-byte words of maker, signer, side+signatureType and metadata+builder. Per order, the struct
hash is one keccak over nine byte strings joined into the 384-byte ABI encoding, the digest one keccak
over 0x1901 || domain separator || struct hash, and the signature one libsecp256k1 call. The wire body
is one f-string whose bytes equal the official client's `json.dumps(..., separators=(",", ":"))`.

Speed. Signing (~25 us) dominates the 30 us budget, so the rest must stay within a few microseconds.
Both hashes of an order's digest are one call into `_orderhash.c` (its own keccak-256, with the
struct's words written in C) where it is built; the Python hashing below is its reference and its
fallback. pycryptodome's public keccak API costs ~5 us per hash in Python wrapper overhead (ctypes
backend, per-call state allocation); the Python path calls its compiled `_keccak` core directly
through cffi function pointers on a preallocated state (~1.5 us). Likewise coincurve's
`sign_recoverable` allocates and copies per call; the same libsecp256k1 function is called with
preallocated buffers. Both couplings are to the pinned dependencies' compiled cores and are pinned
down by the signed-order vectors: if an upgrade breaks them, the contract tests fail, not production
silently.

Preallocated buffers make EcdsaKey and OrderSigner unsafe to share between threads: use one per
thread. ParallelSigner does that for baskets: the legs of one decision are signed at once by the
calling thread and a few persistent worker threads, each with an OrderSigner of its own. It pays
because the libsecp256k1 call (~30 of a signature's ~38 us) runs without the GIL: coincurve's cffi
module wraps every C call in PyEval_SaveThread/RestoreThread. Measured with a 1 s switch interval
beside a thread spinning in pure Python: 2 s of signing made ~130 signatures (each call hands the
GIL over), a pure-Python call of the same length ~110,000 (the GIL stays with the caller).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import itertools
import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Final, Generic, Protocol, TypeVar

import coincurve._libsecp256k1 as _libsecp256k1  # type: ignore[import-not-found]
import msgspec
from coincurve import PrivateKey
from coincurve.context import GLOBAL_CONTEXT

from polysnipe.adapters.clob.config import (
    BYTES32_ZERO,
    ClobConfig,
    SignatureType,
    exchange_contracts,
    validate_address,
    validate_bytes32,
)
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderRequest, OrderType
from polysnipe.core.order_math import amounts_for_order
from polysnipe.core.secret import Secret

__all__ = [
    "DOMAIN_TYPE_STRING",
    "GTD_SECURITY_THRESHOLD_S",
    "MAX_BATCH_ORDERS",
    "ORDER_TYPE_STRING",
    "BatchOrderSigningPort",
    "DigestSigner",
    "EcdsaKey",
    "InvalidPrivateKey",
    "OrderSigner",
    "OrderSigningFailed",
    "OrderSigningPort",
    "ParallelSigner",
    "PrivateKeyInput",
    "SignedOrder",
    "UnsignedOrder",
    "batch_post_body",
    "checksum_address",
    "compiled_hashes_available",
    "domain_separator",
    "hashing_implementation",
    "keccak256",
    "order_terms",
    "private_key_bytes",
    "salt_from_order_id",
    "signing_threads",
    "use_pure_python",
    "wire_expiration_s",
]

ORDER_TYPE_STRING: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,"
    "uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
DOMAIN_TYPE_STRING: Final = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
#: ERC-7739 wrapper of POLY_1271 (deposit wallet) signatures, PROTOCOL.md 2
_TYPED_DATA_SIGN_STRING: Final = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
)
_EXCHANGE_NAME: Final = "Polymarket CTF Exchange"
_EXCHANGE_VERSION: Final = "2"

#: POST /orders takes at most this many orders (PROTOCOL.md 5.2)
MAX_BATCH_ORDERS: Final = 15


_ffi: Any = _libsecp256k1.ffi
_secp: Any = _libsecp256k1.lib


# -- keccak-256 ----------------------------------------------------------------------------------
def _load_keccak() -> ctypes.CDLL:
    """pycryptodome's compiled keccak, the C core its `keccak.new` wraps (same library, same code)."""
    spec = importlib.util.find_spec("Crypto.Hash._keccak")
    if spec is None or spec.origin is None:
        raise ImportError("pycryptodome's compiled keccak (Crypto.Hash._keccak) is missing")
    return ctypes.CDLL(spec.origin)


_KECCAK_LIB: Final = _load_keccak()


# The compiled struct hash + order hash (_orderhash.c, built by `make install`); where it is not built
# or turned off (use_pure_python), OrderSigner.prepare hashes in Python, its reference.
_OrderHashes = Callable[
    [bytes, int, bytes, bytes, int, int, bytes, int, bytes, bytes], tuple[bytes, bytes] | None
]
_compiled_hashes: _OrderHashes | None
try:
    from polysnipe.adapters.clob._orderhash import order_hashes as _hashes

    _compiled_hashes = _hashes
except ImportError:  # the extension is not built: the Python hashing serves alone
    _compiled_hashes = None

_order_hashes = _compiled_hashes


def use_pure_python(pure: bool) -> None:
    """Hash every order in Python (True), or with the compiled hashes where they are built (False).

    Called once at start by the runners (POLYSNIPE_PURE_PYTHON=1, runners/implementation.py)."""
    global _order_hashes
    _order_hashes = None if pure else _compiled_hashes


def compiled_hashes_available() -> bool:
    """True when the compiled order hashes (polysnipe.adapters.clob._orderhash) are built."""
    return _compiled_hashes is not None


def hashing_implementation() -> str:
    """ "compiled" or "python": whether OrderSigner.prepare hashes with _orderhash."""
    return "python" if _order_hashes is None else "compiled"


def _keccak_fn(name: str, signature: str) -> Any:
    # ctypes only finds the symbol; calls go through a cffi function pointer, ~3x cheaper per call.
    return _ffi.cast(signature, ctypes.cast(getattr(_KECCAK_LIB, name), ctypes.c_void_p).value)


_K_INIT: Final = _keccak_fn("keccak_init", "int(*)(void **, size_t, uint8_t)")
_K_DESTROY: Final = _keccak_fn("keccak_destroy", "int(*)(void *)")
_K_RESET: Final = _keccak_fn("keccak_reset", "int(*)(void *)")
_K_ABSORB: Final = _keccak_fn("keccak_absorb", "int(*)(void *, const uint8_t *, size_t)")
_K_DIGEST: Final = _keccak_fn("keccak_digest", "int(*)(void *, uint8_t *, size_t, uint8_t)")
#: keccak-256: capacity 512 bits (64 bytes), 24 rounds, original Keccak padding byte 0x01 (not SHA3's 0x06)
_K_CAPACITY, _K_ROUNDS, _K_PADDING = 64, 24, 0x01


class _Keccak256:
    """A reusable keccak-256 state; calling it hashes one message."""

    __slots__ = ("_out", "_state", "_view")

    def __init__(self) -> None:
        holder = _ffi.new("void **")
        if _K_INIT(holder, _K_CAPACITY, _K_ROUNDS):
            raise MemoryError("keccak_init failed")
        self._state = _ffi.gc(holder[0], _K_DESTROY)
        self._out = _ffi.new("uint8_t[32]")
        self._view = _ffi.buffer(self._out)

    def __call__(self, data: bytes) -> bytes:
        state = self._state
        # `|` (not `or`) so that all three calls always run, in order; any non-zero code is an error.
        if _K_RESET(state) | _K_ABSORB(state, data, len(data)) | _K_DIGEST(state, self._out, 32, _K_PADDING):
            raise RuntimeError("keccak failed")
        return self._view[:]  # type: ignore[no-any-return]


def keccak256(data: bytes) -> bytes:
    """One-off keccak-256 for slow paths (fresh state, so safe from any thread)."""
    return _Keccak256()(data)


def checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x-prefixed hex address."""
    lower = validate_address(address)[2:].lower()
    digest = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(lower, digest, strict=False))


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(validate_address(address)[2:])


def domain_separator(chain_id: int, verifying_contract: str, *, name: str, version: str) -> bytes:
    """hashStruct(EIP712Domain) with a verifyingContract (the order domain, PROTOCOL.md 1.2)."""
    return keccak256(
        keccak256(DOMAIN_TYPE_STRING.encode())
        + keccak256(name.encode())
        + keccak256(version.encode())
        + _word(chain_id)
        + _address_word(verifying_contract)
    )


# -- ECDSA ---------------------------------------------------------------------------------------
_CTX: Final = GLOBAL_CONTEXT.ctx
_V: Final = (b"\x1b", b"\x1c")  # Ethereum's v = 27 + recovery id


class DigestSigner(Protocol):
    """Anything that signs a 32-byte EIP-712 digest for an address (in process now, a server later)."""

    @property
    def address(self) -> str: ...

    def sign_order_digest(self, digest: bytes) -> bytes:
        """65 bytes r || s || v with v in {27, 28}, RFC 6979 deterministic."""
        ...


#: the order n of secp256k1: a private key is an integer in [1, n - 1]
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")

#: what EcdsaKey and the factory accept: the key as typed (hex), as raw bytes, or wrapped in a Secret
PrivateKeyInput = str | bytes | Secret[str] | Secret[bytes]


class InvalidPrivateKey(ValueError):
    """A private key that is not 32 bytes in the secp256k1 range. The message never shows the key."""


def private_key_bytes(private_key: PrivateKeyInput) -> bytes:
    """The 32 raw bytes of a private key, validated; raise InvalidPrivateKey otherwise.

    A text key is exactly 64 ASCII hex digits, with or without a 0x prefix; raw bytes are exactly 32.
    Anything else is refused rather than repaired: `bytes.fromhex` would skip spaces, and coincurve
    pads or truncates, so a 31- or 33-byte key (a copy-paste slip) would sign for another address.
    """
    value = private_key.reveal() if isinstance(private_key, Secret) else private_key
    if isinstance(value, bytes):
        if len(value) != 32:
            raise InvalidPrivateKey(f"a raw private key must be 32 bytes, got {len(value)}")
        secret = value
    elif isinstance(value, str):
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        if not _HEX_DIGITS.issuperset(digits):
            raise InvalidPrivateKey(
                "a private key must be 64 hex digits (0-9, a-f), optionally 0x-prefixed, with no "
                "spaces or other characters"
            )
        if len(digits) != 64:
            raise InvalidPrivateKey(
                f"a private key must be 32 bytes = 64 hex digits, optionally 0x-prefixed; "
                f"got {len(digits)} hex digits"
            )
        secret = bytes.fromhex(digits)
    else:
        raise InvalidPrivateKey(f"a private key is a hex string or 32 bytes, not {type(value).__name__}")
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
        raise InvalidPrivateKey("the private key is outside the secp256k1 range 1..n-1")
    return secret


class EcdsaKey:
    """A secp256k1 private key. Its repr shows only the address; the secret never leaves it."""

    __slots__ = ("_address", "_compact", "_compact_view", "_recid", "_secret", "_sig")

    def __init__(self, private_key: PrivateKeyInput) -> None:
        key = PrivateKey(private_key_bytes(private_key))
        self._secret: bytes = key.secret
        public = key.public_key.format(compressed=False)[1:]
        self._address = checksum_address("0x" + keccak256(public)[-20:].hex())
        self._sig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
        self._compact = _ffi.new("unsigned char[64]")
        self._compact_view = _ffi.buffer(self._compact)
        self._recid = _ffi.new("int *")

    @property
    def address(self) -> str:
        return self._address

    def sign_order_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:  # the C call reads exactly 32 bytes
            raise ValueError("digest must be 32 bytes")
        if not _secp.secp256k1_ecdsa_sign_recoverable(
            _CTX, self._sig, digest, self._secret, _ffi.NULL, _ffi.NULL
        ):
            raise ValueError("secp256k1 signing failed")
        _secp.secp256k1_ecdsa_recoverable_signature_serialize_compact(
            _CTX, self._compact, self._recid, self._sig
        )
        return self._compact_view[:] + _V[self._recid[0]]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"EcdsaKey(address={self._address})"


# -- signed orders -------------------------------------------------------------------------------
#: The venue refuses a GTD whose expiration is less than a minute away ("one-minute security threshold",
#: PROTOCOL.md 4.1: to expire in N s, sign now + 60 + N). The engine cancels its own orders on time.
GTD_SECURITY_THRESHOLD_S: Final = 60


def wire_expiration_s(expiration_ms: int) -> int:
    """The signed body's `expiration` (unix seconds) for an engine GTD expiry in ms; 0 stays 0."""
    if expiration_ms <= 0:
        return 0
    return -(-expiration_ms // 1000) + GTD_SECURITY_THRESHOLD_S


def salt_from_order_id(order_id: str) -> int:
    """Deterministic salt: a retried order is byte-identical, so the venue sees a duplicate, not a
    second order. 48 bits keep it below 2^53 for JavaScript consumers of the JSON number."""
    return int.from_bytes(hashlib.blake2b(order_id.encode(), digest_size=6).digest(), "big")


@lru_cache(maxsize=16)
def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


_JSON_BOOL: Final = ("false", "true")


class SignedOrder(msgspec.Struct, frozen=True):
    """A signed V2 order; fields in wire order with wire names and wire types (PROTOCOL.md 5.1).

    A msgspec Struct, not an attrs class: one is made per order on the signing hot path, and a frozen
    attrs class sets its 14 fields through object.__setattr__ one by one (~1 us), msgspec in C (~0.1 us).
    """

    salt: int
    maker: str
    signer: str
    #: CTF position id, decimal string
    tokenId: str
    #: what the maker gives, 6-decimal units (USDC for BUY, shares for SELL)
    makerAmount: str
    takerAmount: str
    #: "BUY" | "SELL" (the signed struct carries 0 / 1)
    side: str
    #: unix seconds, "0" = none; travels in the body but is not signed in V2
    expiration: str
    signatureType: int
    #: creation time in ms, signed
    timestamp: str
    metadata: str
    #: bytes32 builder code: our attribution
    builder: str
    signature: str
    #: EIP-712 digest of the order, 0x-hex (not on the wire; the venue's orderID, PROTOCOL.md 4.2)
    order_hash: str

    def post_body(
        self, owner: str, order_type: OrderType, *, post_only: bool = False, defer_exec: bool = False
    ) -> bytes:
        """The exact POST /order body: sign the L2 HMAC over these bytes and send the same bytes."""
        if post_only and order_type.is_immediate:
            raise ValueError("post_only is not supported for FOK/FAK orders")
        # Every interpolated string is digits, hex or an enum value, validated when the order was
        # signed, so none needs JSON escaping; `owner` goes through json.dumps (cached).
        return (
            f'{{"order":{{"salt":{self.salt},"maker":"{self.maker}","signer":"{self.signer}",'
            f'"tokenId":"{self.tokenId}","makerAmount":"{self.makerAmount}",'
            f'"takerAmount":"{self.takerAmount}","side":"{self.side}","expiration":"{self.expiration}",'
            f'"signatureType":{self.signatureType},"timestamp":"{self.timestamp}",'
            f'"metadata":"{self.metadata}","builder":"{self.builder}","signature":"{self.signature}"}},'
            f'"owner":{_json_string(owner)},"orderType":"{order_type.value}",'
            f'"deferExec":{_JSON_BOOL[defer_exec]},"postOnly":{_JSON_BOOL[post_only]}}}'
        ).encode()


class UnsignedOrder(msgspec.Struct, frozen=True):
    """An order hashed and ready for its ECDSA signature (OrderSigner.prepare): the one step of
    signing that ParallelSigner hands to other threads, the rest staying on the caller's."""

    #: what the key signs: the order hash, or for POLY_1271 the ERC-7739 TypedDataSign digest
    digest: bytes
    #: EIP-712 digest of the order (the venue's orderID)
    order_hash: bytes
    #: hex appended to the signature: the ERC-7739 wrapper for POLY_1271, "" otherwise
    wrapper: str
    token_id: str
    side: Side
    maker_amount: int
    taker_amount: int
    salt: int
    timestamp_ms: int
    expiration_s: int


def batch_post_body(bodies: Sequence[bytes]) -> bytes:
    """POST /orders body from single-order bodies (each keeps its own orderType and flags)."""
    if not 1 <= len(bodies) <= MAX_BATCH_ORDERS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_ORDERS} orders, got {len(bodies)}")
    return b"[" + b",".join(bodies) + b"]"


_SIDE_NAMES: Final = ("BUY", "SELL")
_TOKEN_CACHE_MAX: Final = 65_536
_UINT256_END: Final = 2**256
#: decimal digits of 2**256 - 1
_UINT256_DIGITS: Final = 78


def order_terms(order: OrderRequest) -> tuple[int, int, int, int]:
    """(maker amount, taker amount, salt, expiration_s) of an engine order: its final amounts, its
    deterministic salt and its wire expiration. Raises ValueError (OrderMathError) for an order that
    cannot be signed. In-process and server signing both start here, so both sign the same order."""
    if order.order_type is OrderType.GTD:
        if order.expiration_ms <= 0:
            raise ValueError(f"GTD order {order.order_id} has no expiration")
    elif order.expiration_ms:
        raise ValueError(f"{order.order_type.value} order {order.order_id} cannot carry an expiration")
    maker_amount, taker_amount = amounts_for_order(
        order.side, order.price, order.size, order.order_type, order.tick_size
    )
    return (
        maker_amount,
        taker_amount,
        salt_from_order_id(order.order_id),
        wire_expiration_s(order.expiration_ms),
    )


class OrderSigningFailed(RuntimeError):
    """Signing refused or impossible (the signing server said no, or cannot be reached): the order is
    not sent. `code` is the OrderRejected reason, `detail` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class OrderSigningPort(Protocol):
    """What live execution needs to sign engine orders: OrderSigner in process, or the signing server
    (adapters/signer_client/orders.py). Raises ValueError for an order that cannot be signed and
    OrderSigningFailed when the signer refuses or cannot be reached."""

    @property
    def address(self) -> str:
        """The EOA that signs (also the POLY_ADDRESS of L2 headers and the rate budgets' key)."""
        ...

    async def sign_order(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder: ...


class BatchOrderSigningPort(OrderSigningPort, Protocol):
    """A signer that signs several orders in one call (the legs of a basket): one answer per order, in
    order, the signed order or the exception `sign_order` would have raised for it, so that one leg
    that cannot be signed fails alone."""

    async def sign_orders(
        self, orders: Sequence[OrderRequest], timestamp_ms: int
    ) -> list[SignedOrder | Exception]: ...


class OrderSigner:
    """Signs V2 orders for one wallet on one chain: (signer key, chain, signature type, funder, builder).

    `maker` is the funder (defaults to the signer's EOA); `signer` is the EOA, except for POLY_1271
    where it is the funder wallet and the signature is the ERC-7739 wrapper (PROTOCOL.md 2).
    """

    __slots__ = (
        "_builder",
        "_chain_id",
        "_digest_prefix",
        "_domain",
        "_keccak",
        "_maker",
        "_maker_signer_word",
        "_metadata_builder_word",
        "_poly_1271_tail",
        "_side_words",
        "_sign",
        "_signature_type",
        "_signature_type_int",
        "_signer",
        "_signer_address",
        "_token_words",
        "_type_hash",
    )

    def __init__(
        self,
        signer: DigestSigner,
        chain_id: int,
        *,
        signature_type: SignatureType = SignatureType.EOA,
        funder: str | None = None,
        builder_code: str = BYTES32_ZERO,
    ) -> None:
        contracts = exchange_contracts(chain_id)
        signature_type = SignatureType(signature_type)
        if signature_type is not SignatureType.EOA and funder is None:
            raise ValueError(f"signature type {signature_type.name} needs a funder wallet")
        self._signer = signer
        self._sign = signer.sign_order_digest
        self._chain_id = chain_id
        self._signature_type = signature_type
        self._signature_type_int = int(signature_type)
        self._maker = validate_address(funder, "funder") if funder is not None else signer.address
        self._signer_address = self._maker if signature_type is SignatureType.POLY_1271 else signer.address
        self._builder = validate_bytes32(builder_code, "builder_code")
        self._keccak = _Keccak256()
        self._domain = {
            neg_risk: domain_separator(chain_id, address, name=_EXCHANGE_NAME, version=_EXCHANGE_VERSION)
            for neg_risk, address in ((False, contracts.exchange_v2), (True, contracts.neg_risk_exchange_v2))
        }
        self._digest_prefix = {neg_risk: b"\x19\x01" + sep for neg_risk, sep in self._domain.items()}
        # Consecutive struct fields that never change are pre-joined: (maker, signer), (side,
        # signatureType) per side, (metadata, builder).
        self._type_hash = keccak256(ORDER_TYPE_STRING.encode())
        self._maker_signer_word = _address_word(self._maker) + _address_word(self._signer_address)
        self._side_words = tuple(_word(side) + _word(signature_type) for side in Side)
        self._metadata_builder_word = bytes(32) + bytes.fromhex(self._builder[2:])
        self._token_words: dict[str, bytes] = {}
        # POLY_1271: what follows the contents hash inside TypedDataSign, and the signature's tail
        type_string = _TYPED_DATA_SIGN_STRING.encode()
        self._poly_1271_tail = (
            keccak256(type_string),
            keccak256(b"DepositWallet")
            + keccak256(b"1")
            + _word(chain_id)
            + _address_word(self._signer_address)
            + bytes(32),
            ORDER_TYPE_STRING.encode().hex() + len(ORDER_TYPE_STRING).to_bytes(2, "big").hex(),
        )

    @classmethod
    def from_key(
        cls,
        private_key: PrivateKeyInput,
        chain_id: int,
        *,
        signature_type: SignatureType = SignatureType.EOA,
        funder: str | None = None,
        builder_code: str = BYTES32_ZERO,
    ) -> OrderSigner:
        return cls(
            EcdsaKey(private_key),
            chain_id,
            signature_type=signature_type,
            funder=funder,
            builder_code=builder_code,
        )

    @classmethod
    def for_config(cls, signer: DigestSigner, config: ClobConfig) -> OrderSigner:
        """The wallet, signature type and builder attribution that the adapter's config names."""
        return cls(
            signer,
            config.chain_id,
            signature_type=config.signature_type,
            funder=config.funder,
            builder_code=config.builder_code,
        )

    @property
    def address(self) -> str:
        """The EOA that signs (also the POLY_ADDRESS of L2 headers)."""
        return self._signer.address

    @property
    def maker(self) -> str:
        return self._maker

    @property
    def chain_id(self) -> int:
        return self._chain_id

    def domain_separator(self, neg_risk: bool) -> bytes:
        return self._domain[neg_risk]

    def _token_word(self, token_id: str) -> bytes:
        word = self._token_words.get(token_id)
        if word is None:
            # isdecimal+isascii: int() would also take "+1", " 1" or "1_0", which would sign one number
            # and send another string.
            # Length first: a huge string must neither reach int() nor be echoed whole.
            if not (len(token_id) <= _UINT256_DIGITS and token_id.isascii() and token_id.isdecimal()):
                raise ValueError(f"token id is not a decimal integer: {token_id[:80]!r}")
            value = int(token_id)
            if value >= _UINT256_END:
                raise ValueError(f"token id does not fit in uint256: {token_id!r}")
            word = _word(value)
            if len(self._token_words) >= _TOKEN_CACHE_MAX:
                self._token_words.clear()
            self._token_words[token_id] = word
        return word

    def sign(
        self,
        token_id: str,
        side: Side,
        maker_amount: int,
        taker_amount: int,
        *,
        neg_risk: bool,
        salt: int,
        timestamp_ms: int,
        expiration_s: int = 0,
    ) -> SignedOrder:
        """Sign an order whose amounts are already final (see core.order_math)."""
        unsigned = self.prepare(
            token_id, side, maker_amount, taker_amount,
            neg_risk=neg_risk, salt=salt, timestamp_ms=timestamp_ms, expiration_s=expiration_s,
        )  # fmt: skip
        return self.complete(unsigned, self._sign(unsigned.digest))

    def prepare(
        self,
        token_id: str,
        side: Side,
        maker_amount: int,
        taker_amount: int,
        *,
        neg_risk: bool,
        salt: int,
        timestamp_ms: int,
        expiration_s: int = 0,
    ) -> UnsignedOrder:
        """Everything of `sign` but the ECDSA signature: the digest the key signs, and what
        `complete` builds the signed order from. Raises ValueError for an order that cannot be
        signed."""
        end = _UINT256_END
        if not (0 < maker_amount < end and 0 < taker_amount < end and expiration_s >= 0):
            raise ValueError(f"invalid amounts {maker_amount}/{taker_amount} or expiration {expiration_s}")
        if not (0 <= salt < end and 0 <= timestamp_ms < end):
            raise ValueError(f"salt and timestamp must be uint256, got {salt} and {timestamp_ms}")
        keccak = self._keccak
        prefix = self._digest_prefix[neg_risk]
        token_word = self._token_word(token_id)
        hashes = _order_hashes
        hashed = None
        if hashes is not None:
            hashed = hashes(
                self._type_hash, salt, self._maker_signer_word, token_word, maker_amount, taker_amount,
                self._side_words[side], timestamp_ms, self._metadata_builder_word, prefix,
            )  # fmt: skip
        if hashed is None:
            # the reference (and the compiled hashes' fallback: an int beyond 64 bits)
            contents = keccak(
                b"".join(
                    (
                        self._type_hash,
                        salt.to_bytes(32, "big"),
                        self._maker_signer_word,
                        token_word,
                        maker_amount.to_bytes(32, "big"),
                        taker_amount.to_bytes(32, "big"),
                        self._side_words[side],
                        timestamp_ms.to_bytes(32, "big"),
                        self._metadata_builder_word,
                    )
                )
            )
            order_hash = keccak(prefix + contents)
        else:
            contents, order_hash = hashed
        digest, wrapper = order_hash, ""
        if self._signature_type is SignatureType.POLY_1271:
            # ERC-7739: the EOA signs TypedDataSign(contents, wallet domain) under the exchange
            # domain, and the wrapper carries what the wallet needs to rebuild that digest
            type_hash, wallet_domain, tail = self._poly_1271_tail
            digest = keccak(prefix + keccak(type_hash + contents + wallet_domain))
            wrapper = prefix[2:].hex() + contents.hex() + tail
        return UnsignedOrder(
            digest, order_hash, wrapper, token_id, side, maker_amount, taker_amount, salt, timestamp_ms,
            expiration_s,
        )  # fmt: skip

    def complete(self, unsigned: UnsignedOrder, signature: bytes) -> SignedOrder:
        """The signed order of `prepare`'s answer, with the key's 65-byte signature of its digest."""
        return SignedOrder(
            unsigned.salt,
            self._maker,
            self._signer_address,
            unsigned.token_id,
            str(unsigned.maker_amount),
            str(unsigned.taker_amount),
            _SIDE_NAMES[unsigned.side],
            str(unsigned.expiration_s),
            self._signature_type_int,
            str(unsigned.timestamp_ms),
            BYTES32_ZERO,
            self._builder,
            "0x" + signature.hex() + unsigned.wrapper,
            "0x" + unsigned.order_hash.hex(),
        )

    def sign_digest(self, digest: bytes) -> bytes:
        """The key's 65-byte signature (r || s || v) of a 32-byte digest."""
        return self._sign(digest)

    def sign_request(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        """Amounts, deterministic salt and signature for an engine order (the hot path)."""
        unsigned = self.prepare_request(order, timestamp_ms)
        return self.complete(unsigned, self._sign(unsigned.digest))

    def prepare_request(self, order: OrderRequest, timestamp_ms: int) -> UnsignedOrder:
        """`prepare` for an engine order: its amounts, deterministic salt and expiry (order_terms)."""
        maker_amount, taker_amount, salt, expiration_s = order_terms(order)
        return self.prepare(
            order.token_id,
            order.side,
            maker_amount,
            taker_amount,
            neg_risk=order.neg_risk,
            salt=salt,
            timestamp_ms=timestamp_ms,
            expiration_s=expiration_s,
        )

    async def sign_order(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        """OrderSigningPort: in process, a coroutine that never suspends (no event-loop round trip)."""
        return self.sign_request(order, timestamp_ms)

    async def sign_orders(
        self, orders: Sequence[OrderRequest], timestamp_ms: int
    ) -> list[SignedOrder | Exception]:
        """BatchOrderSigningPort, one after the other (ParallelSigner signs them at once)."""
        return [_signed_or_error(self, order, timestamp_ms) for order in orders]

    def __repr__(self) -> str:
        return (
            f"OrderSigner(address={self._signer.address}, chain_id={self._chain_id}, "
            f"signature_type={self._signature_type.name}, maker={self._maker})"
        )


def _signed_or_error(signer: OrderSigner, order: OrderRequest, timestamp_ms: int) -> SignedOrder | Exception:
    try:
        return signer.sign_request(order, timestamp_ms)
    except Exception as exc:  # ValueError for an order that cannot be signed; kept for its leg alone
        return exc


def signing_threads() -> int:
    """Worker threads for a ParallelSigner: one per CPU this process may run on, less the calling
    thread's (which signs too)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return cpus - 1


_T = TypeVar("_T")
_R = TypeVar("_R")


#: a result slot no thread has filled yet
_PENDING: Final[Any] = object()


class _Batch(Generic[_T, _R]):
    """The items of one ParallelSigner.map call, taken one at a time by whichever thread is free."""

    __slots__ = ("fn", "items", "n", "results", "taken")

    def __init__(self, fn: Callable[[OrderSigner, _T], _R], items: Sequence[_T]) -> None:
        self.fn = fn
        self.items = items
        self.n = len(items)
        self.results: list[_R | Exception] = [_PENDING] * self.n
        # next() on an itertools.count is one C call, atomic under the GIL: no lock per item
        self.taken = itertools.count()

    def do(self, signer: OrderSigner, i: int) -> _R | Exception:
        try:
            return self.fn(signer, self.items[i])
        except Exception as exc:  # ValueError for an order that cannot be signed: its item alone
            return exc

    def drain(self, signer: OrderSigner) -> None:
        """Do items until none is left to take."""
        n, results = self.n, self.results
        while (i := next(self.taken)) < n:
            results[i] = self.do(signer, i)

    def finish(self, signer: OrderSigner) -> list[_R | Exception]:
        """The caller's end: every result, doing itself the items a worker took and has not done.
        Never waiting on a worker keeps a basket's time within serial signing's even when the
        worker's CPU is taken by another process (a shared machine); the item is done twice then,
        with the same answer (`fn` is deterministic), and the worker's late copy is ignored."""
        out = self.results[:]
        for i, result in enumerate(out):
            if result is _PENDING:
                out[i] = self.do(signer, i)
        return out


class ParallelSigner:
    """Signs the legs of a basket in parallel: the calling thread hashes every leg, then it and
    `threads` persistent workers (signing_threads(): the CPUs less one) each take the next leg's
    ECDSA signature with a key of its own (`make_signer` builds an OrderSigner per thread, on
    independent buffers; see the module doc). The signatures are the ones OrderSigner makes: RFC
    6979 signing is deterministic.

    The workers run from `start()` to `close()` (both idempotent; building starts no thread, like
    the factories that build it); without them the calling thread signs alone. The caller never
    waits for a worker: it signs what is left, and then any leg a worker took but has not finished
    (a worker slow to wake or without a free CPU). It does wait for the GIL a worker holds, which
    on a host whose CPUs other processes keep busy can be a scheduler slice: workers pay only with
    a CPU free for them (threads=0 otherwise; the CLOB factory's `signing_threads`)."""

    __slots__ = ("_jobs", "_own", "_signers", "_threads")

    def __init__(self, make_signer: Callable[[], OrderSigner], threads: int | None = None) -> None:
        count = signing_threads() if threads is None else threads
        if count < 0:
            raise ValueError(f"threads must be >= 0, got {count}")
        self._own = make_signer()
        self._signers = [make_signer() for _ in range(count)]
        self._jobs: queue.SimpleQueue[_Batch[Any, Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads (one per signer; nothing when they run)."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._work, args=(signer,), name=f"order-signer-{n}", daemon=True)
            for n, signer in enumerate(self._signers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        return self._own.address

    @property
    def threads(self) -> int:
        """Worker threads running (0 before `start` and after `close`)."""
        return sum(1 for t in self._threads if t.is_alive())

    def _work(self, signer: OrderSigner) -> None:
        get = self._jobs.get
        while (batch := get()) is not None:
            batch.drain(signer)

    def map(self, fn: Callable[[OrderSigner, _T], _R], items: Sequence[_T]) -> list[_R | Exception]:
        """`fn(signer, item)` for every item, each thread with its own signer; the answers in the
        items' order, an item's exception in its place. `fn` must be deterministic: an item a worker
        is slow with is done again by the caller (_Batch.finish)."""
        batch = _Batch(fn, items)
        for _ in range(min(len(self._threads), len(items) - 1)):
            self._jobs.put(batch)
        batch.drain(self._own)
        return batch.finish(self._own)

    def sign_request(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        """One order, on the calling thread (nothing to share out)."""
        return self._own.sign_request(order, timestamp_ms)

    def sign_requests(
        self, orders: Sequence[OrderRequest], timestamp_ms: int
    ) -> list[SignedOrder | Exception]:
        """Every order signed (or the exception that refused it), in order; at once across threads."""
        own = self._own
        unsigned: list[UnsignedOrder | Exception] = []
        for order in orders:
            try:
                unsigned.append(own.prepare_request(order, timestamp_ms))
            except Exception as exc:  # ValueError: an order that cannot be signed fails alone
                unsigned.append(exc)
        return self.sign_prepared(unsigned)

    def sign_prepared(self, unsigned: Sequence[UnsignedOrder | Exception]) -> list[SignedOrder | Exception]:
        """The prepared orders signed, the ECDSA signatures shared out among the threads (an
        exception stays in its place). Only that step is: the hashing around it makes several short
        cffi calls, each of which hands the GIL over, and two threads doing whole orders spend the
        gain passing the GIL back and forth (measured: 5 legs 196 -> 188 us whole, 151 -> 97 us of
        signatures alone on 2 free CPUs)."""
        own = self._own
        digests = [u.digest for u in unsigned if not isinstance(u, Exception)]
        signatures = iter(self.map(OrderSigner.sign_digest, digests))
        out: list[SignedOrder | Exception] = []
        for u in unsigned:
            if isinstance(u, Exception):
                out.append(u)
                continue
            signature = next(signatures)
            out.append(signature if isinstance(signature, Exception) else own.complete(u, signature))
        return out

    async def sign_order(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        """OrderSigningPort (never suspends)."""
        return self._own.sign_request(order, timestamp_ms)

    async def sign_orders(
        self, orders: Sequence[OrderRequest], timestamp_ms: int
    ) -> list[SignedOrder | Exception]:
        """BatchOrderSigningPort (never suspends: the event loop's thread signs its share and waits)."""
        return self.sign_requests(orders, timestamp_ms)

    def close(self) -> None:
        """Stop and join the workers."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()

    def __repr__(self) -> str:
        return f"ParallelSigner({self._own!r}, threads={len(self._threads)})"
