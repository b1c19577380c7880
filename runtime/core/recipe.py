"""A `create` compiled once per config *shape*, for the C front end to carry out.

The `husk` command is a small C program (native/front) that carries out
every create from a cache of recipes; on a miss it runs this module
(through `husk create` with HUSK_RECIPE_FD set), which plans exactly as
container.plan_create does, makes nothing, and returns what C needs:

    u32 length | JSON meta | plan records (protocol.py's encoding)

native/include/husk_recipe.def declares it once: the meta's fields and
their types, and a container's own values (rootfs, hostname, args, env,
bind sources, namespace paths, cgroupsPath, host hooks, annotations, the
exec fifo, the keyring's name), each with the plan record that carries
it and how the front end fills it in.  This module reads those tables
through cffi and checks what it compiles against them: a recipe holds
no value of one container, and the front end, which keys its cache on
config.json without those values, fills them in as typed records.

Two more details the meta carries:
- mounts are keyed in a canonical order (podman lists /etc/hosts,
  /etc/hostname, /dev/shm ... in a new order each time): each plan mount
  names the rank of the config mount it comes from (mount_ranks), and the
  front end lays them out in the new config's order;
- cgroup directories are a placement's base + the container's cgroup
  path: writes name their placement by index.

A config no recipe can carry (a cgroup file to write that depends on
the new cgroup's own files) raises Unfit; `husk create` then names why
(check_create).
"""

from __future__ import annotations

import enum
import json
import os
import struct
from typing import Any, NamedTuple

from runtime.core import trace
from runtime.core._native import ffi, lib
from runtime.core.cgroups import fs as cgfs
from runtime.core.cgroups.manager import DEFAULT_PARENT, CgroupManager
from runtime.core.container import plan_create
from runtime.core.errors import HuskError, send_warnings_to
from runtime.core.linux import constants as k
from runtime.core.oci.spec import load_config
from runtime.core.oci.state import ContainerState, HuskRecord
from runtime.core.process import protocol as proto


class Fill(enum.IntEnum):
    """How the front end fills in a per-container value (husk_recipe.def)."""

    ADDED = lib.HUSK_FILL_ADDED  # the record is left out; the front end adds it
    SLOT = lib.HUSK_FILL_SLOT  # the record stays, empty; the meta names its source
    STATE = lib.HUSK_FILL_STATE  # no record: the state, cgroup path or host hooks


class PerContainer(NamedTuple):
    """One HUSK_PER_CONTAINER row of husk_recipe.def."""

    field: str  # "mounts[].source", or "" for a value from the command line
    record: int  # the proto.Tag that carries it, or 0
    how: Fill


_JSON_TYPES = {lib.J_BOOL: bool, lib.J_INT: int, lib.J_STRING: str, lib.J_ARRAY: list, lib.J_OBJECT: dict,
               lib.J_NULL: type(None)}

CONSTANTS = {ffi.string(c.name).decode(): c.value
             for c in (lib.husk_recipe_consts[i] for i in range(lib.husk_nrecipe_consts))}
VERSION = CONSTANTS["HUSK_RECIPE_VERSION"]
# Exit status of `husk create` under HUSK_RECIPE_FD when the config is not
# one a recipe can carry.
EXIT_UNFIT = CONSTANTS["HUSK_RECIPE_EXIT_UNFIT"]
# (section, key) -> the Python types the meta field may have.
FIELDS = {(ffi.string(f.section).decode(), ffi.string(f.key).decode()):
          tuple(t for bit, t in _JSON_TYPES.items() if f.types & bit)
          for f in (lib.husk_recipe_fields[i] for i in range(lib.husk_nrecipe_fields))}
PER_CONTAINER = [PerContainer(ffi.string(p.field).decode(), p.record, Fill(p.how))
                 for p in (lib.husk_per_container[i] for i in range(lib.husk_nper_container))]


class Unfit(Exception):
    """This create needs Python all the way (the reason is for --debug)."""


def compile_create(root: str, bundle: str, container_id: str, *, console_socket: bool, no_pivot: bool,
                   preserve_fds: int, no_new_keyring: bool, mount_order: list[int] | None = None,
                   systemd: bool = False) -> bytes:
    """Plan `husk create` of bundle under root as a recipe for any
    container of the same shape (see the module's text).  MOUNT_ORDER:
    the config's mount indexes in the front end's canonical order."""
    bundle = os.path.abspath(bundle)
    # Planning's warnings (a field husk ignores here) go in the recipe:
    # the front end gives them on every create that uses it.
    warnings: list[str] = []
    send_warnings_to(warnings.append)
    config = load_config(bundle)
    trace.step("planning", "config", f"read {bundle}/config.json (ociVersion {config.get('ociVersion')})")
    linux, namespaces, cg, resources, plan, _, unit_properties = plan_create(
        config, bundle, container_id, no_pivot=no_pivot, no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
        console_socket=console_socket, systemd=systemd)
    # The front end fills in the cgroupsPath, cleaned as clean_cgroups_path
    # cleans it: absolute, or relative to the default parent; or the unit
    # it names (--systemd-cgroup).
    given = linux.get("cgroupsPath") or ""
    parent = os.path.dirname(cg.path) if not given else DEFAULT_PARENT if not given.startswith("/") else None
    if systemd:
        parent = None
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
            # --systemd-cgroup: the unit's properties; the front end adds
            # its name and slice from the cgroupsPath, and asks systemd.
            "systemd": {"properties": unit_properties} if systemd else None,
        },
        # The state create writes (state.py's schema, the one definition):
        # the front end fills in the id, bundle, annotations, process,
        # rootfs and cgroup, and the pid, start time, creation time, status
        # and the cgroup directories it made.
        "state": _state_template(root, container_id, config, linux, namespaces, no_new_keyring),
    }
    meta["warnings"] = warnings  # after planning: the cgroup writes above give some
    check_meta(meta)
    records = _without_container_values(proto.encode_plan(plan), meta)
    head = json.dumps(meta).encode()
    trace.step("planning", "recipe", f"the recipe: {len(records)} bytes of plan records with the container's own "
               f"values left out, {len(writes)} cgroup writes; the front end keeps it in /run/husk-plans")
    return struct.pack("=I", len(head)) + head + records


def check_create(root: str, bundle: str, container_id: str, *, console_socket: str | None, no_pivot: bool,
                 preserve_fds: int, no_new_keyring: bool, run: bool = False, detach: bool = False,
                 systemd: bool = False) -> None:
    """Every error `husk create` (RUN: `husk run`) of BUNDLE would give,
    found by planning it; nothing is made.  The front end hands a create
    to Python only so that this names what is wrong."""
    if systemd:
        from runtime.core.cgroups.systemd import require_booted

        require_booted()
    ContainerState(root, container_id)  # the id's own rules
    if os.path.lexists(os.path.join(root, container_id)):
        raise HuskError("create", f"container {container_id!r} already exists")
    try:
        data = compile_create(root, bundle, container_id, console_socket=console_socket is not None,
                              no_pivot=no_pivot, preserve_fds=preserve_fds, no_new_keyring=no_new_keyring,
                              systemd=systemd)
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


def check_meta(meta: dict) -> None:
    """The meta has exactly husk_recipe.def's fields, each of its types
    (the front end refuses a recipe that has not)."""
    sections = {section for section, _ in FIELDS}
    for section in sections:
        part = meta[section] if section else meta
        keys = {key for s, key in FIELDS if s == section}
        if set(part) != keys:
            raise AssertionError(f"recipe meta {section or 'top'}: {sorted(set(part) ^ keys)} differ from "
                                 "husk_recipe.def")
        for key in keys:
            # bool is an int to Python; JSON tells them apart.
            types = FIELDS[section, key]
            if not isinstance(part[key], types) or (isinstance(part[key], bool) and bool not in types):
                raise AssertionError(f"recipe meta {key}: {part[key]!r} is not {types}")


def _without_container_values(plan: bytes, meta: dict) -> bytes:
    """The encoded plan with every per-container value taken out, as
    husk_recipe.def says: an ADDED record is left out, a SLOT record is
    emptied where the meta names what fills it."""
    how = {p.record: p.how for p in PER_CONTAINER if p.record}
    out, mount = [], -1
    for tag, value in proto.split_records(plan):
        if tag == proto.Tag.MOUNT_BEGIN:
            mount += 1
        fill = how.get(tag)
        if fill is Fill.ADDED:
            continue
        if fill is Fill.SLOT:
            if tag == proto.Tag.MOUNT_SOURCE:
                value = b"" if meta["mount_sources"][mount] else value
            elif tag == proto.Tag.NS_JOIN_PATH:
                value = b""  # every joined namespace's path: meta["join_paths"]
            else:
                raise AssertionError(f"husk_recipe.def: no slot fills {proto.Tag(tag).name}")
        out.append(proto.encode_record(tag, value))
    return b"".join(out)


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
