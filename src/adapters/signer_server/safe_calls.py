"""What a Safe transaction may do before the server signs it as the Safe's owner.

Theory of operation
-------------------
An owner's signature on a SafeTx lets anyone execute it (RELAYER.md 6), so signing is spending: a
caller holding an engine credential could otherwise have a USDC transfer out, a new owner or a gas
refund to itself signed. `refusal` reads the transaction the way the Safe will execute it and names
the first thing the policy does not allow; None means every call in it is allowed.

* Payment fields: `value`, `safeTxGas`, `baseGas` and `gasPrice` are 0 and `gasToken` and
  `refundReceiver` the zero address, as the relayer and the direct-Polygon fallback send them
  (RELAYER.md 3.3, 6); anything else pays native tokens or a refund out of the Safe.
* Operation: a CALL, or a DELEGATECALL to MultiSend only (RELAYER.md 3.5), whose packed
  transactions are each read and must be CALLs of value 0 that pass the same rules.
* Each call is one of a table, by target and function selector:
  - collateral tokens (ERC-20): `approve` to an allowed spender, `transfer` to one of the policy's
    Safes or an allowed recipient;
  - the Conditional Tokens contract: `setApprovalForAll` to an allowed spender, and splitting,
    merging and redeeming, which act on the caller's own positions and pay the caller;
  - neg-risk adapters: splitting, merging, redeeming and converting, likewise on the caller's own
    positions (Polymarket/neg-risk-ctf-adapter, src/NegRiskAdapter.sol).
  The arguments of approve, transfer and setApprovalForAll are decoded strictly (exact length, clean
  address words, a bool that is 0 or 1). No call may target the Safe itself (owners, modules,
  guards) or MultiSend.

The policy lists the addresses; an empty list allows nothing of its kind, so a server configured
with no contracts signs no Safe transaction at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import attrs

from polysnipe.adapters.clob.signing import keccak256
from polysnipe.adapters.signer_server.config import Policy
from polysnipe.adapters.signer_server.digests import MULTISEND, ZERO_ADDRESS

__all__ = ["SafeCall", "SafeTransaction", "refusal"]

_MULTISEND: Final = MULTISEND.lower()
#: packed MultiSend transactions in one batch: far more than any batch the engine builds
_MAX_BATCH: Final = 64


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


_APPROVE: Final = _selector("approve(address,uint256)")
_TRANSFER: Final = _selector("transfer(address,uint256)")
_SET_APPROVAL_FOR_ALL: Final = _selector("setApprovalForAll(address,bool)")
_MULTI_SEND: Final = _selector("multiSend(bytes)")
_CTF_SPLIT: Final = "splitPosition(address,bytes32,bytes32,uint256[],uint256)"
_CTF_MERGE: Final = "mergePositions(address,bytes32,bytes32,uint256[],uint256)"
#: the Conditional Tokens functions that act on the caller's own collateral and positions only
_CTF_OWN: Final = frozenset(
    map(_selector, (_CTF_SPLIT, _CTF_MERGE, "redeemPositions(address,bytes32,bytes32,uint256[])"))
)
#: the neg-risk adapter's, likewise (it also takes the CTF's split and merge signatures)
_ADAPTER_OWN: Final = frozenset(
    map(
        _selector,
        (
            _CTF_SPLIT,
            _CTF_MERGE,
            "splitPosition(bytes32,uint256)",
            "mergePositions(bytes32,uint256)",
            "redeemPositions(bytes32,uint256[])",
            "convertPositions(bytes32,uint256,uint256)",
        ),
    )
)


@attrs.frozen(slots=True)
class SafeCall:
    """One call a Safe makes: the outer transaction, or one packed in a MultiSend batch."""

    to: str
    value: int
    data: bytes
    operation: int


@attrs.frozen(slots=True, kw_only=True)
class SafeTransaction:
    """The SafeTx fields the policy reads (addresses in any case)."""

    safe: str
    call: SafeCall
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str


def refusal(policy: Policy, tx: SafeTransaction) -> str | None:
    """Why the policy refuses `tx`, in one line; None when it allows it."""
    if tx.safe_tx_gas or tx.base_gas or tx.gas_price:
        return "safeTxGas, baseGas and gasPrice must be 0 (the Safe pays no gas refund)"
    if tx.gas_token.lower() != ZERO_ADDRESS or tx.refund_receiver.lower() != ZERO_ADDRESS:
        return "gasToken and refundReceiver must be the zero address (the Safe pays no gas refund)"
    call = tx.call
    if call.operation == 1:
        if call.to.lower() != _MULTISEND:
            return f"delegatecall is only allowed to MultiSend {MULTISEND}, not {call.to}"
        if call.value:
            return "a MultiSend batch must carry no value"
        try:
            batch = list(_unpack_multisend(call.data))
        except ValueError as exc:
            return f"malformed MultiSend batch: {exc}"
        for i, inner in enumerate(batch):
            if inner.operation != 0:
                return f"MultiSend transaction {i}: only calls are allowed, not delegatecall"
            why = _call_refusal(policy, tx.safe, inner)
            if why is not None:
                return f"MultiSend transaction {i}: {why}"
        return None
    return _call_refusal(policy, tx.safe, call)


def _call_refusal(policy: Policy, safe: str, call: SafeCall) -> str | None:
    to = call.to.lower()
    if call.value:
        return f"a call to {call.to} carries value {call.value}; only 0 is allowed"
    if to == safe.lower():
        return "a call to the Safe itself (owners, modules, guards) is not allowed"
    if len(call.data) < 4:
        return f"a call to {call.to} without a function selector is not allowed"
    selector, args = call.data[:4], call.data[4:]
    if to in policy.collateral_tokens:
        # the amount of approve and transfer may be any uint256: what bounds it is whom it goes to
        if selector == _APPROVE:
            return _address_arg(args, policy.spenders, "approve spender", call.to)
        if selector == _TRANSFER:
            return _address_arg(args, policy.safes | policy.recipients, "transfer recipient", call.to)
        return _unknown(selector, call.to, "collateral token")
    if to in policy.conditional_tokens:
        if selector == _SET_APPROVAL_FOR_ALL:
            return _address_arg(args, policy.spenders, "setApprovalForAll operator", call.to) or _bool_arg(
                args
            )
        if selector in _CTF_OWN:
            return None
        return _unknown(selector, call.to, "Conditional Tokens contract")
    if to in policy.neg_risk_adapters:
        if selector in _ADAPTER_OWN:
            return None
        return _unknown(selector, call.to, "neg-risk adapter")
    return f"{call.to} is not a contract the policy allows Safe calls to"


def _unknown(selector: bytes, to: str, what: str) -> str:
    return f"function 0x{selector.hex()} of {what} {to} is not allowed"


def _address_arg(args: bytes, allowed: frozenset[str], what: str, to: str) -> str | None:
    """The first of exactly two words: a clean address in `allowed`."""
    if len(args) != 64:
        return f"the arguments of a call to {to} are {len(args)} bytes, not 64"
    word = args[:32]
    if any(word[:12]):
        return f"the {what} is not an address"
    address = "0x" + word[12:].hex()
    if address not in allowed:
        return f"{what} {address} is not allowed by the policy"
    return None


def _bool_arg(args: bytes) -> str | None:
    if int.from_bytes(args[32:64], "big") > 1:
        return "setApprovalForAll's flag is not a bool"
    return None


def _unpack_multisend(data: bytes) -> Iterator[SafeCall]:
    """The transactions of `multiSend(bytes)` call data, as Safe's MultiSend 1.3 reads them: each
    `uint8 operation ‖ address to ‖ uint256 value ‖ uint256 length ‖ data`, packed (RELAYER.md 3.5).
    The ABI wrapping is read strictly: one offset of 32, the length, zero padding to a word."""
    if data[:4] != _MULTI_SEND:
        raise ValueError("not a multiSend(bytes) call")
    body = data[4:]
    if len(body) < 64 or int.from_bytes(body[:32], "big") != 32:
        raise ValueError("its bytes argument is not encoded at offset 32")
    length = int.from_bytes(body[32:64], "big")
    padded = -(-length // 32) * 32
    if len(body) != 64 + padded:
        raise ValueError(f"its bytes argument says {length} bytes but {len(body) - 64} follow")
    blob = body[64 : 64 + length]
    if any(body[64 + length :]):
        raise ValueError("its padding is not zero")
    at = n = 0
    while at < len(blob):
        if len(blob) - at < 85:
            raise ValueError(f"transaction {n} is truncated")
        operation = blob[at]
        to = "0x" + blob[at + 1 : at + 21].hex()
        value = int.from_bytes(blob[at + 21 : at + 53], "big")
        size = int.from_bytes(blob[at + 53 : at + 85], "big")
        if size > len(blob) - at - 85:
            raise ValueError(f"transaction {n} says {size} bytes of data, more than follow")
        yield SafeCall(to, value, blob[at + 85 : at + 85 + size], operation)
        at += 85 + size
        n += 1
        if n > _MAX_BATCH:
            raise ValueError(f"more than {_MAX_BATCH} transactions")
    if n == 0:
        raise ValueError("no transaction")
