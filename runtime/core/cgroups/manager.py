"""One container's cgroup as Python sees it: where it is, the writes a
config's limits make (for a recipe, or for update), join (exec), list,
freeze, stats.  Making, emptying and removing it is the front end's
(native/front: create.c, state.c), the one executor of the lifecycle.

The manager places the container in every hierarchy of the host's layout
and gives each controller's work to its class (controllers.py), v1 or v2
by where the controller is mounted - on a hybrid host, both.  Every path is
built under a cgroup mount point from a cleaned cgroupsPath, so nothing
is ever created or written outside the cgroup filesystems.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from runtime.core.cgroups import controllers
from runtime.core.cgroups.controllers import Controller
from runtime.core.cgroups.layout import Layout, detect
from runtime.core.errors import ConfigError, HuskError, warn

DEFAULT_PARENT = "/husk"


def clean_cgroups_path(path: str | None, container_id: str) -> str:
    """cgroupsPath -> an absolute path with no '..' that could climb out."""
    if not path:
        return f"{DEFAULT_PARENT}/{container_id}"
    if ":" in path and not path.startswith("/"):
        raise ConfigError("linux.cgroupsPath",
                          f"{path!r} is a systemd slice:prefix:name: that needs husk --systemd-cgroup")
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise ConfigError("linux.cgroupsPath", f"{path!r} may not contain '..'")
    if not parts:
        raise ConfigError("linux.cgroupsPath", f"{path!r} names the root cgroup")
    if not path.startswith("/"):  # relative: under husk's own parent
        parts = DEFAULT_PARENT.strip("/").split("/") + parts
    return "/" + "/".join(parts)


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise HuskError("cgroup", f"write {value!r} to {path}", e.errno) from None


def _read_pids(procs_file: str) -> list[int]:
    try:
        with open(procs_file) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


@dataclass
class Placement:
    """The container's directory in one hierarchy and the controllers it serves."""
    dir: str
    controllers: dict[str, Controller]
    v2: bool


class CgroupManager:
    """A container's cgroup across every hierarchy of this host's layout:
    one directory per v1 hierarchy, plus one in the cgroup2 mount (v2,
    or hybrid, where it holds the controllers v1 does not)."""

    def __init__(self, path: str, layout: Layout, created: list[str] | None = None) -> None:
        self.path = path
        self.layout = layout
        self.created: list[str] = list(created or [])
        rel = path.lstrip("/")
        self.placements: list[Placement] = []
        for name, point in layout.v1.items():
            ctrls = {c: controllers.V1[c] for c in name.split(",") if c in controllers.V1}
            self.placements.append(Placement(os.path.join(point, rel), ctrls, False))
        if layout.unified:
            available = controllers.read(layout.unified, "cgroup.controllers").split()
            taken = layout.v1_controllers
            ctrls = {c: controllers.V2[c] for c in available if c in controllers.V2 and c not in taken}
            self.placements.append(Placement(os.path.join(layout.unified, rel), ctrls, True))

    def dirs(self) -> list[str]:
        return [p.dir for p in self.placements]

    def dir_of(self, controller: str) -> str | None:
        for p in self.placements:
            if controller in p.controllers:
                return p.dir
        return None

    @property
    def v2_dir(self) -> str | None:
        return next((p.dir for p in self.placements if p.v2), None)

    # The container's cgroup is made, joined, emptied and removed by the
    # front end (native/front/create.c, state.c); exec joins it here.

    def add(self, pid: int) -> None:
        for d in self.dirs():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        d = self.dir_of("pids") or self.v2_dir or self.dirs()[0]
        return _read_pids(os.path.join(d, "cgroup.procs"))

    def apply(self, resources: dict[str, Any]) -> None:
        """linux.resources -> cgroup files; a field no controller here can
        serve is refused, naming it (BEST_EFFORT ones are warned of)."""
        for key, needs in controllers.NEEDS.items():
            if not resources.get(key) or any(self.dir_of(c) for c in needs):
                continue
            if key in controllers.BEST_EFFORT:
                warn(f"linux.resources.{key} ignored: the {' and '.join(needs)} controllers are not "
                     "available on this host")
            else:
                raise ConfigError(f"linux.resources.{key}",
                                  f"the {' or '.join(needs)} controller is not available on this host")
        for p in self.placements:
            for ctrl in p.controllers.values():
                ctrl.apply(p.dir, resources)
        unified = resources.get("unified") or {}
        if unified:
            if self.layout.mode != "v2":
                raise ConfigError("linux.resources.unified", "needs cgroup v2; this host is " + self.layout.mode)
            for key, value in unified.items():
                if "/" in key or key.startswith(".") or "." not in key:
                    raise ConfigError(f"linux.resources.unified.{key}", "not a cgroup interface file name")
                controllers.write(self.v2_dir, key, value, f"linux.resources.unified.{key}")

    def device_program(self, resources: dict[str, Any]) -> tuple[bytes, str] | None:
        """On cgroup v2, linux.resources.devices becomes an eBPF program
        for husk-init to attach: (instructions, cgroup directory)."""
        if not resources.get("devices") or self.layout.mode != "v2":
            return None
        from runtime.core.cgroups.devices_bpf import device_program
        return device_program(resources["devices"]), self.v2_dir

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for p in self.placements:
            for ctrl in p.controllers.values():
                for k, v in ctrl.stats(p.dir).items():
                    data.setdefault(k, {}).update(v)
        return data

    def oom_kills(self) -> int:
        d = self.dir_of("memory")
        if d is None:
            return 0
        mem = self.placement_of("memory").controllers["memory"]
        return mem.oom_kills(d)

    def placement_of(self, controller: str) -> Placement:
        return next(p for p in self.placements if controller in p.controllers)

    # Freezer

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def frozen(self) -> bool:
        if self.layout.mode == "v2":
            return "frozen 1" in controllers.read(self.v2_dir, "cgroup.events")
        d = self.dir_of("freezer")
        return bool(d) and controllers.FreezerV1.frozen(d)

    def _set_frozen(self, frozen: bool) -> None:
        if self.layout.mode == "v2":
            _write(os.path.join(self.v2_dir, "cgroup.freeze"), "1" if frozen else "0")
        else:
            d = self.dir_of("freezer")
            if d is None:
                raise HuskError("pause", "no freezer controller on this host")
            _write(os.path.join(d, "freezer.state"), "FROZEN" if frozen else "THAWED")
        # Freezing takes effect task by task: wait until the kernel says so.
        for _ in range(5000):
            if self.frozen() == frozen:
                return
            time.sleep(0.001)
        raise HuskError("pause" if frozen else "resume", f"cgroup {self.path} did not settle")


def manager_for(path: str, created: list[str] | None = None) -> CgroupManager:
    return CgroupManager(path, detect(), created)


def container_cgroup_mounts(manager: CgroupManager, cgroupns: bool, dest: str, flags: int) -> list:
    """What a "cgroup" mount in config.json becomes on this host: the
    container sees only its own cgroup at dest (/sys/fs/cgroup)."""
    from runtime.core.linux import constants as k
    from runtime.core.process.protocol import Mount

    layout = manager.layout
    if layout.mode == "v2":
        if cgroupns:  # the namespace makes the container's cgroup the root
            return [Mount(destination=dest, type="cgroup2", source="cgroup2", flags=flags)]
        return [Mount(destination=dest, source=manager.dirs()[0], flags=flags | k.MS_BIND | k.MS_REC,
                      cgroup_base=layout.unified)]
    # v1 and hybrid: a tmpfs with one bind per hierarchy, then made read-only.
    sub = flags & (k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC)
    mounts = [Mount(destination=dest, type="tmpfs", source="tmpfs", data="mode=755", flags=sub)]
    hierarchies = [(point, point) for point in layout.v1.values()]
    if layout.unified:
        hierarchies.append((layout.unified, layout.unified))
    for point, _ in hierarchies:
        mounts.append(Mount(destination=f"{dest}/{os.path.basename(point)}",
                            source=os.path.join(point, manager.path.lstrip("/")),
                            flags=k.MS_BIND | k.MS_REC | (flags & (k.MS_RDONLY | sub)), cgroup_base=point))
    if flags & k.MS_RDONLY:
        mounts.append(Mount(destination=dest, flags=k.MS_REMOUNT | k.MS_RDONLY | sub))
    return mounts
