"""`polysnipe orders sign` prints the official client's POST /order body for the same inputs.

Every vector of the file (POLYSNIPE_ORDER_VECTORS, see order_vector_file) is signed through the
command. Where the official client's float math changed the amounts (float artifacts), ours are the
exact ones, so only those fields and the signature differ from its body.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from order_vector_file import load_vectors, parametrize_vectors

from polysnipe.adapters.clob.auth import ApiCreds
from polysnipe.adapters.clob.factory import ClobSecrets
from polysnipe.adapters.clob.signing import OrderSigner
from polysnipe.core.events import Side
from polysnipe.runners.cli import main
from polysnipe.runners.config import load_settings
from polysnipe.runners.errors import ConfigError
from polysnipe.runners.orders_cli import EXIT_BAD_LINES, sign_lines
from polysnipe.runners.settings import Settings

Vector = dict[str, Any]

# public anvil test key; the order fields of the first public vector
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
LIMIT = {
    "token_id": TOKEN,
    "price": "0.57",
    "size": "100",
    "side": "BUY",
    "tick_size": "0.01",
    "neg_risk": False,
}
PINNED = {"salt": "100000000000", "timestamp_ms": "1764061200000"}


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return load_vectors()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_vectors(metafunc)


def settings_for(vector: Vector) -> Settings:
    inputs = vector["inputs"]
    return Settings(
        chain_id=vector["chain_id"],
        signature_type=inputs["signature_type"],
        funder=inputs["funder"] or "",
        builder_code=inputs["builder"],
    )


def sign(lines: list[str], settings: Settings | None = None, key: str = KEY) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = sign_lines(lines, settings or Settings(), ClobSecrets(key, None), out, err)
    return code, out.getvalue(), err.getvalue()


def test_sign_cli_matches_official_body(vectors: dict[str, Any], vector_index: int) -> None:
    vector = vectors["vectors"][vector_index]
    creds = vector["api_creds"]
    secrets = ClobSecrets(vector["key"], ApiCreds(creds["key"], creds["secret"], creds["passphrase"]))
    line = json.dumps({**vector["inputs"], "salt": vector["salt"], "timestamp_ms": vector["timestamp"]})
    out, err = io.StringIO(), io.StringIO()
    assert 0 == sign_lines([line], settings_for(vector), secrets, out, err), err.getvalue()
    if not vector["float_artifact"]:
        assert vector["post_body"] + "\n" == out.getvalue()
        return
    ours, official = json.loads(out.getvalue()), json.loads(vector["post_body"])
    exact = vector["exact_amounts"]
    assert (exact["maker_amount"], exact["taker_amount"]) == (
        ours["order"]["makerAmount"],
        ours["order"]["takerAmount"],
    )
    changed = {"makerAmount", "takerAmount", "signature"}
    assert {k: v for k, v in official["order"].items() if k not in changed} == {
        k: v for k, v in ours["order"].items() if k not in changed
    }
    assert {k: v for k, v in official.items() if k != "order"} == {
        k: v for k, v in ours.items() if k != "order"
    }
    # and the signature is ours over the exact amounts
    signed = OrderSigner.from_key(
        vector["key"],
        vector["chain_id"],
        signature_type=vector["inputs"]["signature_type"],
        funder=vector["inputs"]["funder"],
        builder_code=vector["inputs"]["builder"],
    ).sign(
        ours["order"]["tokenId"],
        Side[ours["order"]["side"]],
        int(exact["maker_amount"]),
        int(exact["taker_amount"]),
        neg_risk=vector["inputs"]["neg_risk"],
        salt=int(vector["salt"]),
        timestamp_ms=int(vector["timestamp"]),
        expiration_s=int(ours["order"]["expiration"]),
    )
    assert signed.signature == ours["order"]["signature"]


def amounts(body: str) -> tuple[int, int]:
    order = json.loads(body)["order"]
    return int(order["makerAmount"]), int(order["takerAmount"])


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # sizes and amounts are floored to 2 decimals, however many are typed (PROTOCOL.md 3.4-3.6)
        ({"size": "77.7777777"}, (44_328_900, 77_770_000)),
        ({"size": 77.7777777}, (44_328_900, 77_770_000)),
        ({"size": "77.77777777777777777777777777777777777777777777777"}, (44_328_900, 77_770_000)),
        ({"size": "0.019999999"}, (5_700, 10_000)),
        # a limit price off the tick is rounded half-even to the tick's decimals
        ({"price": "0.575"}, (58_000_000, 100_000_000)),
        ({"price": "0.565"}, (56_000_000, 100_000_000)),
        ({"price": "0.5712345678"}, (57_000_000, 100_000_000)),
        ({"price": 0.5750001}, (58_000_000, 100_000_000)),
        # a market price is floored; the amount too
        ({"order_type": "FOK", "size": None, "amount": "10.129", "price": "0.579"}, (10_120_000, 17_754_300)),
        ({"order_type": "FAK", "size": None, "amount": "5.5555555", "price": "0.5", "side": "SELL"},
         (5_550_000, 2_775_000)),
    ],
)  # fmt: skip
def test_finer_inputs_are_rounded_as_the_protocol_rounds_them(
    changes: dict[str, Any], expected: tuple[int, int]
) -> None:
    line = {**LIMIT, **PINNED, **changes}
    code, out, err = sign([json.dumps({k: v for k, v in line.items() if v is not None})])
    assert (0, "") == (code, err)
    assert expected == amounts(out)


BAD_LINES = [
    # (line, the one line on stderr after "line N: ")
    ({**LIMIT, "size": "0.009"}, "size 0.009 rounds to zero at 2 decimals"),
    ({**LIMIT, "size": "1e3"}, "size '1e3' is not a plain decimal (ASCII digits and at most one point)"),
    (json.dumps({k: v for k, v in LIMIT.items() if k != "size"})[:-1] + ', "size": 1e400}',
     "size '1e400' is not a plain decimal (ASCII digits and at most one point)"),
    ({**LIMIT, "size": " 5"}, "size ' 5' is not a plain decimal (ASCII digits and at most one point)"),
    ({**LIMIT, "size": "١٢"}, "size '١٢' is not a plain decimal (ASCII digits and at most one point)"),
    ({**LIMIT, "size": "1" * 65}, "size is longer than 64 characters: '11111111111111111111'..."),
    ({**LIMIT, "size": "1000000001"}, "size 1000000001 exceeds the maximum 1000000000"),
    ({**LIMIT, "size": None}, "size is missing"),
    ({**LIMIT, "size": True}, "size must be a string or a number, got true"),
    ({**LIMIT, "price": "1.5"}, "invalid price (1.5), min: 0.01 - max: 0.99"),
    ({**LIMIT, "price": "0.123", "tick_size": "0.005"},
     "price 0.123 rounds (half-even, 3 decimals) to 0.123, which is off the tick 0.005"),
    ({**LIMIT, "tick_size": "0.02"}, "invalid tick size '0.02'"),
    ({**LIMIT, "side": "HOLD"}, 'side must be one of BUY, SELL, got "HOLD"'),
    ({**LIMIT, "order_type": "IOC"}, 'order_type must be one of GTC, GTD, FOK, FAK, got "IOC"'),
    ({**LIMIT, "order_type": "FOK"},
     "size is not used by FOK orders: give amount (USDC for BUY, shares for SELL)"),
    ({**LIMIT, "neg_risk": None}, "neg_risk must be true or false, got null"),
    ({**LIMIT, "neg_risk": "false"}, 'neg_risk must be true or false, got "false"'),
    ({**LIMIT, "post_only": "yes"}, 'post_only must be true or false, got "yes"'),
    ({**LIMIT, "post_onyl": True}, "post_onyl is not a field (did you mean 'post_only'?)"),
    ({**LIMIT, "order_type": "FAK", "size": None, "amount": "1", "post_only": True},
     "post_only is not supported for FOK/FAK orders"),
    ({**LIMIT, "salt": -1}, 'salt must be a non-negative integer, got "-1"'),
    ({**LIMIT, "timestamp_ms": str(2**256)}, f'timestamp_ms does not fit in uint256, got "{2**256}"'),
    ({**LIMIT, "expiration": "soon"}, 'expiration must be a non-negative integer, got "soon"'),
    ({**LIMIT, "token_id": "0x12"}, "token id is not a decimal integer: '0x12'"),
    ({**LIMIT, "token_id": str(2**256)}, f"token id does not fit in uint256: '{2**256}'"),
    ({**LIMIT, "funder": "0x1F98431c8aD98523631AE4a59f267346ea31F984"},
     'funder is "0x1F98431c8aD98523631AE4a59f267346ea31F984" on the line but null in the settings'),
    ({**LIMIT, "signature_type": 2}, 'signature_type is "2" on the line but "0" in the settings'),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[m.split(" ")[0] for _, m in BAD_LINES])
def test_a_bad_line_is_one_line_naming_the_field(line: dict[str, Any] | str, message: str) -> None:
    raw = line if isinstance(line, str) else json.dumps({k: v for k, v in line.items() if v is not None})
    code, out, err = sign([raw])
    assert (EXIT_BAD_LINES, "", f"line 1: {message}\n") == (code, out, err)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ("{", "not valid JSON: Expecting property name enclosed in double quotes at column 2"),
        ('{"price": NaN}', "NaN is not a number"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON: nested more than 8 levels deep"),
        ('{"a":' * 9 + "1" + "}" * 9, "not valid JSON: nested more than 8 levels deep"),
    ],
)
def test_a_line_that_is_not_an_object_is_one_line(raw: str, message: str) -> None:
    assert (EXIT_BAD_LINES, "", f"line 1: {message}\n") == sign([raw])


def test_bad_lines_are_reported_and_the_rest_still_sign() -> None:
    good = json.dumps(LIMIT)
    unknown_neg_risk = json.dumps({**LIMIT, "neg_risk": None})
    out_of_range = json.dumps({**LIMIT, "price": "1.5"})
    code, out, err = sign([unknown_neg_risk, good, "", out_of_range, good])
    assert EXIT_BAD_LINES == code
    assert 2 == len(out.splitlines())
    assert ["line 1", "line 4"] == [line.split(":")[0] for line in err.splitlines()]
    assert (0, "") == sign([good, good])[::2]


def test_a_file_line_that_is_not_utf8_is_refused_alone(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One such line was an internal error after the lines before it had been signed."""
    good = json.dumps(LIMIT).encode()
    path = tmp_path / "orders.jsonl"
    path.write_bytes(good + b"\n" + good[:-1] + b', "note": "\xff"}\n' + good + b"\n")
    monkeypatch.setenv("POLYSNIPE_CLOB_PRIVATE_KEY", KEY)
    assert EXIT_BAD_LINES == main(["orders", "sign", str(path)])
    out, err = capsys.readouterr()
    assert (2, "line 2: not UTF-8 text\n") == (len(out.splitlines()), err)


def test_settings_never_carry_secrets(tmp_path: Any) -> None:
    s = load_settings({"POLYSNIPE_CLOB_PRIVATE_KEY": "0xdeadbeef", "POLYSNIPE_CHAIN_ID": "80002"})
    assert 80002 == s.chain_id
    assert "deadbeef" not in repr(s)
    toml = tmp_path / "s.toml"
    toml.write_text('private_key = "0x01"\n')
    with pytest.raises(ConfigError):
        load_settings({}, toml)


def test_brackets_inside_strings_are_not_nesting() -> None:
    code, out, err = sign([json.dumps({**LIMIT, "client_order_id": "[{" * 50})])
    assert (0, "") == (code, err) and 1 == len(out.splitlines())
