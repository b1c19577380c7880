"""linux.resources -> cgroup interface files, without root or a cgroup
mount: the controllers write through a Recording cgroupfs (cgroups/fs.py)
on made-up layouts of the three kinds of host."""

from __future__ import annotations

import pytest

from runtime.core.cgroups import fs as cgfs
from runtime.core.cgroups.layout import Layout
from runtime.core.cgroups.manager import CgroupManager
from runtime.core.errors import ConfigError

V2 = Layout("v2", unified="/sys/fs/cgroup")
V1 = Layout("v1", v1={"memory": "/sys/fs/cgroup/memory", "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                      "pids": "/sys/fs/cgroup/pids"})
HYBRID = Layout("hybrid", v1={"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "pids": "/sys/fs/cgroup/pids"},
                unified="/sys/fs/cgroup/unified")


def writes(layout: Layout, resources: dict, files: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    fs = cgfs.Recording(files or {f"{layout.unified}/cgroup.controllers": "cpuset cpu io memory pids"}
                        if layout.unified else files)
    with cgfs.using(fs):
        cg = CgroupManager("/husk/c1", layout)
        cg.apply(resources)
    return [(d, name, text) for d, name, text, _ in fs.writes]


def test_v2_memory_cpu_and_pids():
    got = writes(V2, {"memory": {"limit": 256 << 20, "swap": 512 << 20, "reservation": 128 << 20},
                      "cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": 64}})
    d = "/sys/fs/cgroup/husk/c1"
    assert (d, "memory.max", str(256 << 20)) in got
    assert (d, "memory.swap.max", str(256 << 20)) in got  # v1's memory+swap less the limit (runc's conversion)
    assert (d, "memory.low", str(128 << 20)) in got
    assert (d, "cpu.weight", "100") in got  # the default share is the default weight
    assert (d, "cpu.max", "50000 100000") in got
    assert (d, "pids.max", "64") in got


def test_v1_memory_raises_memsw_before_the_limit_when_the_kernel_has_it():
    d = "/sys/fs/cgroup/memory/husk/c1"
    got = writes(V1, {"memory": {"limit": 100, "swap": 200}}, {f"{d}/memory.memsw.limit_in_bytes": ""})
    assert [w[1:] for w in got if w[0] == d] == [("memory.memsw.limit_in_bytes", "-1"),
                                                ("memory.limit_in_bytes", "100"),
                                                ("memory.memsw.limit_in_bytes", "200")]


def test_v1_cpu_goes_to_the_cpu_hierarchy():
    got = writes(V1, {"cpu": {"shares": 512, "quota": 20000, "period": 100000}})
    d = "/sys/fs/cgroup/cpu,cpuacct/husk/c1"
    assert got == [(d, "cpu.shares", "512"), (d, "cpu.cfs_period_us", "100000"), (d, "cpu.cfs_quota_us", "20000")]


def test_hybrid_puts_memory_in_the_unified_hierarchy_when_v1_lacks_it():
    got = writes(HYBRID, {"memory": {"limit": 1 << 30}, "pids": {"limit": 5}})
    assert ("/sys/fs/cgroup/unified/husk/c1", "memory.max", str(1 << 30)) in got
    assert ("/sys/fs/cgroup/pids/husk/c1", "pids.max", "5") in got


def test_a_controller_the_host_lacks_is_refused_by_field():
    layout = Layout("v2", unified="/sys/fs/cgroup")
    with pytest.raises(ConfigError, match=r"linux.resources.memory: the memory controller is not available"):
        writes(layout, {"memory": {"limit": 1}}, {"/sys/fs/cgroup/cgroup.controllers": "cpu pids"})


def test_unified_keys_are_checked_and_written_on_v2_only():
    assert writes(V2, {"unified": {"memory.high": "1000"}}) == [("/sys/fs/cgroup/husk/c1", "memory.high", "1000")]
    with pytest.raises(ConfigError, match=r"linux.resources.unified.\.\./x: not a cgroup interface file"):
        writes(V2, {"unified": {"../x": "1"}})
    with pytest.raises(ConfigError, match="needs cgroup v2; this host is hybrid"):
        writes(HYBRID, {"unified": {"memory.high": "1"}})


def test_a_field_husk_ignores_is_a_warning(monkeypatch):
    from runtime.core import errors

    seen = []
    monkeypatch.setattr(errors, "_warning_sink", seen.append)
    writes(V2, {"memory": {"kernel": 1}})
    assert seen == ["linux.resources.memory.kernel/kernelTCP ignored: cgroup v2 has no separate kernel memory limit"]
