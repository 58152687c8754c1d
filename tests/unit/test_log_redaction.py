"""No secret reaches a log line: structlog events (capture_logs) and the production JSON/console output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from polysnipe.adapters.clob.auth import ApiCreds, LocalSigner
from polysnipe.adapters.clob.factory import ClobSecrets
from polysnipe.adapters.clob.user_channel import user_subscription
from polysnipe.core.secret import Secret
from polysnipe.runners.logging import configure_logging, get_logger, redact, redact_secrets

# public anvil test key, fake but well-formed credentials
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
API_KEY = "3843ba63-391a-4a8a-b913-d6c677fd7d6f"
API_SECRET = "468NIDFB-ziroyChmdO3fiJUKy7zjxahDLpTEEPxE7I="
PASSPHRASE = "7cef18803c4ed83e4c409c7b57fa5c65853478780ff3c4520c74abd395f04199"
BUILDER_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
BUILDER_PASSPHRASE = "builder-pass-phrase"
CREDS = ApiCreds(API_KEY, API_SECRET, PASSPHRASE)
BUILDER = ApiCreds("019894b9-cb40-79c4-b2bd-6aecb6f8c6c5", BUILDER_SECRET, BUILDER_PASSPHRASE)
SIGNER = LocalSigner.from_private_key(KEY, 137, CREDS, BUILDER)
SECRET_VALUES = (
    KEY, KEY[2:], KEY[2:].upper(), API_KEY, API_SECRET, PASSPHRASE, BUILDER_SECRET, BUILDER_PASSPHRASE
)  # fmt: skip

#: public values that must stay readable
ORDER_ID = "0x7eb120516d537088459e9eb1ed00d2dc3ddfeea2c2699b113075064606856e86"
CONDITION_ID = "0xbd31dc8a20211944f6b70f31557f1001557b59905b7738480ca09bd4532f84af"
TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
ORDER_SIGNATURE = "0x" + "7341eb8c" * 16 + "1b"


def events() -> list[tuple[str, dict[str, Any]]]:
    """(event, fields) pairs carrying every secret in every place a caller could put one."""
    return [
        ("l2 request", {"headers": SIGNER.l2_headers(1_764_061_200, "POST", "/order", b"{}")}),
        ("l1 request", {"headers": SIGNER.l1_headers(1_764_061_200)}),
        ("relayer request", {"request": {"headers": SIGNER.builder_headers(1, "GET", "/nonce")}}),
        (
            "header case",
            {"h": {"poly_passphrase": PASSPHRASE, "Poly-Api-Key": API_KEY, "X-API-KEY": API_KEY}},
        ),
        (
            "names",
            {
                "privateKey": KEY,
                "PRIVATE_KEY": KEY,
                "api_secret": API_SECRET,
                "clientSecret": API_SECRET,
                "db_password": PASSPHRASE,
                "Authorization": f"Bearer {API_SECRET}",
                "key": API_SECRET,
                "token": API_SECRET,
                "admin_token": API_SECRET,
                "creds": {"k": API_KEY, "s": API_SECRET},
                "mnemonic": "test test test junk",
            },
        ),
        ("nested", {"config": {"wallets": [{"label": "main", "signing": {"private_key": KEY}}]}}),
        ("list of secrets", {"values": [Secret(KEY), (Secret(API_SECRET),), {Secret(PASSPHRASE)}]}),
        ("wrapped", {"private": Secret(KEY), "value": Secret(API_SECRET), "raw": Secret(KEY.encode())}),
        ("objects", {"secrets": ClobSecrets(KEY, CREDS), "creds": CREDS, "signer": SIGNER, "b": BUILDER}),
        ("a bare key under an innocent name", {"note": KEY, "other": KEY[2:], "raw": bytes.fromhex(KEY[2:])}),
        (f"key inside text {KEY} and bare {KEY[2:]}", {"detail": f"loaded {KEY[2:].upper()}!"}),
        ("frame logged as text", {"frame": user_subscription(CREDS, [CONDITION_ID])}),
        ("body bytes", {"body": json.dumps({"secret": API_SECRET, "passphrase": PASSPHRASE}).encode()}),
    ]


PUBLIC_FIELDS = {
    "order_id": ORDER_ID,
    "orderID": ORDER_ID,
    "market": CONDITION_ID,
    "transactionsHashes": [ORDER_ID],
    "token_id": TOKEN_ID,
    "signature": ORDER_SIGNATURE,
    "seed": 7,
    "price": "0.57",
    "address": ADDRESS,
}


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def log_everything() -> None:
    log = get_logger(correlation_id="opp-1")
    for event, fields in events():
        log.info(event, **fields)
    log.info("public", **PUBLIC_FIELDS)


def assert_no_secret_in(text: str) -> None:
    leaked = [value for value in SECRET_VALUES if value in text]
    assert [] == leaked


def test_captured_events_carry_no_secret() -> None:
    with capture_logs(processors=[redact_secrets]) as logs:
        log_everything()
    assert len(events()) + 1 == len(logs)
    assert_no_secret_in(repr(logs))
    assert {"POLY_ADDRESS": ADDRESS, "POLY_TIMESTAMP": "1764061200"} == {
        k: v for k, v in logs[0]["headers"].items() if v != "***"
    }
    # an L1 POLY_SIGNATURE derives API keys: header signatures are masked, the order's stays
    assert "***" == logs[0]["headers"]["POLY_SIGNATURE"] == logs[1]["headers"]["POLY_SIGNATURE"]
    assert {**PUBLIC_FIELDS, "correlation_id": "opp-1", "event": "public", "log_level": "info"} == logs[-1]


def test_events_without_redaction_would_leak() -> None:
    """The check above is meaningful: the same events, captured raw, do carry the secrets."""
    with capture_logs() as logs:
        log_everything()
    raw = repr(logs)
    assert [] == [value for value in (KEY, API_SECRET, PASSPHRASE, BUILDER_PASSPHRASE) if value not in raw]


def test_production_json_lines_carry_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    opened = configure_logging(mode="json", path=path)
    assert opened is not None
    log_everything()

    def load(private_key: str) -> None:
        raise ValueError(f"cannot use key {private_key}")

    try:
        load(KEY)
    except ValueError:
        get_logger().exception("start-up failed", secret=API_SECRET)
    opened.close()
    text = path.read_text()
    assert_no_secret_in(text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(events()) + 2 == len(lines)
    assert {"opp-1"} == {line["correlation_id"] for line in lines[:-1]}
    public = lines[-2]
    assert PUBLIC_FIELDS == {k: public[k] for k in PUBLIC_FIELDS}
    failure = lines[-1]["exception"][0]
    assert ("ValueError", "cannot use key ***") == (failure["exc_type"], failure["exc_value"])
    # the frames carry no locals: `private_key` is one
    assert all("locals" not in frame for frame in failure["frames"])


def test_console_lines_carry_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(mode="console")
    log_everything()
    try:
        raise RuntimeError(f"bad {KEY}")
    except RuntimeError:
        get_logger().exception("failed", creds=CREDS)
    err = capsys.readouterr().err
    assert "bad ***" in err and ORDER_ID in err
    assert_no_secret_in(err)


@pytest.mark.parametrize(
    "name",
    ["secret", "API_SECRET", "poly_passphrase", "POLY-PASSPHRASE", "PassPhrase", "private_key", "privateKey",
     "api_key", "apiKey", "POLY_API_KEY", "x-api-key", "password", "authorization", "key", "token",
     "refresh_token", "creds", "POLY_SIGNATURE", "POLY_BUILDER_SIGNATURE", "mnemonic", "key_material"],
)  # fmt: skip
def test_secret_names_are_masked_whatever_the_value(name: str) -> None:
    for value in ("plain", 123, {"nested": "x"}, ["a"], None):
        assert "***" == redact(value, name)


@pytest.mark.parametrize(
    "name", ["token_id", "market", "side", "price", "seed", "signature", "order_id", "stream_key_count"]
)
def test_ordinary_names_keep_their_values(name: str) -> None:
    assert "0.57" == redact("0.57", name)
    assert {"a": 1} == redact({"a": 1}, name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KEY, "***"),
        (KEY[2:], "***"),
        (f"[{KEY}]", "[***]"),
        (f"k={KEY[2:]};", "k=***;"),
        # not a 32-byte run: signatures, addresses, longer or shorter hex stay
        (ORDER_SIGNATURE, ORDER_SIGNATURE),
        (ADDRESS, ADDRESS),
        (KEY + "0", KEY + "0"),
        (KEY[:-1], KEY[:-1]),
        ('{"passphrase": "abc", "side": "BUY"}', '{"passphrase": "***", "side": "BUY"}'),
        ('{"apiKey":"k","note":"it\\"s"}', '{"apiKey":"***","note":"it\\"s"}'),
    ],
)
def test_values_that_look_like_keys_are_masked_anywhere(value: str, expected: str) -> None:
    assert expected == redact(value, "note")
    assert [expected] == redact([value], "note")
    assert {"deep": {"list": [expected]}} == redact({"deep": {"list": [value]}})


def test_identifier_fields_keep_their_32_byte_hex() -> None:
    for name in ("order_id", "orderID", "condition_id", "market", "tx_hash", "transactionsHashes", "builder"):
        assert [ORDER_ID] == redact([ORDER_ID], name)
    assert "***" == redact(bytes.fromhex(KEY[2:]), "raw")
    assert bytes.fromhex(ORDER_ID[2:]) == redact(bytes.fromhex(ORDER_ID[2:]), "order_hash")
