"""Our L2 (HMAC) headers against py-clob-client-v2's own create_level_2_headers, request by request."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from py_clob_client_v2.clob_types import ApiCreds as OfficialCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.headers.headers import create_level_2_headers
from py_clob_client_v2.signer import Signer

from polysnipe.adapters.clob.auth import ApiCreds, L2Auth, LocalSigner, l2_signature

# public anvil test key, fake but well-formed credentials (the same as the order vectors)
KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
API_KEY = "3843ba63-391a-4a8a-b913-d6c677fd7d6f"
SECRET = "468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I="
PASSPHRASE = "7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199"
CREDS = ApiCreds(api_key=API_KEY, secret=SECRET, passphrase=PASSPHRASE)
ORDER_ID = "0x7eb120516d537088459e9eb1ed00d2dc3ddfeea2c2699b113075064606856e86"

#: (method, path as we send it, path the official client signs, body bytes or None)
REQUESTS = [
    ("GET", "/data/orders?market=0xabc&asset_id=123&next_cursor=MA==", "/data/orders", None),
    ("GET", "/balance-allowance?asset_type=COLLATERAL&signature_type=2", "/balance-allowance", None),
    ("GET", "/data/trades?id=abc", "/data/trades", None),
    ("GET", "/auth/api-keys", "/auth/api-keys", None),
    ("DELETE", "/order", "/order", f'{{"orderID":"{ORDER_ID}"}}'),
    ("DELETE", "/orders", "/orders", f'["{ORDER_ID}","{ORDER_ID[:-1]}0"]'),
    ("DELETE", "/cancel-all", "/cancel-all", None),
    (
        "DELETE",
        "/cancel-market-orders",
        "/cancel-market-orders",
        '{"market":"0xbd31dc8a","asset_id":"52114"}',
    ),
    ("POST", "/v1/heartbeats", "/v1/heartbeats", '{"heartbeat_id":""}'),
    ("POST", "/order", "/order", '{"order":{"salt":1,"side":"BUY"},"owner":"x","orderType":"GTC"}'),
    ("POST", "/orders-scoring", "/orders-scoring", '["0x1","0x2"]'),
    # non-ASCII text is signed as UTF-8, as json.dumps(ensure_ascii=False) sends it
    ("POST", "/order", "/order", '{"note":"prix élevé ✓"}'),
]


@pytest.mark.parametrize(("method", "path", "signed_path", "body"), REQUESTS)
@pytest.mark.parametrize("timestamp_s", [1_764_061_200, 1_700_000_123])
def test_l2_headers_match_the_official_client(
    method: str, path: str, signed_path: str, body: str | None, timestamp_s: int
) -> None:
    expected = create_level_2_headers(
        Signer(KEY, 137),
        OfficialCreds(API_KEY, SECRET, PASSPHRASE),
        RequestArgs(method=method, request_path=signed_path, body=body, serialized_body=body),
        timestamp=timestamp_s,
    )
    signer = LocalSigner.from_private_key(KEY, 137, CREDS)
    assert expected == signer.l2_headers(timestamp_s, method, path, (body or "").encode())
    assert expected == signer.l2_headers(timestamp_s, method, path, body or "")
    assert expected["POLY_SIGNATURE"] == l2_signature(SECRET, timestamp_s, method, path, body or b"")
    assert expected["POLY_SIGNATURE"] == l2_signature(CREDS.secret, timestamp_s, method, path, body or b"")


def test_signature_is_urlsafe_base64_with_padding_over_the_bare_path() -> None:
    message = b"1764061200GET/data/orders"
    digest = hmac.new(base64.urlsafe_b64decode(SECRET), message, hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).decode()
    assert expected.endswith("=")
    assert expected == l2_signature(SECRET, 1_764_061_200, "get", "/data/orders?next_cursor=MA==")


def test_standard_base64_secret_without_padding_is_the_same_key() -> None:
    standard = SECRET.replace("-", "+").replace("_", "/").rstrip("=")
    assert l2_signature(SECRET, 1, "POST", "/order", b"{}") == l2_signature(
        standard, 1, "POST", "/order", b"{}"
    )


def test_apostrophes_are_signed_as_sent() -> None:
    """The Python client rewrites ' to " before signing (PROTOCOL.md 6.2); we sign the bytes we send."""
    body = b'{"note":"it\'s"}'
    ours = l2_signature(SECRET, 1, "POST", "/order", body)
    message = b"1POST/order" + body
    digest = hmac.new(base64.urlsafe_b64decode(SECRET), message, hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(digest).decode() == ours


def test_l2_needs_credentials_and_valid_secrets() -> None:
    with pytest.raises(PermissionError):
        LocalSigner.from_private_key(KEY, 137).l2_headers(1, "GET", "/data/orders")
    for bad_secret in ("not base64!!!x", "", "===="):
        with pytest.raises(ValueError):
            ApiCreds("k", bad_secret, "p")
    shown = repr(L2Auth("0x0", CREDS))
    assert SECRET not in shown and PASSPHRASE not in shown
