"""Where the managed trader keys live: encrypted key files or a PKCS#11 token, behind one interface.

A provider hands out DigestSigners (address + sign a 32-byte digest), never key material: the key
file backend decrypts into an EcdsaKey held in this process only, the PKCS#11 backend never sees the
key at all (it is generated inside the token and signs there). Reprs and errors show addresses only.

PKCS#11 facts (HSM.md): CKM_ECDSA over the digest returns r||s without a recovery id; Ethereum wants
low-s, and v is found by trying both recovery ids against the token's public key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final, Protocol

from coincurve import PublicKey

from polysnipe.adapters.clob.signing import DigestSigner, EcdsaKey, checksum_address, keccak256
from polysnipe.core.secret import Secret

__all__ = ["KeyProvider", "KeyProviderError", "KeystoreProvider", "Pkcs11Provider"]

_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = _N // 2
#: eth-account's default scrypt cost for keystore files
DEFAULT_SCRYPT_N: Final = 262_144
_LABEL_PREFIX: Final = "polysnipe-"


class KeyProviderError(RuntimeError):
    """A backend that cannot be opened or used (wrong password or PIN, missing module, bad file)."""


class KeyProvider(Protocol):
    """The server's keys: list them, sign with one, make a new one (its address is all that is shown)."""

    def addresses(self) -> list[str]: ...

    def signer(self, address: str) -> DigestSigner | None:
        """The key of `address` (any case), or None when this provider holds no such key."""
        ...

    def create(self) -> str: ...


def _address_of_point(point: bytes) -> str:
    """The address of a 65-byte uncompressed secp256k1 point."""
    return checksum_address("0x" + keccak256(point[1:])[-20:].hex())


class KeystoreProvider:
    """Encrypted key files in one directory, as eth-account writes them (scrypt, AES-128-CTR).

    Every file is decrypted once when the provider opens (scrypt is slow by design), the keys kept as
    EcdsaKeys; a new key is written with mode 0600 under its address.
    """

    __slots__ = ("_directory", "_keys", "_password", "_scrypt_n")

    def __init__(self, directory: Path, password: Secret[str], *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        from eth_account import Account

        self._directory = directory
        self._password = password
        self._scrypt_n = scrypt_n
        self._keys: dict[str, EcdsaKey] = {}
        if not directory.is_dir():
            raise KeyProviderError(f"{directory}: no such directory of key files")
        for path in sorted(directory.glob("*.json")):
            try:
                blob = json.loads(path.read_text(encoding="utf-8"))
                raw = Account.decrypt(blob, password.reveal())
            except ValueError as exc:
                # eth-account says "MAC mismatch" for a wrong password; never echo more than that
                raise KeyProviderError(f"{path.name}: cannot decrypt ({str(exc)[:60]})") from None
            key = EcdsaKey(bytes(raw))
            self._keys[key.address.lower()] = key

    def addresses(self) -> list[str]:
        return sorted(key.address for key in self._keys.values())

    def signer(self, address: str) -> DigestSigner | None:
        return self._keys.get(address.lower())

    def create(self) -> str:
        from eth_account import Account

        account = Account.create()
        blob = Account.encrypt(account.key, self._password.reveal(), kdf="scrypt", iterations=self._scrypt_n)
        key = EcdsaKey(bytes(account.key))
        path = self._directory / f"{key.address}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(blob, fh)
        self._keys[key.address.lower()] = key
        return key.address

    def __repr__(self) -> str:
        return f"KeystoreProvider({self._directory}, keys={len(self._keys)})"


class _TokenKey:
    """One private key inside the token: signs there, recovers v here."""

    __slots__ = ("_address", "_key", "_point")

    def __init__(self, key: Any, point: bytes) -> None:
        self._key = key
        self._point = point
        self._address = _address_of_point(point)

    @property
    def address(self) -> str:
        return self._address

    def sign_order_digest(self, digest: bytes) -> bytes:
        from pkcs11 import Mechanism

        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        rs = bytes(self._key.sign(digest, mechanism=Mechanism.ECDSA))
        r, s = rs[:32], int.from_bytes(rs[32:], "big")
        if s > _HALF_N:
            s = _N - s
        compact = r + s.to_bytes(32, "big")
        for recovery_id in (0, 1):
            candidate = compact + bytes([recovery_id])
            recovered = PublicKey.from_signature_and_message(candidate, digest, hasher=None)
            if recovered.format(compressed=False) == self._point:
                return compact + bytes([27 + recovery_id])
        raise KeyProviderError(f"token signature for {self._address} recovers to no recovery id")

    def __repr__(self) -> str:
        return f"TokenKey(address={self._address})"


def _ec_point(public: Any) -> bytes:
    from pkcs11 import Attribute

    # CKA_EC_POINT is a DER OCTET STRING around the 65-byte uncompressed point (HSM.md)
    return bytes(public[Attribute.EC_POINT])[-65:]


class Pkcs11Provider:
    """secp256k1 keys generated and kept inside a PKCS#11 token (softhsm2 here, an HSM in production).

    One session is opened for the provider's lifetime; keys are found by their `polysnipe-` label.
    """

    __slots__ = ("_keys", "_session")

    def __init__(self, module_path: str, token_label: str, pin: Secret[str]) -> None:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        try:
            lib = pkcs11.lib(module_path)
            token = lib.get_token(token_label=token_label)
            try:
                self._session = token.open(rw=True, user_pin=pin.reveal())
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # PKCS#11 logins are per process: a second provider on the same token shares the first's
                self._session = token.open(rw=True)
        except (RuntimeError, pkcs11.PKCS11Error) as exc:
            raise KeyProviderError(
                f"cannot open PKCS#11 token {token_label!r} with {module_path}: {type(exc).__name__}"
            ) from None
        self._keys: dict[str, _TokenKey] = {}
        # one search at a time per session: finish listing before looking up each private key
        publics = list(self._session.get_objects({pkcs11.Attribute.CLASS: ObjectClass.PUBLIC_KEY}))
        for public in publics:
            label = str(public[pkcs11.Attribute.LABEL] or "")
            if not label.startswith(_LABEL_PREFIX) or public[pkcs11.Attribute.KEY_TYPE] != KeyType.EC:
                continue
            private = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            self._add(private, public)

    def _add(self, private: Any, public: Any) -> str:
        key = _TokenKey(private, _ec_point(public))
        self._keys[key.address.lower()] = key
        return key.address

    def addresses(self) -> list[str]:
        return sorted(key.address for key in self._keys.values())

    def signer(self, address: str) -> DigestSigner | None:
        return self._keys.get(address.lower())

    def create(self) -> str:
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        params = self._session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256k1")}, local=True
        )
        label = f"{_LABEL_PREFIX}{len(self._keys) + 1}-{os.urandom(4).hex()}"
        public, private = params.generate_keypair(
            store=True,
            label=label,
            mechanism=Mechanism.EC_KEY_PAIR_GEN,
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
        return self._add(private, public)

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11Provider(keys={len(self._keys)})"
