"""Open files husk did not write (an image's /etc/passwd, the files of an
archive or layout, a seccomp profile) without trusting them.

husk runs as host root, so a hostile image can point such a name at
anything: a FIFO (open blocks for ever), /dev/zero (read never ends), a
symlink out of the tree.  Every such open is O_NOFOLLOW (the last
component is never followed) and O_NONBLOCK (a FIFO or device does not
block the open), the result must be a regular file, and reads stop at a
limit.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.core.errors import HuskError

SAFE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def check_regular(fd: int, name: str, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise HuskError(what, f"{name}: not a regular file", errno.EINVAL)
    return st


def open_regular(path: str, what: str, dir_fd: int | None = None) -> int:
    """An fd on path, which must be a regular file and not a symlink."""
    try:
        fd = os.open(path, SAFE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise HuskError(what, f"{path}: is a symlink", e.errno) from None
        raise HuskError(what, path, e.errno) from None
    try:
        check_regular(fd, path, what)
        # Reads of a regular file never block; clear O_NONBLOCK anyway so
        # the fd behaves normally when handed on.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: int, name: str, what: str) -> bytes:
    """All of a regular file's fd, refusing more than limit bytes."""
    st = check_regular(fd, name, what)
    if st.st_size > limit:
        raise HuskError(what, f"{name}: {st.st_size} bytes, more than the limit of {limit}", errno.EFBIG)
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:  # it grew while we read
            raise HuskError(what, f"{name}: more than the limit of {limit} bytes", errno.EFBIG)
    return b"".join(chunks)


def read_regular_file(path: str, limit: int, what: str, dir_fd: int | None = None) -> bytes:
    fd = open_regular(path, what, dir_fd)
    try:
        return read_fd(fd, limit, path, what)
    finally:
        os.close(fd)
