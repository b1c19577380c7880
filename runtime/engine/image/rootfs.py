"""A container's root filesystem made from image layers.

overlay (default): the image's layer directories are overlayfs lower
directories (the top layer first) under a fresh upper and work directory
per container, so making a rootfs costs one mount whatever the image's
size.  Built with the new mount API, one `lowerdir+` per layer (Linux
6.8+), so no option string limits the layer count; older kernels get
mount(2) with paths relative to the layer directory, as docker does.

copy (fallback, or --storage-driver vfs): the layers are copied, top last,
into one directory, applying each layer's whiteouts.  It is used when the
kernel refuses the overlay mount (the store on overlayfs itself, no
overlay module, ...), and the reason is logged.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess

from runtime.core import trace
from runtime.core.errors import warn
from runtime.core.linux import syscalls
from runtime.engine.image.store import Store, remove_tree
from runtime.engine.image.unpack import OPAQUE_XATTR


def make(store: Store, diff_ids: list[str], cdir: str, driver: str = "overlay", volatile: bool = False) -> str:
    """Build DIR/rootfs for a container; returns the driver used.

    VOLATILE (for --rm containers, whose changes are thrown away): the
    overlay skips every sync of its upper directory, so unmounting does
    not wait for writeback (overlayfs "volatile", Linux 5.10+)."""
    target = os.path.join(cdir, "rootfs")
    os.makedirs(target, mode=0o755, exist_ok=True)
    lowers = [store.layer_dir(d) for d in reversed(diff_ids)]
    if driver == "overlay":
        upper, work = os.path.join(cdir, "upper"), os.path.join(cdir, "work")
        os.makedirs(upper, mode=0o755, exist_ok=True)
        os.makedirs(work, mode=0o700, exist_ok=True)
        try:
            _mount_overlay(lowers, upper, work, target, volatile)
            return "overlay"
        except OSError as e:
            warn(f"overlay mount failed ({e.strerror}); copying the layers instead "
                 "(slower; use --storage-driver vfs to skip the attempt)")
            remove_tree(upper)
            remove_tree(work)
    for lower in reversed(lowers):
        _apply_layer(lower, target)
    return "vfs"


def _mount_overlay(lowers: list[str], upper: str, work: str, target: str, volatile: bool) -> None:
    if not lowers:
        lowers = [_empty_lower(os.path.dirname(target))]
    try:
        fs = syscalls.fsopen("overlay")
    except OSError:
        fs = None
    if fs is not None:
        try:
            for lower in lowers:
                syscalls.fsconfig_string(fs, "lowerdir+", lower)
            syscalls.fsconfig_string(fs, "upperdir", upper)
            syscalls.fsconfig_string(fs, "workdir", work)
            syscalls.fsconfig_string(fs, "source", "husk")
            if volatile:
                syscalls.fsconfig_flag(fs, "volatile")
            syscalls.fsconfig_create(fs)
            mnt = syscalls.fsmount(fs)
            try:
                syscalls.move_mount_to(mnt, target)
            finally:
                os.close(mnt)
            trace.step("rootfs", "overlay", f"fsopen(\"overlay\") + fsconfig(lowerdir+ x{len(lowers)}, upperdir "
                       f"{upper}{', volatile' if volatile else ''}) + fsmount + move_mount(-> {target})", who="engine")
            return
        except OSError as e:
            if e.errno != errno.EINVAL:  # no lowerdir+ before Linux 6.8: use mount(2)
                raise
        finally:
            os.close(fs)
    # mount(2): relative lower paths keep the option string within a page.
    base = os.path.dirname(lowers[0])
    cwd = os.getcwd()
    os.chdir(base)
    try:
        data = f"lowerdir={':'.join(os.path.relpath(p, base) for p in lowers)},upperdir={upper},workdir={work}"
        data += ",volatile" if volatile else ""
        syscalls.mount("husk", target, "overlay", 0, data)
    finally:
        os.chdir(cwd)
    trace.step("rootfs", "overlay", f"mount(\"husk\", {target}, \"overlay\", 0, \"{data}\")", who="engine")


def _empty_lower(cdir: str) -> str:
    path = os.path.join(cdir, "empty")
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


def _apply_layer(layer: str, target: str) -> None:
    """Copy one unpacked layer over TARGET, honouring its overlay-style
    whiteouts (0:0 char devices) and opaque directories.

    First pass: make room.  Anything in TARGET the layer replaces is
    removed, and a directory is kept only if it is a real directory on
    both sides, so the copy never writes through a symlink of a lower
    layer.  Then `cp -a` copies owners, modes, xattrs, hardlinks and
    device nodes."""
    whiteouts = []
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        dest_dir = os.path.normpath(os.path.join(target, rel))
        try:
            opaque = os.getxattr(dirpath, OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            opaque = False
        if opaque and rel != "." and os.path.isdir(dest_dir) and not os.path.islink(dest_dir):
            for name in os.listdir(dest_dir):
                remove_tree(os.path.join(dest_dir, name))
        for name in dirnames + filenames:
            src, dst = os.path.join(dirpath, name), os.path.join(dest_dir, name)
            st = os.lstat(src)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts.append(dst)
            if not os.path.lexists(dst):
                continue
            if stat.S_ISDIR(st.st_mode) and os.path.isdir(dst) and not os.path.islink(dst):
                continue
            remove_tree(dst)
    subprocess.run(["cp", "-a", "--", f"{layer}/.", target], check=True)
    for path in whiteouts:
        os.unlink(path)


def remove_mount(cdir: str) -> None:
    """Unmount DIR/rootfs if it is mounted (lazily if it is busy)."""
    target = os.path.join(cdir, "rootfs")
    if os.path.ismount(target):
        try:
            syscalls.umount(target)
        except OSError as e:
            if e.errno != errno.EINVAL:
                syscalls.umount(target, syscalls.MNT_DETACH)


def remove(cdir: str) -> None:
    """Unmount (if mounted) and remove a container's rootfs and upper/work."""
    remove_mount(cdir)
    for name in ("rootfs", "upper", "work", "empty"):
        remove_tree(os.path.join(cdir, name))

