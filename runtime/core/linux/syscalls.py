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

The module functions go to the current implementation: the kernel's
(Kernel, the default) or a Recording that makes no syscall and keeps the
calls, so code that mounts (engine/image/rootfs.py) is unit-tested
without root, as youki's tests do through its Syscall trait.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

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


class Kernel:
    """The syscalls themselves, through cffi."""

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        how = ffi.new("struct open_how *", {"flags": flags | os.O_CLOEXEC, "mode": mode, "resolve": resolve})
        while True:
            ret = lib.husk_openat2(dirfd, os.fsencode(path), how)
            # EAGAIN: a concurrent rename raced RESOLVE_IN_ROOT's check; retry.
            if ret < 0 and ffi.errno == errno.EAGAIN:
                continue
            return _check(ret, "openat2", path)

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
        ret = lib.mount(os.fsencode(source), os.fsencode(target), os.fsencode(fstype), flags, _c(data))
        _check(ret, f"mount {fstype} on {target}", target)

    def umount(self, target: str, flags: int = 0) -> None:
        _check(lib.umount2(os.fsencode(target), flags), f"umount {target}", target)

    def unshare(self, flags: int) -> None:
        _check(lib.unshare(flags), f"unshare({flags:#x})")

    def fsopen(self, fstype: str) -> int:
        return _check(lib.husk_fsopen(os.fsencode(fstype), lib.FSOPEN_CLOEXEC), f"fsopen {fstype}")

    def fsconfig_string(self, fsfd: int, key: str, value: str) -> None:
        _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_SET_STRING, _c(key), _c(value), 0), f"fsconfig {key}={value}")

    def fsconfig_flag(self, fsfd: int, key: str) -> None:
        _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_SET_FLAG, _c(key), ffi.NULL, 0), f"fsconfig {key}")

    def fsconfig_create(self, fsfd: int) -> None:
        _check(lib.husk_fsconfig(fsfd, lib.FSCONFIG_CMD_CREATE, ffi.NULL, ffi.NULL, 0), "fsconfig create")

    def fsmount(self, fsfd: int, attr_flags: int = 0) -> int:
        return _check(lib.husk_fsmount(fsfd, lib.FSMOUNT_CLOEXEC, attr_flags), "fsmount")

    def move_mount_to(self, mntfd: int, target: str) -> None:
        _check(lib.husk_move_mount(mntfd, b"", AT_FDCWD, os.fsencode(target), lib.MOVE_MOUNT_F_EMPTY_PATH),
               f"move_mount to {target}", target)


class Recording:
    """Makes no syscall: keeps (name, *args) of each call.  Calls that
    return an fd get a real one (of /dev/null), so callers can close it.
    FAIL maps a call, or (call, first string argument), to the errno it
    should fail with."""

    def __init__(self, fail: dict | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = dict(fail or {})

    def _call(self, name: str, *args, returns_fd: bool = False):
        self.calls.append((name, *args))
        key = next((k for k in ((name, *[a for a in args if isinstance(a, str)][:1]), name) if k in self.fail), None)
        if key is not None:
            err = self.fail[key]
            raise OSError(err, f"{name}: {os.strerror(err)}")
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC) if returns_fd else None

    def __getattr__(self, name: str):
        if not hasattr(Kernel, name):
            raise AttributeError(name)
        returns_fd = name in ("openat2", "fsopen", "fsmount")
        return lambda *args: self._call(name, *args, returns_fd=returns_fd)


_current: Kernel | Recording = Kernel()


@contextlib.contextmanager
def using(impl: Kernel | Recording) -> Iterator[Kernel | Recording]:
    global _current
    saved, _current = _current, impl
    try:
        yield impl
    finally:
        _current = saved


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); raises OSError (EXDEV/ELOOP when resolve forbids a step)."""
    return _current.openat2(dirfd, path, flags, resolve, mode)


def open_in_root(rootfd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open PATH as if ROOTFD were "/": symlinks and ".." never leave it,
    and magic links (/proc/self/fd/N) are refused."""
    return openat2(rootfd, path or ".", flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, mode)


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str | None = None) -> None:
    _current.mount(source, target, fstype, flags, data)


def umount(target: str, flags: int = 0) -> None:
    _current.umount(target, flags)


def unshare(flags: int) -> None:
    _current.unshare(flags)


def fsopen(fstype: str) -> int:
    return _current.fsopen(fstype)


def fsconfig_string(fsfd: int, key: str, value: str) -> None:
    _current.fsconfig_string(fsfd, key, value)


def fsconfig_flag(fsfd: int, key: str) -> None:
    _current.fsconfig_flag(fsfd, key)


def fsconfig_create(fsfd: int) -> None:
    _current.fsconfig_create(fsfd)


def fsmount(fsfd: int, attr_flags: int = 0) -> int:
    return _current.fsmount(fsfd, attr_flags)


def move_mount_to(mntfd: int, target: str) -> None:
    _current.move_mount_to(mntfd, target)
