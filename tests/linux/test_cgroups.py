"""linux.resources on this host's cgroup layout (v1, hybrid or v2): each
value read back from cgroupfs and, where it shows, from inside; OOM,
pids, cpu throttling, freezer, update and events."""

import json
import os
import time

import pytest

from runtime.core.cgroups.layout import detect

pytestmark = pytest.mark.root
LAYOUT = detect()
V2 = LAYOUT.mode == "v2"


def cgdir(bundle, controller):
    """The container's directory for a controller on this host."""
    from runtime.core.cgroups.manager import manager_for
    return manager_for(bundle.config["linux"]["cgroupsPath"]).dir_of(controller)


def read(path):
    with open(path) as f:
        return f.read().strip()


def detached(bundle, *args):
    bundle.config["process"]["args"] = list(args)
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)


def test_memory_limit_and_reservation(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 64 << 20, "reservation": 32 << 20}
    detached(bundle, "/checker", "wait-signal")
    try:
        d = cgdir(bundle, "memory")
        if V2:
            assert read(f"{d}/memory.max") == str(64 << 20)
            assert read(f"{d}/memory.low") == str(32 << 20)
        else:
            assert read(f"{d}/memory.limit_in_bytes") == str(64 << 20)
            assert read(f"{d}/memory.soft_limit_in_bytes") == str(32 << 20)
        inside = bundle.husk("exec", "c1", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                             "2>/dev/null || cat /sys/fs/cgroup/memory.max").out.strip()
        assert inside == str(64 << 20)
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


@pytest.mark.skipif(V2, reason="swappiness is a cgroup v1 knob")
def test_memory_swappiness_v1(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"swappiness": 10}
    detached(bundle, "/checker", "wait-signal")
    try:
        assert read(f"{cgdir(bundle, 'memory')}/memory.swappiness") == "10"
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_oom_killed_container_is_recognisable(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    bundle.config["process"]["args"] = ["/checker", "memhog", "256"]
    bundle.save()
    r = bundle.husk("run", "--keep", "--bundle", bundle.path, "c1")
    assert r.code == 137, (r.code, r.out, r.err)
    assert "survived" not in r.out
    state = bundle.husk("state", "c1").json()
    assert state["status"] == "stopped"
    assert state["annotations"].get("io.github.husk.oom-killed") == "true"
    bundle.husk("delete", "c1", check=True)


def test_pids_limit_stops_a_fork_bomb(bundle):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 10}
    r = bundle.run("/checker", "forkbomb", "100")
    forked = int(r.out.split()[0])
    assert 0 < forked < 10  # the checker itself is one of the ten


def test_cpu_quota_throttles(bundle):
    bundle.config["linux"]["resources"]["cpu"] = {"quota": 10000, "period": 100000, "shares": 512}
    detached(bundle, "sh", "-c", "while :; do :; done")
    try:
        d = cgdir(bundle, "cpu")
        if V2:
            assert read(f"{d}/cpu.max") == "10000 100000"
        else:
            assert read(f"{d}/cpu.cfs_quota_us") == "10000"
            assert read(f"{d}/cpu.shares") == "512"
        # Wait for throttling to be counted: counters, not durations, are asserted.
        deadline = time.monotonic() + 20
        throttled = 0
        while time.monotonic() < deadline and throttled == 0:
            stat = dict(line.split() for line in read(f"{d}/cpu.stat").splitlines())
            throttled = int(stat.get("nr_throttled", 0))
            time.sleep(0.05)
        assert throttled > 0
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_cpuset(bundle):
    bundle.config["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    seen = bundle.run("sh", "-c", "grep Cpus_allowed_list /proc/self/status").out
    assert seen.split() == ["Cpus_allowed_list:", "0"]


def test_blkio_throttle(bundle):
    major, minor = read("/sys/block/vda/dev").split(":") if os.path.exists("/sys/block/vda/dev") else (None, None)
    if major is None:
        pytest.skip("no vda block device")
    bundle.config["linux"]["resources"]["blockIO"] = {
        "throttleReadBpsDevice": [{"major": int(major), "minor": int(minor), "rate": 1048576}]}
    detached(bundle, "/checker", "wait-signal")
    try:
        if V2:
            assert f"{major}:{minor} rbps=1048576" in read(f"{cgdir(bundle, 'io')}/io.max")
        else:
            assert read(f"{cgdir(bundle, 'blkio')}/blkio.throttle.read_bps_device") == f"{major}:{minor} 1048576"
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_hugetlb_limit(bundle):
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages")
    bundle.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    detached(bundle, "/checker", "wait-signal")
    try:
        d = cgdir(bundle, "hugetlb")
        assert d is not None
        # hybrid hosts keep hugetlb in the cgroup2 mount: v2 names there.
        name = "hugetlb.2MB.max" if os.path.exists(f"{d}/hugetlb.2MB.max") else "hugetlb.2MB.limit_in_bytes"
        assert read(f"{d}/{name}") == str(4 << 20)
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_unified_is_refused_without_cgroup_v2(bundle):
    if V2:
        pytest.skip("cgroup v2 host")
    bundle.config["linux"]["resources"]["unified"] = {"memory.high": "1000000"}
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "linux.resources.unified" in r.err


def test_unavailable_controller_is_named(bundle):
    if "rdma" in LAYOUT.v1_controllers or V2:
        pytest.skip("rdma is mounted here")
    bundle.config["linux"]["resources"]["rdma"] = {"mlx5_0": {"hcaHandles": 3}}
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "linux.resources.rdma" in r.err and "not available" in r.err


def test_network_resources_without_net_cls_are_ignored_with_a_warning(bundle):
    """runc skips net_cls/net_prio where the host lacks them (v2 has
    neither): a config written on one host still runs on another."""
    if any(c in ("net_cls", "net_prio") for c in LAYOUT.v1_controllers):
        pytest.skip("net_cls is mounted here")
    bundle.config["linux"]["resources"]["network"] = {"classID": 1048577, "priorities": [{"name": "lo", "priority": 1}]}
    r = bundle.run("/checker", "exit", "7")
    assert r.code == 7 and "warning: linux.resources.network ignored" in r.err, r.err


def test_pause_freezes_and_resume_thaws(bundle):
    bundle.config["root"]["readonly"] = False
    # The rename makes each update atomic: a freeze never leaves the file half written.
    detached(bundle, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/count; done")
    counter = os.path.join(bundle.rootfs, "tmp", "count")

    def value():
        for _ in range(100):
            try:
                text = read(counter)
                if text:
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        raise AssertionError("no counter")

    try:
        first = value()
        while value() == first:
            time.sleep(0.01)
        bundle.husk("pause", "c1", check=True)
        assert bundle.husk("state", "c1").json()["status"] == "paused"
        frozen = value()
        time.sleep(0.3)
        assert value() == frozen  # no progress while frozen
        assert bundle.husk("pause", "c1").code != 0  # already paused
        bundle.husk("resume", "c1", check=True)
        assert bundle.husk("state", "c1").json()["status"] == "running"
        deadline = time.monotonic() + 10
        while value() == frozen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value() > frozen
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_delete_force_of_a_paused_container(bundle):
    detached(bundle, "/checker", "wait-signal")
    bundle.husk("pause", "c1", check=True)
    bundle.husk("delete", "--force", "c1", check=True)


def test_update_changes_a_running_container(bundle, tmp_path):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 100}
    detached(bundle, "/checker", "wait-signal")
    try:
        bundle.husk("update", "--memory", "48m", "--pids-limit", "20", "c1", check=True)
        assert read(f"{cgdir(bundle, 'pids')}/pids.max") == "20"
        mem = cgdir(bundle, "memory")
        assert read(f"{mem}/memory.max" if V2 else f"{mem}/memory.limit_in_bytes") == str(48 << 20)
        res = tmp_path / "resources.json"
        res.write_text(json.dumps({"pids": {"limit": 30}}))
        bundle.husk("update", "-r", str(res), "c1", check=True)
        assert read(f"{cgdir(bundle, 'pids')}/pids.max") == "30"
        r = bundle.husk("update", "--memory", "lots", "c1")
        assert r.code != 0 and "--memory" in r.err
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_events_stats(bundle):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 50}
    bundle.config["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    detached(bundle, "/checker", "wait-signal")
    try:
        event = bundle.husk("events", "--stats", "c1").json()
        assert event["type"] == "stats" and event["id"] == "c1"
        data = event["data"]
        assert data["pids"] == {"current": 1, "limit": 50}
        assert data["memory"]["usage"]["limit"] == 64 << 20
        assert data["memory"]["usage"]["usage"] > 0
        assert data["cpu"]["usage"]["total"] > 0
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


def test_events_reports_oom(bundle):
    import subprocess

    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    detached(bundle, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; /checker memhog 256; sleep 1000")
    from conftest import HUSK
    events = subprocess.Popen([HUSK, "--root", bundle.root, "events", "--interval", "100ms", "c1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(events.stdout.readline())  # the stream is up before the OOM
        assert first["type"] == "stats"
        open(os.path.join(bundle.rootfs, "tmp", "go"), "w").close()
        deadline = time.monotonic() + 30
        kinds = []
        while time.monotonic() < deadline:
            line = events.stdout.readline()
            if not line:
                break
            kinds.append(json.loads(line)["type"])
            if kinds[-1] == "oom":
                break
        assert "oom" in kinds
    finally:
        events.kill()
        events.wait()
        bundle.husk("delete", "--force", "c1", check=True)


def test_unified_keys_on_cgroup_v2(bundle):
    if not V2:
        pytest.skip("needs cgroup v2")
    bundle.config["linux"]["resources"]["unified"] = {"memory.high": "50000000", "pids.max": "33"}
    detached(bundle, "/checker", "wait-signal")
    try:
        d = cgdir(bundle, "memory")
        assert read(f"{d}/memory.high") == "49999872"  # rounded down to pages
        assert read(f"{d}/pids.max") == "33"
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


@pytest.mark.parametrize("first_deleted", ["maker", "joiner"])
def test_a_shared_parent_made_by_one_container_outlives_its_delete(bundle, first_deleted):
    """docker's /docker, --cgroup-parent and a pod's cgroup are shared: the
    first container made the parent, so it records it; its delete removes
    the parent only if nothing else lives there (one rmdir, no waiting on
    the other containers), and the other container is untouched."""
    parent = bundle.config["linux"]["cgroupsPath"] + "-parent"
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    for cid in ("maker", "joiner"):
        bundle.config["linux"]["cgroupsPath"] = f"{parent}/{cid}"
        bundle.save()
        bundle.husk("run", "--detach", "--bundle", bundle.path, cid, check=True)
    from runtime.core.cgroups.manager import manager_for

    parent_dir = manager_for(parent).dir_of("pids")
    bundle.husk("kill", first_deleted, "KILL", check=True)
    bundle.husk("delete", "--force", first_deleted, check=True)
    other = "joiner" if first_deleted == "maker" else "maker"
    assert os.path.isdir(parent_dir)  # the other container still lives there
    assert bundle.husk("state", other).json()["status"] == "running"
    bundle.husk("delete", "--force", other, check=True)
    left = [d for d in manager_for(parent).dirs() if os.path.isdir(d)]
    if other == "maker":  # it made the parent and left it empty: it went with it
        assert left == []
    for d in left:  # no one left made it: its owner removes it, as dockerd does /docker
        os.rmdir(d)
