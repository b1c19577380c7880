"""`husk run` with process.terminal and no --console-socket: husk is the
console socket's other end itself and copies bytes between its own
terminal and the container's pty master (what runc does for `run -t`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import sys
import termios
import tty


class Proxy:
    def __init__(self) -> None:
        self._local, self._remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.remote_fd = self._remote.fileno()
        self.master: int | None = None
        self._saved: list | None = None

    def receive_master(self) -> None:
        """husk-init sent the pty master over SCM_RIGHTS before READY."""
        self._remote.close()
        _, fds, _, _ = socket.recv_fds(self._local, 64, 1)
        if not fds:
            raise OSError("no pty master received on the console socket")
        self.master = fds[0]
        self._local.close()
        stdin = sys.stdin.fileno()
        if os.isatty(stdin):
            with contextlib.suppress(OSError):
                size = fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    def __enter__(self) -> Proxy:
        stdin = sys.stdin.fileno()
        if os.isatty(stdin):
            self._saved = termios.tcgetattr(stdin)
            tty.setraw(stdin)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
        self.close()

    def pump(self, pid: int) -> None:
        """Copy stdin -> pty and pty -> stdout until the pty closes."""
        assert self.master is not None
        stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
        watch = [self.master, stdin]
        while True:
            try:
                readable, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if self.master in readable:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: every slave fd closed, the process is gone
                    data = b""
                if not data:
                    return
                os.write(stdout, data)
            if stdin in readable:
                data = os.read(stdin, 65536)
                if data:
                    os.write(self.master, data)
                else:
                    watch.remove(stdin)
                    os.write(self.master, b"\x04")  # EOF on our stdin: ^D to the pty

    def close(self) -> None:
        for s in (self._local, self._remote):
            s.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None
