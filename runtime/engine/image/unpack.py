"""Unpack one layer tarball into its own directory, safely.

The layer directory becomes an overlayfs lower directory, so whiteouts
are written the way overlayfs reads them (Documentation/filesystems/
overlayfs.rst): `.wh.NAME` becomes a 0:0 character device NAME, and
`.wh..wh..opq` sets the xattr trusted.overlay.opaque=y on its directory.

Safety, after umoci's tar_extract.go and moby's hardened go-archive:
- a name is cleaned first: absolute names and any ".." component are
  refused, not clamped;
- the parent directory of every entry is opened with openat2(2) and
  RESOLVE_IN_ROOT on the layer directory's fd, so a symlink planted by an
  earlier entry ("a -> /", "a -> ../..") can only lead back inside it;
- the final component is created with *at() calls on that parent fd and
  is never followed (O_NOFOLLOW, O_EXCL, AT_SYMLINK_NOFOLLOW);
- hardlink targets are resolved the same way, so they name entries of
  this layer only;
- symlink targets are stored verbatim: they are resolved later, inside
  the container's root, by the kernel.

Every refusal names the layer and the entry.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import tarfile
from collections import OrderedDict
from dataclasses import dataclass

from runtime.core.errors import ImageError
from runtime.core.linux.syscalls import open_in_root

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# xattrs a layer may not set: overlayfs's own (they would forge whiteouts
# or redirects) and the host's security label.
FORBIDDEN_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")
CHUNK = 1 << 20
HOLE = 64 << 10
_ZEROS = memoryview(bytes(HOLE))
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Limits:
    """What one layer may hold: a layer is a stranger's data, and husk
    unpacks it as root.  HUSK_MAX_LAYER_BYTES and HUSK_MAX_LAYER_ENTRIES
    change them (a layer bigger than either is refused by name)."""

    max_bytes: int = 64 << 30  # file data, sparse files counted at their full size
    max_entries: int = 4_000_000

    @classmethod
    def from_env(cls) -> Limits:
        out = cls()
        for field_name, var in (("max_bytes", "HUSK_MAX_LAYER_BYTES"), ("max_entries", "HUSK_MAX_LAYER_ENTRIES")):
            value = os.environ.get(var)
            if value:
                try:
                    setattr(out, field_name, int(value))
                except ValueError:
                    raise ImageError(var, f"{value!r} is not a number") from None
        return out


# Open directory fds kept at most (moby's dir-fd cache, bounded): a layer
# of thousands of directories must not run into RLIMIT_NOFILE (EMFILE).
DIR_CACHE = 128
MAX_ID = 0xFFFFFFFE  # (uid_t)-1 is "no change" to chown


class LayerError(ImageError):
    def __init__(self, layer: str, entry: str, problem: str) -> None:
        super().__init__(f"layer {layer}", f"entry {entry!r}: {problem}" if entry else problem)


@dataclass
class Stats:
    entries: int = 0
    bytes: int = 0
    whiteouts: int = 0
    opaque: int = 0


def clean_name(name: str) -> list[str]:
    """Split a tar name into components; raises ValueError for escapes."""
    if name.startswith("/"):
        raise ValueError("absolute names are not allowed in a layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' is not allowed in a layer entry's name")
    if any("\0" in p for p in parts):
        raise ValueError("NUL in name")
    return parts


class Unpacker:
    """Extracts a stream of tar entries into `dest` (an empty directory)."""

    def __init__(self, dest: str, layer: str, limits: Limits | None = None) -> None:
        self.layer = layer
        self.limits = limits or Limits.from_env()
        self.root = os.open(dest, _DIR_FLAGS)
        # cleaned dir path -> fd, least recently used first (moby's dir-fd cache)
        self.dirs: OrderedDict[str, int] = OrderedDict({"": self.root})
        self.dir_times: list[tuple[str, int]] = []
        self.stats = Stats()

    def close(self) -> None:
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Directory resolution

    def _forget_dirs(self) -> None:
        """An entry was replaced: a cached fd may now be a stale view."""
        for path, fd in list(self.dirs.items()):
            if path:
                os.close(fd)
                del self.dirs[path]

    def _dir(self, parts: list[str], entry: str) -> int:
        """The fd of directory PARTS, resolved inside the layer, created
        (0755, root-owned, as docker does) where missing."""
        key = "/".join(parts)
        fd = self.dirs.get(key)
        if fd is not None:
            self.dirs.move_to_end(key)
            return fd
        parent = self._dir(parts[:-1], entry) if parts else self.root
        try:
            fd = open_in_root(self.root, key, _DIR_FLAGS & ~os.O_NOFOLLOW)
        except FileNotFoundError:
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=parent)
            except FileExistsError:
                pass  # a dangling symlink: refused just below
            try:
                fd = open_in_root(self.root, key, _DIR_FLAGS & ~os.O_NOFOLLOW)
            except OSError as e:
                raise LayerError(self.layer, entry, f"cannot make parent directory {key!r}: {e.strerror}") from None
        except NotADirectoryError:
            raise LayerError(self.layer, entry, f"parent {key!r} is not a directory") from None
        except OSError as e:
            raise LayerError(self.layer, entry, f"cannot resolve parent {key!r}: {e.strerror}") from None
        self.dirs[key] = fd
        return fd

    # Entries

    def _trim_dirs(self) -> None:
        """Close the least recently used directory fds over DIR_CACHE.
        Only between entries: an entry's parent fd stays open while used."""
        while len(self.dirs) > DIR_CACHE:
            key = next(k for k in self.dirs if k)
            os.close(self.dirs.pop(key))

    def extract(self, tar: tarfile.TarFile) -> Stats:
        for member in tar:
            self.stats.entries += 1
            if self.stats.entries > self.limits.max_entries:
                raise LayerError(self.layer, "", f"more than {self.limits.max_entries} entries "
                                 "(HUSK_MAX_LAYER_ENTRIES)")
            self._trim_dirs()
            try:
                self.entry(tar, member)
            except OSError as e:  # ENAMETOOLONG, ENOSPC, EMLINK ...: named, not a traceback
                raise LayerError(self.layer, member.name, e.strerror or str(e)) from None
        self._finish_dirs()
        return self.stats

    def _check_header(self, m: tarfile.TarInfo) -> None:
        """Header fields a crafted PAX record can make absurd."""
        if not math.isfinite(m.mtime) or not -(2**62) < m.mtime * 1e9 < 2**62:
            raise LayerError(self.layer, m.name, f"mtime {m.mtime!r} is not a time")
        for what, value in (("uid", m.uid), ("gid", m.gid)):
            if not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise LayerError(self.layer, m.name, f"{what} {value!r} out of range")
        if m.size < 0:
            raise LayerError(self.layer, m.name, f"size {m.size} is negative")
        if self.stats.bytes + m.size > self.limits.max_bytes:
            raise LayerError(self.layer, m.name, f"the layer's files exceed {self.limits.max_bytes} bytes "
                             "(HUSK_MAX_LAYER_BYTES)")

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        try:
            parts = clean_name(m.name)
        except ValueError as e:
            raise LayerError(self.layer, m.name, str(e)) from None
        self._check_header(m)
        if not parts:
            if not m.isdir():
                raise LayerError(self.layer, m.name, "refusing to change the type of the layer's root")
            self._metadata_dir(self.root, m, "")
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(m, parts)
            return
        parent = self._dir(parts[:-1], m.name)
        existing = self._lstat(parent, base)
        if existing is not None:
            if m.isdir() and stat.S_ISDIR(existing.st_mode):
                self._directory(parent, base, m, parts, created=False)
                return
            was_whiteout = _is_whiteout(existing)
            self._remove(parent, base)
            if m.isdir() and was_whiteout:
                # `.wh.d` then `d/`: the directory replaces the lower one
                # entirely, which overlayfs spells as an opaque directory.
                self._directory(parent, base, m, parts, created=True, opaque=True)
                return
        if m.isdir():
            self._directory(parent, base, m, parts, created=True)
        elif m.isreg():
            self._regular(tar, parent, base, m)
        elif m.issym():
            self._symlink(parent, base, m)
        elif m.islnk():
            self._hardlink(parent, base, m)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._node(parent, base, m)
        else:
            raise LayerError(self.layer, m.name, f"unsupported tar entry type {m.type!r}")

    def _lstat(self, parent: int, base: str):
        try:
            return os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def _remove(self, parent: int, base: str) -> None:
        st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _rmtree_at(parent, base)
        else:
            os.unlink(base, dir_fd=parent)
        self._forget_dirs()

    def _whiteout(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        parent = self._dir(parts[:-1], m.name)
        if base == OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            self.stats.opaque += 1
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise LayerError(self.layer, m.name, "a whiteout may not name '.', '..' or nothing")
        existing = self._lstat(parent, target)
        if existing is not None:
            # The whiteout hides lower layers only (image-spec: "whiteout
            # files MUST only apply to resources in lower/parent layers"):
            # what this layer holds stays.  A directory of this layer must
            # no longer merge with a lower one.
            if stat.S_ISDIR(existing.st_mode):
                fd = os.open(target, _DIR_FLAGS, dir_fd=parent)
                try:
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)
            return
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
        self.stats.whiteouts += 1

    def _directory(self, parent: int, base: str, m: tarfile.TarInfo, parts: list[str], created: bool,
                   opaque: bool = False) -> None:
        if created:
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            if opaque:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            self._metadata_dir(fd, m, "/".join(parts))
        finally:
            os.close(fd)

    def _metadata_dir(self, fd: int, m: tarfile.TarInfo, path: str) -> None:
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, _mode(m))
        self._xattrs(fd, m)
        # Entries extracted later change a directory's mtime: set it last.
        self.dir_times.append((path, _ns(m.mtime)))

    def _regular(self, tar: tarfile.TarFile, parent: int, base: str, m: tarfile.TarInfo) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            src = tar.extractfile(m)
            if m.sparse is not None:
                self._sparse_data(src, fd, m)
            else:
                self._data(src, fd, m)
            self.stats.bytes += m.size
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, _mode(m))  # after chown, which clears setuid/setgid
            self._xattrs(fd, m)
            os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)

    def _data(self, src, fd: int, m: tarfile.TarInfo) -> None:
        left = m.size
        sparse = False
        while left > 0:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise LayerError(self.layer, m.name, "truncated file data")
            left -= len(chunk)
            sparse |= _write_sparse(fd, chunk)
        if sparse:
            os.ftruncate(fd, m.size)

    def _sparse_data(self, src, fd: int, m: tarfile.TarInfo) -> None:
        """A GNU/PAX sparse entry: only its data regions are in the archive.
        Seek over the holes (tarfile would hand us every zero of them: a
        16 GiB claim would cost minutes of CPU) and write the regions.
        tarfile's _FileInFile maps the file's offsets to the archive's and
        seeks forward in a stream; its BufferedReader wrapper would ask the
        stream whether it is seekable, so use the raw object."""
        src = getattr(src, "raw", src)
        for offset, length in m.sparse:
            if offset < 0 or length < 0 or offset + length > m.size:
                raise LayerError(self.layer, m.name, f"sparse region {offset}+{length} outside the file")
            src.seek(offset)
            left = length
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise LayerError(self.layer, m.name, "truncated file data")
                _write_all_at(fd, chunk, offset + length - left)
                left -= len(chunk)
        os.ftruncate(fd, m.size)

    def _symlink(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        if "\0" in m.linkname:
            raise LayerError(self.layer, m.name, "NUL in symlink target")
        os.symlink(m.linkname, base, dir_fd=parent)
        os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        os.utime(base, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        try:
            target = clean_name(m.linkname)
        except ValueError as e:
            raise LayerError(self.layer, m.name, f"hardlink target {m.linkname!r}: {e}") from None
        if not target:
            raise LayerError(self.layer, m.name, "a hardlink to the layer's root")
        tparent = self._dir(target[:-1], m.name)
        try:
            os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(self.layer, m.name,
                             f"hardlink target {m.linkname!r} is not an earlier entry of this layer") from None
        except PermissionError:
            raise LayerError(self.layer, m.name, f"hardlink target {m.linkname!r} is a directory") from None

    def _node(self, parent: int, base: str, m: tarfile.TarInfo) -> None:
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        dev = os.makedev(m.devmajor, m.devminor) if kind != stat.S_IFIFO else 0
        os.mknod(base, kind | 0o600, dev, dir_fd=parent)
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            # O_PATH fds take chown/chmod only through their /proc magic link.
            path = f"/proc/self/fd/{fd}"
            os.chown(path, m.uid, m.gid)
            os.chmod(path, _mode(m))
            os.utime(path, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)

    def _xattrs(self, fd: int, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith(FORBIDDEN_XATTRS):
                raise LayerError(self.layer, m.name, f"xattr {name!r} is not allowed in a layer")
            try:
                os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise LayerError(self.layer, m.name, f"xattr {name!r}: {e.strerror}") from None

    def _finish_dirs(self) -> None:
        for path, ns in reversed(self.dir_times):
            try:
                fd = open_in_root(self.root, path, _DIR_FLAGS & ~os.O_NOFOLLOW)
            except OSError:
                continue  # replaced by a later entry
            try:
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)


def _mode(m: tarfile.TarInfo) -> int:
    return m.mode & 0o7777


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


def _write_sparse(fd: int, chunk: bytes) -> bool:
    """Write CHUNK, seeking over 64 KiB runs of zeros so they become holes
    (sparse files stay sparse).  Returns whether it left a hole."""
    hole = False
    view = memoryview(chunk)
    for off in range(0, len(chunk), HOLE):
        piece = view[off:off + HOLE]
        if piece[0] == 0 and piece[-1] == 0 and piece == _ZEROS[:len(piece)]:
            os.lseek(fd, len(piece), os.SEEK_CUR)
            hole = True
        else:
            _write_all(fd, piece)
    return hole


def _write_all_at(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _rmtree_at(parent: int, name: str) -> None:
    """Remove a directory tree below PARENT without following symlinks."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        for entry in os.scandir(fd):
            if entry.is_dir(follow_symlinks=False):
                _rmtree_at(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def unpack(stream, dest: str, layer: str, limits: Limits | None = None) -> Stats:
    """Extract the (decompressed) tar STREAM into DEST, an empty directory."""
    try:
        # tarfile's stream mode copies its whole buffer on every read:
        # 64 KiB keeps that small for 512-byte headers.
        tar = tarfile.open(fileobj=stream, mode="r|", errorlevel=2, bufsize=64 << 10)
    except tarfile.TarError as e:
        raise LayerError(layer, "", f"not a tar archive: {e}") from None
    with Unpacker(dest, layer, limits) as unpacker, tar:
        try:
            return unpacker.extract(tar)
        except (tarfile.TarError, ValueError, OverflowError, UnicodeError) as e:
            # a header tarfile itself cannot parse (PAX numbers, encodings)
            raise LayerError(layer, "", f"corrupt tar archive: {e}") from None
