"""The fakes' echo of what the user said: the first characters with whitespace collapsed, worked
out on a prefix of a long text (a simulated prompt runs to 180,000 characters)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sandbox.fakes.content import ECHO_CHARS, _echo


@given(st.text(alphabet="ab \n\t\u00a0", max_size=ECHO_CHARS * 12))
def test_the_echo_is_the_collapsed_whole_cut_short(text: str) -> None:
    assert _echo(text) == " ".join(text.split())[:ECHO_CHARS]
