"""`husk attach`: the client of husk-monitor's attach socket.

The monitor of a detached container (native/monitor/monitor.c) listens on
CONTAINER_DIR/attach, a SOCK_SEQPACKET unix socket: each message to us is
one byte naming the stream (1 stdout, 2 stderr) and what the container
wrote; each message we send is 'd' and bytes for the container's stdin
(run -d -i), or 'e' to close it.  The socket is reached through an O_PATH
fd of the container's directory (/proc/self/fd/N/attach), as the monitor
binds it: a sun_path holds only 108 bytes.  When the container has
exited the monitor closes the socket: that is our end of stream, and the
exit code comes from the container's record, as `husk wait` reads it.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable

from runtime.core.errors import HuskError
from runtime.core.paths import StoreLayout

STDOUT, STDERR = 1, 2
_MSG = 65536


def connect(store_root: str, cid: str, name: str) -> socket.socket:
    dirfd = os.open(StoreLayout(store_root).container(cid), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/attach")
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise HuskError("attach", f"container {name} is not running (start it with husk start)") from None
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    return sock


def relay(sock: socket.socket, stdin_fd: int | None, write: Callable[[int, bytes], None]) -> None:
    """Until the monitor closes the socket: its messages to WRITE(stream,
    bytes), and STDIN_FD (None: --no-stdin) to the container's stdin; our
    stdin's end closes the container's."""
    watched = [sock.fileno()] + ([stdin_fd] if stdin_fd is not None else [])
    while True:
        ready, _, _ = select.select(watched, [], [])
        if sock.fileno() in ready:
            msg = sock.recv(_MSG)
            if not msg:
                return
            if msg[0] in (STDOUT, STDERR):
                write(msg[0], msg[1:])
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, _MSG - 1)
            try:
                sock.send(b"d" + data if data else b"e")
            except (BrokenPipeError, ConnectionResetError):
                # The container exited and the monitor is closing: what is
                # left of its output is still to be read, nothing to send.
                data = b""
            if not data:
                watched.remove(stdin_fd)
                stdin_fd = None
