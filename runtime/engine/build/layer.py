"""How a layer is made: a build step's overlay upper directory, written
as an OCI layer tar.

While a step runs, its rootfs is an overlay mount: the image's layers
below (read-only lower directories), the step's own upper directory on
top.  Every change the step makes lands in the upper directory, and
overlayfs records it in its own on-disk format:

    a new or changed file       the file itself (copied up whole)
    a deleted file or dir       a whiteout: a character device 0:0 of the same name
    a dir replaced or emptied   the dir with xattr trusted.overlay.opaque=y

The image-spec's layer format says the same in tar entries, so the
upper directory becomes a layer by renaming those two markers:

    char device 0:0 NAME        ->  an empty file .wh.NAME
    trusted.overlay.opaque=y    ->  an empty file DIR/.wh..wh..opq

Everything else is written as it is: modes, owners, times, symlinks,
hardlinks (one entry per inode, then links), device nodes and user
xattrs.  The tar is hashed as it is written (the diffID, which the image
config lists) and gzip-compressed to the blob, hashed too (the digest
the manifest lists).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass

from runtime.core.errors import ImageError

OPAQUE = "trusted.overlay.opaque"
# xattrs overlayfs writes only with redirect_dir or metacopy on; husk's
# mounts have neither, and a layer cannot say what they mean.
UNSUPPORTED = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


@dataclass
class Layer:
    path: str  # the gzip blob
    digest: str  # sha256 of the blob
    size: int
    diff_id: str  # sha256 of the uncompressed tar
    entries: int


class _Hashing:
    """A write-only file that hashes and counts what passes through."""

    def __init__(self, out) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def from_upper(upper: str, blob_path: str) -> Layer:
    """Write the changes in UPPER as a gzip layer at BLOB_PATH."""
    with open(blob_path, "wb") as raw:
        blob = _Hashing(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=1, mtime=0) as gz:
            tar_stream = _Hashing(gz)
            with tarfile.open(fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                count = _add_tree(tar, upper)
    return Layer(blob_path, "sha256:" + blob.hash.hexdigest(), blob.size, "sha256:" + tar_stream.hash.hexdigest(),
                 count)


def is_empty(upper: str) -> bool:
    return not os.listdir(upper)


def _add_tree(tar: tarfile.TarFile, upper: str) -> int:
    count = 0
    links: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, upper)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            arc = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlayfs whiteout
                tar.addfile(_marker(os.path.join(os.path.dirname(arc), ".wh." + name), st))
                count += 1
                continue
            info = tar.gettarinfo(path, arc)
            info.uname = info.gname = ""
            xattrs = _xattrs(path, arc)
            opaque = xattrs.pop(OPAQUE, None) == "y"
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
            if info.isreg() and st.st_nlink > 1:
                first = links.setdefault((st.st_dev, st.st_ino), arc)
                if first != arc:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            if info.isreg() and info.type != tarfile.LNKTYPE:
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            count += 1
            if opaque:
                tar.addfile(_marker(os.path.join(arc, ".wh..wh..opq"), st))
                count += 1
            if stat.S_ISLNK(st.st_mode) and name in dirnames:
                dirnames.remove(name)  # os.walk does not follow it either
    return count


def _marker(arc: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arc)
    info.mode, info.mtime = 0o644, int(st.st_mtime)
    return info


def _xattrs(path: str, arc: str) -> dict[str, str]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    for name in names:
        if name in UNSUPPORTED:
            raise ImageError("build", f"{arc}: overlayfs xattr {name} (redirect_dir or metacopy is on): "
                             "a layer cannot carry it")
        if name.startswith("trusted.overlay.") and name != OPAQUE:
            continue  # overlayfs bookkeeping (origin, impure, ...)
        value = os.getxattr(path, name, follow_symlinks=False)
        out[name] = value.decode("utf-8", "surrogateescape")
    return out
