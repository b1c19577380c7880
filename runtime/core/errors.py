"""One error model, from husk-init to the command line.

husk-init reports {errno, step, detail} as a MSG_ERROR record (over its
socket before READY, through the exec fifo after); Python code raises the
same shape.  Every error is a HuskError of one kind; the CLI prints one
line (`husk: create c1: mount: proc on /proc: Operation not permitted`),
sends it to --log too, and exits with the kind's code:

    kind          class        exit   raised when
    config        ConfigError  1      config.json or a flag is wrong (names the field)
    not-found     NotFound     1      no such container
    wrong-state   WrongState   1      an illegal lifecycle step (start a stopped container)
    kernel        KernelError  1      a syscall failed (carries its errno)
    exec          ExecError    126    execve of the process failed...
                               127    ...because it does not exist (ENOENT)
    image         ImageError   1      a reference, manifest, blob or layer is bad
    network       NetworkError 1      a network, address or port cannot be had
    internal      HuskError    1      anything else

1 is runc's and crun's code for every failure; 126 and 127 are the
shell's (and docker's and podman's) for a command that cannot run or is
not there.  The docker-like `husk run IMAGE` exits 125 for husk's own
failures, as docker does (runtime/engine/run.py).
"""

from __future__ import annotations

import errno as _errno
import os


class HuskError(Exception):
    """A failure with the step it happened in and, where known, an errno."""

    kind = "internal"

    def __init__(self, step: str, detail: str = "", err: int = 0) -> None:
        self.step = step
        self.detail = detail
        self.errno = err
        super().__init__(str(self))

    @property
    def exit_code(self) -> int:
        return 1

    def __str__(self) -> str:
        parts = [p for p in (self.step, self.detail) if p]
        if self.errno:
            parts.append(os.strerror(self.errno))
        return ": ".join(parts)


class ConfigError(HuskError):
    """config.json (or a flag) is wrong; the message names the field."""

    kind = "config"

    def __init__(self, field: str, problem: str) -> None:
        if field.startswith("-"):  # a command-line flag: it names itself
            super().__init__(field, problem, _errno.EINVAL)
        else:
            super().__init__("config.json", f"{field}: {problem}", _errno.EINVAL)

    def __str__(self) -> str:
        return f"{self.step}: {self.detail}"


class NotFound(HuskError):
    kind = "not-found"

    def __init__(self, container_id: str, hint: str = "") -> None:
        super().__init__(f"container {container_id!r} does not exist" + (f" ({hint})" if hint else ""), err=0)


class WrongState(HuskError):
    """An illegal lifecycle transition (start a stopped container, ...)."""

    kind = "wrong-state"


class KernelError(HuskError):
    """A syscall failed: in husk-init (its MSG_ERROR record) or in Python."""

    kind = "kernel"


class ExecError(KernelError):
    """execve(2) of the container's process failed."""

    kind = "exec"

    @property
    def exit_code(self) -> int:
        return 127 if self.errno == _errno.ENOENT else 126

    def __str__(self) -> str:
        # The errno's text as runc (Go) writes it, in lower case: docker's
        # CLI and moby look for "permission denied" and "no such file or
        # directory" in it to exit 126 or 127.
        text = super().__str__()
        if self.errno:
            strerror = os.strerror(self.errno)
            text = text[:len(text) - len(strerror)] + strerror[:1].lower() + strerror[1:]
        return text


class ImageError(HuskError):
    kind = "image"


class NetworkError(HuskError):
    kind = "network"


def _to_stderr(message: str) -> None:
    import sys

    print(f"husk: warning: {message}", file=sys.stderr)


_warning_sink = _to_stderr


def warn(message: str) -> None:
    """Something the user should know that does not stop the command (a
    field husk ignores, a hook that failed after start).  It goes where
    errors go: the CLI sends both to stderr and to --log
    (runtime/cli/main.py report)."""
    _warning_sink(message)


def send_warnings_to(sink) -> None:
    global _warning_sink
    _warning_sink = sink
