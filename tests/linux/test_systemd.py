"""The systemd cgroup driver (`husk --systemd-cgroup`) against a real
systemd: each container's cgroup is a transient scope, read back with
`systemctl show`, from cgroupfs and from /proc/PID/cgroup.

These run where systemd is PID 1: in the VMs tests/vm/run_v2.py --systemd
boots (test_cgroup_v2_vm.py), cgroup v2 and systemd's hybrid layout, and
on any systemd host.  As podman does, only create gets the flag; the
later verbs find the unit in the state.
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
              pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="systemd is not PID 1 here")]
LAYOUT = detect()
V2 = LAYOUT.mode == "v2"
MEMORY_MAX = "MemoryMax" if V2 else "MemoryLimit"  # the unit property systemd has for the layout


def show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def read(path):
    with open(path) as f:
        return f.read().strip()


def unit_dirs(unit, slice_path="/machine.slice"):
    """The unit's cgroup in every hierarchy."""
    bases = list(LAYOUT.v1.values()) + ([LAYOUT.unified] if LAYOUT.unified else [])
    return [f"{base}{slice_path}/{unit}" for base in bases]


def cgfile(unit, controller, name, slice_path="/machine.slice"):
    """FILE of CONTROLLER in the unit's cgroup: the v2 directory, or the
    controller's v1 hierarchy."""
    if V2:
        return f"{LAYOUT.unified}{slice_path}/{unit}/{name}"
    point = next(p for n, p in LAYOUT.v1.items() if controller in n.split(","))
    return f"{point}{slice_path}/{unit}/{name}"


def own_cgroup(pid):
    """The process's cgroup: /proc/PID/cgroup's cgroup2 line (v2), or its
    name=systemd one (systemd's own hierarchy on a hybrid host)."""
    lines = dict(line.split(":", 2)[1:] for line in read(f"/proc/{pid}/cgroup").splitlines())
    return lines[""] if V2 else lines["name=systemd"]


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
    assert not [d for d in unit_dirs(bundle.unit) if os.path.exists(d)]


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
    props = show(unit, "Slice", "Delegate", MEMORY_MAX, "MemoryLow", "TasksMax", "CPUQuotaPerSecUSec",
                 "CPUWeight", "CPUShares", "ActiveState", "Description")
    assert props["Slice"] == "machine.slice"
    assert props["Delegate"] == "yes"
    assert props["ActiveState"] == "active"
    assert props[MEMORY_MAX] == str(64 << 20)
    assert props["TasksMax"] == "50"
    assert props["CPUQuotaPerSecUSec"] == "130ms"  # 123.45 ms a second, rounded up to 10 ms as systemd keeps it
    assert props["Description"] == "husk container c1"
    if V2:
        assert props["MemoryLow"] == str(16 << 20)
        assert props["CPUWeight"] == "100"  # shares 1024 is the default weight
    else:
        assert props["CPUShares"] == "1024"
    memory_max = cgfile(unit, "memory", "memory.max" if V2 else "memory.limit_in_bytes")
    assert read(memory_max) == str(64 << 20)
    assert read(cgfile(unit, "pids", "pids.max")) == "50"
    # cgroupfs has husk's exact value
    if V2:
        assert read(cgfile(unit, "cpu", "cpu.max")) == "12345 100000"
    else:
        assert read(cgfile(unit, "cpu", "cpu.cfs_quota_us")) == "12345"
    state = scoped.husk("state", "c1").json()
    assert own_cgroup(state["pid"]) == f"/machine.slice/{unit}"
    if not V2:  # every v1 hierarchy, those systemd does not manage too
        assert all(os.path.isdir(d) for d in unit_dirs(unit))
    with open(os.path.join(scoped.root, "c1", "state.json")) as f:
        assert json.load(f)["husk"]["systemd_unit"] == unit

    # A process exec'd in joins the unit (AttachProcessesToUnit).
    pid_file = os.path.join(scoped.path, "exec.pid")
    scoped.husk("exec", "--detach", "--pid-file", pid_file, "c1", "sleep", "60", check=True)
    assert own_cgroup(read(pid_file)) == f"/machine.slice/{unit}"

    # A reload re-applies the unit's properties: the limits stay.
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    assert show(unit, MEMORY_MAX)[MEMORY_MAX] == str(64 << 20)
    assert read(memory_max) == str(64 << 20)
    assert read(cgfile(unit, "pids", "pids.max")) == "50"

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
        props = show(scoped.unit, MEMORY_MAX, "TasksMax", "CPUWeight", "CPUShares")
        assert props[MEMORY_MAX] == str(96 << 20) and props["TasksMax"] == "77"
        if V2:
            assert props["CPUWeight"] == read(cgfile(scoped.unit, "cpu", "cpu.weight")) == "174"
        else:
            assert props["CPUShares"] == read(cgfile(scoped.unit, "cpu", "cpu.shares")) == "2048"
        assert read(cgfile(scoped.unit, "memory", "memory.max" if V2 else "memory.limit_in_bytes")) == str(96 << 20)
        assert read(cgfile(scoped.unit, "pids", "pids.max")) == "77"
        # The default devices stay usable (containerd's update sends only "deny all").
        assert scoped.husk("exec", "c1", "sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
                           check=True).out.strip() == "3"
    finally:
        scoped.husk("delete", "--force", "c1", check=True)


def test_pause_and_resume_freeze_the_unit_cgroup(scoped):
    assert start(scoped, "/checker", "wait-signal").code == 0
    try:
        scoped.husk("pause", "c1", check=True)
        if V2:
            assert "frozen 1" in read(cgfile(scoped.unit, "", "cgroup.events"))
        else:
            assert read(cgfile(scoped.unit, "freezer", "freezer.state")) == "FROZEN"
        assert scoped.husk("state", "c1").json()["status"] == "paused"
        scoped.husk("resume", "c1", check=True)
        if V2:
            assert "frozen 0" in read(cgfile(scoped.unit, "", "cgroup.events"))
        else:
            assert read(cgfile(scoped.unit, "freezer", "freezer.state")) == "THAWED"
    finally:
        scoped.husk("delete", "--force", "c1", check=True)


def test_a_slice_path_nests_as_systemd_nests_it(bundle):
    bundle.config["linux"]["cgroupsPath"] = "husktest-pod1.slice:cri-containerd:nested"
    unit = "cri-containerd-nested.scope"
    try:
        assert start(bundle, "/checker", "wait-signal").code == 0
        pid = bundle.husk("state", "c1").json()["pid"]
        assert own_cgroup(pid) == f"/husktest.slice/husktest-pod1.slice/{unit}"
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


def test_explain_shows_the_unit_systemd_made(scoped, tmp_path):
    scoped.config["process"]["args"] = ["true"]
    scoped.save()
    out = str(tmp_path / "unit.json")
    r = scoped.husk("--systemd-cgroup", "run", "--explain=json", "--explain-file", out, "--bundle", scoped.path,
                    "c1")
    assert r.code == 0, r.err
    with open(out) as f:
        steps = json.load(f)["steps"]
    names = [s["step"] for s in steps]
    unit = next(s for s in steps if s["step"] == "systemd_unit")
    assert f'StartTransientUnit("{scoped.unit}", Slice=machine.slice, Delegate=yes' in unit["call"]
    assert unit["who"] == "front end" and "systemd" in unit["why"]
    # The unit holds husk-init before husk-init makes the container.
    assert names.index("spawn") < names.index("systemd_unit") < names.index("clone")


def test_an_oom_killed_containers_id_and_unit_can_be_used_again(scoped):
    scoped.config["linux"]["resources"]["memory"] = {"limit": 32 << 20, **({"swap": 32 << 20} if V2 else {})}
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
        assert pm.ok("run", "--rm", "--pull", "never", IMAGE, "echo", "hello").strip() == "hello"
        cid = pm.ok("run", "-d", "--pull", "never", IMAGE, "sleep", "600").strip()
        pid = pm.ok("inspect", "--format", "{{.State.Pid}}", cid).strip()
        assert own_cgroup(pid) == f"/machine.slice/libpod-{cid}.scope"
        pm.ok("rm", "-f", "-t", "0", cid)
        assert show(f"libpod-{cid}.scope", "LoadState")["LoadState"] == "not-found"
        # A pod: its containers' scopes in the pod's slice (the infra
        # container is busybox's sleep: no catatonit here for podman's pause).
        pod = pm.ok("pod", "create", "--infra-image", IMAGE, "--infra-command", "/bin/sleep 1000000").strip()
        cid = pm.ok("run", "-d", "--pull", "never", "--pod", pod, IMAGE, "sleep", "600").strip()
        pid = pm.ok("inspect", "--format", "{{.State.Pid}}", cid).strip()
        assert own_cgroup(pid) == f"/machine.slice/machine-libpod_pod_{pod}.slice/libpod-{cid}.scope"
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
        assert own_cgroup(pid) == "/machine.slice/husk-ctd1.scope"
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
        assert own_cgroup(pid) == f"/machine.slice/{unit}"
        busybox_env("rm", "-f", cid, check=True)
        assert show(unit, "LoadState")["LoadState"] == "not-found"
        cid = busybox_env("run", "-d", "--network", "none", "--cgroup-manager", "cgroupfs", "bb", "sleep", "600",
                          check=True).out.strip()
        pid = busybox_env("inspect", "--format", "{{.State.Pid}}", cid, check=True).out.strip()
        assert own_cgroup(pid) == f"/husk/{cid}"
    finally:
        busybox_env("rm", "-f", cid)
