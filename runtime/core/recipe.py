"""A `create` compiled once, for the C front end to carry out.

`husk create` used to spend ~90% of its time starting Python, importing
and planning; the work itself (cgroups, husk-init, state) is a few dozen
system calls.  So the `husk` command is a small C program (native/front)
that keeps a cache of recipes, one per (config.json, host, flags).  On a
miss it runs this module (through `husk create` with HUSK_RECIPE_FD set),
which plans exactly as container.create does, writes nothing, and
returns what C needs:

    u32 length | JSON meta | plan records (protocol.py's encoding)

The container id is not known when a recipe is reused, so it is planned
as SENTINEL and the front end puts the real id in every string where
SENTINEL stands (the plan's records, cgroup paths, state).  What planning
checked on the filesystem (the rootfs' real path, bind sources, joined
namespaces) is listed in the meta and checked again by C on every use.

A config the fast path does not carry out (hooks husk runs on the host,
socket activation, ...) raises Unfit: the front end then hands the whole
command to Python, which does it the old way.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from runtime.core import paths
from runtime.core.cgroups import fs as cgfs
from runtime.core.cgroups.manager import CgroupManager
from runtime.core.container import plan_create, resources_with_default_devices
from runtime.core.errors import HuskError, send_warnings_to
from runtime.core.linux import constants as k
from runtime.core.oci.spec import get_obj, load_config
from runtime.core.process import protocol as proto

VERSION = 2  # 2: device rules apart, written when husk-init has made the device nodes
# Stands for the container id in a recipe; a valid id, so planning takes it.
SENTINEL = "husk-id-5b1f0c7e93a2d846"
# Exit status of `husk create` under HUSK_RECIPE_FD when the config is not
# one the front end carries out (native/front/front.h: EXIT_UNFIT).
EXIT_UNFIT = 3
# Host-side hooks need Python between the front end's steps.
_HOST_HOOKS = ("prestart", "createRuntime", "poststart", "poststop")


class Unfit(Exception):
    """This create needs Python all the way (the reason is for --debug)."""


def _unfit_on_warning(message: str) -> None:
    raise Unfit(f"a warning: {message}")


def compile_create(root: str, bundle: str, *, console_socket: bool, no_pivot: bool, preserve_fds: int,
                   no_new_keyring: bool) -> bytes:
    """Plan `husk create` of bundle under root, for any container id."""
    bundle = os.path.abspath(bundle)
    with open(os.path.join(bundle, "config.json"), "rb") as f:
        if SENTINEL.encode() in f.read():
            raise Unfit("config.json holds the id sentinel")
    if "LISTEN_FDS" in os.environ:
        raise Unfit("socket activation")
    # A warning would be given once, when the recipe is made, and never on
    # the creates that reuse it: such configs take Python's path.
    send_warnings_to(_unfit_on_warning)
    config = load_config(bundle)
    linux, namespaces, cg, plan, hooks = plan_create(config, bundle, SENTINEL, no_pivot=no_pivot,
                                                     no_new_keyring=no_new_keyring)
    if any(hooks[kind] for kind in _HOST_HOOKS):
        raise Unfit("host-side hooks")
    plan.preserve_fds = preserve_fds
    # husk-init's fds, as the front end lays them out: the inherited
    # 3..floor-1, then the socket, the console, the sealed copy of itself.
    floor = 3 + preserve_fds
    if plan.terminal:
        if not console_socket:  # run proxies a pty; create refuses: either way, Python's
            raise Unfit("a terminal without --console-socket")
        plan.console_fd = floor + 1
    elif console_socket:
        raise HuskError("create", "--console-socket given but process.terminal is false")
    resources = resources_with_default_devices(get_obj(linux, "resources", "linux.resources"))
    # Device rules go on after husk-init has made the device nodes (see
    # container.create): the front end writes them when husk-init asks
    # for the hooks' state.
    writes = _recorded_writes(cg, {k: v for k, v in resources.items() if k != "devices"})
    device_writes = _recorded_writes(cg, {"devices": resources["devices"]}) if resources.get("devices") else []
    program = cg.device_program(resources)
    if program:
        plan.device_bpf, plan.device_bpf_cgroup = program
    plan.exec_fifo = os.path.join(root, SENTINEL, paths.EXEC_FIFO)

    meta = {
        "version": VERSION,
        "rootfs": plan.rootfs,
        "rootfs_given": _rootfs_given(config, bundle),
        "exist": _checked_paths(plan, cg),
        "terminal": plan.terminal,
        "floor": floor,
        "cgroup": {
            "path": cg.path,
            "unified": cg.layout.unified,
            "placements": [{"dir": p.dir, "v2": p.v2, "enable": [c for c in p.controllers if c != "devices"]}
                           for p in cg.placements],
            "cpuset": cg.dir_of("cpuset") if cg.layout.mode != "v2" else None,
            "writes": writes,
            "device_writes": device_writes,
        },
        # The state create writes; the front end fills in pid, start time,
        # creation time, status and the cgroup directories it made.
        "state": {
            "ociVersion": config["ociVersion"], "id": SENTINEL, "status": "creating", "pid": 0, "bundle": bundle,
            "annotations": config.get("annotations") or {},
            "husk": {"created": None, "rootfs": plan.rootfs, "cgroup": cg.path, "cgroup_created": [],
                     "hooks": {"poststart": [], "poststop": []}, "start_time": None, "process": config["process"],
                     "namespaces": sorted(namespaces.new | set(namespaces.joined)),
                     "seccomp": linux.get("seccomp"), "no_new_keyring": no_new_keyring},
        },
    }
    head = json.dumps(meta).encode()
    return struct.pack("=I", len(head)) + head + proto.encode_plan(plan)


class _RecipeFS(cgfs.Recording):
    """Records the writes; a choice that depends on the cgroup's own files
    makes the config unfit for a recipe (the cgroup does not exist yet)."""

    def exists(self, d: str, name: str) -> bool:
        raise Unfit(f"{name}: which file to write depends on the cgroup itself")


def _recorded_writes(cg: CgroupManager, resources: dict[str, Any]) -> list[list[str]]:
    """cg.apply(resources) as a list of [dir, file, value, field, repr(value)] writes,
    made nowhere: the cgroup does not exist yet."""
    with cgfs.using(_RecipeFS()) as fs:
        cg.apply(resources)
    return [[d, name, text, field, repr(text)] for d, name, text, field in fs.writes]


def _checked_paths(plan: proto.Plan, cg: CgroupManager) -> list[str]:
    """The paths planning found and the plan relies on: bind sources and
    joined namespaces (the container's own cgroup dirs are made later)."""
    own_cgroup = set(cg.dirs())
    paths = [path for _, path in plan.joins]
    paths += [m.source for m in plan.mounts if m.flags & k.MS_BIND and m.source not in own_cgroup]
    return paths


def _rootfs_given(config: dict, bundle: str) -> str:
    """root.path as resolve_rootfs joins it, before realpath."""
    path = config["root"]["path"]
    return path if os.path.isabs(path) else os.path.join(bundle, path)


def write_recipe(fd: int, recipe: bytes) -> None:
    """Hand the recipe to the front end on its pipe, and close it (EOF ends the recipe)."""
    try:
        view = memoryview(recipe)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
