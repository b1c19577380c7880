"""The few syscalls Python's os module lacks, through ctypes.

openat2(2) resolves a path with the kernel's own scoping (RESOLVE_IN_ROOT:
"/" and ".." stop at the directory fd), which is how husk touches paths
inside an image layer or a rootfs without ever following a symlink out of
it.  The new mount API (fsopen/fsconfig/fsmount/move_mount) builds the
overlay rootfs with one `lowerdir+` per layer, so the number of layers is
not limited by mount(2)'s one-page option string.

These numbers are the same on every architecture: syscalls added after
Linux 5.0 use one table.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_OPENAT2 = 437

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
MNT_DETACH = 2


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); raises OSError (EXDEV/ELOOP when resolve forbids a step)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    while True:
        ret = _syscall(SYS_OPENAT2, ctypes.c_int(dirfd), os.fsencode(path), ctypes.byref(how),
                       ctypes.c_size_t(ctypes.sizeof(how)))
        # EAGAIN: a concurrent rename raced RESOLVE_IN_ROOT's check; retry.
        if ret < 0 and ctypes.get_errno() == 11:
            continue
        return _check(ret, "openat2", path)


def open_in_root(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open PATH as if ROOTFD were "/": symlinks and ".." never leave it,
    and magic links (/proc/self/fd/N) are refused."""
    return openat2(rootfd, path or ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, mode)


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    ret = _libc.mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype), ctypes.c_ulong(flags),
                      os.fsencode(data) if data is not None else None)
    _check(ret, f"mount {fstype} on {target}", target)


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(os.fsencode(target), ctypes.c_int(flags)), f"umount {target}", target)


def fsopen(fstype: str) -> int:
    return _check(_syscall(SYS_FSOPEN, os.fsencode(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)), f"fsopen {fstype}")


def fsconfig_string(fsfd: int, key: str, value: str) -> None:
    _check(_syscall(SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(FSCONFIG_SET_STRING), os.fsencode(key),
                    os.fsencode(value), ctypes.c_int(0)), f"fsconfig {key}={value}")


def fsconfig_flag(fsfd: int, key: str) -> None:
    _check(_syscall(SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(FSCONFIG_SET_FLAG), os.fsencode(key),
                    None, ctypes.c_int(0)), f"fsconfig {key}")


def fsconfig_create(fsfd: int) -> None:
    _check(_syscall(SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None,
                    ctypes.c_int(0)), "fsconfig create")


def fsmount(fsfd: int, attr_flags: int = 0) -> int:
    return _check(_syscall(SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(FSMOUNT_CLOEXEC),
                           ctypes.c_uint(attr_flags)), "fsmount")


def move_mount_to(mntfd: int, target: str) -> None:
    _check(_syscall(SYS_MOVE_MOUNT, ctypes.c_int(mntfd), b"", ctypes.c_int(AT_FDCWD), os.fsencode(target),
                    ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount to {target}", target)
