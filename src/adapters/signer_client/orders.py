"""Live execution's OrderSigningPort on the signing server: the engine's orders signed by a key the
engine never holds.

The order is reduced to its wire terms here, exactly as in-process signing does (clob.signing
.order_terms), and sent as fields with the order's correlation id, so the server's audit row names
the engine decision it signed. Fail closed: a refusal or an unreachable server is OrderSigningFailed
(execution then rejects the order with the reason and alerts; nothing is sent), and an answer that
is not the order asked for (another maker, token, amount, salt) is refused rather than sent.
"""

from __future__ import annotations

from typing import Final

from polysnipe.adapters.clob.config import ClobConfig, validate_address
from polysnipe.adapters.clob.signing import OrderSigningFailed, SignedOrder, order_terms
from polysnipe.adapters.signer_client.client import AsyncSignerClient, order_sign_request
from polysnipe.adapters.signer_client.errors import SignerRefused, SignerUnavailable
from polysnipe.adapters.signer_server.schemas import Health
from polysnipe.core.events import Side
from polysnipe.core.messages import OrderRequest

__all__ = ["SIGNER_REFUSED", "SIGNER_UNAVAILABLE", "RemoteOrderSigner"]

#: OrderRejected reasons (and alert codes) of orders the signing server did not sign
SIGNER_REFUSED: Final = "signer_refused"
SIGNER_UNAVAILABLE: Final = "signer_unavailable"
_SIDE_NAMES: Final = {Side.BUY: "BUY", Side.SELL: "SELL"}


class RemoteOrderSigner:
    """OrderSigningPort: orders of `config`'s wallet signed by the server's managed key `address`."""

    __slots__ = ("_address", "_client", "_config", "_maker")

    def __init__(self, client: AsyncSignerClient, config: ClobConfig, address: str) -> None:
        self._client = client
        self._config = config
        self._address = validate_address(address, "signer address")
        self._maker = config.funder if config.funder is not None else self._address

    @property
    def address(self) -> str:
        return self._address

    @property
    def maker(self) -> str:
        return self._maker

    async def health(self) -> Health:
        """The server's GET /healthz; raises SignerUnavailable when it does not answer."""
        return await self._client.health()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def sign_order(self, order: OrderRequest, timestamp_ms: int) -> SignedOrder:
        maker_amount, taker_amount, salt, expiration_s = order_terms(order)
        config = self._config
        try:
            request = order_sign_request(
                chain_id=config.chain_id, signer=self._address, maker=config.funder,
                signature_type=int(config.signature_type), builder_code=config.builder_code,
                token_id=order.token_id, side=order.side, maker_amount=maker_amount,
                taker_amount=taker_amount, neg_risk=order.neg_risk, salt=salt,
                timestamp_ms=timestamp_ms, expiration_s=expiration_s,
            )  # fmt: skip
            signed = await self._client.sign_order(request, order.correlation_id)
        except SignerRefused as exc:
            raise OrderSigningFailed(
                SIGNER_REFUSED, f"signing server refused ({exc.status}): {exc.reason}"
            ) from None
        except SignerUnavailable as exc:
            raise OrderSigningFailed(SIGNER_UNAVAILABLE, str(exc)) from None
        asked = (
            self._maker.lower(), order.token_id, str(maker_amount), str(taker_amount),
            _SIDE_NAMES[order.side], salt, str(timestamp_ms), str(expiration_s),
        )  # fmt: skip
        got = (
            signed.maker.lower(), signed.tokenId, signed.makerAmount, signed.takerAmount,
            signed.side, signed.salt, signed.timestamp, signed.expiration,
        )  # fmt: skip
        if got != asked:
            raise OrderSigningFailed(SIGNER_REFUSED, "signing server signed another order than the one asked")
        return signed

    def __repr__(self) -> str:
        return f"RemoteOrderSigner(address={self._address}, server={self._client.url})"
