"""One class per cgroup controller, for v1 and v2.

Each knows the files of its controller in one hierarchy: how to apply
its part of linux.resources, and how to read its statistics in the shape
of runc's `events --stats`.  A file this kernel lacks is reported with
the config field that asked for it, never silently skipped.
"""

from __future__ import annotations

import math
import os
from typing import Any

from runtime.core.cgroups import fs as cgfs
from runtime.core.errors import ConfigError, warn


def write(d: str, name: str, value: Any, field: str) -> None:
    """Write VALUE to interface file NAME in D; FIELD is the config field
    that asked for it (the error names it)."""
    cgfs.current().write(d, name, str(value), field)


def write_first(d: str, names: tuple[str | None, ...], value: Any, field: str) -> None:
    """Write VALUE to the first of NAMES this kernel offers (cgroups/fs.py
    choose: None last means "or to none").  Decided when written, in the
    container's own cgroup: a recipe records the choice, not its answer."""
    cgfs.current().write_first(d, names, str(value), field)


def read(d: str, name: str, default: str = "") -> str:
    try:
        return cgfs.current().read(d, name).strip()
    except OSError:
        return default


def read_int(d: str, name: str) -> int:
    value = read(d, name, "0")
    return -1 if value == "max" else int(value or 0)


def read_kv(d: str, name: str) -> dict[str, int]:
    """A flat-keyed file (memory.stat, cpu.stat, memory.events)."""
    out = {}
    for line in read(d, name).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _max(value: int | None) -> str:
    return "max" if value is None or value < 0 else str(value)


class Controller:
    name = ""

    def apply(self, d: str, r: dict[str, Any]) -> None:
        """Write this controller's part of linux.resources."""

    def stats(self, d: str) -> dict[str, Any]:
        return {}


# cgroup v1

class MemoryV1(Controller):
    name = "memory"

    def apply(self, d, r):
        m = r.get("memory") or {}
        f = "linux.resources.memory"
        if m.get("reservation") is not None:
            write(d, "memory.soft_limit_in_bytes", m["reservation"], f + ".reservation")
        if m.get("limit") is not None:
            # memsw must stay >= limit: raise memsw first when it grows.
            swap = m.get("swap")
            if swap is not None and swap > 0:  # without swap accounting, no memsw to raise
                write_first(d, ("memory.memsw.limit_in_bytes", None), -1, f + ".swap")
            write(d, "memory.limit_in_bytes", m["limit"], f + ".limit")
        if m.get("swap") is not None:
            write(d, "memory.memsw.limit_in_bytes", m["swap"], f + ".swap")
        if m.get("swappiness") is not None:
            if not 0 <= m["swappiness"] <= 100:
                raise ConfigError(f + ".swappiness", f"{m['swappiness']} is not in 0..100")
            write(d, "memory.swappiness", m["swappiness"], f + ".swappiness")
        if m.get("disableOOMKiller"):
            write(d, "memory.oom_control", 1, f + ".disableOOMKiller")
        if m.get("kernelTCP") is not None:
            # The TCP buffer limit is still a live v1 knob (runc sets it too).
            write(d, "memory.kmem.tcp.limit_in_bytes", m["kernelTCP"], f + ".kernelTCP")
        if m.get("kernel") is not None:
            # memory.kmem.limit_in_bytes was deprecated in 5.4 and rejects
            # writes since 6.1; runc 1.1+ ignores the field the same way.
            warn(f"{f}.kernel ignored: kernel memory limits are deprecated and not set by husk")

    def stats(self, d):
        raw = read_kv(d, "memory.stat")
        return {"memory": {
            "usage": {"usage": read_int(d, "memory.usage_in_bytes"), "max": read_int(d, "memory.max_usage_in_bytes"),
                      "limit": read_int(d, "memory.limit_in_bytes"), "failcnt": read_int(d, "memory.failcnt")},
            "swap": {"usage": read_int(d, "memory.memsw.usage_in_bytes"),
                     "max": read_int(d, "memory.memsw.max_usage_in_bytes"),
                     "limit": read_int(d, "memory.memsw.limit_in_bytes"),
                     "failcnt": read_int(d, "memory.memsw.failcnt")},
            "cache": raw.get("cache", 0), "raw": raw}}

    @staticmethod
    def oom_kills(d):
        return read_kv(d, "memory.oom_control").get("oom_kill", 0)


class CpuV1(Controller):
    name = "cpu"

    def apply(self, d, r):
        c = r.get("cpu") or {}
        f = "linux.resources.cpu"
        if c.get("shares"):
            write(d, "cpu.shares", c["shares"], f + ".shares")
        if c.get("period"):
            write(d, "cpu.cfs_period_us", c["period"], f + ".period")
        if c.get("quota") is not None and c["quota"] != 0:
            write(d, "cpu.cfs_quota_us", c["quota"], f + ".quota")
        if c.get("burst") is not None:
            write(d, "cpu.cfs_burst_us", c["burst"], f + ".burst")
        if c.get("idle") is not None:
            write(d, "cpu.idle", c["idle"], f + ".idle")
        if c.get("realtimePeriod"):
            write(d, "cpu.rt_period_us", c["realtimePeriod"], f + ".realtimePeriod")
        if c.get("realtimeRuntime"):
            write(d, "cpu.rt_runtime_us", c["realtimeRuntime"], f + ".realtimeRuntime")

    def stats(self, d):
        s = read_kv(d, "cpu.stat")
        return {"cpu": {"throttling": {"periods": s.get("nr_periods", 0),
                                       "throttledPeriods": s.get("nr_throttled", 0),
                                       "throttledTime": s.get("throttled_time", 0)}}}


class CpuacctV1(Controller):
    name = "cpuacct"

    def stats(self, d):
        stat = read_kv(d, "cpuacct.stat")
        tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        return {"cpu": {"usage": {"total": read_int(d, "cpuacct.usage"),
                                  "percpu": [int(x) for x in read(d, "cpuacct.usage_percpu").split()],
                                  "user": stat.get("user", 0) * tick, "kernel": stat.get("system", 0) * tick}}}


class CpusetV1(Controller):
    name = "cpuset"

    def apply(self, d, r):
        c = r.get("cpu") or {}
        for key, file in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if c.get(key):
                write(d, file, c[key], f"linux.resources.cpu.{key}")


class PidsV1(Controller):
    name = "pids"

    def apply(self, d, r):
        p = r.get("pids") or {}
        if p.get("limit") is not None:
            write(d, "pids.max", "max" if p["limit"] <= 0 else p["limit"], "linux.resources.pids.limit")

    def stats(self, d):
        return {"pids": {"current": read_int(d, "pids.current"), "limit": max(read_int(d, "pids.max"), 0)}}


def _device_lines(entries, field, value_key):
    for i, e in enumerate(entries or []):
        if not isinstance(e, dict) or "major" not in e or "minor" not in e:
            raise ConfigError(f"{field}[{i}]", "needs major and minor")
        yield f"{e['major']}:{e['minor']} {e[value_key]}"


class BlkioV1(Controller):
    name = "blkio"
    THROTTLES = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                 ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                 ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                 ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"))

    def apply(self, d, r):
        b = r.get("blockIO") or {}
        f = "linux.resources.blockIO"
        # CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels.
        if b.get("weight"):
            write_first(d, ("blkio.weight", "blkio.bfq.weight"), b["weight"], f + ".weight")
        if b.get("leafWeight"):
            write(d, "blkio.leaf_weight", b["leafWeight"], f + ".leafWeight")
        for line in _device_lines(b.get("weightDevice"), f + ".weightDevice", "weight"):
            write_first(d, ("blkio.weight_device", "blkio.bfq.weight_device"), line, f + ".weightDevice")
        for key, file in self.THROTTLES:
            for line in _device_lines(b.get(key), f"{f}.{key}", "rate"):
                write(d, file, line, f"{f}.{key}")

    def stats(self, d):
        def entries(name):
            out = []
            for line in read(d, name).splitlines():
                parts = line.split()
                if len(parts) == 3 and ":" in parts[0]:
                    major, minor = parts[0].split(":")
                    out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
            return out
        return {"blkio": {"ioServiceBytesRecursive": entries("blkio.throttle.io_service_bytes_recursive"),
                          "ioServicedRecursive": entries("blkio.throttle.io_serviced_recursive")}}


class HugetlbV1(Controller):
    name = "hugetlb"

    def apply(self, d, r):
        for i, h in enumerate(r.get("hugepageLimits") or []):
            write(d, f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"], f"linux.resources.hugepageLimits[{i}]")

    def stats(self, d):
        out = {}
        for name in os.listdir(d):
            if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes"):
                size = name.split(".")[1]
                out[size] = {"usage": read_int(d, name), "max": read_int(d, f"hugetlb.{size}.max_usage_in_bytes"),
                             "failcnt": read_int(d, f"hugetlb.{size}.failcnt")}
        return {"hugetlb": out}


class NetClsV1(Controller):
    name = "net_cls"

    def apply(self, d, r):
        n = r.get("network") or {}
        if n.get("classID") is not None:
            write(d, "net_cls.classid", n["classID"], "linux.resources.network.classID")


class NetPrioV1(Controller):
    name = "net_prio"

    def apply(self, d, r):
        for i, p in enumerate((r.get("network") or {}).get("priorities") or []):
            write(d, "net_prio.ifpriomap", f"{p['name']} {p['priority']}", f"linux.resources.network.priorities[{i}]")


class RdmaV1(Controller):
    name = "rdma"

    def apply(self, d, r):
        for dev, lim in (r.get("rdma") or {}).items():
            parts = [f"{k}={lim[v]}" for k, v in (("hca_handle", "hcaHandles"), ("hca_object", "hcaObjects"))
                     if lim.get(v) is not None]
            write(d, "rdma.max", f"{dev} {' '.join(parts)}", f"linux.resources.rdma.{dev}")


class DevicesV1(Controller):
    name = "devices"

    def apply(self, d, r):
        for i, rule in enumerate(r.get("devices") or []):
            write(d, "devices.allow" if rule.get("allow") else "devices.deny", device_rule(rule),
                  f"linux.resources.devices[{i}]")


def device_rule(rule: dict[str, Any]) -> str:
    dtype = rule.get("type") or "a"
    if dtype == "a" and rule.get("major") in (None, -1) and rule.get("minor") in (None, -1):
        return "a *:* rwm" if not rule.get("access") else f"a *:* {rule['access']}"

    def number(n):
        return "*" if n is None or n < 0 else n
    return f"{dtype} {number(rule.get('major'))}:{number(rule.get('minor'))} {rule.get('access') or 'rwm'}"


class FreezerV1(Controller):
    name = "freezer"

    @staticmethod
    def frozen(d):
        return read(d, "freezer.state") == "FROZEN"


# cgroup v2

class MemoryV2(Controller):
    name = "memory"

    def apply(self, d, r):
        m = r.get("memory") or {}
        f = "linux.resources.memory"
        if m.get("reservation") is not None:
            write(d, "memory.low", _max(m["reservation"]), f + ".reservation")
        if m.get("limit") is not None:
            write(d, "memory.max", _max(m["limit"]), f + ".limit")
        if m.get("swap") is not None:
            # v1's swap is memory+swap; v2's swap.max is swap alone (runc's conversion).
            swap = m["swap"]
            limit = m.get("limit")
            value = "max" if swap < 0 else str(max(swap - (limit or 0), 0)) if limit and limit > 0 else str(swap)
            write(d, "memory.swap.max", value, f + ".swap")
        if m.get("swappiness") is not None:
            warn(f"{f}.swappiness ignored: cgroup v2 has no per-cgroup swappiness")
        if m.get("disableOOMKiller"):
            # v2 has no oom_control; runc and crun ignore the field there
            # rather than refuse a config that runs on v1.
            warn(f"{f}.disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer")
        if m.get("kernel") is not None or m.get("kernelTCP") is not None:
            warn(f"{f}.kernel/kernelTCP ignored: cgroup v2 has no separate kernel memory limit")

    def stats(self, d):
        raw = read_kv(d, "memory.stat")
        return {"memory": {
            "usage": {"usage": read_int(d, "memory.current"), "max": read_int(d, "memory.peak"),
                      "limit": read_int(d, "memory.max"), "failcnt": read_kv(d, "memory.events").get("max", 0)},
            "swap": {"usage": read_int(d, "memory.swap.current"), "limit": read_int(d, "memory.swap.max")},
            "cache": raw.get("file", 0), "raw": raw}}

    @staticmethod
    def oom_kills(d):
        return read_kv(d, "memory.events").get("oom_kill", 0)


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], as runc
    (1.3+) and crun (1.23+) map it: a curve through 2->1, 1024->100 and
    262144->10000, so the default share is the default weight (the old
    linear map made 1024 a weight of 39)."""
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    exp = math.log2(shares)
    return math.ceil(10 ** ((exp * exp + 125 * exp) / 612 - 7 / 34))


class CpuV2(Controller):
    name = "cpu"

    def apply(self, d, r):
        c = r.get("cpu") or {}
        f = "linux.resources.cpu"
        if c.get("shares"):
            write(d, "cpu.weight", shares_to_weight(c["shares"]), f + ".shares")
        if c.get("quota") is not None or c.get("period"):
            quota = c.get("quota")
            write(d, "cpu.max", f"{_max(quota if quota != 0 else None)} {c.get('period') or 100000}", f + ".quota")
        if c.get("burst") is not None:
            write(d, "cpu.max.burst", c["burst"], f + ".burst")
        if c.get("idle") is not None:
            write(d, "cpu.idle", c["idle"], f + ".idle")
        if c.get("realtimePeriod") or c.get("realtimeRuntime"):
            raise ConfigError(f + ".realtimeRuntime", "cgroup v2 has no realtime CPU controller")

    def stats(self, d):
        s = read_kv(d, "cpu.stat")
        return {"cpu": {"usage": {"total": s.get("usage_usec", 0) * 1000, "user": s.get("user_usec", 0) * 1000,
                                  "kernel": s.get("system_usec", 0) * 1000},
                        "throttling": {"periods": s.get("nr_periods", 0), "throttledPeriods": s.get("nr_throttled", 0),
                                       "throttledTime": s.get("throttled_usec", 0) * 1000}}}


class CpusetV2(CpusetV1):
    pass


class PidsV2(PidsV1):
    pass


class IoV2(Controller):
    name = "io"

    def apply(self, d, r):
        b = r.get("blockIO") or {}
        f = "linux.resources.blockIO"
        if b.get("weight"):
            # blkio weight [10, 1000] -> io weight [1, 10000] (runc's conversion)
            write_first(d, ("io.bfq.weight", "io.weight"), 1 + (b["weight"] - 10) * 9999 // 990, f + ".weight")
        for line in _device_lines(b.get("weightDevice"), f + ".weightDevice", "weight"):
            write_first(d, ("io.bfq.weight", "io.weight"), line, f + ".weightDevice")
        for key, kind in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for i, e in enumerate(b.get(key) or []):
                write(d, "io.max", f"{e['major']}:{e['minor']} {kind}={e['rate']}", f"{f}.{key}[{i}]")

    def stats(self, d):
        out = []
        for line in read(d, "io.stat").splitlines():
            dev, *pairs = line.split()
            major, minor = (int(x) for x in dev.split(":"))
            kv = dict(p.split("=") for p in pairs)
            for op, key in (("Read", "rbytes"), ("Write", "wbytes")):
                out.append({"major": major, "minor": minor, "op": op, "value": int(kv.get(key, 0))})
        return {"blkio": {"ioServiceBytesRecursive": out}}


class HugetlbV2(Controller):
    name = "hugetlb"

    def apply(self, d, r):
        for i, h in enumerate(r.get("hugepageLimits") or []):
            write(d, f"hugetlb.{h['pageSize']}.max", h["limit"], f"linux.resources.hugepageLimits[{i}]")

    def stats(self, d):
        out = {}
        for name in os.listdir(d):
            if name.startswith("hugetlb.") and name.endswith(".current"):
                size = name.split(".")[1]
                out[size] = {"usage": read_int(d, name), "max": read_int(d, f"hugetlb.{size}.max"),
                             "failcnt": read_kv(d, f"hugetlb.{size}.events").get("max", 0)}
        return {"hugetlb": out}


class RdmaV2(RdmaV1):
    pass


V1 = {c.name: c for c in (MemoryV1(), CpuV1(), CpuacctV1(), CpusetV1(), PidsV1(), BlkioV1(), HugetlbV1(),
                          NetClsV1(), NetPrioV1(), RdmaV1(), DevicesV1(), FreezerV1())}
V2 = {c.name: c for c in (MemoryV2(), CpuV2(), CpusetV2(), PidsV2(), IoV2(), HugetlbV2(), RdmaV2())}

# linux.resources key -> the controllers that serve it.
# Fields a host may lack the controllers for without the container
# losing more than a traffic class: runc skips net_cls and net_prio where
# they are not mounted (and cgroup v2 has neither), so a config written
# for one host still runs on another.  Everything else is refused.
BEST_EFFORT = {"network"}
NEEDS = {"memory": ("memory",), "cpu": ("cpu",), "pids": ("pids",), "blockIO": ("blkio", "io"),
         "hugepageLimits": ("hugetlb",), "network": ("net_cls", "net_prio"), "rdma": ("rdma",)}
