"""Secrets: the Secret type, private-key validation wherever a key enters, and the objects holding them."""

from __future__ import annotations

import copy
import json
import pickle
import random
import traceback
from typing import Any, AnyStr, cast

import attrs
import httpx
import msgspec
import pytest
from attrs import AttrsInstance

from polysnipe.adapters.clob.auth import ApiCreds, BuilderAuth, L2Auth, LocalSigner
from polysnipe.adapters.clob.factory import (
    ENV_API_KEY,
    ENV_API_PASSPHRASE,
    ENV_API_SECRET,
    ENV_PRIVATE_KEY,
    ClobSecrets,
    SecretsError,
    build_clob_adapters,
    secrets_from_env,
)
from polysnipe.adapters.clob.signing import EcdsaKey, InvalidPrivateKey, OrderSigner, private_key_bytes
from polysnipe.core.secret import Secret

# public anvil test key 0 and its address; fake but well-formed credentials
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
API_KEY = "3843ba63-391a-4a8a-b913-d6c677fd7d6f"
API_SECRET = "468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I="
PASSPHRASE = "7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199"
BUILDER_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
BUILDER_PASSPHRASE = "builder-pass-phrase"
SECRET_VALUES = (KEY[2:], KEY[2:].upper(), API_SECRET, PASSPHRASE, BUILDER_SECRET, BUILDER_PASSPHRASE)
#: secp256k1's group order: valid keys are 1..N-1
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ENV = {ENV_PRIVATE_KEY: KEY, ENV_API_KEY: API_KEY, ENV_API_SECRET: API_SECRET, ENV_API_PASSPHRASE: PASSPHRASE}


# -- the Secret type -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [API_SECRET, KEY.encode()])
def test_a_secret_never_shows_its_value(value: AnyStr) -> None:
    secret = Secret(value)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>80}", format(secret)]
    assert ["Secret('***')"] * len(shown) == shown
    assert value == secret.reveal()


def test_a_secret_refuses_every_serializer() -> None:
    secret = Secret(API_SECRET)
    for serialize in (json.dumps, msgspec.json.encode, msgspec.msgpack.encode, pickle.dumps):
        with pytest.raises(TypeError):
            serialize({"secret": secret})
    # copies are the same immutable object, not a serialization round trip
    assert secret is copy.copy(secret) is copy.deepcopy({"s": secret})["s"]


def test_a_secret_is_immutable_and_equal_only_to_an_equal_secret() -> None:
    secret = Secret(API_SECRET)
    with pytest.raises(AttributeError):
        secret._value = "other"
    with pytest.raises(AttributeError):
        del secret._value
    assert Secret(API_SECRET) == secret and hash(Secret(API_SECRET)) == hash(secret)
    assert Secret("other") != secret
    assert API_SECRET != secret  # comparing with the plain value is a bug, not a match
    assert Secret(API_SECRET.encode()) != secret
    for not_text in (1, None, Secret("x")):
        with pytest.raises(TypeError):
            Secret(not_text)  # type: ignore[type-var]


# -- private keys ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        KEY,
        KEY[2:],
        "0X" + KEY[2:],
        "0x" + KEY[2:].upper(),
        bytes.fromhex(KEY[2:]),
        Secret(KEY),
        Secret(KEY[2:]),
    ],
    ids=["0x", "bare", "0X", "upper", "bytes", "secret", "secret-bare"],
)
def test_a_valid_key_signs_for_its_address_whatever_its_spelling(key: Any) -> None:
    assert ADDRESS == EcdsaKey(key).address == LocalSigner.from_private_key(key, 137).address
    assert ADDRESS == OrderSigner.from_key(key, 137).address
    assert bytes.fromhex(KEY[2:]) == private_key_bytes(key)


@pytest.mark.parametrize("value", [1, N - 1])
def test_the_ends_of_the_curve_range_are_keys(value: int) -> None:
    assert 32 == len(private_key_bytes(f"{value:064x}"))


BAD_KEYS = {
    "31-bytes": KEY[:-2],
    "33-bytes": KEY + "ab",
    "63-digits": KEY[:-1],
    "65-digits": KEY + "a",
    "empty": "",
    "prefix-only": "0x",
    "trailing-space": KEY + " ",
    "leading-space": " " + KEY,
    "newline": KEY + "\n",
    "inner-space": KEY[:20] + " " + KEY[21:],
    "non-hex-letter": KEY[:-1] + "g",
    "arabic-digit": KEY[:-1] + "٣",
    "fullwidth-digit": KEY[:-1] + "３",
    "double-prefix": "0x" + KEY,
    "zero": "0x" + "0" * 64,
    "curve-order": f"0x{N:064x}",
    "above-order": "0x" + "f" * 64,
    "raw-31-bytes": bytes.fromhex(KEY[2:])[:31],
    "raw-33-bytes": bytes.fromhex(KEY[2:]) + b"\x01",
    "raw-as-text-bytes": KEY.encode(),
    "secret-31-bytes": Secret(KEY[:-2]),
    "int": int(KEY, 16),
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_a_malformed_key_is_refused_everywhere_it_enters_and_never_shown(key: Any) -> None:
    shown = key.reveal() if isinstance(key, Secret) else key
    plain = shown.hex() if isinstance(shown, bytes) else str(shown)
    entries = (
        lambda: EcdsaKey(key),
        lambda: LocalSigner.from_private_key(key, 137),
        lambda: OrderSigner.from_key(key, 137),
        lambda: ClobSecrets(key, None),
    )
    for enter in entries:
        with pytest.raises(InvalidPrivateKey) as caught:
            enter()
        text = "".join(traceback.format_exception(caught.value))
        assert len(str(caught.value)) > 20
        if len(plain) > 8:
            assert plain.removeprefix("0x").strip()[:16] not in text


@pytest.mark.parametrize("key", [v for v in BAD_KEYS.values() if isinstance(v, str)])
def test_the_environment_key_is_validated_at_start_up(key: str) -> None:
    with pytest.raises(SecretsError) as caught:
        secrets_from_env({**ENV, ENV_PRIVATE_KEY: key})
    message = str(caught.value)
    assert message.startswith(ENV_PRIVATE_KEY)
    assert "\n" not in message
    if len(key) > 8:
        assert key.strip()[2:18] not in "".join(traceback.format_exception(caught.value))


def test_environment_errors_are_one_line_and_catchable_as_before() -> None:
    for env, starts in (
        ({}, f"{ENV_PRIVATE_KEY} is not set"),
        ({ENV_PRIVATE_KEY: KEY, ENV_API_KEY: API_KEY}, "set all of"),
        ({**ENV, ENV_API_SECRET: "not base64!!"}, ENV_API_KEY),
        ({**ENV, ENV_API_PASSPHRASE: PASSPHRASE + "\n"}, ENV_API_KEY),
        ({**ENV, ENV_API_KEY: "key with\ttab"}, ENV_API_KEY),
    ):
        with pytest.raises(KeyError) as caught:  # what callers caught before; a ValueError too
            secrets_from_env(env)
        assert isinstance(caught.value, ValueError)
        assert str(caught.value).startswith(starts)
        assert not any(value in str(caught.value) for value in (API_SECRET, PASSPHRASE))


def test_environment_secrets_arrive_wrapped() -> None:
    secrets = secrets_from_env(ENV)
    assert isinstance(secrets.private_key, Secret) and KEY == secrets.private_key.reveal()
    assert secrets.creds is not None
    assert (API_KEY, API_SECRET, PASSPHRASE) == (
        secrets.creds.api_key,
        secrets.creds.secret.reveal(),
        secrets.creds.passphrase.reveal(),
    )
    assert ClobSecrets(KEY, ApiCreds(API_KEY, API_SECRET, PASSPHRASE)) == secrets


# -- objects that hold secrets ---------------------------------------------------------------------
class StillClock:
    """The adapters' Clock port, stopped: building them reads no time anyway."""

    def now_ms(self) -> int:
        return 1_764_061_200_000

    def monotonic_ns(self) -> int:
        return 0


def holders() -> list[object]:
    creds = ApiCreds(API_KEY, API_SECRET, PASSPHRASE)
    builder = ApiCreds("019894b9-cb40-79c4-b2bd-6aecb6f8c6c5", Secret(BUILDER_SECRET), BUILDER_PASSPHRASE)
    return [
        creds,
        builder,
        ClobSecrets(KEY, creds),
        ClobSecrets(Secret(KEY), None),
        EcdsaKey(KEY),
        OrderSigner.from_key(KEY, 137),
        L2Auth(ADDRESS, creds),
        BuilderAuth(builder),
        LocalSigner.from_private_key(KEY, 137, creds, builder),
    ]


def renderings(obj: object) -> list[str]:
    shown = [repr(obj), str(obj), f"{obj}", f"{obj!r}", repr([obj]), repr({"x": obj})]
    if attrs.has(type(obj)):
        instance = cast(AttrsInstance, obj)  # an attrs class's instance, as attrs.has just said
        shown.append(json.dumps(attrs.asdict(instance), default=repr))
        shown.append(repr(attrs.asdict(instance)))
        shown.append(repr(attrs.astuple(instance)))
    return shown


@pytest.mark.parametrize("obj", holders(), ids=lambda o: type(o).__name__)
def test_objects_holding_secrets_never_show_them(obj: object) -> None:
    text = "\n".join(renderings(obj))
    assert [] == [value for value in SECRET_VALUES if value in text]


@pytest.mark.parametrize("obj", [o for o in holders() if attrs.has(type(o))], ids=lambda o: type(o).__name__)
def test_attrs_holders_are_not_serializable_without_reveal(obj: Any) -> None:
    for serialize in (lambda: json.dumps(attrs.asdict(obj)), lambda: msgspec.json.encode(obj)):
        with pytest.raises(TypeError):
            serialize()
    with pytest.raises(TypeError):
        pickle.dumps(obj)


def test_the_built_adapters_never_show_a_secret() -> None:
    adapters = build_clob_adapters(
        {"clob": {"host": "https://clob.test"}},
        clock=StillClock(),
        rng=random.Random(1),
        alert=lambda alert: None,
        market_sink=lambda events: None,
        user_sink=lambda reports: None,
        env=ENV,
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )
    text = "\n".join(
        renderings(adapters)
        + [repr(vars(o)) for o in attrs.astuple(adapters, recurse=False) if hasattr(o, "__dict__")]
    )
    assert [] == [value for value in SECRET_VALUES if value in text]
