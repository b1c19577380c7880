"""`husk cp`: files between the host and an image container (docker cp).

    husk cp [-a] [-L] CONTAINER:SRC HOST_DEST
    husk cp [-a] [-L] HOST_SRC CONTAINER:DEST

The container side is its root filesystem: the overlay of the image's
layers over the container's own upper directory, the same mount the
running container has as its /, so a copy in is seen inside at once.  A
stopped container's overlay is mounted for the copy (under the
container's lock, so `husk start` waits) and unmounted after.

The container's files are hostile input.  Every container path is
resolved by fd, with openat2(RESOLVE_IN_ROOT) on the rootfs: its
symlinks and `..` resolve as if the rootfs were /, so no link the
container made can point husk at a host file (the lesson of
CVE-2018-15664, where docker cp followed a container's symlink swapped
in mid-copy).  Below that, every entry is opened with O_NOFOLLOW relative
to its parent's fd.  Device nodes, FIFOs and sockets are refused by name
rather than recreated on the host.

Placement follows docker's rules: a DEST that is a directory receives
SRC under its own name (or, for SRC ending in `/.`, SRC's contents); a
missing DEST becomes the copy.  A new entry is written under a temporary
name and renamed into place, so a failed copy leaves nothing.  Copies
belong to root unless -a keeps the source's owners.  Not seen: the
container's volumes and tmpfs mounts, which exist only in its own mount
namespace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.core.errors import HuskError, NotFound
from runtime.core.linux import syscalls
from runtime.engine import record as records
from runtime.engine.image import containers, rootfs
from runtime.engine.image.store import Store
from runtime.engine.record import ContainerRecord

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    container: str | None  # a container's name or id; None for the host
    path: str

    def __str__(self) -> str:
        return f"{self.container}:{self.path}" if self.container else self.path


def parse_endpoint(text: str) -> Endpoint:
    """docker's rule: CONTAINER:PATH unless the text starts with / or .
    (a local path with a colon is written ./a:b)."""
    if text and text[0] not in "/." and ":" in text:
        name, path = text.split(":", 1)
        if name and path:
            return Endpoint(name, path)
        raise HuskError("cp", f"{text!r}: expected CONTAINER:PATH")
    if not text:
        raise HuskError("cp", "an empty path")
    return Endpoint(None, text)


def copy(store_root: str, src_text: str, dest_text: str, *, archive: bool = False, follow: bool = False) -> None:
    src, dest = parse_endpoint(src_text), parse_endpoint(dest_text)
    if (src.container is None) == (dest.container is None):
        raise HuskError("cp", "one of SRC and DEST must be CONTAINER:PATH, the other a host path")
    store = Store(store_root)
    record = records.find(store_root, src.container or dest.container)
    with _mounted_rootfs(store, record) as root_path:
        rootfd = os.open(root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if src.container:
                _copy_out(rootfd, src, dest.path, archive, follow)
            else:
                _copy_in(rootfd, src.path, dest, archive, follow)
        finally:
            os.close(rootfd)


@contextlib.contextmanager
def _mounted_rootfs(store: Store, record: ContainerRecord) -> Iterator[str]:
    cid = record.id
    cdir = store.container_dir(cid)
    target = os.path.join(cdir, "rootfs")
    with records.locked(store.root, cid) as present:
        if not present:
            raise NotFound(record.name)
        mounted_here = False
        if record.driver == "overlay" and not os.path.ismount(target):
            with store.using():
                rootfs.make(store, store.config(record.image)["rootfs"]["diff_ids"], cdir, "overlay")
            mounted_here = True
        try:
            yield target
        finally:
            if mounted_here:
                containers.unmount(store, cid)


# Resolving a container path by fd

def _split(path: str) -> tuple[str, str]:
    """PATH's parent and last name; '' as the name for the root itself."""
    norm = "/" + "/".join(p for p in path.split("/") if p and p != ".")
    parent, name = os.path.split(norm)
    return parent, name


def _open_parent(rootfd: int, parent: str, where: Endpoint) -> int:
    try:
        return syscalls.open_in_root(rootfd, parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HuskError("cp", f"{where}: no such directory in the container: {parent}") from None
    except NotADirectoryError:
        raise HuskError("cp", f"{where}: {parent} is not a directory in the container") from None


def _wants_contents(path: str) -> bool:
    return path.endswith("/.") or path == "."


# Container -> host

def _copy_out(rootfd: int, src: Endpoint, dest: str, archive: bool, follow: bool) -> None:
    parent, name = _split(src.path)
    if name and follow:
        # -L: the final symlink is followed, inside the rootfs like every other.
        try:
            fd = syscalls.open_in_root(rootfd, src.path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            raise HuskError("cp", f"{src}: no such file or directory in the container") from None
        dirfd, name = fd, ""
    else:
        dirfd = _open_parent(rootfd, parent, src) if name else os.dup(rootfd)
    try:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False) if name else os.fstat(dirfd)
        except FileNotFoundError:
            raise HuskError("cp", f"{src}: no such file or directory in the container") from None
        is_dir = stat.S_ISDIR(st.st_mode)
        final, merge = _host_destination(dest, os.path.basename(os.path.normpath(src.path)) or "rootfs", is_dir,
                                         contents=_wants_contents(src.path))
        if merge:
            _out_merge(dirfd, name, final, archive, str(src))
            return
        _out_new(dirfd, name, final, archive, str(src))
    finally:
        os.close(dirfd)


def _out_new(dirfd: int, name: str, host: str, archive: bool, where: str) -> None:
    """DIRFD/NAME as HOST: copied under a temporary name beside it, then
    renamed over it, so a failed copy leaves nothing at HOST."""
    tmp = _temp_name(host)
    try:
        _out_entry(dirfd, name, tmp, archive, where)
        _replace_host(host)
        os.rename(tmp, host)
    except BaseException:
        _remove_host(tmp)
        raise


def _out_merge(dirfd: int, name: str, host_dir: str, archive: bool, where: str) -> None:
    """The directory DIRFD/NAME's entries into the existing HOST_DIR: a
    directory on both sides merges, anything else is replaced (each new
    entry under a temporary name first)."""
    fd = _open_entry(dirfd, name, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for entry in sorted(os.listdir(fd)):
            host = os.path.join(host_dir, entry)
            st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and os.path.isdir(host) and not os.path.islink(host):
                _out_merge(fd, entry, host, archive, where)
                continue
            if not stat.S_ISDIR(st.st_mode) and os.path.isdir(host) and not os.path.islink(host):
                raise HuskError("cp", f"{host}: cannot overwrite a directory with a file")
            _out_new(fd, entry, host, archive, where)
    finally:
        os.close(fd)


def _open_entry(dirfd: int, name: str, flags: int) -> int:
    """NAME under DIRFD, never through a symlink; '' is DIRFD itself (an
    O_PATH fd is reopened through /proc/self/fd, which names no path)."""
    if not name:
        return os.open(f"/proc/self/fd/{dirfd}", flags | os.O_CLOEXEC)
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)


def _out_entry(dirfd: int, name: str, host: str, archive: bool, where: str) -> None:
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False) if name else os.fstat(dirfd)
    shown = f"{where}: {name or '.'}"
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(host, 0o700)
        fd = _open_entry(dirfd, name, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for entry in sorted(os.listdir(fd)):
                _out_entry(fd, entry, os.path.join(host, entry), archive, where)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=dirfd), host)  # the link itself, never what it names
    elif stat.S_ISREG(st.st_mode):
        fd = _open_entry(dirfd, name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
                raise HuskError("cp", f"{shown}: changed while being copied")
            out = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                _pump(fd, out)
            finally:
                os.close(out)
        finally:
            os.close(fd)
    else:
        raise HuskError("cp", f"{shown}: a device node, FIFO or socket is not copied to the host")
    _set_metadata(host, st, archive)


def _host_destination(dest: str, src_name: str, src_is_dir: bool, contents: bool) -> tuple[str, bool]:
    """(the path the copy gets, whether SRC's entries merge into it)."""
    if os.path.isdir(dest):
        if src_is_dir and contents:
            return dest, True
        final = os.path.join(dest, src_name)
        if src_is_dir and os.path.isdir(final) and not os.path.islink(final):
            return final, True
        if not src_is_dir and os.path.isdir(final) and not os.path.islink(final):
            raise HuskError("cp", f"{final}: cannot overwrite a directory with a file")
        return final, False
    if dest.endswith("/"):
        raise HuskError("cp", f"{dest}: no such directory")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise HuskError("cp", f"{dest}: no such directory: {parent}")
    if src_is_dir and os.path.lexists(dest):
        raise HuskError("cp", f"{dest}: cannot copy a directory to a file")
    return dest, False


# Host -> container

def _copy_in(rootfd: int, src: str, dest: Endpoint, archive: bool, follow: bool) -> None:
    try:
        st = os.stat(src) if follow else os.lstat(src)
    except FileNotFoundError:
        raise HuskError("cp", f"{src}: no such file or directory") from None
    src_is_dir = stat.S_ISDIR(st.st_mode)
    src_name = os.path.basename(os.path.normpath(os.path.abspath(src)))
    parent, name = _split(dest.path)
    dirfd = _open_parent(rootfd, parent, dest) if name else os.dup(rootfd)
    try:
        if name:
            try:  # DEST an existing directory (through the container's links, inside its root)?
                fd = syscalls.open_in_root(rootfd, dest.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                fd = -1
        else:
            fd = _open_entry(dirfd, "", os.O_RDONLY | os.O_DIRECTORY)
        if fd >= 0:
            os.close(dirfd)
            dirfd = fd
            if src_is_dir and _wants_contents(src):
                for entry in sorted(os.listdir(src)):
                    _in_entry(os.path.join(src, entry), dirfd, entry, archive, str(dest))
                return
            name = src_name
        elif dest.path.endswith("/"):
            raise HuskError("cp", f"{dest}: no such directory in the container")
        _in_entry(src, dirfd, name, archive, str(dest), follow=follow)
    finally:
        os.close(dirfd)


def _in_entry(src: str, dirfd: int, name: str, archive: bool, where: str, follow: bool = False) -> None:
    """SRC as DIRFD/NAME: a new entry is copied under a temporary name and
    renamed over NAME; a directory that exists receives SRC's entries."""
    from runtime.engine.build import copy_in

    owner = None if archive else (0, 0)
    src_st = os.stat(src) if follow else os.lstat(src)
    try:
        there = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        there = None
    if there is not None and stat.S_ISDIR(there.st_mode):
        if not stat.S_ISDIR(src_st.st_mode):
            raise HuskError("cp", f"{where}: cannot overwrite the directory {name} with a file")
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            for entry in sorted(os.listdir(src)):
                _in_entry(os.path.join(src, entry), fd, entry, archive, where)
        finally:
            os.close(fd)
        return
    if there is not None and stat.S_ISDIR(src_st.st_mode):
        raise HuskError("cp", f"{where}: cannot copy a directory over the file {name}")
    if not (stat.S_ISDIR(src_st.st_mode) or stat.S_ISREG(src_st.st_mode) or stat.S_ISLNK(src_st.st_mode)):
        raise HuskError("cp", f"{src}: only files, directories and symlinks are copied")
    tmp = f".husk-cp-{secrets.token_hex(6)}"
    try:
        copy_in.copy_entry(src, dirfd, tmp, owner, None, top=follow)
        os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    except BaseException:
        with contextlib.suppress(OSError):
            copy_in.make_way(dirfd, tmp, keep_dir=False)
        raise


# Host-side helpers

def _pump(src: int, dst: int) -> None:
    while chunk := os.read(src, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def _set_metadata(host: str, st: os.stat_result, archive: bool) -> None:
    uid, gid = (st.st_uid, st.st_gid) if archive else (os.geteuid(), os.getegid())
    os.chown(host, uid, gid, follow_symlinks=False)  # before chmod: chown(2) clears setuid bits
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(host, stat.S_IMODE(st.st_mode))
    os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _temp_name(final: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(final)), f".husk-cp-{secrets.token_hex(6)}")


def _replace_host(path: str) -> None:
    """A file or link at PATH makes way for the copy (a directory merges)."""
    if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
        os.unlink(path)


def _remove_host(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
