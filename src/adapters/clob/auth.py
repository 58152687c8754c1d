"""CLOB authentication: L1 (ClobAuth EIP-712 wallet signature) and L2 (API-key HMAC) headers.

L1 proves control of the EOA and is only used to create or derive API credentials (PROTOCOL.md 6.1).
L2 signs every trading request with the API secret (PROTOCOL.md 6.2): the HMAC-SHA256 of
`timestamp + METHOD + path + body`, where path has no query string and body is the exact bytes sent.

Keys stay inside the objects that use them: the API secret and passphrase are held as `Secret`s (read
with `reveal()` only where a header or frame is built), reprs show addresses and the API key's tail
only, and nothing here logs. The in-process LocalSigner sits behind SignerPort so that a signing server
can replace it without touching the callers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final, Protocol

import attrs

from polysnipe.adapters.clob.config import validate_address
from polysnipe.adapters.clob.signing import DigestSigner, EcdsaKey, PrivateKeyInput, keccak256
from polysnipe.core.secret import Secret

__all__ = [
    "CLOB_AUTH_MESSAGE",
    "ApiCreds",
    "ApiKeySigner",
    "BuilderAuth",
    "L2Auth",
    "LocalSigner",
    "SignerPort",
    "clob_auth_digest",
    "l2_signature",
]

#: the fixed text every ClobAuth message carries (PROTOCOL.md 1.5)
CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"

_AUTH_DOMAIN_TYPE: Final = keccak256(b"EIP712Domain(string name,string version,uint256 chainId)")
_AUTH_TYPE: Final = keccak256(b"ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_AUTH_NAME: Final = keccak256(b"ClobAuthDomain")
_AUTH_VERSION: Final = keccak256(b"1")
_AUTH_MESSAGE_HASH: Final = keccak256(CLOB_AUTH_MESSAGE.encode())


def _secret_bytes(secret: str | Secret[str]) -> bytes:
    """The HMAC key: the secret is URL-safe base64 as issued; like the TS client, also accept the
    standard alphabet and missing padding. Unlike urlsafe_b64decode, reject stray characters: a
    mangled secret must fail here, not as a 401 on the first order."""
    text = secret.reveal() if isinstance(secret, Secret) else secret
    if not isinstance(text, str):
        raise TypeError(f"API secret must be a str, not {type(text).__name__}")
    standard = text.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("API secret is not base64") from None
    if not key:
        raise ValueError("API secret is empty")
    return key


def _as_secret(value: str | Secret[str]) -> Secret[str]:
    return value if isinstance(value, Secret) else Secret(value)


def _header_value(what: str, value: str) -> None:
    """API key and passphrase travel in HTTP headers: printable ASCII, non-empty (never echoed)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not (value and value.isascii() and value.isprintable()):
        raise ValueError(f"{what} must be non-empty printable ASCII")


def _check_api_key(_: object, __: attrs.Attribute[str], value: str) -> None:
    _header_value("API key", value)


def _check_secret(_: object, __: attrs.Attribute[Secret[str]], value: Secret[str]) -> None:
    _secret_bytes(value)


def _check_passphrase(_: object, __: attrs.Attribute[Secret[str]], value: Secret[str]) -> None:
    _header_value("API passphrase", value.reveal())


def _tail(value: str) -> str:
    return "…" + value[-4:] if len(value) > 8 else "…"


@attrs.frozen(slots=True, repr=False)
class ApiCreds:
    """L2 credentials (from POST /auth/api-key or GET /auth/derive-api-key); also the builder's.

    `secret` and `passphrase` are Secrets (plain strings are wrapped on the way in): read them with
    `.reveal()` where a header or a subscription frame is built. The API key is an identifier, not a
    secret (it is the `owner` of every order body), but it is shown by its tail only.
    """

    #: also the `owner` of every order body
    api_key: str = attrs.field(validator=_check_api_key)
    secret: Secret[str] = attrs.field(converter=_as_secret, validator=_check_secret)
    passphrase: Secret[str] = attrs.field(converter=_as_secret, validator=_check_passphrase)

    def __repr__(self) -> str:
        return f"ApiCreds(api_key={_tail(self.api_key)}, secret=***, passphrase=***)"


def clob_auth_digest(address: str, chain_id: int, timestamp_s: int, nonce: int = 0) -> bytes:
    """EIP-712 digest of ClobAuth: what L1 signs and what a verifier recovers the address from.

    The domain has no verifyingContract, and `timestamp` is a *string* field (unix seconds).
    """
    domain = keccak256(_AUTH_DOMAIN_TYPE + _AUTH_NAME + _AUTH_VERSION + chain_id.to_bytes(32, "big"))
    struct = keccak256(
        _AUTH_TYPE
        + bytes(12)
        + bytes.fromhex(validate_address(address)[2:])
        + keccak256(str(timestamp_s).encode())
        + nonce.to_bytes(32, "big")
        + _AUTH_MESSAGE_HASH
    )
    return keccak256(b"\x19\x01" + domain + struct)


def _l2_sign(mac: hmac.HMAC, timestamp_s: int, method: str, path: str, body: bytes | str) -> str:
    mac.update(f"{timestamp_s}{method.upper()}{path.partition('?')[0]}".encode())
    if body:
        mac.update(body.encode() if isinstance(body, str) else body)
    return base64.urlsafe_b64encode(mac.digest()).decode()


def l2_signature(
    secret: str | Secret[str], timestamp_s: int, method: str, path: str, body: bytes | str = b""
) -> str:
    """POLY_SIGNATURE of one request: URL-safe base64 (with padding) of HMAC-SHA256.

    `path` may carry a query string; only the bare path is signed, as the venue expects. A str body
    is signed as its UTF-8 bytes, verbatim (the Python client's apostrophe rewrite is not copied:
    it makes the signature disagree with the bytes sent, PROTOCOL.md 6.2).
    """
    return _l2_sign(
        hmac.new(_secret_bytes(secret), digestmod=hashlib.sha256), timestamp_s, method, path, body
    )


class L2Auth:
    """L2 header factory for one (address, credentials); the HMAC key is decoded once."""

    __slots__ = ("_address", "_creds", "_mac")

    def __init__(self, address: str, creds: ApiCreds) -> None:
        self._address = address
        self._creds = creds
        self._mac = hmac.new(_secret_bytes(creds.secret), digestmod=hashlib.sha256)

    def signature(self, timestamp_s: int, method: str, path: str, body: bytes | str = b"") -> str:
        return _l2_sign(self._mac.copy(), timestamp_s, method, path, body)

    def headers(self, timestamp_s: int, method: str, path: str, body: bytes | str = b"") -> dict[str, str]:
        """POLY_* headers; POLY_ADDRESS is the signer EOA even when a proxy/Safe/wallet holds funds."""
        creds = self._creds
        return {
            "POLY_ADDRESS": self._address,
            "POLY_SIGNATURE": self.signature(timestamp_s, method, path, body),
            "POLY_TIMESTAMP": str(timestamp_s),
            "POLY_API_KEY": creds.api_key,
            "POLY_PASSPHRASE": creds.passphrase.reveal(),
        }

    def __repr__(self) -> str:
        return f"L2Auth(address={self._address}, creds={self._creds!r})"


class BuilderAuth:
    """POLY_BUILDER_* headers that authenticate our calls to the relayer (RELAYER.md 1.1-1.2).

    Same HMAC as L2 auth, keyed with the builder's secret. Attribution of CLOB orders is the signed
    `builder` code, not these headers (PROTOCOL.md 7); the relayer is what needs them.
    """

    __slots__ = ("_creds", "_mac")

    def __init__(self, creds: ApiCreds) -> None:
        self._creds = creds
        self._mac = hmac.new(_secret_bytes(creds.secret), digestmod=hashlib.sha256)

    def headers(self, timestamp_s: int, method: str, path: str, body: bytes | str = b"") -> dict[str, str]:
        return {
            "POLY_BUILDER_API_KEY": self._creds.api_key,
            "POLY_BUILDER_PASSPHRASE": self._creds.passphrase.reveal(),
            "POLY_BUILDER_SIGNATURE": _l2_sign(self._mac.copy(), timestamp_s, method, path, body),
            "POLY_BUILDER_TIMESTAMP": str(timestamp_s),
        }

    def __repr__(self) -> str:
        return f"BuilderAuth({self._creds!r})"


class SignerPort(DigestSigner, Protocol):
    """Everything that needs a secret: order digests, L1 headers, L2 headers."""

    def l1_headers(self, timestamp_s: int, nonce: int = 0) -> dict[str, str]: ...

    def l2_headers(
        self, timestamp_s: int, method: str, path: str, body: bytes | str = b""
    ) -> dict[str, str]: ...


class LocalSigner:
    """SignerPort with the keys in this process (from settings); the signing server comes later."""

    __slots__ = ("_builder", "_chain_id", "_key", "_l2")

    def __init__(
        self,
        key: EcdsaKey,
        chain_id: int,
        creds: ApiCreds | None = None,
        builder_creds: ApiCreds | None = None,
    ) -> None:
        self._key = key
        self._chain_id = chain_id
        self._l2 = L2Auth(key.address, creds) if creds is not None else None
        self._builder = BuilderAuth(builder_creds) if builder_creds is not None else None

    @classmethod
    def from_private_key(
        cls,
        private_key: PrivateKeyInput,
        chain_id: int,
        creds: ApiCreds | None = None,
        builder_creds: ApiCreds | None = None,
    ) -> LocalSigner:
        return cls(EcdsaKey(private_key), chain_id, creds, builder_creds)

    @property
    def address(self) -> str:
        return self._key.address

    def sign_order_digest(self, digest: bytes) -> bytes:
        return self._key.sign_order_digest(digest)

    def l1_headers(self, timestamp_s: int, nonce: int = 0) -> dict[str, str]:
        address = self._key.address
        signature = self._key.sign_order_digest(clob_auth_digest(address, self._chain_id, timestamp_s, nonce))
        return {
            "POLY_ADDRESS": address,
            "POLY_SIGNATURE": "0x" + signature.hex(),
            "POLY_TIMESTAMP": str(timestamp_s),
            "POLY_NONCE": str(nonce),
        }

    def l2_headers(self, timestamp_s: int, method: str, path: str, body: bytes | str = b"") -> dict[str, str]:
        if self._l2 is None:
            raise PermissionError("L2 headers need API credentials (create or derive them with L1 first)")
        return self._l2.headers(timestamp_s, method, path, body)

    def builder_headers(
        self, timestamp_s: int, method: str, path: str, body: bytes | str = b""
    ) -> dict[str, str]:
        """The relayer's POLY_BUILDER_* headers (the core's BuilderSigner port)."""
        if self._builder is None:
            raise PermissionError("builder headers need the builder's API credentials")
        return self._builder.headers(timestamp_s, method, path, body)

    def __repr__(self) -> str:
        return (
            f"LocalSigner(address={self._key.address}, chain_id={self._chain_id}, l2={self._l2 is not None})"
        )


class ApiKeySigner:
    """SignerPort of an engine whose trading key is on the signing server: L2 headers for the key's
    address from its API credentials, nothing that needs the key itself (L1 auth, digests)."""

    __slots__ = ("_address", "_l2")

    def __init__(self, address: str, creds: ApiCreds) -> None:
        self._address = address
        self._l2 = L2Auth(address, creds)

    @property
    def address(self) -> str:
        return self._address

    def sign_order_digest(self, digest: bytes) -> bytes:
        raise PermissionError("the trading key is on the signing server: orders are signed there")

    def l1_headers(self, timestamp_s: int, nonce: int = 0) -> dict[str, str]:
        raise PermissionError("L1 auth needs the trading key, which is on the signing server")

    def l2_headers(self, timestamp_s: int, method: str, path: str, body: bytes | str = b"") -> dict[str, str]:
        return self._l2.headers(timestamp_s, method, path, body)

    def __repr__(self) -> str:
        return f"ApiKeySigner(address={self._address})"
