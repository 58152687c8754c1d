"""EIP-712 digests of the Safe transactions the server signs, and the Safe address of an owner.

SafeTx is Safe v1.3's (domain: chainId and the Safe, no name or version); CreateProxy is Polymarket's
Safe factory's (domain: name, chainId, the factory, no version). Both as RELAYER.md 3.1-3.3 state them.
"""

from __future__ import annotations

from typing import Final

from polysnipe.adapters.clob.signing import checksum_address, keccak256

__all__ = [
    "MULTISEND",
    "SAFE_FACTORY",
    "ZERO_ADDRESS",
    "create_proxy_digest",
    "derive_safe",
    "eth_signed_message_hash",
    "safe_tx_digest",
]

#: the Safe factory and MultiSend the relayer client uses on 137 and 80002 (RELAYER.md 4.1)
SAFE_FACTORY: Final = "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b"
MULTISEND: Final = "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"
ZERO_ADDRESS: Final = "0x" + "00" * 20
_SAFE_INIT_CODE_HASH: Final = bytes.fromhex(
    "2bce2127ff07fb632d16c8347c4ebf501f4841168bed00d9e6ef715ddb6fcecf"
)
_FACTORY_NAME: Final = b"Polymarket Contract Proxy Factory"

_SAFE_DOMAIN_TYPE: Final = keccak256(b"EIP712Domain(uint256 chainId,address verifyingContract)")
_SAFE_TX_TYPE: Final = keccak256(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
    b"uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)
_FACTORY_DOMAIN_TYPE: Final = keccak256(
    b"EIP712Domain(string name,uint256 chainId,address verifyingContract)"
)
_CREATE_PROXY_TYPE: Final = keccak256(
    b"CreateProxy(address paymentToken,uint256 payment,address paymentReceiver)"
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def safe_tx_digest(
    chain_id: int,
    safe: str,
    *,
    to: str,
    value: int,
    data: bytes,
    operation: int,
    safe_tx_gas: int,
    base_gas: int,
    gas_price: int,
    gas_token: str,
    refund_receiver: str,
    nonce: int,
) -> bytes:
    """keccak256(0x1901 || domainSeparator(chainId, safe) || hashStruct(SafeTx))."""
    domain = keccak256(_SAFE_DOMAIN_TYPE + _word(chain_id) + _address(safe))
    struct = keccak256(
        _SAFE_TX_TYPE
        + _address(to)
        + _word(value)
        + keccak256(data)
        + _word(operation)
        + _word(safe_tx_gas)
        + _word(base_gas)
        + _word(gas_price)
        + _address(gas_token)
        + _address(refund_receiver)
        + _word(nonce)
    )
    return keccak256(b"\x19\x01" + domain + struct)


def create_proxy_digest(
    chain_id: int, *, payment_token: str, payment: int, payment_receiver: str, factory: str = SAFE_FACTORY
) -> bytes:
    """The digest the Safe factory's createProxy recovers the owner from (RELAYER.md 3.2)."""
    domain = keccak256(_FACTORY_DOMAIN_TYPE + keccak256(_FACTORY_NAME) + _word(chain_id) + _address(factory))
    struct = keccak256(
        _CREATE_PROXY_TYPE + _address(payment_token) + _word(payment) + _address(payment_receiver)
    )
    return keccak256(b"\x19\x01" + domain + struct)


def derive_safe(owner: str, factory: str = SAFE_FACTORY) -> str:
    """The CREATE2 address of the owner's Safe: salt keccak256(abi.encode(owner)) (RELAYER.md 3.1)."""
    salt = keccak256(_address(owner))
    return checksum_address(
        "0x" + keccak256(b"\xff" + bytes.fromhex(factory[2:]) + salt + _SAFE_INIT_CODE_HASH)[-20:].hex()
    )


def eth_signed_message_hash(digest: bytes) -> bytes:
    """EIP-191 personal-sign hash of a 32-byte message: what the Safe's eth_sign signatures cover."""
    return keccak256(b"\x19Ethereum Signed Message:\n32" + digest)
