"""The signing server's Safe transaction policy: only approvals to the exchanges, transfers to our
own Safes and position moves on our own funds are signed; anything that could send value elsewhere,
pay a refund or change the Safe is refused with its reason."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polysnipe.adapters.signer_server.config import Policy
from polysnipe.adapters.signer_server.digests import MULTISEND, ZERO_ADDRESS
from polysnipe.adapters.signer_server.safe_calls import SafeCall, SafeTransaction, refusal
from signer_support import calldata, multisend, packed, wrap

SAFE = "0x" + "5a" * 20
OTHER_SAFE = "0x" + "5b" * 20
USDC = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
CTF = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
ADAPTER = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"
TREASURY = "0x" + "7e" * 20
STRANGER = "0x" + "ee" * 20
POLICY = Policy(
    chain_ids=(137,),
    safes=(SAFE, OTHER_SAFE),
    collateral_tokens=(USDC,),
    conditional_tokens=(CTF,),
    neg_risk_adapters=(ADAPTER,),
    spenders=(EXCHANGE, ADAPTER),
    recipients=(TREASURY,),
)


APPROVE = calldata("approve(address,uint256)", EXCHANGE, 2**256 - 1)
TRANSFER = calldata("transfer(address,uint256)", OTHER_SAFE, 5_000_000)
OPERATOR = calldata("setApprovalForAll(address,bool)", EXCHANGE, 1)
#: splitPosition(address,bytes32,bytes32,uint256[],uint256) with its array: only the selector is read
SPLIT = calldata("splitPosition(address,bytes32,bytes32,uint256[],uint256)", USDC, 0, 7, 160, 10, 2, 1, 2)
CONVERT = calldata("convertPositions(bytes32,uint256,uint256)", 9, 3, 1_000_000)


def tx(to: str, data: bytes, *, operation: int = 0, value: int = 0, **fields: int | str) -> SafeTransaction:
    base: dict[str, int | str] = {"safe_tx_gas": 0, "base_gas": 0, "gas_price": 0}
    base |= {"gas_token": ZERO_ADDRESS, "refund_receiver": ZERO_ADDRESS}
    return SafeTransaction(safe=SAFE, call=SafeCall(to, value, data, operation), **(base | fields))  # type: ignore[arg-type]


ERC1155_SEND = "safeTransferFrom(address,address,uint256,uint256,bytes)"
STEAL_POSITIONS = calldata(ERC1155_SEND, SAFE, STRANGER, 1, 1, 160, 0)
STEAL_COLLATERAL = calldata("transferFrom(address,address,uint256)", SAFE, STRANGER, 1)
ONE_APPROVE = (0, USDC, 0, APPROVE)


@pytest.mark.parametrize(
    ("to", "data"),
    [
        (USDC, APPROVE),
        (USDC, TRANSFER),
        (USDC, calldata("transfer(address,uint256)", TREASURY, 1)),
        (CTF, OPERATOR),
        (CTF, calldata("setApprovalForAll(address,bool)", ADAPTER, 0)),
        (CTF, SPLIT),
        (CTF, calldata("redeemPositions(address,bytes32,bytes32,uint256[])", USDC, 0, 7, 128, 2, 1, 2)),
        (ADAPTER, CONVERT),
        (ADAPTER, calldata("redeemPositions(bytes32,uint256[])", 7, 64, 2, 5, 0)),
        (ADAPTER, calldata("mergePositions(bytes32,uint256)", 7, 5)),
        (ADAPTER, SPLIT),
    ],
    ids=[
        "approve",
        "transfer-safe",
        "transfer-treasury",
        "operator",
        "revoke",
        "split",
        "redeem",
        "convert",
        "adapter-redeem",
        "adapter-merge",
        "adapter-split",
    ],
)
def test_the_calls_a_trading_safe_makes_are_signed(to: str, data: bytes) -> None:
    assert refusal(POLICY, tx(to, data)) is None
    # in any address case, and batched through MultiSend
    assert refusal(POLICY, tx(to.upper().replace("0X", "0x"), data)) is None
    batch = multisend((0, to, 0, data), (0, USDC, 0, APPROVE))
    assert refusal(POLICY, tx(MULTISEND, batch, operation=1)) is None


@pytest.mark.parametrize(
    ("transaction", "why"),
    [
        (tx(USDC, calldata("transfer(address,uint256)", STRANGER, 1)), "transfer recipient 0xeeee"),
        (tx(USDC, calldata("approve(address,uint256)", STRANGER, 1)), "approve spender 0xeeee"),
        (tx(CTF, calldata("setApprovalForAll(address,bool)", STRANGER, 1)), "operator 0xeeee"),
        (tx(CTF, calldata("setApprovalForAll(address,bool)", EXCHANGE, 2)), "not a bool"),
        (tx(USDC, STEAL_COLLATERAL), "function 0x23b872dd"),
        (tx(CTF, STEAL_POSITIONS), "of Conditional Tokens contract"),
        (tx(ADAPTER, STEAL_POSITIONS), "of neg-risk adapter"),
        (tx(STRANGER, APPROVE), "is not a contract the policy allows"),
        (tx(SAFE, calldata("addOwnerWithThreshold(address,uint256)", STRANGER, 1)), "the Safe itself"),
        (tx(USDC, b""), "without a function selector"),
        (tx(USDC, APPROVE, value=1), "carries value 1"),
        (tx(USDC, APPROVE + bytes(32)), "are 96 bytes, not 64"),
        (tx(USDC, APPROVE[:-1]), "are 63 bytes, not 64"),
        (tx(USDC, APPROVE[:4] + b"\x01" + APPROVE[5:]), "is not an address"),
        (tx(USDC, APPROVE, gas_price=1), "gasPrice must be 0"),
        (tx(USDC, APPROVE, safe_tx_gas=1), "safeTxGas"),
        (tx(USDC, APPROVE, base_gas=1), "baseGas"),
        (tx(USDC, APPROVE, refund_receiver=STRANGER), "refundReceiver must be the zero address"),
        (tx(USDC, APPROVE, gas_token=USDC), "gasToken"),
        (tx(USDC, APPROVE, operation=1), "delegatecall is only allowed to MultiSend"),
        (tx(MULTISEND, multisend((0, USDC, 0, APPROVE))), "is not a contract the policy allows"),
        (tx(MULTISEND, multisend((0, USDC, 0, APPROVE)), operation=1, value=1), "must carry no value"),
        (tx(MULTISEND, multisend((1, USDC, 0, APPROVE)), operation=1), "transaction 0: only calls"),
        (tx(MULTISEND, multisend((0, USDC, 0, APPROVE), (0, USDC, 5, APPROVE)), operation=1),
         "transaction 1: a call to"),
        (tx(MULTISEND, multisend((0, USDC, 0, APPROVE), (0, STRANGER, 0, APPROVE)), operation=1),
         "transaction 1: 0xeeee"),
        (tx(MULTISEND, multisend((0, MULTISEND, 0, multisend((0, STRANGER, 0, b"")))), operation=1),
         "transaction 0: 0xa238"),
        (tx(MULTISEND, APPROVE, operation=1), "not a multiSend(bytes) call"),
        (tx(MULTISEND, multisend(), operation=1), "no transaction"),
        (tx(MULTISEND, wrap(packed(ONE_APPROVE), offset=64), operation=1), "offset 32"),
        (tx(MULTISEND, wrap(packed(ONE_APPROVE), padding=bytes(39)), operation=1), "bytes but"),
        (tx(MULTISEND, multisend(ONE_APPROVE)[:-5], operation=1), "bytes but"),
        (tx(MULTISEND, wrap(packed(ONE_APPROVE) + bytes(10)), operation=1), "transaction 1 is truncated"),
        (tx(MULTISEND, wrap(packed(ONE_APPROVE), padding=bytes(6) + b"\x01"), operation=1), "padding"),
        (tx(MULTISEND, multisend(*[ONE_APPROVE] * 65), operation=1), "more than 64"),
    ],
)  # fmt: skip
def test_what_could_move_value_elsewhere_is_refused_with_its_reason(
    transaction: SafeTransaction, why: str
) -> None:
    got = refusal(POLICY, transaction)
    assert got is not None and why in got, got


def test_an_empty_policy_signs_no_safe_call() -> None:
    empty = Policy(chain_ids=(137,), safes=(SAFE,))
    for to, data in ((USDC, APPROVE), (CTF, SPLIT), (ADAPTER, CONVERT)):
        assert "is not a contract the policy allows" in (refusal(empty, tx(to, data)) or "")
    # transfers between Safes need the collateral listed, and the recipient among the Safes
    assert refusal(attrs.evolve(empty, collateral_tokens=(USDC,)), tx(USDC, TRANSFER)) is not None


def test_a_data_length_field_pointing_past_the_batch_is_refused() -> None:
    good = multisend((0, USDC, 0, APPROVE))
    header, blob = good[:68], bytearray(good[68:])
    blob[53:85] = (2**255).to_bytes(32, "big")  # the inner data length: far beyond the batch
    assert "more than follow" in (refusal(POLICY, tx(MULTISEND, header + bytes(blob), operation=1)) or "")


@given(st.binary(max_size=600), st.sampled_from([USDC, CTF, ADAPTER, MULTISEND, STRANGER]), st.integers(0, 1))
def test_any_call_data_is_allowed_or_refused_never_an_error(data: bytes, to: str, operation: int) -> None:
    got = refusal(POLICY, tx(to, data, operation=operation))
    assert got is None or isinstance(got, str)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),
            st.sampled_from([USDC, CTF, STRANGER]),
            st.integers(0, 2),
            st.sampled_from([APPROVE, TRANSFER, OPERATOR, b"", SPLIT]),
        ),
        max_size=6,
    )
)
def test_a_batch_is_allowed_exactly_when_every_transaction_in_it_is(
    calls: list[tuple[int, str, int, bytes]],
) -> None:
    got = refusal(POLICY, tx(MULTISEND, multisend(*calls), operation=1))
    each = [op == 0 and refusal(POLICY, tx(to, d, value=v)) is None for op, to, v, d in calls]
    assert (got is None) == (bool(calls) and all(each)), got
