"""Secret: a value that no repr, str, f-string, attrs.asdict, json, msgspec, pickle or log can show.

Private keys, API secrets and passphrases travel wrapped in a Secret from the moment they are read
(environment, venue response) until the one call that needs the plain value, which asks for it with
`reveal()`. Everything else sees `Secret('***')`.

It is a plain slotted class on purpose, not an attrs class: `attrs.asdict` recurses into attrs
instances and msgspec encodes them field by field, so an attrs wrapper would hand its value to both.
A plain class stays opaque: asdict keeps the object itself, and json/msgspec/pickle refuse it.
"""

from __future__ import annotations

import hmac
from typing import Any, Final, Generic, NoReturn, TypeVar, final

__all__ = ["MASK", "Secret"]

#: what a secret shows instead of itself
MASK: Final = "***"

T = TypeVar("T", str, bytes)


@final
class Secret(Generic[T]):
    """An immutable secret str or bytes. `reveal()` is the only way to read it."""

    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        if not isinstance(value, str | bytes):
            raise TypeError(f"a Secret wraps str or bytes, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> T:
        """The plain value: call it where the value is used, never to pass it around."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self._value, other._value
        if isinstance(mine, str) != isinstance(theirs, str):
            return False
        # constant time, so that comparing credentials leaks nothing through timing
        return hmac.compare_digest(_as_bytes(mine), _as_bytes(theirs))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Secret cannot be pickled or serialized; reveal() it where it is needed")

    def __copy__(self) -> Secret[T]:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret[T]:
        return self


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
