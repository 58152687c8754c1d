"""Where the signing server is and how patiently to ask it. The caller credential is not here: the
factory reads it from POLYSNIPE_SIGNER_CREDENTIAL."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["SignerClientConfig"]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.frozen(slots=True, kw_only=True)
class SignerClientConfig:
    #: the server's base URL, e.g. https://signer.internal:8700
    url: str
    connect_timeout_s: float = attrs.field(default=1.0, validator=_positive)
    request_timeout_s: float = attrs.field(default=2.0, validator=_positive)
    #: further attempts after a failure that is safe to retry (errors.is_safe_to_retry)
    retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    #: a CA bundle for a server with a private certificate; None: the system's
    ca_file: str | None = None
    #: the managed key that signs this engine's orders (`polysnipe signer keys list` shows it);
    #: None: this client signs no orders
    order_key: str | None = None
