"""docker's resource flags on `husk run`, turned into the runtime-spec's
linux.resources, which the core writes to the container's cgroup (v1
files such as memory.limit_in_bytes and cpu.cfs_quota_us, or v2 files
such as memory.max and cpu.max: runtime.core.cgroups).

    --memory 64m         memory.limit       (docker's minimum: 6 MiB)
    --memory-swap 128m   memory.swap        memory plus swap; -1: unlimited
    --memory-reservation memory.reservation (the soft limit)
    --cpus 1.5           cpu.quota/period   1.5 CPUs' time per 100 ms period
    --cpu-shares 512     cpu.shares         the relative weight (v2: cpu.weight)
    --cpuset-cpus 0,1    cpu.cpus
    --pids-limit 100     pids.limit         0 or -1: unlimited
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from runtime.core.errors import ConfigError
from runtime.engine.units import parse_size

MIN_MEMORY = 6 << 20
CPU_PERIOD = 100_000  # microseconds, docker's CFS period
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


@dataclass
class Limits:
    """The flags as given (None: not given)."""

    memory: str | None = None
    memory_swap: str | None = None
    memory_reservation: str | None = None
    cpus: str | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    pids_limit: int | None = None


def to_resources(limits: Limits) -> dict[str, Any]:
    """The linux.resources entries for LIMITS (without devices)."""
    out: dict[str, Any] = {}
    memory = _memory(limits)
    if memory:
        out["memory"] = memory
    cpu = _cpu(limits)
    if cpu:
        out["cpu"] = cpu
    if limits.pids_limit is not None:
        out["pids"] = {"limit": limits.pids_limit if limits.pids_limit > 0 else -1}
    return out


def _memory(limits: Limits) -> dict[str, int]:
    m: dict[str, int] = {}
    if limits.memory is not None:
        m["limit"] = parse_size(limits.memory, "--memory")
        if m["limit"] < MIN_MEMORY:
            raise ConfigError("--memory", f"{limits.memory!r}: the minimum is 6m")
    if limits.memory_swap is not None:
        if "limit" not in m:
            raise ConfigError("--memory-swap", "needs --memory: it is the limit of memory plus swap")
        m["swap"] = -1 if limits.memory_swap == "-1" else parse_size(limits.memory_swap, "--memory-swap")
        if m["swap"] != -1 and m["swap"] < m["limit"]:
            raise ConfigError("--memory-swap", f"{limits.memory_swap!r} is less than --memory {limits.memory!r}")
    if limits.memory_reservation is not None:
        m["reservation"] = parse_size(limits.memory_reservation, "--memory-reservation")
        if "limit" in m and m["reservation"] > m["limit"]:
            raise ConfigError("--memory-reservation", "is more than --memory")
    return m


def _cpu(limits: Limits) -> dict[str, Any]:
    c: dict[str, Any] = {}
    if limits.cpus is not None:
        online = os.cpu_count() or 1
        try:
            cpus = float(limits.cpus)
        except ValueError:
            cpus = -1.0
        if not 0.01 <= cpus <= online:
            raise ConfigError("--cpus", f"{limits.cpus!r}: a number of CPUs from 0.01 to {online} (this host has "
                              f"{online})")
        c["period"] = CPU_PERIOD
        c["quota"] = round(cpus * CPU_PERIOD)
    if limits.cpu_shares is not None:
        if limits.cpu_shares < 2:
            raise ConfigError("--cpu-shares", f"{limits.cpu_shares}: the minimum is 2")
        c["shares"] = limits.cpu_shares
    if limits.cpuset_cpus is not None:
        if not _CPUSET.match(limits.cpuset_cpus):
            raise ConfigError("--cpuset-cpus", f"{limits.cpuset_cpus!r}: expected a list like 0-2,4")
        c["cpus"] = limits.cpuset_cpus
    return c
