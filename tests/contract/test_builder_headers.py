"""POLY_BUILDER_* relayer headers equal the official builder signing SDK's for a table of requests."""

from __future__ import annotations

import json

import pytest
from py_builder_signing_sdk.sdk_types import BuilderApiKeyCreds
from py_builder_signing_sdk.signer import BuilderSigner as OfficialBuilderSigner

from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
API_KEY, SECRET, PASSPHRASE = (
    "019894b9-cb40-79c4-b2bd-6aecb6f8c6c5",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "pass-phrase",
)
CREDS = ApiCreds(API_KEY, SECRET, PASSPHRASE)
SUBMIT = json.dumps({"from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "type": "SAFE", "nonce": "0"},
                    separators=(",", ":"))  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/submit", SUBMIT),
        ("GET", "/transactions", ""),
        ("GET", "/nonce", ""),
        ("POST", "/submit", '{"data":"0x"}'),
    ],
)
@pytest.mark.parametrize("ts", [1764061200, 1800000000])
def test_builder_headers_match_official_sdk(method: str, path: str, body: str, ts: int) -> None:
    ours = LocalSigner.from_private_key(KEY, 137, builder_creds=CREDS).builder_headers(ts, method, path, body)
    official = OfficialBuilderSigner(
        BuilderApiKeyCreds(key=API_KEY, secret=SECRET, passphrase=PASSPHRASE)
    ).create_builder_header_payload(method, path, body or None, ts)
    assert official.to_dict() == ours


def test_builder_secret_never_shows() -> None:
    signer = LocalSigner.from_private_key(KEY, 137, builder_creds=CREDS)
    assert SECRET not in repr(signer) and PASSPHRASE not in repr(signer)
    with pytest.raises(PermissionError):
        LocalSigner.from_private_key(KEY, 137).builder_headers(1, "GET", "/nonce")
