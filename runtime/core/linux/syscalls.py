"""The few syscalls Python's os module lacks, through cffi.

runtime.core._native (native/ffi/build.py) is compiled against the
kernel's headers, so the flag values below are the C compiler's, not
numbers copied by hand.

openat2(2) resolves a path with the kernel's own scoping (RESOLVE_IN_ROOT:
"/" and ".." stop at the directory fd), which is how husk touches paths
inside an image layer or a rootfs without ever following a symlink out of
it.  The new mount API (fsopen/fsconfig/fsmount/move_mount) builds the
overlay rootfs with one `lowerdir+` per layer, so the number of layers is
not limited by mount(2)'s one-page option string.
"""

from __future__ import annotations

import errno
import os

from runtime.core._native import ffi, lib

RESOLVE_NO_XDEV = lib.RESOLVE_NO_XDEV
RESOLVE_NO_MAGICLINKS = lib.RESOLVE_NO_MAGICLINKS
RESOLVE_NO_SYMLINKS = lib.RESOLVE_NO_SYMLINKS
RESOLVE_BENEATH = lib.RESOLVE_BENEATH
RESOLVE_IN_ROOT = lib.RESOLVE_IN_ROOT
AT_FDCWD = lib.AT_FDCWD
MNT_DETACH = lib.MNT_DETACH
CLONE_NEWNET = lib.CLONE_NEWNET


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _c(text: str | None):
    return ffi.NULL if text is None else os.fsencode(text)


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); raises OSError (EXDEV/ELOOP when resolve forbids a step)."""
    how = ffi.new("struct open_how *", {"flags": flags | os.O_CLOEXEC, "mode": mode, "resolve": resolve})
    while True:
        ret = lib.husk_openat2(dirfd, os.fsencode(path), how)
        # EAGAIN: a concurrent rename raced RESOLVE_IN_ROOT's check; retry.
        if ret < 0 and ffi.errno == errno.EAGAIN:
            continue
        return _check(ret, "openat2", path)


def open_in_root(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open PATH as if ROOTFD were "/": symlinks and ".." never leave it,
    and magic links (/proc/self/fd/N) are refused."""
    return openat2(rootfd, path or ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, mode)


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    ret = lib.mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype), flags, _c(data))
    _check(ret, f"mount {fstype} on {target}", target)


def umount(target: str, flags: int = 0) -> None:
    _check(lib.umount2(os.fsencode(target), flags), f"umount {target}", target)


def unshare(flags: int) -> None:
    _check(lib.unshare(flags), f"unshare({flags:#x})")


def fsopen(fstype: str) -> int:
    return _check(lib.husk_fsopen(os.fsencode(fstype), lib.FSOPEN_CLOEXEC), f"fsopen {fstype}")


def fsconfig_string(fsfd: int, key: str, value: str) -> None:
    _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_SET_STRING, _c(key), _c(value), 0), f"fsconfig {key}={value}")


def fsconfig_flag(fsfd: int, key: str) -> None:
    _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_SET_FLAG, _c(key), ffi.NULL, 0), f"fsconfig {key}")


def fsconfig_create(fsfd: int) -> None:
    _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_CMD_CREATE, ffi.NULL, ffi.NULL, 0), "fsconfig create")


def fsmount(fsfd: int, attr_flags: int = 0) -> int:
    return _check(lib.husk_fsmount(fsfd, lib.FSMOUNT_CLOEXEC, attr_flags), "fsmount")


def move_mount_to(mntfd: int, target: str) -> None:
    _check(lib.husk_move_mount(mntfd, b"", AT_FDCWD, os.fsencode(target), lib.MOVE_MOUNT_F_EMPTY_PATH),
           f"move_mount to {target}", target)
