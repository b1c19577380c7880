"""One container's cgroup: create, join, limit, list, kill, remove.

A CgroupManager has a v1 and a v2 implementation (hybrid hosts use the v1
one, which also keeps a directory in the cgroup2 mount).  Every path is
built under a cgroup mount point from a cleaned cgroupsPath, so nothing
is ever created or written outside the cgroup filesystems.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from typing import Any

from runtime.cgroups.layout import Layout, detect
from runtime.errors import ConfigError, HuskError

DEFAULT_PARENT = "/husk"


def clean_cgroups_path(path: str | None, container_id: str) -> str:
    """cgroupsPath -> an absolute path with no '..' that could climb out."""
    if not path:
        return f"{DEFAULT_PARENT}/{container_id}"
    if ":" in path and not path.startswith("/"):
        raise ConfigError("linux.cgroupsPath",
                          f"{path!r} looks like a systemd slice:prefix:name; husk uses cgroupfs")
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


def _makedirs(path: str, created: list[str]) -> None:
    """mkdir -p that records what it made, so removal takes only those."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d)
            created.append(d)
        except FileExistsError:
            pass
        except OSError as e:
            raise HuskError("cgroup", f"create {d}", e.errno) from None


def _read_pids(procs_file: str) -> list[int]:
    try:
        with open(procs_file) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


class CgroupManager(ABC):
    def __init__(self, path: str, layout: Layout, created: list[str] | None = None) -> None:
        self.path = path
        self.layout = layout
        self.created: list[str] = list(created or [])

    @abstractmethod
    def dirs(self) -> list[str]:
        """Every directory of this container's cgroup."""

    @abstractmethod
    def apply(self, resources: dict[str, Any]) -> None:
        """Write linux.resources into the cgroup files."""

    def create(self) -> None:
        for d in self.dirs():
            _makedirs(d, self.created)

    def add(self, pid: int) -> None:
        for d in self.dirs():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        return _read_pids(os.path.join(self.dirs()[0], "cgroup.procs"))

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        """Kill what is left, then remove the directories we created, deepest first."""
        for _ in range(500):
            self.kill_all()
            if not self.pids():
                break
            time.sleep(0.002)
        for d in sorted(self.created, key=len, reverse=True):
            for _ in range(500):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break  # not empty: another container lives below a shared parent
                    time.sleep(0.002)  # exited tasks linger for a moment


class V1Manager(CgroupManager):
    """cgroup v1 (and hybrid): one directory per hierarchy."""

    def dirs(self) -> list[str]:
        dirs = [os.path.join(point, self.path.lstrip("/")) for point in self.layout.v1.values()]
        if self.layout.unified:
            dirs.append(os.path.join(self.layout.unified, self.path.lstrip("/")))
        return dirs

    def _dir(self, controller: str) -> str | None:
        for name, point in self.layout.v1.items():
            if controller in name.split(","):
                return os.path.join(point, self.path.lstrip("/"))
        return None

    def pids(self) -> list[int]:
        d = self._dir("pids") or self.dirs()[0]
        return _read_pids(os.path.join(d, "cgroup.procs"))

    def apply(self, resources: dict[str, Any]) -> None:
        mem = resources.get("memory") or {}
        if mem.get("limit") is not None and (d := self._dir("memory")):
            _write(f"{d}/memory.limit_in_bytes", str(mem["limit"]))
            if mem.get("swap") is not None and os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
                _write(f"{d}/memory.memsw.limit_in_bytes", str(mem["swap"]))
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None and (d := self._dir("pids")):
            limit = pids["limit"]
            _write(f"{d}/pids.max", "max" if limit <= 0 else str(limit))
        cpu = resources.get("cpu") or {}
        if (d := self._dir("cpu")):
            if cpu.get("shares"):
                _write(f"{d}/cpu.shares", str(cpu["shares"]))
            if cpu.get("period"):
                _write(f"{d}/cpu.cfs_period_us", str(cpu["period"]))
            if cpu.get("quota") is not None:
                _write(f"{d}/cpu.cfs_quota_us", str(cpu["quota"]))
        if (d := self._dir("cpuset")):
            for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
                if cpu.get(key):
                    _write(f"{d}/{file}", cpu[key])
        devices = resources.get("devices")
        if devices and (d := self._dir("devices")):
            for rule in devices:
                _write(f"{d}/{'devices.allow' if rule.get('allow') else 'devices.deny'}", _device_rule(rule))

    def create(self) -> None:
        super().create()
        # A new cpuset cgroup starts empty: inherit the parent's cpus and mems.
        d = self._dir("cpuset")
        if d:
            for file in ("cpuset.cpus", "cpuset.mems"):
                chain = []
                p = d
                while not open(f"{p}/{file}").read().strip():
                    chain.append(p)
                    p = os.path.dirname(p)
                value = open(f"{p}/{file}").read().strip()
                for c in reversed(chain):
                    _write(f"{c}/{file}", value)


class V2Manager(CgroupManager):
    """cgroup v2: one directory in the unified hierarchy."""

    def dirs(self) -> list[str]:
        return [os.path.join(self.layout.unified or "/sys/fs/cgroup", self.path.lstrip("/"))]

    def create(self) -> None:
        root = self.layout.unified or "/sys/fs/cgroup"
        super().create()
        # Controllers must be enabled in every ancestor's subtree_control.
        with open(f"{root}/cgroup.controllers") as f:
            available = f.read().split()
        parent = root
        for part in self.path.strip("/").split("/")[:-1]:
            self._enable(parent, available)
            parent = os.path.join(parent, part)
        self._enable(parent, available)

    @staticmethod
    def _enable(directory: str, controllers: list[str]) -> None:
        with open(f"{directory}/cgroup.subtree_control") as f:
            enabled = set(f.read().split())
        wanted = [c for c in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb") if c in controllers]
        missing = " ".join(f"+{c}" for c in wanted if c not in enabled)
        if missing:
            _write(f"{directory}/cgroup.subtree_control", missing)

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        kill_file = os.path.join(self.dirs()[0], "cgroup.kill")
        if sig == signal.SIGKILL and os.path.exists(kill_file):
            _write(kill_file, "1")  # atomic: no fork can slip past (Linux 5.14+)
            return
        super().kill_all(sig)

    def apply(self, resources: dict[str, Any]) -> None:
        d = self.dirs()[0]
        mem = resources.get("memory") or {}
        if mem.get("limit") is not None:
            _write(f"{d}/memory.max", "max" if mem["limit"] < 0 else str(mem["limit"]))
            if mem.get("swap") is not None and os.path.exists(f"{d}/memory.swap.max"):
                swap = mem["swap"]
                _write(f"{d}/memory.swap.max", "max" if swap < 0 else str(max(swap - mem["limit"], 0)))
        pids = resources.get("pids") or {}
        if pids.get("limit") is not None:
            _write(f"{d}/pids.max", "max" if pids["limit"] <= 0 else str(pids["limit"]))
        cpu = resources.get("cpu") or {}
        if cpu.get("shares"):
            # runc's conversion of v1 shares [2, 262144] to v2 weight [1, 10000].
            _write(f"{d}/cpu.weight", str(1 + ((cpu["shares"] - 2) * 9999) // 262142))
        if cpu.get("quota") is not None or cpu.get("period"):
            quota = cpu.get("quota")
            limit = "max" if quota is None or quota < 0 else quota
            _write(f"{d}/cpu.max", f"{limit} {cpu.get('period') or 100000}")
        for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                _write(f"{d}/{file}", cpu[key])


def _device_rule(rule: dict[str, Any]) -> str:
    dtype = rule.get("type") or "a"
    major = rule.get("major")
    minor = rule.get("minor")
    access = rule.get("access") or "rwm"
    if dtype == "a":
        return "a"
    def number(n):
        return "*" if n is None or n < 0 else n
    return f"{dtype} {number(major)}:{number(minor)} {access}"


def manager_for(path: str, created: list[str] | None = None) -> CgroupManager:
    layout = detect()
    cls = V2Manager if layout.mode == "v2" else V1Manager
    return cls(path, layout, created)


def container_cgroup_mounts(manager: CgroupManager, cgroupns: bool, dest: str, flags: int) -> list:
    """What a "cgroup" mount in config.json becomes on this host: the
    container sees only its own cgroup at dest (/sys/fs/cgroup)."""
    from runtime.linux import constants as k
    from runtime.process.protocol import Mount

    layout = manager.layout
    if layout.mode == "v2":
        if cgroupns:  # the namespace makes the container's cgroup the root
            return [Mount(destination=dest, type="cgroup2", source="cgroup2", flags=flags)]
        return [Mount(destination=dest, source=manager.dirs()[0], flags=flags | k.MS_BIND | k.MS_REC)]
    # v1 and hybrid: a tmpfs with one bind per hierarchy, then made read-only.
    sub = flags & (k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC)
    mounts = [Mount(destination=dest, type="tmpfs", source="tmpfs", data="mode=755", flags=sub)]
    hierarchies = [(point, point) for point in layout.v1.values()]
    if layout.unified:
        hierarchies.append((layout.unified, layout.unified))
    for point, _ in hierarchies:
        mounts.append(Mount(destination=f"{dest}/{os.path.basename(point)}",
                            source=os.path.join(point, manager.path.lstrip("/")),
                            flags=k.MS_BIND | k.MS_REC | (flags & (k.MS_RDONLY | sub))))
    if flags & k.MS_RDONLY:
        mounts.append(Mount(destination=dest, flags=k.MS_REMOUNT | k.MS_RDONLY | sub))
    return mounts
