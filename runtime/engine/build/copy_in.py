"""COPY and ADD: files from the build context into a step's rootfs, by fd.

The rootfs is the image's (its overlay mount), so its symlinks are the
image's to choose: every destination directory is opened with openat2
RESOLVE_IN_ROOT on the rootfs, which resolves `..` and symlinks as if
the rootfs were /, and every file is made with *at() calls under that
fd with O_NOFOLLOW, so nothing is written outside the rootfs.  What was
there already is replaced, as docker does.  Files belong to 0:0 unless
--chown says otherwise; modes are kept unless --chmod says otherwise.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable

from runtime.core.errors import ImageError
from runtime.core.linux import syscalls


def owner(rootfs: str, spec: str | None, where: str) -> tuple[int, int]:
    if not spec:
        return 0, 0
    from runtime.engine.image import users

    try:
        u = users.resolve(rootfs, spec)
    except ImageError as e:
        raise ImageError(where, f"--chown={spec}: {e.detail}") from None
    gid = u.gid
    if ":" not in spec and spec.isdigit():
        gid = int(spec)  # docker: --chown=UID without a group sets both
    return u.uid, gid


def parse_chmod(spec: str | None, where: str) -> int | None:
    if spec is None:
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ImageError(where, f"--chmod={spec}: expected an octal mode such as 755")
    return mode


def destination(given: str, workdir: str) -> tuple[str, bool]:
    """COPY's destination as docker reads it: (the absolute, normalised
    path, whether it names a directory to copy into).  A relative one is
    under WORKDIR; one that ends in / or is . or .. (or ends in /. or /..)
    names a directory, so `COPY main.go .` puts main.go in WORKDIR."""
    names_a_dir = given.endswith("/") or given.rsplit("/", 1)[-1] in (".", "..")
    return posixpath.normpath(posixpath.join(workdir, given)), names_a_dir


def is_archive(path: str) -> bool:
    """ADD unpacks a local tar (plain or gzip) instead of copying it."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"\x1f\x8b":
            import gzip

            with gzip.open(path) as g:
                return tarfile.is_tarfile(g)
        return tarfile.is_tarfile(path)
    except (OSError, EOFError):
        return False


class Target:
    """The rootfs being copied into, held by an O_PATH fd."""

    def __init__(self, rootfs: str) -> None:
        self.rootfs = rootfs
        self.fd = -1

    def __enter__(self) -> Target:
        self.fd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def is_dir(self, path: str) -> bool:
        try:
            fd = syscalls.open_in_root(self.fd, path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        os.close(fd)
        return True

    def mkdirs(self, path: str) -> int:
        """mkdir -p PATH inside the rootfs; an O_RDONLY fd of it."""
        parts = [p for p in path.split("/") if p]
        fd = os.dup(self.fd)
        try:
            for i, part in enumerate(parts):
                try:
                    nxt = syscalls.open_in_root(self.fd, "/".join(parts[:i + 1]), os.O_PATH | os.O_DIRECTORY
                                                | os.O_CLOEXEC)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = syscalls.open_in_root(self.fd, "/".join(parts[:i + 1]), os.O_PATH | os.O_DIRECTORY
                                                | os.O_CLOEXEC)
                os.close(fd)
                fd = nxt
            out = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)
        return out

    def copy_file(self, src: str, dest: str, name: str | None, owner: tuple[int, int], mode: int | None) -> None:
        """SRC to DEST/NAME, or to the file DEST when NAME is None."""
        if name is None:
            parent, name = os.path.split(dest.rstrip("/"))
        else:
            parent = dest
        dirfd = self.mkdirs(parent or "/")
        try:
            copy_entry(src, dirfd, name, owner, mode, top=True)
        finally:
            os.close(dirfd)

    def copy_tree(self, src: str, dest: str, owner: tuple[int, int], mode: int | None,
                  skip: Callable[[str], bool] | None = None) -> None:
        """The contents of the directory SRC into DEST (made if missing);
        SKIP(path below SRC) leaves an entry out (.dockerignore)."""
        dirfd = self.mkdirs(dest)
        try:
            for entry in sorted(os.listdir(src)):
                if skip is None or not skip(entry):
                    copy_entry(os.path.join(src, entry), dirfd, entry, owner, mode, skip=skip, rel=entry)
        finally:
            os.close(dirfd)


def make_way(dirfd: int, name: str, keep_dir: bool) -> None:
    """Make way for NAME: remove what is there, unless it is a directory we copy into."""
    try:
        st = os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            for entry in os.listdir(fd):
                make_way(fd, entry, False)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


def copy_entry(src: str, dirfd: int, name: str, owner: tuple[int, int] | None, mode: int | None,
                top: bool = False, skip: Callable[[str], bool] | None = None, rel: str = "") -> None:
    """SRC as DIRFD/NAME, recursively; OWNER None keeps the source's owners.
    TOP: SRC is the source itself, a /proc/self/fd link to follow.  SKIP
    (a path under the copy's top, REL being SRC's) leaves entries out."""
    st = os.stat(src) if top else os.lstat(src)
    uid, gid = owner if owner is not None else (st.st_uid, st.st_gid)
    if stat.S_ISDIR(st.st_mode):
        make_way(dirfd, name, keep_dir=True)
        try:
            os.mkdir(name, 0o700, dir_fd=dirfd)
        except FileExistsError:
            pass
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            for entry in sorted(os.listdir(src)):
                below = posixpath.join(rel, entry)
                if skip is None or not skip(below):
                    copy_entry(os.path.join(src, entry), fd, entry, owner, mode, skip=skip, rel=below)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode if mode is not None else stat.S_IMODE(st.st_mode))
        finally:
            os.close(fd)
        return
    make_way(dirfd, name, keep_dir=False)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), name, dir_fd=dirfd)
        os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        raise ImageError("COPY", f"{name}: only files, directories and symlinks are copied")
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
    try:
        with open(src, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
        os.fchown(out, uid, gid)  # before fchmod: chown(2) clears setuid bits
        os.fchmod(out, mode if mode is not None else stat.S_IMODE(st.st_mode))
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(out)


def add_archive(store, path: str, target: Target, dest: str, owner: tuple[int, int], where: str) -> None:
    """ADD of a local tar: unpacked by the image unpacker (the same checks
    as a layer's: no `..`, no absolute names, no links out) into a
    private directory, then copied in.  Owners are the archive's, as docker keeps them."""
    from runtime.engine.image.unpack import unpack

    tmp = tempfile.mkdtemp(dir=store.tmp, prefix="add-")
    try:
        out = os.path.join(tmp, "tree")
        os.mkdir(out)
        from runtime.engine.image.layerstream import TarStream

        try:
            with open(path, "rb") as f:
                gz = f.read(2) == b"\x1f\x8b"
                f.seek(0)
                with TarStream(f, "gzip" if gz else "", os.path.basename(path)) as stream:
                    unpack(stream, out, os.path.basename(path))
        except OSError as e:
            raise ImageError(where, f"ADD {os.path.basename(path)}: {e.strerror}") from None
        dirfd = target.mkdirs(dest)
        try:
            for entry in sorted(os.listdir(out)):
                copy_entry(os.path.join(out, entry), dirfd, entry, None, None)
        finally:
            os.close(dirfd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
