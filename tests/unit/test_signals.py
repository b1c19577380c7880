"""Signal names the way runc's kill accepts them (no root needed)."""

import pytest

from runtime.core.linux.signals import parse_signal


@pytest.mark.parametrize("text,number", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigterm", 15),
                                         ("TERM", 15), ("USR1", 10), ("SIGRTMIN+1", 35)])
def test_parse_signal(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["", "BOGUS", "0", "99999", "SIGRTMAX+1"])
def test_bad_signal(text):
    with pytest.raises(ValueError):
        parse_signal(text)
