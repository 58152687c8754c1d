"""`polysnipe orders sign` prints exactly the official client's POST /order body for the same inputs."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from polysnipe.adapters.clob.auth import ApiCreds
from polysnipe.adapters.clob.factory import ClobSecrets
from polysnipe.runners.config import load_settings
from polysnipe.runners.errors import ConfigError
from polysnipe.runners.orders_cli import sign_lines
from polysnipe.runners.settings import Settings

VECTORS = Path(
    os.environ.get("POLYSNIPE_ORDER_VECTORS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vectors" / "orders.json"
)


def _vectors() -> list[dict[str, Any]]:
    data = json.loads(VECTORS.read_text())
    # float-artifact vectors carry the official client's wrong amounts; ours are the exact ones
    return [v for v in data["vectors"] if not v["float_artifact"]]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["id"])
def test_sign_cli_matches_official_body(vector: dict[str, Any]) -> None:
    inputs = dict(vector["inputs"])
    creds = vector["api_creds"]
    secrets = ClobSecrets(vector["key"], ApiCreds(creds["key"], creds["secret"], creds["passphrase"]))
    settings = Settings(
        chain_id=vector["chain_id"],
        signature_type=inputs["signature_type"],
        funder=inputs["funder"] or "",
        builder_code=inputs["builder"],
    )
    line = json.dumps({**inputs, "salt": vector["salt"], "timestamp_ms": vector["timestamp"]})
    out, err = io.StringIO(), io.StringIO()
    assert 0 == sign_lines([line], settings, secrets, out, err), err.getvalue()
    assert vector["post_body"] + "\n" == out.getvalue()


def test_bad_lines_are_reported_and_the_rest_still_sign() -> None:
    vector = _vectors()[0]
    secrets = ClobSecrets(vector["key"], None)
    settings = Settings()
    good = json.dumps(vector["inputs"])
    unknown_neg_risk = json.dumps({**vector["inputs"], "neg_risk": None})
    out_of_range = json.dumps({**vector["inputs"], "price": "1.5"})
    out, err = io.StringIO(), io.StringIO()
    assert 1 == sign_lines([unknown_neg_risk, good, out_of_range], settings, secrets, out, err)
    assert 1 == len(out.getvalue().splitlines())
    assert "line 1:" in err.getvalue() and "line 3:" in err.getvalue()


def test_settings_never_carry_secrets(tmp_path: Path) -> None:
    s = load_settings({"POLYSNIPE_CLOB_PRIVATE_KEY": "0xdeadbeef", "POLYSNIPE_CHAIN_ID": "80002"})
    assert 80002 == s.chain_id
    assert "deadbeef" not in repr(s)
    toml = tmp_path / "s.toml"
    toml.write_text('private_key = "0x01"\n')
    with pytest.raises(ConfigError):
        load_settings({}, toml)
