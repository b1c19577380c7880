"""Signal names as kill(1) and runc accept them: KILL, SIGKILL, 9."""

from __future__ import annotations

import signal


def parse_signal(text: str) -> int:
    """'TERM', 'SIGTERM', 'sigterm' or '15' -> 15; ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise ValueError(f"signal number {number} out of range")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base = signal.SIGRTMIN if "MIN" in name else signal.SIGRTMAX
        offset = int(name[9:])
        number = base + offset if "MIN" in name else base - offset
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return int(number)
        raise ValueError(f"unknown signal {text!r}")
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {text!r}") from None
