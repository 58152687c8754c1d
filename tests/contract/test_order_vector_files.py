"""The order-vector contract tests run on any vector file of the schema, and survive a missing one.

Each case writes a vector file, runs the two contract modules on it in a fresh pytest and reads the
outcome: a smaller file with other ids and POLY_1271 vectors (made here with the official client,
the generator of the public file) passes, skipping the kinds it lacks; a missing file fails its
tests with the reason, never the collection.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from order_vector_file import ENV_VECTORS, load_vectors, pick
from py_clob_client_v2.clob_types import ApiCreds as OfficialCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.headers.headers import create_level_2_headers
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
from py_clob_client_v2.order_utils.model.side import Side as OfficialSide
from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2
from py_clob_client_v2.signer import Signer

Vector = dict[str, Any]

HERE = Path(__file__).resolve().parent
MODULES = [str(HERE / "test_order_vectors.py"), str(HERE / "test_orders_sign_cli.py")]
WALLET = "0x1F98431c8aD98523631AE4a59f267346ea31F984"


def poly_1271_variant(base: Vector, wallet: str) -> Vector:
    """`base` re-signed by the official client for a deposit wallet (signature type 3)."""
    vector = copy.deepcopy(base)
    vector["id"] = f"{base['id']}-poly1271"
    inputs = vector["inputs"]
    inputs.update(signature_type=3, funder=wallet)
    chain_id, key = vector["chain_id"], vector["key"]
    contracts = get_contract_config(chain_id)
    exchange = contracts.neg_risk_exchange_v2 if inputs["neg_risk"] else contracts.exchange_v2
    builder = ExchangeOrderBuilderV2(
        exchange, chain_id, Signer(key, chain_id), generate_salt=lambda: vector["salt"]
    )
    exact = vector["exact_amounts"]
    signed = builder.build_signed_order(
        OrderDataV2(
            maker=wallet,
            tokenId=inputs["token_id"],
            makerAmount=exact["maker_amount"],
            takerAmount=exact["taker_amount"],
            side=OfficialSide[inputs["side"]],
            signer=wallet,
            signatureType=SignatureTypeV2.POLY_1271,
            timestamp=vector["timestamp"],
            builder=inputs["builder"],
            expiration="0" if vector["kind"] == "market" else inputs["expiration"],
        )
    )
    creds = vector["api_creds"]
    payload = order_to_json_v2(
        signed, creds["key"], inputs["order_type"], inputs["post_only"], inputs["defer_exec"]
    )
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    fields = ("salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signatureType",
              "timestamp", "metadata", "builder", "expiration", "signature")  # fmt: skip
    vector.update(
        exchange=exchange,
        official_amounts=dict(exact),
        float_artifact=False,
        signed={name: getattr(signed, name) for name in fields},
        order_hash=builder.build_order_hash(builder.build_order_typed_data(signed)),
        signature_recovers_to=vector["signer_address"],
        post_body=body,
        l2_headers=create_level_2_headers(
            Signer(key, chain_id),
            OfficialCreds(creds["key"], creds["secret"], creds["passphrase"]),
            RequestArgs(method="POST", request_path=vector["post_path"], body=payload, serialized_body=body),
            timestamp=int(vector["l2_timestamp"]),
        ),
    )
    vector["signed"].update(side=int(signed.side), signatureType=int(signed.signatureType))
    return vector


def run_contract_tests(vector_file: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENV_VECTORS: str(vector_file)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *options, *MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_another_vector_file_with_other_kinds_passes(tmp_path: Path) -> None:
    public = load_vectors()
    plain: Callable[[Vector], bool] = lambda v: not v["float_artifact"] and v["inputs"]["signature_type"] == 0  # noqa: E731
    limit = pick(public, "plain neg-risk limit BUY", lambda v: plain(v) and v["kind"] == "limit"
                 and v["inputs"]["neg_risk"] and v["inputs"]["side"] == "BUY")  # fmt: skip
    market = pick(public, "plain market SELL", lambda v: plain(v) and v["kind"] == "market"
                  and v["inputs"]["side"] == "SELL")  # fmt: skip
    renamed = {**copy.deepcopy(limit), "id": "another-generator-1"}
    data = {
        **{k: v for k, v in public.items() if k not in ("batch_post", "l1_auth_vectors")},
        "vectors": [renamed, poly_1271_variant(limit, WALLET), poly_1271_variant(market, WALLET)],
    }
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(data))
    result = run_contract_tests(path)
    output = result.stdout + result.stderr
    assert 0 == result.returncode, output
    for missing in (
        "vector with float artifacts",
        "vector with signature type 1",
        "batch_post",
        "l1_auth_vectors",
    ):
        assert f"has no {missing}" in output or f"file has no {missing}" in output, missing
    assert "signature type 3" not in output  # the POLY_1271 tests ran on the new vectors


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"schema": "other/1", "vectors": []})])
def test_an_unusable_vector_file_fails_the_tests_not_the_collection(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "orders.json"
    if content is not None:
        path.write_text(content)
    result = run_contract_tests(path, "-x")  # both modules are collected before the first test runs
    output = result.stdout + result.stderr
    # exit code 1: tests failed; a collection error would be 2 ("Interrupted")
    assert 1 == result.returncode, output
    assert "error" not in output.splitlines()[-1], output
    assert str(path) in output
