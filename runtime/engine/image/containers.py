"""Containers made from images (the docker-like face): a bundle per
container under the store's containers/ directory.

    containers/<id>/container.json   its record (engine.record)
    containers/<id>/config.json      the OCI config the runtime core runs
    containers/<id>/rootfs           overlay mount (or a copy)
    containers/<id>/upper, work      the container's own changes
    containers/<id>/lock             flock: one lifecycle step at a time
                                     (start, stop, the monitor's cleanup, rm)

A container's volumes (engine.volumes) are named in its record's
mounts; those it made are in volumes_made.

The runtime core knows nothing of images: it gets this directory as an
ordinary bundle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import time
from typing import Any

from runtime.core import trace
from runtime.core.errors import ImageError
from runtime.engine import record as records
from runtime.engine import units, volumes
from runtime.engine.image import bundle, rootfs
from runtime.engine.image.store import Store, remove_tree
from runtime.engine.record import ContainerRecord, NetworkInfo

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
# Containers made from images live in /husk/<id> in every cgroup hierarchy,
# as docker's live in /docker/<id>.
CGROUP_PARENT = "husk"


def create(store: Store, image_digest: str, image_name: str, opts: bundle.RunOptions, *,
           name: str | None = None, driver: str = "overlay", remove_after: bool = False,
           network=None, mounts: list | None = None, **fields: Any) -> ContainerRecord:
    """Make the record, the rootfs, the network (a network.attach.NetworkRequest),
    the volumes (MOUNTS: volumes.MountRequest) and config.json; all undone
    if any step fails.  FIELDS: more of the record's fields (the restart
    policy, the log size, ...)."""
    cid = os.urandom(32).hex()
    name = name or f"husk-{cid[:12]}"
    if not _NAME.match(name):
        raise ImageError("--name", f"{name!r}: use letters, digits and _ . - (up to 128)")
    cdir = store.container_dir(cid)
    record = ContainerRecord(id=cid, name=name, image=image_digest, image_name=image_name, created=units.now(),
                             remove=remove_after, hostname=opts.hostname or bundle.hostname_for(cid),
                             driver=driver, **fields)
    store.ensure()
    with store.using():
        with store.metadata_lock():
            if any(r.name == name for r in records.every(store.root)):
                raise ImageError("--name", f"{name!r} is already in use by a container (husk rm {name})")
            # Named while the lock is held, so `husk volume rm` sees them in use.
            oci_mounts, record.mounts, record.volumes_made, fill = volumes.resolve(store.root, mounts or [])
            try:
                os.mkdir(cdir, 0o700)
                records.make_lock(store.root, cid)
                records.save(store.root, record)
            except BaseException:
                volumes.remove_made(store.root, record.volumes_made)
                raise
        try:
            config = store.config(image_digest)
            record.driver = rootfs.make(store, config["rootfs"]["diff_ids"], cdir, driver, volatile=remove_after)
            record.stop_signal = (config.get("config") or {}).get("StopSignal") or "SIGTERM"
            net = None
            if network is not None:
                record.network_request = dataclasses.asdict(network)
                net = _attach(store, record, config)
            volumes.copy_up(os.path.join(cdir, "rootfs"), fill)
            spec = bundle.make_config(config, os.path.join(cdir, "rootfs"), opts, cid, cgroups_path(record), net,
                                      oci_mounts)
            with open(os.path.join(cdir, "config.json"), "w") as f:
                json.dump(spec, f, indent=1)
            trace.step("engine", "bundle", f"write {cdir}/config.json: image {image_digest[:19]}, "
                       f"{len(spec.get('mounts') or [])} mounts, namespaces "
                       f"{', '.join(n['type'] for n in spec['linux'].get('namespaces') or [])}", who="engine")
            records.save(store.root, record)
        except BaseException:
            destroy(store, cid, volumes_made=True)
            raise
    return record


def cgroups_path(record: ContainerRecord) -> str:
    """Its linux.cgroupsPath: under /husk, or with the systemd driver a
    scope in machine.slice, where podman puts its containers."""
    if record.cgroup_manager == "systemd":
        return f"machine.slice:husk:{record.id}"
    return f"/{CGROUP_PARENT}/{record.id}"


def _attach(store: Store, record: ContainerRecord, config: dict[str, Any]) -> dict[str, Any]:
    """Connect the container to the network its record asks for; the
    record's network gets the address and ports it was given."""
    from runtime.engine.network import attach

    exposed = sorted((config.get("config") or {}).get("ExposedPorts") or {})
    cid = record.id
    net = attach.attach(store.root, cid, record.name, record.hostname, store.container_dir(cid),
                        attach.NetworkRequest(**record.network_request), exposed,
                        alive=lambda owner: os.path.isdir(store.container_dir(owner)))
    given = net["record"]
    record.network = NetworkInfo(mode=given.get("mode", ""), network=given.get("network"), ip=given.get("ip"),
                                 ports=list(given.get("ports") or []))
    return net


def prepare(store: Store, record: ContainerRecord) -> None:
    """Before a stopped container starts again (`husk start`): mount its
    rootfs over its own upper directory again and reconnect its network.
    config.json stays as it was: the netns path and the bind-mounted
    hosts files have the same names as before.  The caller holds the
    container's lock."""
    cid = record.id
    cdir = store.container_dir(cid)
    config = store.config(record.image)
    target = os.path.join(cdir, "rootfs")
    if record.driver == "overlay" and not os.path.ismount(target):
        with store.using():
            rootfs.make(store, config["rootfs"]["diff_ids"], cdir, "overlay")
    try:
        if record.network_request and not os.path.exists(os.path.join(cdir, "network.json")):
            _attach(store, record, config)
            records.update(store.root, cid, network=record.network)
    except BaseException:
        release(store, cid)
        raise


def rename(store: Store, text: str, new_name: str) -> ContainerRecord:
    """`husk rename`: the record's name, and the name its network resolves."""
    if not _NAME.match(new_name):
        raise ImageError("rename", f"{new_name!r}: use letters, digits and _ . - (up to 128)")
    with store.metadata_lock():
        record = records.find(store.root, text)
        if any(r.name == new_name and r.id != record.id for r in records.every(store.root)):
            raise ImageError("rename", f"{new_name!r} is already in use by a container")
        record = records.update(store.root, record.id, name=new_name)
    if os.path.exists(os.path.join(store.container_dir(record.id), "network.json")):
        from runtime.engine.network import attach

        attach.rename(store.root, store.container_dir(record.id), new_name)
    return record


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
    record = records.load(store.root, cid)
    if os.path.exists(os.path.join(cdir, "network.json")):
        from runtime.engine.network import attach

        attach.detach(store.root, cdir)
    rootfs.remove(cdir)
    # The container's monitor may still write its last exit record while
    # its container dies: a directory that fills again is removed again.
    for attempt in range(50):
        try:
            remove_tree(cdir)
            break
        except OSError as e:
            if e.errno != errno.ENOTEMPTY or attempt == 49:
                raise
            time.sleep(0.02)
    remove_cgroup_parent()
    if record is None:
        return
    names = [m.name for m in record.mounts if m.type == "volume"]
    doomed = [n for n in names if (volumes_made and n in record.volumes_made)
              or (anonymous_volumes and _anonymous(store, n))]
    if doomed:
        with store.metadata_lock():
            others = records.every(store.root)
            volumes.remove_made(store.root, [n for n in doomed if not volumes.users(others, n)])


def _anonymous(store: Store, name: str) -> bool:
    try:
        return bool(volumes.get(store.root, name).get("Anonymous"))
    except ImageError:
        return False
