"""Key providers: eth-account keystore files and a PKCS#11 token (softhsm2, made here in a temporary
directory). Signatures recover to the key's address; orders match the in-process signer; Safe
transactions and Safe creation recover as the Safe and its factory do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from polysnipe.adapters.clob.signing import EcdsaKey, OrderSigner, keccak256
from polysnipe.adapters.signer_server.digests import (
    SAFE_FACTORY,
    create_proxy_digest,
    derive_safe,
    eth_signed_message_hash,
    safe_tx_digest,
)
from polysnipe.adapters.signer_server.keys import KeyProviderError, KeystoreProvider, Pkcs11Provider
from polysnipe.core.events import Side
from polysnipe.core.secret import Secret
from signer_support import KEYSTORE_PASSWORD

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def _recover(digest: bytes, signature: bytes) -> str:
    point = PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), digest, hasher=None
    )
    return "0x" + keccak256(point.format(compressed=False)[1:])[-20:].hex()


def test_keystore_files_reopen_with_the_same_addresses(tmp_path: Path) -> None:
    first = KeystoreProvider(tmp_path, Secret(KEYSTORE_PASSWORD), scrypt_n=2)
    made = sorted([first.create(), first.create()])
    assert made == first.addresses()
    files = sorted(tmp_path.glob("*.json"))
    assert 0o600 == files[0].stat().st_mode & 0o777
    assert made == KeystoreProvider(tmp_path, Secret(KEYSTORE_PASSWORD)).addresses()
    # the files are eth-account's own format
    assert Account.decrypt(files[0].read_text(), KEYSTORE_PASSWORD)
    with pytest.raises(KeyProviderError, match="cannot decrypt") as err:
        KeystoreProvider(tmp_path, Secret("wrong password"))
    assert "wrong password" not in str(err.value)
    assert KEYSTORE_PASSWORD not in repr(first)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Pkcs11Provider:
    if not Path(MODULE).exists() or shutil.which("softhsm2-util") is None:
        pytest.fail("softhsm2 is not installed: `make install` installs it (apt-get install softhsm2)")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "polysnipe-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
        check=True,
        capture_output=True,
    )
    provider = Pkcs11Provider(MODULE, "polysnipe-test", Secret("1234"))
    provider.create()
    return provider


def test_pkcs11_orders_verify_to_the_token_key_and_have_the_vectors_shape(token: Pkcs11Provider) -> None:
    address = token.addresses()[0]
    key = token.signer(address)
    assert key is not None
    signer = OrderSigner(key, 137)
    for salt in range(20):
        signed = signer.sign(TOKEN, Side.BUY, 5_000_000, 10_000_000, neg_risk=salt % 2 == 1, salt=salt,
                             timestamp_ms=1_800_000_000_000)  # fmt: skip
        signature = bytes.fromhex(signed.signature[2:])
        assert 132 == len(signed.signature) and signature[64] in (27, 28)
        assert int.from_bytes(signature[32:64], "big") <= _N // 2
        assert address.lower() == _recover(bytes.fromhex(signed.order_hash[2:]), signature)
        assert (address, address) == (signed.maker, signed.signer)


def test_pkcs11_keys_survive_a_reopen_and_a_wrong_pin_is_refused(token: Pkcs11Provider) -> None:
    again = Pkcs11Provider(MODULE, "polysnipe-test", Secret("1234"))
    assert token.addresses() == again.addresses()
    again.close()
    # a login is per process: the wrong PIN is tried in a fresh one
    code = (
        "from polysnipe.adapters.signer_server.keys import Pkcs11Provider, KeyProviderError\n"
        "from polysnipe.core.secret import Secret\n"
        "try:\n"
        f"    Pkcs11Provider({MODULE!r}, 'polysnipe-test', Secret('0000'))\n"
        "except KeyProviderError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert "cannot open PKCS#11 token 'polysnipe-test'" in out.stdout and "0000" not in out.stdout


def test_safe_tx_and_create_proxy_digests_equal_eth_accounts_typed_data() -> None:
    key = EcdsaKey("0x" + "42" * 32)
    safe = derive_safe(key.address)
    tx = dict(to="0x" + "44" * 20, value=0, data=bytes.fromhex("a9059cbb" + "00" * 64), operation=0,
              safe_tx_gas=0, base_gas=0, gas_price=0, gas_token="0x" + "00" * 20,
              refund_receiver="0x" + "00" * 20, nonce=7)  # fmt: skip
    digest = safe_tx_digest(137, safe, **tx)  # type: ignore[arg-type]
    typed = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "SafeTx": [
                    {"name": n, "type": t}
                    for n, t in (
                        ("to", "address"),
                        ("value", "uint256"),
                        ("data", "bytes"),
                        ("operation", "uint8"),
                        ("safeTxGas", "uint256"),
                        ("baseGas", "uint256"),
                        ("gasPrice", "uint256"),
                        ("gasToken", "address"),
                        ("refundReceiver", "address"),
                        ("nonce", "uint256"),
                    )
                ],
            },
            "primaryType": "SafeTx",
            "domain": {"chainId": 137, "verifyingContract": safe},
            "message": {
                "to": tx["to"],
                "value": 0,
                "data": tx["data"],
                "operation": 0,
                "safeTxGas": 0,
                "baseGas": 0,
                "gasPrice": 0,
                "gasToken": tx["gas_token"],
                "refundReceiver": tx["refund_receiver"],
                "nonce": 7,
            },
        }
    )
    assert keccak256(b"\x19" + typed.version + typed.header + typed.body) == digest
    # eth_sign form, as Safe 1.3 checks it: ecrecover(personal hash, v - 4)
    signature = key.sign_order_digest(eth_signed_message_hash(digest))
    assert Account.recover_message(encode_defunct(digest), signature=signature) == key.address
    create = create_proxy_digest(
        137, payment_token="0x" + "00" * 20, payment=0, payment_receiver="0x" + "00" * 20
    )
    typed = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "CreateProxy": [
                    {"name": "paymentToken", "type": "address"},
                    {"name": "payment", "type": "uint256"},
                    {"name": "paymentReceiver", "type": "address"},
                ],
            },
            "primaryType": "CreateProxy",
            "domain": {
                "name": "Polymarket Contract Proxy Factory",
                "chainId": 137,
                "verifyingContract": SAFE_FACTORY,
            },
            "message": {"paymentToken": "0x" + "00" * 20, "payment": 0, "paymentReceiver": "0x" + "00" * 20},
        }
    )
    assert keccak256(b"\x19" + typed.version + typed.header + typed.body) == create


def test_safe_address_is_the_relayer_clients() -> None:
    # RELAYER / EVM.md 3: owner 0x1768...0ba7 -> Safe 0xEE1E...528c (TS and Python clients agree)
    assert "0xEE1E501361D2A1E87c9fc4F802D7c904D163528c" == derive_safe(
        "0x1768a7477E8813cF2d0eb032Ac7D502631990ba7"
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2**64), st.integers(1, 2**64), st.integers(0, 2**48), st.booleans())
def test_any_allowed_order_signed_in_the_token_verifies(
    token: Pkcs11Provider, maker_amount: int, taker_amount: int, salt: int, neg_risk: bool
) -> None:
    key = token.signer(token.addresses()[0])
    assert key is not None
    signed = OrderSigner(key, 137).sign(TOKEN, Side.SELL, maker_amount, taker_amount, neg_risk=neg_risk,
                                        salt=salt, timestamp_ms=1)  # fmt: skip
    assert key.address.lower() == _recover(
        bytes.fromhex(signed.order_hash[2:]), bytes.fromhex(signed.signature[2:])
    )
