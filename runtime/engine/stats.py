"""`husk stats`: docker's live usage table for running image containers.

Each figure comes from the kernel, through the runtime core's cgroup
stats (cgroup v1 files or v2 files, the same shape either way) and the
container's network namespace:

    CPU %      the cgroup's CPU time (cpuacct.usage / cpu.stat usage_usec)
               over wall time since the last reading, 100% per CPU; the
               first reading is over the container's life so far (its
               init's start time in /proc/PID/stat), as podman's is
    MEM        memory usage less inactive page cache, as docker counts it
               (memory.usage_in_bytes - total_inactive_file, or
               memory.current - inactive_file), against memory.limit or,
               without one, the host's MemTotal
    NET I/O    rx/tx bytes of the container's interfaces, lo excluded
               (/proc/PID/net/dev, which shows PID's own netns)
    BLOCK I/O  bytes read and written (blkio.throttle.io_service_bytes or io.stat)
    PIDS       pids.current
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from runtime.core import container
from runtime.core.errors import HuskError


@dataclass
class Sample:
    cpu_ns: int
    at_ns: int


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def net_io(pid: int) -> tuple[int, int]:
    """(rx bytes, tx bytes) of PID's network namespace, lo left out."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = counters.split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def sample(root: str, cid: str) -> dict[str, Any]:
    """One reading of the container's cgroup, from the runtime core."""
    return container.stats(root, cid)


def row(cid: str, name: str, data: dict[str, Any], pid: int, before: Sample | None,
        started_ns: int) -> tuple[dict[str, Any], Sample]:
    """docker stats' fields for one reading; CPU % against BEFORE (or,
    for the first reading, the whole run since STARTED_NS)."""
    now = Sample(int((data.get("cpu") or {}).get("usage", {}).get("total", 0)), time.time_ns())
    base = before or Sample(0, started_ns)
    wall = max(now.at_ns - base.at_ns, 1)
    cpu = max(now.cpu_ns - base.cpu_ns, 0) * 100.0 / wall

    memory = data.get("memory") or {}
    raw = memory.get("raw") or {}
    usage = memory.get("usage", {}).get("usage", 0)
    inactive = raw.get("total_inactive_file", raw.get("inactive_file", 0))
    used = max(usage - inactive, 0)
    limit = memory.get("usage", {}).get("limit", -1)
    total = _mem_total()
    if limit <= 0 or limit > total:
        limit = total

    read = write = 0
    for e in (data.get("blkio") or {}).get("ioServiceBytesRecursive") or []:
        if e.get("op", "").lower() == "read":
            read += e["value"]
        elif e.get("op", "").lower() == "write":
            write += e["value"]
    rx, tx = net_io(pid)
    out = {"ID": cid[:12], "Container": cid, "Name": name,
           "CPUPerc": f"{cpu:.2f}%", "MemUsage": f"{human(used)} / {human(limit)}",
           "MemPerc": f"{(used * 100.0 / limit) if limit else 0:.2f}%",
           "NetIO": f"{human(rx, si=True)} / {human(tx, si=True)}",
           "BlockIO": f"{human(read, si=True)} / {human(write, si=True)}",
           "PIDs": str((data.get("pids") or {}).get("current", 0)),
           # the numbers behind the text, for --format json and scripts
           "CPU": cpu, "MemoryUsage": used, "MemoryLimit": limit, "NetInput": rx, "NetOutput": tx,
           "BlockInput": read, "BlockOutput": write}
    return out, now


def human(n: float, si: bool = False) -> str:
    """docker's units: MiB/GiB for memory, kB/MB (powers of 1000) for I/O."""
    step, units = (1000.0, ("B", "kB", "MB", "GB", "TB")) if si else (1024.0, ("B", "KiB", "MiB", "GiB", "TiB"))
    value = float(n)
    for unit in units:
        if value < step or unit == units[-1]:
            return f"{value:.4g}{unit}" if unit != "B" else f"{int(value)}B"
        value /= step
    return f"{value}"


def collect(root: str, targets: list[tuple[str, str]], previous: dict[str, Sample]) -> list[dict[str, Any]]:
    """A row for each of TARGETS, (id, name) of an OCI container, that is
    running; PREVIOUS is updated with this reading, for the next one's CPU %."""
    rows = []
    for cid, name in targets:
        try:
            data = sample(root, cid)
            pid = container.state(root, cid).get("pid") or 0
        except HuskError:
            continue  # not running (or gone since it was listed)
        out, previous[cid] = row(cid, name, data, pid, previous.get(cid), _started_ns(pid))
        rows.append(out)
    return rows


def _started_ns(pid: int) -> int:
    """When PID started, in ns since the epoch: its start time in clock
    ticks after boot (/proc/PID/stat field 22) plus the boot time (btime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, StopIteration, IndexError):
        return time.time_ns()
    return btime * 1_000_000_000 + ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
