"""The systemd cgroup driver (`husk --systemd-cgroup`) against a real
systemd: each container's cgroup is a transient scope, read back with
`systemctl show`, from cgroupfs and from /proc/PID/cgroup.

These run where systemd is PID 1: in the VM tests/vm/run_v2.py --systemd
boots (test_cgroup_v2_vm.py), and on any systemd host.  As podman does,
only create gets the flag; the later verbs find the unit in the state.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import reap_orphans
from runtime.core.cgroups.layout import detect

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="systemd is not PID 1 here"),
              pytest.mark.skipif(detect().mode != "v2", reason="the driver is tested on cgroup v2")]


def show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def read(path):
    with open(path) as f:
        return f.read().strip()


def unit_cgroup(unit, slice_path="/machine.slice"):
    return f"/sys/fs/cgroup{slice_path}/{unit}"


@pytest.fixture
def scoped(bundle, request):
    """The bundle with a systemd cgroupsPath: machine.slice:husk-test:NAME."""
    name = request.node.name[:40].replace("_", "-")
    bundle.config["linux"]["cgroupsPath"] = f"machine.slice:husk-test:{name}"
    bundle.unit = f"husk-test-{name}.scope"
    bundle.save()
    yield bundle
    # Nothing of the unit may be left: not loaded, no cgroup.
    for cid in os.listdir(bundle.root) if os.path.isdir(bundle.root) else []:
        bundle.husk("delete", "--force", cid)
    assert show(bundle.unit, "LoadState")["LoadState"] == "not-found", "the unit was left behind"
    assert not os.path.exists(unit_cgroup(bundle.unit))


def start(b, *args, cid="c1", flag=True):
    b.config["process"]["args"] = list(args)
    b.save()
    return b.husk(*(["--systemd-cgroup"] if flag else []), "run", "--detach", "--bundle", b.path, cid)


def test_a_container_is_a_scope_with_its_limits(scoped):
    r = scoped.config["linux"]["resources"]
    r["memory"] = {"limit": 64 << 20, "reservation": 16 << 20}
    r["pids"] = {"limit": 50}
    r["cpu"] = {"shares": 1024, "quota": 12345, "period": 100000}
    res = start(scoped, "/checker", "wait-signal")
    assert res.code == 0, res.err
    unit = scoped.unit
    props = show(unit, "Slice", "Delegate", "MemoryMax", "MemoryLow", "TasksMax", "CPUQuotaPerSecUSec",
                 "CPUWeight", "ActiveState", "Description")
    assert props["Slice"] == "machine.slice"
    assert props["Delegate"] == "yes"
    assert props["ActiveState"] == "active"
    assert props["MemoryMax"] == str(64 << 20)
    assert props["MemoryLow"] == str(16 << 20)
    assert props["TasksMax"] == "50"
    assert props["CPUQuotaPerSecUSec"] == "130ms"  # 123.45 ms a second, rounded up to 10 ms as systemd keeps it
    assert props["CPUWeight"] == "100"  # shares 1024 is the default weight
    assert props["Description"] == "husk container c1"
    d = unit_cgroup(unit)
    assert read(f"{d}/memory.max") == str(64 << 20)
    assert read(f"{d}/pids.max") == "50"
    assert read(f"{d}/cpu.max") == "12345 100000"  # cgroupfs has husk's exact value
    state = scoped.husk("state", "c1").json()
    assert read(f"/proc/{state['pid']}/cgroup") == f"0::/machine.slice/{unit}"
    with open(os.path.join(scoped.root, "c1", "state.json")) as f:
        assert json.load(f)["husk"]["systemd_unit"] == unit

    # A process exec'd in joins the unit (AttachProcessesToUnit).
    pid_file = os.path.join(scoped.path, "exec.pid")
    scoped.husk("exec", "--detach", "--pid-file", pid_file, "c1", "sleep", "60", check=True)
    assert read(f"/proc/{read(pid_file)}/cgroup") == f"0::/machine.slice/{unit}"

    # A reload re-applies the unit's properties: the limits stay.
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    assert show(unit, "MemoryMax")["MemoryMax"] == str(64 << 20)
    assert read(f"{d}/memory.max") == str(64 << 20)
    assert read(f"{d}/pids.max") == "50"

    # kill and delete without the flag, as podman's: the unit goes.
    scoped.husk("kill", "c1", "KILL", check=True)
    for _ in range(100):
        reap_orphans()  # we are its subreaper, as conmon is
        if scoped.husk("state", "c1").json()["status"] == "stopped":
            break
        time.sleep(0.05)
    scoped.husk("delete", "c1", check=True)
    assert show(unit, "LoadState")["LoadState"] == "not-found"


def test_update_sets_the_unit_and_the_files(scoped):
    assert start(scoped, "/checker", "wait-signal").code == 0
    try:
        resources = {"memory": {"limit": 96 << 20}, "pids": {"limit": 77}, "cpu": {"shares": 2048}}
        scoped.husk("update", "--resources", "-", "c1", input=json.dumps(resources), check=True)
        props = show(scoped.unit, "MemoryMax", "TasksMax", "CPUWeight", "DevicePolicy")
        assert props["MemoryMax"] == str(96 << 20) and props["TasksMax"] == "77"
        assert props["CPUWeight"] == read(f"{unit_cgroup(scoped.unit)}/cpu.weight")
        assert read(f"{unit_cgroup(scoped.unit)}/memory.max") == str(96 << 20)
        assert read(f"{unit_cgroup(scoped.unit)}/pids.max") == "77"
        # The default devices stay usable (containerd's update sends only "deny all").
        assert scoped.husk("exec", "c1", "sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
                           check=True).out.strip() == "3"
    finally:
        scoped.husk("delete", "--force", "c1", check=True)


def test_pause_and_resume_freeze_the_unit_cgroup(scoped):
    assert start(scoped, "/checker", "wait-signal").code == 0
    try:
        scoped.husk("pause", "c1", check=True)
        assert "frozen 1" in read(f"{unit_cgroup(scoped.unit)}/cgroup.events")
        assert scoped.husk("state", "c1").json()["status"] == "paused"
        scoped.husk("resume", "c1", check=True)
        assert "frozen 0" in read(f"{unit_cgroup(scoped.unit)}/cgroup.events")
    finally:
        scoped.husk("delete", "--force", "c1", check=True)


def test_a_slice_path_nests_as_systemd_nests_it(bundle):
    bundle.config["linux"]["cgroupsPath"] = "husktest-pod1.slice:cri-containerd:nested"
    unit = "cri-containerd-nested.scope"
    try:
        assert start(bundle, "/checker", "wait-signal").code == 0
        pid = bundle.husk("state", "c1").json()["pid"]
        assert read(f"/proc/{pid}/cgroup") == f"0::/husktest.slice/husktest-pod1.slice/{unit}"
        assert show(unit, "Slice")["Slice"] == "husktest-pod1.slice"
        bundle.husk("delete", "--force", "c1", check=True)
        assert show(unit, "LoadState")["LoadState"] == "not-found"
    finally:
        subprocess.run(["systemctl", "stop", "husktest.slice"], capture_output=True)


def test_annotations_become_properties(scoped):
    scoped.config["annotations"] = {"org.systemd.property.TimeoutStopSec": "7",
                                    "org.systemd.property.CollectMode": "'inactive-or-failed'"}
    assert start(scoped, "/checker", "wait-signal").code == 0
    try:
        props = show(scoped.unit, "TimeoutStopUSec", "CollectMode")
        assert props == {"TimeoutStopUSec": "7s", "CollectMode": "inactive-or-failed"}
    finally:
        scoped.husk("delete", "--force", "c1", check=True)


def test_an_oom_killed_containers_id_and_unit_can_be_used_again(scoped):
    scoped.config["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    scoped.config["process"]["args"] = ["/checker", "memhog", "256"]
    scoped.save()
    r = scoped.husk("--systemd-cgroup", "run", "--bundle", scoped.path, "c1")
    assert r.code == 137, (r.code, r.out, r.err)  # the OOM killer's SIGKILL; run deleted it
    assert not os.listdir(scoped.root)
    scoped.config["linux"]["resources"]["memory"] = {}
    assert start(scoped, "/checker", "wait-signal").code == 0
    assert show(scoped.unit, "ActiveState")["ActiveState"] == "active"
    scoped.husk("delete", "--force", "c1", check=True)


def test_a_failed_unit_does_not_block_its_name(scoped):
    """A unit that failed stays loaded until reset: a new container of the
    same cgroupsPath resets it and starts afresh."""
    scoped.config["annotations"] = {"org.systemd.property.TimeoutStopSec": "1"}
    assert start(scoped, "sleep", "600").code == 0  # pid 1 of its namespace: SIGTERM does not reach it
    subprocess.run(["systemctl", "stop", scoped.unit], check=True)  # SIGKILL after 1 s: failed
    assert show(scoped.unit, "ActiveState", "Result") == {"ActiveState": "failed", "Result": "timeout"}
    assert start(scoped, "/checker", "wait-signal", cid="c2").code == 0
    assert show(scoped.unit, "ActiveState")["ActiveState"] == "active"
    scoped.husk("delete", "--force", "c2", check=True)
    reap_orphans()
    scoped.husk("delete", "c1", check=True)


def test_a_unit_name_in_use_is_refused_and_nothing_is_left(scoped):
    other = subprocess.Popen(["systemd-run", "--scope", "--quiet", f"--unit={scoped.unit}", "sleep", "600"])
    try:
        for _ in range(100):
            if show(scoped.unit, "ActiveState")["ActiveState"] == "active":
                break
            time.sleep(0.05)
        r = start(scoped, "/checker", "wait-signal")
        assert r.code == 1
        assert r.err.strip().splitlines() == [
            f"husk: systemd: StartTransientUnit: org.freedesktop.systemd1.UnitExists: Unit {scoped.unit} "
            "was already loaded or has a fragment file."], r.err
        assert not os.listdir(scoped.root)
        assert show(scoped.unit, "ActiveState")["ActiveState"] == "active"  # not ours to stop
    finally:
        other.kill()
        other.wait()
        subprocess.run(["systemctl", "stop", scoped.unit], capture_output=True)


def test_the_private_socket_serves_without_dbus(scoped):
    subprocess.run(["systemctl", "stop", "dbus.socket", "dbus.service"], check=True)
    try:
        assert show("dbus.service", "ActiveState")["ActiveState"] == "inactive"
        assert start(scoped, "/checker", "wait-signal").code == 0
        assert show(scoped.unit, "ActiveState")["ActiveState"] == "active"
        scoped.husk("delete", "--force", "c1", check=True)
    finally:
        subprocess.run(["systemctl", "start", "dbus.socket"], check=True)


@pytest.mark.parametrize("path,why", [
    ("no-colons", "with --systemd-cgroup it must be \"slice:prefix:name\""),
    ("a--b.slice:p:n", "a--b.slice is not a valid slice name"),
    ("machine.slice:p:", "the name (after the second ':') is empty"),
])
def test_bad_cgroups_paths_are_refused_by_field(bundle, path, why):
    bundle.config["linux"]["cgroupsPath"] = path
    r = start(bundle, "/checker", "wait-signal")
    assert r.code != 0
    assert r.err.strip().splitlines() == [f"husk: config.json: linux.cgroupsPath: {path}: {why}"]
    assert not os.listdir(bundle.root) if os.path.isdir(bundle.root) else True


def test_podman_uses_systemd_by_default():
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    from test_podman import IMAGE, OCI_LAYOUT, Podman

    tmp = tempfile.mkdtemp(prefix="pm-")  # podman wants a runroot of at most 50 characters
    pm = Podman(tmp)
    pm.base[pm.base.index("overlay")] = "vfs"  # the VM's root is an overlay already
    conf = pm.env["CONTAINERS_CONF"]
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace('cgroup_manager = "cgroupfs"', 'cgroup_manager = "systemd"'))
    image_id = pm.ok("pull", "-q", f"oci:{OCI_LAYOUT}:latest").strip()
    pm.ok("tag", image_id, IMAGE)
    try:
        out = pm.ok("run", "--rm", "--pull", "never", IMAGE, "cat", "/proc/self/cgroup").strip()
        assert out.startswith("0::/") and out.endswith(".scope") or out == "0::/", out
        cid = pm.ok("run", "-d", "--pull", "never", IMAGE, "sleep", "600").strip()
        pid = pm.ok("inspect", "--format", "{{.State.Pid}}", cid).strip()
        assert read(f"/proc/{pid}/cgroup") == f"0::/machine.slice/libpod-{cid}.scope"
        pm.ok("rm", "-f", "-t", "0", cid)
        assert show(f"libpod-{cid}.scope", "LoadState")["LoadState"] == "not-found"
        # A pod: its containers' scopes in the pod's slice (the infra
        # container is busybox's sleep: no catatonit here for podman's pause).
        pod = pm.ok("pod", "create", "--infra-image", IMAGE, "--infra-command", "/bin/sleep 1000000").strip()
        cid = pm.ok("run", "-d", "--pull", "never", "--pod", pod, IMAGE, "sleep", "600").strip()
        pid = pm.ok("inspect", "--format", "{{.State.Pid}}", cid).strip()
        assert read(f"/proc/{pid}/cgroup") == f"0::/machine.slice/machine-libpod_pod_{pod}.slice/libpod-{cid}.scope"
        pm.ok("pod", "rm", "-f", "-t", "0", pod)
        assert show(f"libpod-{cid}.scope", "LoadState")["LoadState"] == "not-found"
    finally:
        pm("pod", "rm", "-a", "-f", "-t", "0")
        pm("rm", "-a", "-f")
        subprocess.run(["systemctl", "stop", "machine-husktest.slice"], capture_output=True)
        pm("system", "reset", "-f")
        shutil.rmtree(tmp, ignore_errors=True)


def test_containerd_shim_passes_the_flag_on_every_verb():
    """ctr --runc-systemd-cgroup: the runc v2 shim gives husk the flag on
    create, kill and delete alike."""
    if shutil.which("containerd") is None:
        pytest.skip("containerd is not installed")
    from clients import HUSK, OCI_LAYOUT
    from test_containerd import IMAGE, Containerd

    tmp = tempfile.mkdtemp(prefix="ctd-")  # a unix socket's path is short
    ctd = Containerd(tmp)
    try:
        archive = os.path.join(tmp, "busybox.tar")
        subprocess.run(["tar", "-C", OCI_LAYOUT, "-cf", archive, "."], check=True)
        # native: the VM's root is an overlay, where overlayfs cannot stack
        ctd.ok("images", "import", "--snapshotter", "native", "--index-name", IMAGE, archive)
        ctd.ok("run", "-d", "--snapshotter", "native", "--runc-binary", HUSK, "--runc-systemd-cgroup",
               "--cgroup", "machine.slice:husk:ctd1", IMAGE, "ctd1", "sleep", "600")
        pid = next(line.split()[1] for line in ctd.ok("task", "ls").splitlines() if line.startswith("ctd1 "))
        assert read(f"/proc/{pid}/cgroup") == "0::/machine.slice/husk-ctd1.scope"
        assert show("husk-ctd1.scope", "Delegate")["Delegate"] == "yes"
        ctd.ok("task", "kill", "-s", "KILL", "ctd1")
        for _ in range(200):
            if "STOPPED" in ctd.ok("task", "ls"):
                break
            time.sleep(0.05)
        ctd.ok("task", "delete", "ctd1")
        ctd.ok("container", "delete", "ctd1")
        assert show("husk-ctd1.scope", "LoadState")["LoadState"] == "not-found"
    finally:
        ctd.ctr("task", "kill", "-s", "KILL", "ctd1")
        ctd.ctr("task", "delete", "-f", "ctd1")
        ctd.ctr("container", "delete", "ctd1")
        ctd.stop()
        subprocess.run(["umount", "-R", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_husk_run_puts_an_image_container_in_a_machine_slice_scope(busybox_env):
    """The people's face on a systemd host: a scope under machine.slice,
    as podman's; --cgroup-manager cgroupfs keeps /husk/ID."""
    cid = busybox_env("run", "-d", "--network", "none", "bb", "sleep", "600", check=True).out.strip()
    try:
        unit = f"husk-{cid}.scope"
        assert show(unit, "Slice", "ActiveState") == {"Slice": "machine.slice", "ActiveState": "active"}
        pid = busybox_env("inspect", "--format", "{{.State.Pid}}", cid, check=True).out.strip()
        assert read(f"/proc/{pid}/cgroup") == f"0::/machine.slice/{unit}"
        busybox_env("rm", "-f", cid, check=True)
        assert show(unit, "LoadState")["LoadState"] == "not-found"
        cid = busybox_env("run", "-d", "--network", "none", "--cgroup-manager", "cgroupfs", "bb", "sleep", "600",
                          check=True).out.strip()
        pid = busybox_env("inspect", "--format", "{{.State.Pid}}", cid, check=True).out.strip()
        assert read(f"/proc/{pid}/cgroup") == f"0::/husk/{cid}"
    finally:
        busybox_env("rm", "-f", cid)
