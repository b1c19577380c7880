"""A `create` compiled once per config *shape*, for the C front end to carry out.

`husk create` used to spend ~90% of its time starting Python, importing
and planning; the work itself (cgroups, husk-init, state) is a few dozen
system calls.  So the `husk` command is a small C program (native/front)
that keeps a cache of recipes.  On a miss it runs this module (through
`husk create` with HUSK_RECIPE_FD set), which plans exactly as
container.create does, writes nothing, and returns what C needs:

    u32 length | JSON meta | plan records (protocol.py's encoding)

Every container a client makes is a new config: a new id, cgroupsPath,
rootfs, hostname and bind sources.  Those are the *per-container
values*, and a recipe holds none of them.  The front end takes them out
of config.json by field (native/front/instance.c) - root.path, hostname,
process.args and process.env, each mount's source, each namespace's
path, linux.cgroupsPath, annotations, the hooks that run on the host
(docker's prestart hook names the container) - keys the cache on what is left
(the shape), checks each value as planning would, and fills it into the
plan as a typed field:

- records that hold only a per-container value (ROOTFS, HOSTNAME, ARG,
  ENV, EXEC_FIFO, SESSION_KEYRING, DEVICE_BPF_CGROUP) are left out of the
  recipe's plan and added by the front end;
- mounts are keyed in a canonical order (podman lists /etc/hosts,
  /etc/hostname, /dev/shm ... in a new order each time): each plan mount
  names the rank of the config mount it comes from (meta["mount_ranks"]),
  and the front end lays them out in the new config's order;
- a mount's source is named in meta["mount_sources"]: ["config", rank,
  is_bind] for that config mount's source, ["cgroup", base] for the
  container's cgroup under the hierarchy mounted at base;
- a joined namespace's path is linux.namespaces[j].path, j from
  meta["join_paths"];
- cgroup directories are a placement's base + the container's cgroup
  path: writes name their placement by index.

So the second container podman, containerd or Docker makes from the same
image and options takes the recipe the first one left.

A config the fast path does not carry out (a relative cgroupsPath, a
cgroup file chosen by what the new cgroup itself offers) raises Unfit:
the front end then hands the whole command to Python, which does it the
old way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Any

from runtime.core.cgroups import fs as cgfs
from runtime.core.cgroups.manager import DEFAULT_PARENT, CgroupManager
from runtime.core.container import plan_create
from runtime.core.errors import HuskError, send_warnings_to
from runtime.core.linux import constants as k
from runtime.core.oci.spec import load_config
from runtime.core.oci.state import ContainerState, HuskRecord
from runtime.core.process import protocol as proto

VERSION = 3  # 3: per-container values are typed fields, never in the recipe
# Exit status of `husk create` under HUSK_RECIPE_FD when the config is not
# one the front end carries out (native/front/front.h: EXIT_UNFIT).
EXIT_UNFIT = 3


class Unfit(Exception):
    """This create needs Python all the way (the reason is for --debug)."""


def compile_create(root: str, bundle: str, container_id: str, *, console_socket: bool, no_pivot: bool,
                   preserve_fds: int, no_new_keyring: bool, mount_order: list[int] | None = None) -> bytes:
    """Plan `husk create` of bundle under root as a recipe for any
    container of the same shape (see the module's text).  MOUNT_ORDER:
    the config's mount indexes in the front end's canonical order."""
    bundle = os.path.abspath(bundle)
    # Planning's warnings (a field husk ignores here) go in the recipe:
    # the front end gives them on every create that uses it.
    warnings: list[str] = []
    send_warnings_to(warnings.append)
    config = load_config(bundle)
    linux, namespaces, cg, resources, plan, _ = plan_create(
        config, bundle, container_id, no_pivot=no_pivot, no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
        console_socket=console_socket)
    # The front end fills in the cgroupsPath, cleaned as clean_cgroups_path
    # cleans it: absolute, or relative to the default parent.
    given = linux.get("cgroupsPath") or ""
    parent = os.path.dirname(cg.path) if not given else DEFAULT_PARENT if not given.startswith("/") else None
    bases = _placement_bases(cg)
    count = len(config.get("mounts") or [])
    order = mount_order if mount_order is not None else list(range(count))
    if sorted(order) != list(range(count)):
        raise Unfit(f"the front end's mount order {order} is not one of {count} mounts")
    rank = {j: r for r, j in enumerate(order)}
    # Device rules also rule mknod: the front end writes them once
    # husk-init has made the device nodes (when it asks for the hooks'
    # state; husk-init attaches the v2 program at the same point), so
    # linux.devices that linux.resources.devices does not allow are still
    # made, as runc does.  Nothing of the user's runs before then.
    writes = _recorded_writes(cg, {k: v for k, v in resources.items() if k != "devices"})
    device_writes = _recorded_writes(cg, {"devices": resources["devices"]}) if resources.get("devices") else []

    meta = {
        "version": VERSION,
        "terminal": plan.terminal,
        "floor": 3 + preserve_fds,
        "session_keyring": plan.session_keyring is not None,
        "mount_ranks": [rank[m.config_index] for m in plan.mounts],
        "mount_sources": [_mount_source(m, rank) for m in plan.mounts],
        "join_paths": _join_paths(linux),
        "cgroup": {
            # Without linux.cgroupsPath the container's cgroup is this/<id>;
            # with a relative one, this/<cgroupsPath>.
            "default_parent": parent,
            "unified": cg.layout.unified,
            "placements": [{"base": base, "v2": p.v2, "enable": [c for c in p.controllers if c != "devices"]}
                           for base, p in zip(bases, cg.placements)],
            "cpuset": _placement_index(cg, cg.dir_of("cpuset")) if cg.layout.mode != "v2" else None,
            "writes": writes,
            "device_writes": device_writes,
            "device_bpf_cgroup": _placement_index(cg, plan.device_bpf_cgroup),
        },
        # The state create writes (state.py's schema, the one definition):
        # the front end fills in the id, bundle, annotations, process,
        # rootfs and cgroup, and the pid, start time, creation time, status
        # and the cgroup directories it made.
        "state": _state_template(root, container_id, config, linux, namespaces, no_new_keyring),
    }
    meta["warnings"] = warnings  # after planning: the cgroup writes above give some
    proto.encode_plan(plan)  # the whole plan's own checks (no NUL in a string), values and all
    head = json.dumps(meta).encode()
    return struct.pack("=I", len(head)) + head + proto.encode_plan(_without_container_values(plan, rank))


def check_create(root: str, bundle: str, container_id: str, *, console_socket: str | None, no_pivot: bool,
                 preserve_fds: int, no_new_keyring: bool, run: bool = False, detach: bool = False) -> None:
    """Every error `husk create` (RUN: `husk run`) of BUNDLE would give,
    found by planning it; nothing is made.  The front end hands a create
    to Python only so that this names what is wrong."""
    ContainerState(root, container_id)  # the id's own rules
    if os.path.lexists(os.path.join(root, container_id)):
        raise HuskError("create", f"container {container_id!r} already exists")
    try:
        data = compile_create(root, bundle, container_id, console_socket=console_socket is not None,
                              no_pivot=no_pivot, preserve_fds=preserve_fds, no_new_keyring=no_new_keyring)
    except Unfit as e:
        raise HuskError("create", f"husk cannot carry out this config: {e}") from None
    (length,) = struct.unpack_from("=I", data)
    if json.loads(data[4:4 + length])["terminal"] and console_socket is None and (detach or not run):
        raise HuskError("create", "process.terminal is true: --console-socket is required")


def _state_template(root: str, container_id: str, config: dict, linux: dict, namespaces, no_new_keyring: bool):
    st = ContainerState(root, container_id)
    st.oci_version = config["ociVersion"]
    st.husk = HuskRecord(hooks={},  # the config's own, filled in by the front end
                         namespaces=sorted(namespaces.new | set(namespaces.joined)),
                         seccomp=linux.get("seccomp"), no_new_keyring=no_new_keyring)
    state = st.to_json()
    for per_container in ("id", "bundle", "annotations"):
        del state[per_container]
    return state


def _without_container_values(plan: proto.Plan, rank: dict[int, int]) -> proto.Plan:
    """The plan with every per-container value taken out: records that
    hold one are left out, a mount's source and a joined namespace's
    path are emptied (the front end fills them in)."""
    mounts = [dataclasses.replace(m, source="") if _mount_source(m, rank) else m for m in plan.mounts]
    return dataclasses.replace(plan, rootfs="", hostname=None, args=[], env=[], exec_fifo=None,
                               session_keyring=None, device_bpf_cgroup=None, mounts=mounts,
                               joins=[(nstype, "") for nstype, _ in plan.joins])


def _mount_source(m: proto.Mount, rank: dict[int, int]) -> list | None:
    if m.cgroup_base is not None:
        return ["cgroup", m.cgroup_base]
    if m.source and m.source_is_config and m.config_index is not None:
        return ["config", rank[m.config_index], bool(m.flags & k.MS_BIND)]
    return None


def _join_paths(linux: dict) -> list[int]:
    """For each namespace the plan joins, in order, its linux.namespaces index."""
    return [j for j, entry in enumerate(linux.get("namespaces") or []) if entry.get("path")]


def _placement_bases(cg: CgroupManager) -> list[str]:
    """Each placement's hierarchy: its directory is base + the cgroup path."""
    bases = []
    for p in cg.placements:
        if not p.dir.endswith(cg.path):
            raise Unfit(f"cgroup directory {p.dir} is not under its hierarchy")
        bases.append(p.dir[:len(p.dir) - len(cg.path)])
    return bases


def _placement_index(cg: CgroupManager, d: str | None) -> int | None:
    if d is None:
        return None
    dirs = cg.dirs()
    if d not in dirs:
        raise Unfit(f"{d} is not one of the container's cgroup directories")
    return dirs.index(d)


class _RecipeFS(cgfs.Recording):
    """Records the writes; a write to whichever file the kernel offers is
    recorded with its choices, made in the container's cgroup by the
    front end (the cgroup does not exist yet); anything else that asks
    about the cgroup's own files makes the config unfit for a recipe."""

    def exists(self, d: str, name: str) -> bool:
        raise Unfit(f"{name}: what to write depends on the cgroup itself")

    def write_first(self, d: str, names: cgfs.Names, text: str, field: str) -> None:
        self.writes.append((d, list(names), text, field))


def _recorded_writes(cg: CgroupManager, resources: dict[str, Any]) -> list[list]:
    """cg.apply(resources) as a list of [placement, file, value, field, repr(value)]
    writes, made nowhere: the cgroup does not exist yet.  file is a name,
    or the names to choose from (cgroups/fs.py choose)."""
    with cgfs.using(_RecipeFS()) as fs:
        cg.apply(resources)
    return [[_placement_index(cg, d), name, text, field, repr(text)] for d, name, text, field in fs.writes]


def write_recipe(fd: int, recipe: bytes) -> None:
    """Hand the recipe to the front end on its pipe, and close it (EOF ends the recipe)."""
    try:
        view = memoryview(recipe)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
