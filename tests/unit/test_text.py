"""Outside text made safe to store (Postgres refuses NUL) and to show (control characters)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from polysnipe.adapters.text import printable


def test_control_characters_are_escaped_and_the_length_bounded() -> None:
    assert "0xab" == printable("0xab", 80)
    assert "a\\x00b\\x1b[31m" == printable("a\x00b\x1b[31m", 80)
    assert "x" * 5 == printable("x" * 9, 5)
    assert "\\n" == printable("\n\n", 2)


@given(st.text(), st.integers(min_value=0, max_value=50))
def test_what_comes_out_is_printable_bounded_and_stable(text: str, limit: int) -> None:
    shown = printable(text, limit)
    assert shown.isprintable() and len(shown) <= limit
    assert shown == printable(shown, limit)
