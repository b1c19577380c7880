"""Containers made from images (the docker-like face): a record and a
bundle per container under the store's containers/ directory.

    containers/<id>/container.json   id, name, image, created, status
    containers/<id>/config.json      the OCI config the runtime core runs
    containers/<id>/rootfs           overlay mount (or a copy)
    containers/<id>/upper, work      the container's own changes
    containers/<id>/lock             flock: one lifecycle step at a time
                                     (start, stop, the monitor's cleanup, rm)

A container's volumes (engine.volumes) are named in its record's
"mounts", docker's Mounts shape; those it made are in "volumes_made".

The runtime core knows nothing of images: it gets this directory as an
ordinary bundle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from runtime.core.errors import ImageError
from runtime.core.paths import StoreLayout
from runtime.engine import volumes
from runtime.engine.image import bundle, rootfs
from runtime.engine.image.store import Store, _write_json, remove_tree

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
# Containers made from images live in /husk/<id> in every cgroup hierarchy,
# as docker's live in /docker/<id>.
CGROUP_PARENT = "husk"


def _record_path(store: Store, cid: str) -> str:
    return StoreLayout(store.root).container_record(cid)


def find(store: Store, text: str) -> dict[str, Any]:
    """As docker names containers: the whole id or name, else a prefix of
    the id, else a prefix of the name, as long as only one matches."""
    records = store.container_records()
    for r in records:
        if text in (r["id"], r["name"]):
            return r
    for key in ("id", "name"):
        matches = [r for r in records if text and r[key].startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ImageError("container", f"{text!r} matches {len(matches)} containers: give more of the {key}")
    raise ImageError("container", f"{text!r}: no such container")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def create(store: Store, image_digest: str, image_name: str, opts: bundle.RunOptions, *,
           name: str | None = None, driver: str = "overlay", remove_after: bool = False,
           network=None, mounts: list | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make the record, the rootfs, the network (a network.attach.NetworkRequest),
    the volumes (MOUNTS: volumes.MountRequest) and config.json; all undone
    if any step fails.  EXTRA: more fields for the record (the restart
    policy, the log size, ...)."""
    cid = os.urandom(32).hex()
    name = name or f"husk-{cid[:12]}"
    if not _NAME.match(name):
        raise ImageError("--name", f"{name!r}: use letters, digits and _ . - (up to 128)")
    cdir = store.container_dir(cid)
    record = {"id": cid, "name": name, "image": image_digest, "image_name": image_name,
              "created": now(), "status": "created", "remove": remove_after,
              "hostname": opts.hostname or bundle.hostname_for(cid), **(extra or {})}
    store.ensure()
    with store.using():
        with store.metadata_lock():
            if any(r["name"] == name for r in store.container_records()):
                raise ImageError("--name", f"{name!r} is already in use by a container (husk rm {name})")
            # Named while the lock is held, so `husk volume rm` sees them in use.
            oci_mounts, record["mounts"], made = volumes.resolve(store.root, mounts or [])
            record["volumes_made"] = made
            try:
                os.mkdir(cdir, 0o700)
                _write_json(_record_path(store, cid), record)
            except BaseException:
                volumes.remove_made(store.root, made)
                raise
        try:
            config = store.config(image_digest)
            record["driver"] = rootfs.make(store, config["rootfs"]["diff_ids"], cdir, driver, volatile=remove_after)
            record["stop_signal"] = (config.get("config") or {}).get("StopSignal") or "SIGTERM"
            net = None
            if network is not None:
                record["network_request"] = dataclasses.asdict(network)
                net = _attach(store, record, config)
            volumes.copy_up(os.path.join(cdir, "rootfs"), record["mounts"])
            for m in record["mounts"]:
                m.pop("CopyUp", None)
            spec = bundle.make_config(config, os.path.join(cdir, "rootfs"), opts, cid, f"/{CGROUP_PARENT}/{cid}", net,
                                      oci_mounts)
            with open(os.path.join(cdir, "config.json"), "w") as f:
                json.dump(spec, f, indent=1)
            _write_json(_record_path(store, cid), record)
        except BaseException:
            destroy(store, cid, volumes_made=True)
            raise
    record["dir"] = cdir
    return record


def _attach(store: Store, record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Connect the container to the network its record asks for; the
    record's "network" gets the address and ports it was given."""
    from runtime.engine.network import attach

    exposed = sorted((config.get("config") or {}).get("ExposedPorts") or {})
    cid = record["id"]
    net = attach.attach(store.root, cid, record["name"], record["hostname"], store.container_dir(cid),
                        attach.NetworkRequest(**record["network_request"]), exposed,
                        alive=lambda owner: os.path.isdir(store.container_dir(owner)))
    record["network"] = {k: net["record"].get(k) for k in ("mode", "network", "ip", "ports")}
    return net


def prepare(store: Store, record: dict[str, Any]) -> None:
    """Before a stopped container starts again (`husk start`): mount its
    rootfs over its own upper directory again and reconnect its network.
    config.json stays as it was: the netns path and the bind-mounted
    hosts files have the same names as before."""
    cid = record["id"]
    cdir = store.container_dir(cid)
    config = store.config(record["image"])
    target = os.path.join(cdir, "rootfs")
    if record.get("driver", "overlay") == "overlay" and not os.path.ismount(target):
        with store.using():
            rootfs.make(store, config["rootfs"]["diff_ids"], cdir, "overlay")
    try:
        if record.get("network_request") and not os.path.exists(os.path.join(cdir, "network.json")):
            _attach(store, record, config)
            update(store, cid, network=record["network"])
    except BaseException:
        release(store, cid)
        raise


def rename(store: Store, text: str, new_name: str) -> dict[str, Any]:
    """`husk rename`: the record's name, and the name its network resolves."""
    if not _NAME.match(new_name):
        raise ImageError("rename", f"{new_name!r}: use letters, digits and _ . - (up to 128)")
    with store.metadata_lock():
        record = find(store, text)
        if any(r["name"] == new_name and r["id"] != record["id"] for r in store.container_records()):
            raise ImageError("rename", f"{new_name!r} is already in use by a container")
        record = update(store, record["id"], name=new_name)
    if os.path.exists(os.path.join(store.container_dir(record["id"]), "network.json")):
        from runtime.engine.network import attach

        attach.rename(store.root, store.container_dir(record["id"]), new_name)
    return record


def load(store: Store, cid: str) -> dict[str, Any] | None:
    try:
        with open(_record_path(store, cid)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def update(store: Store, cid: str, **fields: Any) -> dict[str, Any]:
    """Set FIELDS in the container's record (None removes one); returns it."""
    path = _record_path(store, cid)
    with open(path) as f:
        record = json.load(f)
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    _write_json(path, record)
    return record


def set_status(store: Store, cid: str, status: str, exit_code: int | None = None) -> None:
    fields: dict[str, Any] = {"status": status}
    if exit_code is not None:
        fields.update(exit_code=exit_code, finished_at=now())
    update(store, cid, **fields)


@contextlib.contextmanager
def locked(store: Store, cid: str) -> Iterator[bool]:
    """Hold the container's lock: yields False if the container is gone
    (removed before or while we waited for the lock)."""
    cdir = store.container_dir(cid)
    try:
        fd = os.open(os.path.join(cdir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield os.path.exists(_record_path(store, cid))
    finally:
        os.close(fd)


def release(store: Store, cid: str) -> None:
    """After the container stops: its network (veth, address, ports) and
    the overlay mount go; the upper dir stays until `husk rm`."""
    from runtime.engine.network import attach

    attach.detach(store.root, store.container_dir(cid))
    unmount(store, cid)
    remove_cgroup_parent()


def remove_cgroup_parent() -> None:
    """The runtime core removes only the cgroup directories a container
    created, so the shared /husk parent stays when its creator is not the
    last to go.  Whoever leaves it empty removes it (rmdir(2) refuses a
    parent that still has children)."""
    import contextlib

    from runtime.core.cgroups.layout import detect

    layout = detect()
    for base in set(layout.v1.values()) | ({layout.unified} if layout.unified else set()):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(base, CGROUP_PARENT))


def unmount(store: Store, cid: str) -> None:
    target = os.path.join(store.container_dir(cid), "rootfs")
    if os.path.ismount(target):
        from runtime.core.linux import syscalls

        syscalls.umount(target, syscalls.MNT_DETACH)


def destroy(store: Store, cid: str, *, anonymous_volumes: bool = False, volumes_made: bool = False) -> None:
    """Remove the container: its network, rootfs, changes and directory.
    ANONYMOUS_VOLUMES (--rm, rm -v): also its anonymous volumes;
    VOLUMES_MADE (a run that failed): also the volumes it made.  A volume
    another container uses stays."""
    cdir = store.container_dir(cid)
    record = load(store, cid) or {}
    if os.path.exists(os.path.join(cdir, "network.json")):
        from runtime.engine.network import attach

        attach.detach(store.root, cdir)
    rootfs.remove(cdir)
    remove_tree(cdir)
    remove_cgroup_parent()
    names = [m["Name"] for m in record.get("mounts") or [] if m.get("Type") == "volume"]
    doomed = [n for n in names if (volumes_made and n in record.get("volumes_made", []))
              or (anonymous_volumes and _anonymous(store, n))]
    if doomed:
        with store.metadata_lock():
            others = store.container_records()
            volumes.remove_made(store.root, [n for n in doomed if not volumes.users(others, n)])


def _anonymous(store: Store, name: str) -> bool:
    try:
        return bool(volumes.get(store.root, name).get("Anonymous"))
    except ImageError:
        return False
