"""--explain's steps taken in Python: the planning of a config (a recipe
miss) and the engine's own work (the image's rootfs, the network).

Each is one JSON line appended to the file HUSK_TRACE_FD names, beside
the C front end's and husk-init's (native/src/trace.h has the format and
the story; runtime/core/explain.py reads and explains them).  Off - no
HUSK_TRACE_FD - a step is one comparison.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

_fd: int | None = None  # -1: off; None: not looked up yet


def _trace_fd() -> int:
    global _fd
    if _fd is None:
        _fd = -1
        text = os.environ.get("HUSK_TRACE_FD", "")
        if text.isdigit():
            try:
                # Only a file opened for appending (as the front end
                # insists): the steps of several processes, one after another.
                if fcntl.fcntl(int(text), fcntl.F_GETFL) & os.O_APPEND:
                    _fd = int(text)
            except OSError:
                pass
    return _fd


def enabled() -> bool:
    return _trace_fd() >= 0


def inherited() -> tuple[int, ...]:
    """The fds a child process must be given for its steps to be recorded."""
    return (_fd,) if enabled() else ()


def step(mechanism: str, name: str, call: str, *, who: str = "planning") -> None:
    """Record one step, at the caller's source line."""
    fd = _trace_fd()
    if fd < 0:
        return
    frame = sys._getframe(1)
    path = frame.f_code.co_filename
    cut = path.rfind("/runtime/")
    source = f"{path[cut + 1:] if cut >= 0 else path}:{frame.f_lineno}"
    line = json.dumps({"t_us": time.time_ns() // 1000, "who": who, "source": source, "mechanism": mechanism,
                       "step": name, "call": call})
    try:
        os.write(fd, line.encode() + b"\n")  # one write: O_APPEND keeps the line whole
    except OSError:
        pass  # a step that cannot be written is only not shown
