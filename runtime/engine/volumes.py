"""Volumes and bind mounts for image containers: docker's -v, --mount
and --tmpfs, and the store's named volumes (`husk volume ...`).

A named volume is a directory in the store, volumes/<name>/_data, with
its volume.json.  In the container it is an ordinary bind mount (the
runtime core mounts it with MS_BIND|MS_REC, its destination resolved
inside the rootfs by fd), so it outlives the container and can be shared.

    -v NAME:/dir[:ro]          a named volume, made when first used
    -v /dir                    an anonymous volume (a random name); --rm
                               and `husk rm -v` remove it with the container
    -v /host/path:/dir[:ro]    a bind mount; a missing host directory is made
    --mount type=bind|volume|tmpfs,source=...,target=...[,readonly]
    --tmpfs /dir[:size=64m,...]

As docker does, a volume that is new copies what the image has at its
destination ("copy-up"), so an image's /var/lib/db starts out with what
the image put there.

The store's metadata lock orders volume use against `husk volume rm`: a
container's record names its volumes before the lock is let go, and rm
looks for such records under the same lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import stat
from dataclasses import dataclass
from typing import Any

from runtime.core.errors import ConfigError, ImageError
from runtime.core.paths import StoreLayout
from runtime.engine import record as records
from runtime.engine import units
from runtime.engine.image.store import remove_tree, write_json
from runtime.engine.record import ContainerRecord, Mount

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


@dataclass
class MountRequest:
    """One -v, --mount or --tmpfs, parsed."""

    type: str  # bind | volume | tmpfs
    target: str
    source: str = ""  # a host path, a volume's name, or "" (anonymous volume / tmpfs)
    readonly: bool = False
    propagation: str = "rprivate"
    make_source: bool = False  # -v makes a missing host directory; --mount does not
    copy_up: bool = True
    options: tuple[str, ...] = ()  # tmpfs mount options
    flag: str = "--volume"


# Parsing the flags

def _target(text: str, flag: str) -> str:
    if not text.startswith("/"):
        raise ConfigError(flag, f"{text!r}: the destination must be an absolute path")
    target = posixpath.normpath(text)
    if target in ("/", "//"):
        raise ConfigError(flag, "the destination cannot be /")
    return target


def parse_volume(text: str) -> MountRequest:
    """-v [SOURCE:]TARGET[:OPTIONS]: SOURCE is a host path (starting with
    / or .) or a volume's name."""
    parts = text.split(":")
    if len(parts) == 1:
        return MountRequest("volume", _target(parts[0], "--volume"))
    if len(parts) > 3 or not parts[0]:
        raise ConfigError("--volume", f"{text!r}: expected [SOURCE:]DEST[:ro|rw]")
    source, target = parts[0], _target(parts[1], "--volume")
    req = MountRequest("volume", target, source)
    if source.startswith(("/", ".")):
        req.type, req.source, req.make_source = "bind", os.path.abspath(source), True
    elif not _NAME.match(source):
        raise ConfigError("--volume", f"{source!r}: a volume name is letters, digits and _ . - (2 or more); "
                          "a host path starts with / or .")
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt in ("ro", "rw"):
            req.readonly = opt == "ro"
        elif opt in PROPAGATIONS:
            req.propagation = opt
        elif opt == "nocopy":
            req.copy_up = False
        elif opt not in ("z", "Z"):  # SELinux relabelling: no SELinux here
            raise ConfigError("--volume", f"{text!r}: unknown option {opt!r} (ro, rw, nocopy, or a propagation)")
    return req


def parse_mount(text: str) -> MountRequest:
    """--mount type=bind|volume|tmpfs,source=S,target=T[,readonly][,...]."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(key, key)
        if key == "readonly" and not sep:
            value = "true"
        if key not in ("type", "source", "target", "readonly", "bind-propagation", "volume-nocopy",
                       "tmpfs-size", "tmpfs-mode"):
            raise ConfigError("--mount", f"{text!r}: unknown field {key!r}")
        fields[key] = value
    kind = fields.get("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise ConfigError("--mount", f"type={kind}: husk mounts bind, volume or tmpfs")
    if "target" not in fields:
        raise ConfigError("--mount", f"{text!r}: target= is required")
    req = MountRequest(kind, _target(fields["target"], "--mount"), fields.get("source", ""), flag="--mount")
    req.readonly = fields.get("readonly", "false") in ("true", "1")
    req.propagation = fields.get("bind-propagation", "rprivate")
    if req.propagation not in PROPAGATIONS:
        raise ConfigError("--mount", f"bind-propagation={req.propagation}: one of {', '.join(PROPAGATIONS)}")
    req.copy_up = fields.get("volume-nocopy", "false") not in ("true", "1")
    if kind == "bind":
        if not req.source:
            raise ConfigError("--mount", "type=bind needs source=")
        req.source = os.path.abspath(req.source)
        if not os.path.exists(req.source):
            raise ConfigError("--mount", f"bind source path does not exist: {req.source}")
    elif kind == "volume" and req.source and not _NAME.match(req.source):
        raise ConfigError("--mount", f"source={req.source}: a volume name is letters, digits and _ . -")
    elif kind == "tmpfs":
        if req.source:
            raise ConfigError("--mount", "type=tmpfs takes no source")
        req.options = _tmpfs_options(fields)
    return req


def _tmpfs_options(fields: dict[str, str]) -> tuple[str, ...]:
    opts = []
    if "tmpfs-size" in fields:
        opts.append(f"size={units.parse_size(fields['tmpfs-size'], '--mount tmpfs-size')}")
    if "tmpfs-mode" in fields:
        if not re.fullmatch(r"[0-7]{3,4}", fields["tmpfs-mode"]):
            raise ConfigError("--mount", f"tmpfs-mode={fields['tmpfs-mode']}: an octal mode such as 1777")
        opts.append(f"mode={fields['tmpfs-mode']}")
    return tuple(opts)


def parse_tmpfs(text: str) -> MountRequest:
    """--tmpfs DEST[:OPTIONS]: docker's defaults are noexec,nosuid,nodev."""
    target, _, options = text.partition(":")
    opts = [o for o in options.split(",") if o]
    for o in opts:
        if not re.fullmatch(r"(size=\d+[kmg]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|r?[ow]|(no)?(exec|suid|dev))", o):
            raise ConfigError("--tmpfs", f"{text!r}: unknown option {o!r}")
    return MountRequest("tmpfs", _target(target, "--tmpfs"), options=tuple(opts), flag="--tmpfs")


def check(requests: list[MountRequest]) -> None:
    seen: set[str] = set()
    for r in requests:
        if r.target in seen:
            raise ConfigError(r.flag, f"duplicate mount point: {r.target}")
        seen.add(r.target)


# The store's volumes

def _dir(store_root: str, name: str) -> str:
    return os.path.join(StoreLayout(store_root).volumes, name)


def _meta_path(store_root: str, name: str) -> str:
    return os.path.join(_dir(store_root, name), "volume.json")


def get(store_root: str, name: str) -> dict[str, Any]:
    try:
        with open(_meta_path(store_root, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise ImageError("volume", f"{name!r}: no such volume") from None


def listing(store_root: str) -> list[dict[str, Any]]:
    try:
        names = sorted(os.listdir(StoreLayout(store_root).volumes))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        with contextlib.suppress(ImageError):
            out.append(get(store_root, name))
    return out


def create(store_root: str, name: str | None = None, labels: dict[str, str] | None = None) -> tuple[dict, bool]:
    """The volume NAME (a random name if None), made if it is not there;
    returns (its volume.json, whether it was made now).  The caller holds
    the store's metadata lock."""
    anonymous = name is None
    name = name or os.urandom(32).hex()
    if not _NAME.match(name):
        raise ImageError("volume", f"{name!r}: a volume name is letters, digits and _ . - (2 or more)")
    with contextlib.suppress(ImageError):
        return get(store_root, name), False
    d = _dir(store_root, name)
    os.makedirs(StoreLayout(store_root).volumes, mode=0o700, exist_ok=True)
    os.mkdir(d, 0o700)
    try:
        # _data is what containers see: 0755 root, as docker makes it.
        os.mkdir(os.path.join(d, "_data"), 0o755)
        meta = {"Name": name, "Driver": "local", "Mountpoint": os.path.join(d, "_data"), "CreatedAt": units.now(),
                "Labels": labels or {}, "Scope": "local", "Options": {}, "Anonymous": anonymous}
        write_json(_meta_path(store_root, name), meta)
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise
    return meta, True


def users(containers: list[ContainerRecord], name: str) -> list[str]:
    """The names of the containers that mount volume NAME."""
    return [r.name for r in containers if any(m.type == "volume" and m.name == name for m in r.mounts)]


def remove(store_root: str, name: str, containers: list[ContainerRecord]) -> None:
    """Remove volume NAME unless one of CONTAINERS uses it.  The caller
    holds the store's metadata lock."""
    get(store_root, name)
    using = users(containers, name)
    if using:
        raise ImageError("volume", f"{name!r} is in use by container {', '.join(using)}: remove it first")
    remove_tree(_dir(store_root, name))


# From requests to mounts

def resolve(store_root: str, requests: list[MountRequest]) -> tuple[list[dict], list[Mount], list[str], list[Mount]]:
    """(the OCI mounts, the record's mounts, the names of the volumes
    made now, the mounts of those to fill from the image: copy_up()).
    Named volumes are made as needed; the caller holds the store's
    metadata lock and removes the made ones if the container is not made
    after all."""
    oci, shown, made, fill = [], [], [], []
    try:
        for r in requests:
            if r.type == "tmpfs":
                oci.append({"destination": r.target, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "noexec", *r.options]})
                shown.append(Mount(type="tmpfs", destination=r.target))
                continue
            entry = Mount(type=r.type, destination=r.target, rw=not r.readonly, propagation=r.propagation)
            if r.type == "volume":
                meta, new = create(store_root, r.source or None)
                if new:
                    made.append(meta["Name"])
                entry.name, entry.source = meta["Name"], meta["Mountpoint"]
                if new and r.copy_up:
                    fill.append(entry)
            else:
                entry.source = r.source
                if r.make_source and not os.path.exists(entry.source):
                    os.makedirs(entry.source, 0o755)
            shown.append(entry)
            oci.append({"destination": r.target, "type": "bind", "source": entry.source,
                        "options": ["rbind", r.propagation, "ro" if r.readonly else "rw"]})
    except BaseException:
        remove_made(store_root, made)
        raise
    return oci, shown, made, fill


def remove_made(store_root: str, names: list[str]) -> None:
    for name in names:
        remove_tree(_dir(store_root, name))


def copy_up(rootfs: str, mounts: list[Mount]) -> None:
    """Fill each of MOUNTS, volumes made for this container, with what the image has
    at its destination.  The destination is opened inside the rootfs
    (openat2 RESOLVE_IN_ROOT), so an image's symlink cannot point the copy
    at the host; below it, symlinks are copied as links, never followed."""
    from runtime.core.linux import syscalls

    if not mounts:
        return
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in mounts:
            try:
                fd = syscalls.open_in_root(root, m.destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue  # not in the image (or not a directory): the volume starts empty
            try:
                _copy_tree(f"/proc/self/fd/{fd}", m.source)
            finally:
                os.close(fd)
    finally:
        os.close(root)


def _copy_tree(src: str, dst: str) -> None:
    """cp -a of SRC's contents into the existing DST, with owners and modes."""
    st = os.stat(src)
    os.chown(dst, st.st_uid, st.st_gid)  # chown first: it clears setuid/setgid bits
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        est = entry.stat(follow_symlinks=False)
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(d)
            _copy_tree(s, d)
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(s), d)
            os.chown(d, est.st_uid, est.st_gid, follow_symlinks=False)
        elif stat.S_ISREG(est.st_mode):
            shutil.copyfile(s, d, follow_symlinks=False)
            os.chown(d, est.st_uid, est.st_gid)  # before chmod: chown(2) clears setuid bits
            os.chmod(d, stat.S_IMODE(est.st_mode))
        # device nodes, fifos and sockets stay behind, as in docker's copy


# `husk volume ...`: STORE is an engine.image.store.Store

def volume_create(store, name: str | None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    store.ensure()
    with store.metadata_lock():
        meta, new = create(store.root, name, labels)
    if not new and labels:
        raise ImageError("volume", f"{name!r} exists already, with its own labels")
    return meta


def volume_remove(store, name: str) -> None:
    with store.metadata_lock():
        remove(store.root, name, records.every(store.root))


def volume_prune(store, everything: bool) -> list[str]:
    """Remove the volumes no container uses: the anonymous ones, or with
    EVERYTHING the named ones too (docker volume prune [-a])."""
    gone = []
    with store.metadata_lock():
        containers = records.every(store.root)
        for meta in listing(store.root):
            if (everything or meta.get("Anonymous")) and not users(containers, meta["Name"]):
                remove_made(store.root, [meta["Name"]])
                gone.append(meta["Name"])
    return gone


def volume_inspect(store, name: str) -> dict[str, Any]:
    meta = get(store.root, name)
    return {k: v for k, v in meta.items() if k != "Anonymous"}
