"""The file descriptors husk was started with.

`--preserve-fds N` and socket activation hand fds 3..3+N-1 of the caller
to the container.  Only fds that were open when husk started count:
one that husk opened itself (a state-directory fd, a socket) and that
happens to sit in a gap of that range must never reach the container.
The CLI records the set first thing, before it opens anything.
"""

from __future__ import annotations

import os

_recorded: frozenset[int] | None = None


def _open_fds() -> frozenset[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))  # the listing's own directory fd is closed by now
        except OSError:
            continue
        fds.add(int(name))
    return frozenset(fds)


def record() -> None:
    """Note the fds open now (call before husk opens any of its own)."""
    global _recorded
    if _recorded is None:
        _recorded = _open_fds()


def inherited_fds() -> frozenset[int]:
    """The fds open at record(); a library caller that never recorded
    gets the fds open now, its own choice of what to pass."""
    return _recorded if _recorded is not None else _open_fds()
