"""The `[signer]` section of the settings file: the signing server's policy, limits, TLS and keys.

Nothing secret: the builder credentials, the audit key, the keystore password and the token PIN come
from the environment (adapters/signer_server/factory.py).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import attrs

from polysnipe.adapters.signer_server.config import Policy, RateLimit, SignerServerConfig
from polysnipe.adapters.signer_server.factory import KeyBackend
from polysnipe.adapters.signer_server.keys import DEFAULT_SCRYPT_N
from polysnipe.runners.schema import Choice, Float, Int, Invalid, Micro, Text, optional_setting, setting

__all__ = ["AddressList", "ChainIdList", "SignerSettings"]

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


@attrs.frozen(slots=True)
class _ListOf:
    """A TOML array of one kind of value (in the environment: comma-separated)."""

    item: str
    check: Any

    @property
    def what(self) -> str:
        return f"array of {self.item}{'es' if self.item.endswith('s') else 's'}"

    def parse(self, value: object) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(f"expected an {self.what}, e.g. [{self._example()}]")
        return tuple(self.check(item) for item in value)

    def parse_env(self, text: str) -> tuple[Any, ...]:
        return tuple(self.check(self._env_item(part.strip())) for part in text.split(",") if part.strip())

    def _env_item(self, text: str) -> object:
        return int(text) if text.isascii() and text.isdecimal() else text

    def _example(self) -> str:
        return "137" if self.item == "chain id" else '"0x…"'

    def render(self, value: Any) -> str:
        return json.dumps(list(value))


def _address(value: object) -> str:
    if not (isinstance(value, str) and _ADDRESS.fullmatch(value)):
        raise Invalid(f"expected 0x + 40 hex digits, got {json.dumps(value)}")
    return value


def _chain_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Invalid(f"expected a chain id (a whole number > 0), got {json.dumps(value)}")
    return value


AddressList: Final = _ListOf("address", _address)
ChainIdList: Final = _ListOf("chain id", _chain_id)


def _path(what: str) -> Text:
    return Text(what, lambda text: None if text.strip() else "must not be empty")


@attrs.frozen(slots=True, kw_only=True)
class SignerSettings:
    """The signing server (`polysnipe signer serve`): whom its keys sign for, how often and how much."""

    chain_ids: tuple[int, ...] = setting((), ChainIdList, "chain ids the managed keys may sign for")
    verifying_contracts: tuple[str, ...] = setting(
        (), AddressList, "EIP-712 verifying contracts allowed: CLOB exchanges and the Safe factory"
    )
    safes: tuple[str, ...] = setting((), AddressList, "Safes whose transactions and creation may be signed")
    makers: tuple[str, ...] = setting((), AddressList, "order makers (funder wallets or EOAs) allowed")
    collateral_tokens: tuple[str, ...] = setting(
        (), AddressList, "Safe calls: ERC-20 collateral approved to a spender or sent to a Safe or recipient"
    )
    conditional_tokens: tuple[str, ...] = setting(
        (),
        AddressList,
        "Safe calls: the Conditional Tokens contract (approvals, split, merge, redeem)",
    )
    neg_risk_adapters: tuple[str, ...] = setting(
        (), AddressList, "Safe calls: neg-risk adapters (split, merge, redeem, convert)"
    )
    spenders: tuple[str, ...] = setting(
        (),
        AddressList,
        "Safe calls: who may be approved to spend collateral or positions",
    )
    recipients: tuple[str, ...] = setting(
        (), AddressList, "Safe calls: whom collateral may be sent to besides the Safes (a treasury)"
    )
    caller_rate_per_s: float = setting(200.0, Float(min=0.001), "requests per second per caller")
    caller_burst: int = setting(400, Int(min=1), "requests a caller may send at once")
    key_rate_per_s: float = setting(100.0, Float(min=0.001), "signatures per second per key")
    key_burst: int = setting(200, Int(min=1), "signatures a key may make at once")
    daily_notional_cap_usdc_micro: int = setting(
        10_000_000_000, Micro("USDC", min=1), "orders one key may sign per UTC day, in USDC",
        key="daily_notional_cap_usdc",
    )  # fmt: skip
    max_body_bytes: int = setting(16_384, Int(min=256), "request bodies above this are refused (413)")
    max_clock_skew_s: int = setting(30, Int(min=1), "engine request timestamps older or newer are stale")
    key_backend: str = setting(
        "keystore", Choice(("keystore", "pkcs11")), "where trader keys live: key files or a PKCS#11 token"
    )
    keystore_dir: str = setting("keys", _path("directory"), "keystore: directory of encrypted key files")
    keystore_scrypt_n: int = setting(
        # scrypt takes a power of two; beyond 2**20 a key file takes minutes and a GB to open
        DEFAULT_SCRYPT_N,
        Int(choices=tuple(2**k for k in range(1, 21))),
        "keystore: scrypt cost of new key files",
    )
    pkcs11_module: str = setting(
        "/usr/lib/softhsm/libsofthsm2.so", _path("file"), "pkcs11: the token's PKCS#11 module"
    )
    pkcs11_token_label: str = setting("polysnipe", _path("label"), "pkcs11: label of the token")
    db_schema: str = setting("public", _path("schema"), "Postgres schema of the callers and audit tables")
    tls_cert_file: str | None = optional_setting(_path("file"), "TLS certificate (PEM)", unset="plain HTTP")
    tls_key_file: str | None = optional_setting(_path("file"), "TLS private key (PEM)", unset="plain HTTP")

    def server_config(self) -> SignerServerConfig:
        return SignerServerConfig(
            policy=Policy(
                chain_ids=self.chain_ids,
                verifying_contracts=self.verifying_contracts,
                safes=self.safes,
                makers=self.makers,
                collateral_tokens=self.collateral_tokens,
                conditional_tokens=self.conditional_tokens,
                neg_risk_adapters=self.neg_risk_adapters,
                spenders=self.spenders,
                recipients=self.recipients,
            ),
            per_caller=RateLimit(self.caller_rate_per_s, self.caller_burst),
            per_key=RateLimit(self.key_rate_per_s, self.key_burst),
            daily_notional_cap_usdc_micro=self.daily_notional_cap_usdc_micro,
            max_body_bytes=self.max_body_bytes,
            max_clock_skew_s=self.max_clock_skew_s,
            tls_cert_file=self.tls_cert_file,
            tls_key_file=self.tls_key_file,
        )

    def key_backend_config(self) -> KeyBackend:
        return KeyBackend(
            kind=self.key_backend,
            keystore_dir=self.keystore_dir,
            scrypt_n=self.keystore_scrypt_n,
            pkcs11_module=self.pkcs11_module,
            pkcs11_token_label=self.pkcs11_token_label,
        )
