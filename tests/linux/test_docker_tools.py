"""docker's tools for image containers: resource limits on run (read back
from cgroupfs and felt inside), volumes (-v, --mount, --tmpfs and
`husk volume`), stats (against cgroupfs and the netns's counters), top,
port, rename and exec by name.  The husk_env fixture checks that nothing
is left behind; each volume test checks the store's volumes itself, as
volumes are meant to outlive containers."""

from __future__ import annotations

import json
import os
import socket

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    husk_env("load", "-q", "--name", "vols", "-i", layouts["volumes"], check=True)
    return husk_env


def detach(h, *args) -> str:
    r = h("run", "-d", "--pull=never", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def run(h, *args):
    return h("run", "--rm", "--pull=never", *args)


def inspect(h, name: str) -> dict:
    return json.loads(h("inspect", name, check=True).out)[0]


def volumes(h) -> list[str]:
    return h("volume", "ls", "-q", check=True).out.split()


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """The host path of PID's cgroup file NAME (v1: the CONTROLLER's hierarchy)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if controller in ctrls.split(","):
            return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    unified = next(path for hid, ctrls, path in lines if hid == "0")
    return os.path.join("/sys/fs/cgroup", unified.lstrip("/"), name)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def v2(pid: int) -> bool:
    return not any(line.split(":")[1] for line in open(f"/proc/{pid}/cgroup"))


# Resource limits

def test_memory_cpus_and_pids_limits_reach_the_cgroup(h):
    detach(h, "--name", "lim", "--memory", "64m", "--memory-reservation", "32m", "--cpus", "0.5",
           "--cpu-shares", "512", "--pids-limit", "30", "bb", "sleep", "1000")
    pid = inspect(h, "lim")["State"]["Pid"]
    if v2(pid):
        assert read(cgroup_file(pid, "memory", "memory.max")) == str(64 << 20)
        assert read(cgroup_file(pid, "memory", "memory.low")) == str(32 << 20)
        assert read(cgroup_file(pid, "cpu", "cpu.max")) == "50000 100000"
    else:
        assert read(cgroup_file(pid, "memory", "memory.limit_in_bytes")) == str(64 << 20)
        assert read(cgroup_file(pid, "memory", "memory.soft_limit_in_bytes")) == str(32 << 20)
        assert read(cgroup_file(pid, "cpu", "cpu.cfs_quota_us")) == "50000"
        assert read(cgroup_file(pid, "cpu", "cpu.cfs_period_us")) == "100000"
        assert read(cgroup_file(pid, "cpu", "cpu.shares")) == "512"
    assert read(cgroup_file(pid, "pids", "pids.max")) == "30"
    config = inspect(h, "lim")["HostConfig"]
    assert (config["Memory"], config["NanoCpus"], config["PidsLimit"], config["CpuShares"]) == \
        (64 << 20, 500_000_000, 30, 512)
    h("rm", "-f", "lim", check=True)


def test_the_pids_limit_stops_forks_inside(h):
    # sh and three sleeps make four: the fourth fork fails with EAGAIN.
    r = run(h, "--pids-limit", "4", "bb", "sh", "-c",
            "sleep 30 & sleep 30 & sleep 30 & echo three; sleep 30 & echo four")
    assert r.out == "three\n" and "can't fork: Resource temporarily unavailable" in r.err, (r.out, r.err)


def test_the_memory_limit_kills_what_goes_over_it(h):
    # dd's 64 MiB buffer cannot fit in 16 MiB (swap is limited to the same):
    # the kernel's OOM killer ends it with SIGKILL, 128+9 in the shell.
    r = run(h, "--memory", "16m", "--memory-swap", "16m", "bb", "sh", "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?")
    assert "dd=137" in r.out, (r.out, r.err)


@pytest.mark.parametrize("args,flag", [
    (["--memory", "1k"], "--memory"),
    (["--memory", "lots"], "--memory"),
    (["--memory-swap", "1g"], "--memory-swap"),
    (["--memory", "64m", "--memory-swap", "32m"], "--memory-swap"),
    (["--cpus", "999"], "--cpus"),
    (["--cpus", "half"], "--cpus"),
    (["--cpuset-cpus", "0-x"], "--cpuset-cpus"),
    (["-v", "data:relative"], "--volume"),
    (["-v", "bad name!:/x"], "--volume"),
    (["-v", "/a", "-v", "v:/a"], "--volume"),
    (["--mount", "type=bind,source=/nonexistent-husk,target=/x"], "--mount"),
    (["--mount", "type=nfs,target=/x"], "--mount"),
    (["--tmpfs", "/t:bogus"], "--tmpfs"),
])
def test_bad_limits_and_mounts_name_the_flag_and_leave_nothing(h, args, flag):
    r = h("run", "--pull=never", *args, "bb", "true")
    assert r.code == 125 and r.err.count("\n") == 1 and flag in r.err, r.err
    assert h("ps", "-a", "-q", check=True).out == "" and volumes(h) == []


# Volumes

def test_a_named_volume_outlives_its_container_and_is_shared(h):
    assert h("volume", "create", "appdata", check=True).out.strip() == "appdata"
    run(h, "-v", "appdata:/data", "bb", "sh", "-c", "echo first > /data/note")
    assert run(h, "--mount", "type=volume,source=appdata,target=/srv", "bb", "cat", "/srv/note").out == "first\n"
    meta = json.loads(h("volume", "inspect", "appdata", check=True).out)[0]
    assert read(os.path.join(meta["Mountpoint"], "note")) == "first"
    # A volume a container uses (running or not) cannot go.
    detach(h, "--name", "user", "-v", "appdata:/data", "bb", "true")
    h("wait", "user", check=True)
    r = h("volume", "rm", "appdata")
    assert r.code != 0 and "in use by container user" in r.err
    h("rm", "user", check=True)
    h("volume", "rm", "appdata", check=True)
    assert volumes(h) == [] and not os.path.exists(meta["Mountpoint"])


def test_a_volume_made_by_run_is_made_and_a_failed_run_removes_it(h):
    run(h, "-v", "auto:/data", "bb", "true")
    assert volumes(h) == ["auto"]  # named volumes stay after --rm, as docker's do
    h("volume", "rm", "auto", check=True)
    r = h("run", "--rm", "--pull=never", "-v", "fresh:/data", "bb", "/no/such/program")
    assert r.code == 127 and volumes(h) == []


def test_anonymous_volumes_go_with_rm_v_and_with_run_rm(h):
    detach(h, "--name", "anon", "-v", "/cache", "bb", "sh", "-c", "echo x > /cache/f")
    h("wait", "anon", check=True)
    (mount,) = inspect(h, "anon")["Mounts"]
    assert mount["Type"] == "volume" and mount["Destination"] == "/cache" and volumes(h) == [mount["Name"]]
    h("rm", "-v", "anon", check=True)
    assert volumes(h) == []
    run(h, "-v", "/cache", "bb", "true")
    assert volumes(h) == []
    # Without -v, rm leaves it (docker's rule): volume prune removes it.
    detach(h, "--name", "anon2", "-v", "/cache", "bb", "true")
    h("wait", "anon2", check=True)
    h("rm", "anon2", check=True)
    assert len(volumes(h)) == 1
    h("volume", "prune", "-f", check=True)
    assert volumes(h) == []


def test_a_new_volume_copies_up_the_images_content_with_owners_and_modes(h):
    r = run(h, "-v", "seeded:/var/lib/app", "vols", "sh", "-c",
            "cat /var/lib/app/seed; stat -c '%u:%g %a %n' /var/lib/app /var/lib/app/seed /var/lib/app/tool;"
            " readlink /var/lib/app/link")
    assert r.out.splitlines() == ["from the image", "1000:1000 750 /var/lib/app", "1000:1000 640 /var/lib/app/seed",
                                  "0:0 4755 /var/lib/app/tool", "/etc/passwd"], r.err
    # nocopy: the volume starts empty.
    assert run(h, "-v", "empty:/var/lib/app:nocopy", "vols", "ls", "-A", "/var/lib/app").out == ""
    h("volume", "rm", "seeded", "empty", check=True)


def test_copy_up_resolves_the_destination_inside_the_rootfs(h):
    # The image's /data is a symlink to /etc: the copy is of the image's
    # /etc (busybox's passwd), never the host's.
    run(h, "-v", "escape:/data", "vols", "true")
    meta = json.loads(h("volume", "inspect", "escape", check=True).out)[0]
    copied = read(os.path.join(meta["Mountpoint"], "passwd"))
    assert "user:x:1000:1000" in copied and copied != read("/etc/passwd")
    h("volume", "rm", "escape", check=True)


def test_bind_mounts_and_readonly(h, tmp_path):
    host = tmp_path / "shared"
    r = run(h, "-v", f"{host}:/hb", "bb", "sh", "-c", "echo made > /hb/out")  # -v makes the host directory
    assert r.code == 0 and (host / "out").read_text() == "made\n"
    r = run(h, "--mount", f"type=bind,source={host},target=/hb,readonly", "bb", "sh", "-c",
            "cat /hb/out; echo no > /hb/out")
    assert r.out == "made\n" and "Read-only file system" in r.err
    r = run(h, "-v", f"{host}:/hb:ro", "bb", "touch", "/hb/x")
    assert r.code != 0 and not (host / "x").exists()


def test_tmpfs_mounts_with_dockers_options(h):
    r = run(h, "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,target=/t2,tmpfs-mode=1777", "bb",
            "sh", "-c", "grep -E ' /(scratch|t2) ' /proc/mounts; stat -c %a /t2")
    *lines, mode = r.out.splitlines()
    mounts = {line.split()[1]: line.split() for line in lines}
    assert mounts["/scratch"][2] == "tmpfs" and {"nosuid", "nodev", "noexec", "size=1024k"} <= set(
        mounts["/scratch"][3].split(","))
    assert mounts["/t2"][2] == "tmpfs" and mode == "1777"


# stats, top, port, rename, exec

def test_stats_reads_the_cgroup_and_the_netns(h):
    detach(h, "--name", "busy", "--memory", "64m", "--pids-limit", "30", "bb", "sh", "-c",
           "sleep 1000 & sleep 1000 & nc -l -p 9000 > /dev/null; sleep 1000")
    state = inspect(h, "busy")
    ip, pid = state["NetworkSettings"]["IPAddress"], state["State"]["Pid"]
    import time

    for _ in range(200):  # until nc listens
        with socket.socket() as probe:
            if probe.connect_ex((ip, 9000)) == 0:
                probe.sendall(b"x" * 200_000)
                break
        time.sleep(0.05)
    else:
        raise AssertionError("nc never listened")
    (row,) = json.loads(h("stats", "--no-stream", "--format", "json", "busy", check=True).out)
    assert row["Name"] == "busy" and row["MemoryLimit"] == 64 << 20
    assert row["PIDs"] == read(cgroup_file(pid, "pids", "pids.current"))
    assert int(row["PIDs"]) >= 3
    with open(f"/proc/{pid}/net/dev") as f:
        rx = sum(int(line.split(":")[1].split()[0]) for line in f.read().splitlines()[2:]
                 if line.split(":")[0].strip() != "lo")
    assert 200_000 <= row["NetInput"] <= rx
    table = h("stats", "--no-stream", check=True).out.splitlines()
    assert table[0].split("   ")[:3] == ["CONTAINER ID", "NAME  ", "CPU %"] or table[0].startswith("CONTAINER ID")
    assert any(" busy " in line and "/ 64MiB" in line for line in table[1:]), table
    h("rm", "-f", "busy", check=True)
    r = h("stats", "--no-stream", "busy")
    assert r.code != 0 and "busy" in r.err


def test_top_lists_the_containers_processes_from_the_host(h):
    cid = detach(h, "--name", "tp", "bb", "sh", "-c", "sleep 1001 & sleep 1002")
    pids = json.loads(h("ps", cid, "--format", "json", check=True).out)
    import time

    for _ in range(200):
        rows = h("top", "tp", check=True).out.splitlines()
        if sum("sleep 100" in r for r in rows) == 2:
            break
        time.sleep(0.05)
    assert rows[0].split()[:3] == ["UID", "PID", "PPID"]
    listed = {int(r.split()[1]) for r in rows[1:]}
    assert listed <= set(json.loads(h("ps", cid, "--format", "json", check=True).out)) | set(pids)
    assert any(r.endswith("sleep 1001") for r in rows) and any(r.endswith("sleep 1002") for r in rows)
    custom = h("top", "tp", "-o", "pid,comm", check=True).out.split()
    assert custom[:2] == ["PID", "COMMAND"] and "sleep" in custom
    h("rm", "-f", "tp", check=True)
    detach(h, "--name", "done", "bb", "true")
    h("wait", "done", check=True)
    r = h("top", "done")
    assert r.code != 0 and "not running" in r.err
    h("rm", "done", check=True)


def test_port_lists_the_published_ports(h):
    detach(h, "--name", "pp", "-p", "127.0.0.1::80", "-p", "127.0.0.1:18181:81/udp", "bb", "sleep", "1000")
    lines = h("port", "pp", check=True).out.splitlines()
    host_port = inspect(h, "pp")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert sorted(lines) == sorted([f"80/tcp -> 127.0.0.1:{host_port}", "81/udp -> 127.0.0.1:18181"])
    assert h("port", "pp", "81/udp", check=True).out == "127.0.0.1:18181\n"
    r = h("port", "pp", "82")
    assert r.code != 0 and "82/tcp" in r.err
    h("rm", "-f", "pp", check=True)


def test_rename_changes_the_name_and_what_the_network_resolves(h):
    detach(h, "--name", "old", "bb", "sleep", "1000")
    detach(h, "--name", "peer", "bb", "sleep", "1000")
    h("rename", "old", "new", check=True)
    assert h("inspect", "old").code != 0 and inspect(h, "new")["Name"] == "/new"
    hosts = h("exec", "peer", "cat", "/etc/hosts", check=True).out
    assert " new" in hosts and " old" not in hosts
    r = h("rename", "new", "peer")
    assert r.code != 0 and "already in use" in r.err
    h("rm", "-f", "new", "peer", check=True)


def test_exec_by_name_with_dockers_flags(h):
    detach(h, "--name", "ex", "bb", "sleep", "1000")
    assert h("exec", "ex", "sh", "-c", "echo in; id -u", check=True).out == "in\n0\n"
    assert h("exec", "-u", "nobody", "e", "id", "-un", check=True).out == "nobody\n"  # a unique prefix
    assert h("exec", "-w", "/tmp", "ex", "pwd", check=True).out == "/tmp\n"
    # stdin: /dev/null without -i, the caller's with it.
    assert h("exec", "ex", "cat", input="typed\n", check=True).out == ""
    assert h("exec", "-i", "ex", "cat", input="typed\n", check=True).out == "typed\n"
    r = h("exec", "nobody-by-this-name", "true")
    assert r.code != 0 and "does not exist" in r.err
    h("rm", "-f", "ex", check=True)


# Health checks

def until(predicate, what: str, tries: int = 600):
    import time

    for _ in range(tries):
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_the_monitor_runs_the_health_check_and_ps_and_inspect_show_it(h):
    detach(h, "--name", "hc", "--health-cmd", "test -e /tmp/ready && echo fine", "--health-interval", "100ms",
           "--health-retries", "2", "bb", "sh", "-c", "sleep 1000")
    health = lambda: inspect(h, "hc")["State"]["Health"]
    # Failing twice in a row makes it unhealthy; each check is logged.
    until(lambda: health()["Status"] == "unhealthy", "unhealthy after 2 failures")
    assert health()["FailingStreak"] >= 2 and all(e["ExitCode"] == 1 for e in health()["Log"])
    assert "(unhealthy)" in h("ps", "--format", "{{.Status}}", check=True).out
    h("exec", "hc", "touch", "/tmp/ready", check=True)
    until(lambda: health()["Status"] == "healthy", "healthy once the file is there")
    last = health()["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == "fine\n" and health()["FailingStreak"] == 0
    assert len(health()["Log"]) <= 5
    assert "(healthy)" in h("ps", "--format", "{{.Status}}", check=True).out
    assert inspect(h, "hc")["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /tmp/ready && echo fine"]
    assert h("healthcheck", "run", "hc").code == 0
    h("rm", "-f", "hc", check=True)


@pytest.mark.parametrize("args,flag", [
    (["--health-cmd", "true"], "--health-cmd"),  # without -d: no monitor to run it
    (["-d", "--health-cmd", "true", "--health-interval", "soon"], "--health-interval"),
    (["-d", "--health-cmd", "true", "--health-retries", "0"], "--health-retries"),
])
def test_bad_health_flags_name_the_flag_and_leave_nothing(h, args, flag):
    r = h("run", "--pull=never", *args, "bb", "sleep", "1")
    assert r.code == 125 and r.err.count("\n") == 1 and flag in r.err, r.err
    assert h("ps", "-a", "-q", check=True).out == ""
