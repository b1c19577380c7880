"""Resolve an image's or `-u`'s user against the image's own /etc/passwd
and /etc/group, read by fd inside the rootfs (openat2 RESOLVE_IN_ROOT), as
docker does: `name`, `uid`, `name:group`, `uid:gid`."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from runtime.core.errors import ImageError
from runtime.core.linux.safeopen import read_fd
from runtime.core.linux.syscalls import open_in_root


@dataclass
class User:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


MAX_ID_FILE = 4 << 20  # bytes of /etc/passwd or /etc/group read at most


def _read(rootfs: str, path: str) -> list[list[str]]:
    """The entries of an image's passwd or group file.  husk is host root
    here: the file is opened inside the root, never through a final
    symlink, without blocking (a FIFO), and only if it is a regular file;
    at most MAX_ID_FILE bytes are read (not /dev/zero's endless stream)."""
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root, path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError as e:
        what = "is a symlink" if e.errno == errno.ELOOP else e.strerror
        raise ImageError("user", f"the image's {path}: {what}", e.errno) from None
    finally:
        os.close(root)
    try:
        data = read_fd(fd, MAX_ID_FILE, f"the image's {path}", "user")
    finally:
        os.close(fd)
    return [line.split(":") for line in data.decode(errors="replace").splitlines()
            if line and not line.startswith("#")]


def resolve(rootfs: str, spec: str) -> User:
    spec = spec or "0"
    user_part, _, group_part = spec.partition(":")
    passwd = [e for e in _read(rootfs, "/etc/passwd") if len(e) >= 7]
    groups = [e for e in _read(rootfs, "/etc/group") if len(e) >= 3]
    entry = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if e[2] == user_part), None)
    else:
        entry = next((e for e in passwd if e[0] == user_part), None)
        if entry is None:
            raise ImageError("user", f"{user_part!r}: no such user in the image's /etc/passwd")
        uid = int(entry[2])
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((g for g in groups if g[0] == group_part), None)
            if g is None:
                raise ImageError("user", f"group {group_part!r}: no such group in the image's /etc/group")
            gid = int(g[2])
    extra = []
    if entry and not group_part:
        name = entry[0]
        extra = sorted({int(g[2]) for g in groups if len(g) > 3 and name in g[3].split(",")
                        and g[2].isdigit() and int(g[2]) != gid})
    if uid > 0xFFFFFFFE or gid > 0xFFFFFFFE:
        raise ImageError("user", f"{spec!r}: id out of range")
    return User(uid, gid, extra, entry[5] if entry and entry[5] else "/")
