"""One error shape from the C helper to the command line.

husk-init reports {errno, step, detail}; Python code raises the same
shape.  The CLI prints one line (`husk: create c1: mount: proc on /proc:
Operation not permitted`) and exits non-zero.
"""

from __future__ import annotations

import errno as _errno
import os


class HuskError(Exception):
    """A failure with the step it happened in and, where known, an errno."""

    def __init__(self, step: str, detail: str = "", err: int = 0) -> None:
        self.step = step
        self.detail = detail
        self.errno = err
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.step, self.detail) if p]
        if self.errno:
            parts.append(os.strerror(self.errno))
        return ": ".join(parts)


class ConfigError(HuskError):
    """config.json (or a flag) is wrong; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__("config.json", f"{field}: {problem}", _errno.EINVAL)

    def __str__(self) -> str:
        return f"{self.step}: {self.detail}"


class NotFound(HuskError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id!r} does not exist", err=0)


class WrongState(HuskError):
    """An illegal lifecycle transition (start a stopped container, ...)."""
