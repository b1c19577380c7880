"""husk as a Kubernetes runtime: the calls kubelet makes, through
containerd 1.6's CRI and its runc v2 shim, each scenario run on the
`husk` handler and on the `runc` handler as its control (tests/linux/
cri_harness.py).  What every scenario checks is read back from inside
the containers, from the kernel (cgroup files, /proc) or from what
containerd reports; the fixture checks that a removed pod leaves
nothing of its own behind."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from clients import HUSK, cgroups_named, processes_with, run, until
from cri_harness import HANDLERS, HERE, Containerd, clean_up

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def cri(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("cri"))
    netns = "husk-cri-" + os.path.basename(base)[-6:]
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    try:
        c = Containerd(base, netns)
        try:
            yield c
        finally:
            c.close()
    finally:
        # The pods' cgroups under /husk-cri-test are kubelet's to remove (runc
        # leaves each pod's); anything else found here is a leak.
        left = [x for x in clean_up(base, netns_before | {netns}) if not x.startswith("cgroup")]
        subprocess.run(["ip", "netns", "del", netns], check=True)
    assert not left, f"left behind: {left}"


@pytest.fixture(params=HANDLERS)
def handler(request, cri):
    """Each scenario on both handlers; afterwards, no pod of the test is left."""
    yield request.param
    pods = cri.rt.ListPodSandbox(cri.pb.ListPodSandboxRequest(), timeout=60).items
    for pod in pods:  # a scenario that failed half-way
        with contextlib.suppress(Exception):
            cri.remove_pod(pod.id, timeout=30)


def pid_of(cri, cid: str) -> int:
    return cri.shim_pid(cid)


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup interface file of PID's cgroup, v1 or v2."""
    from runtime.core.cgroups.layout import detect

    layout = detect()
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if controller in controllers.split(","):
            return open(os.path.join(layout.v1[controller], path.lstrip("/"), name)).read().strip()
        if controllers == "" and layout.mode == "v2":
            return open(os.path.join(layout.unified, path.lstrip("/"), name)).read().strip()
    raise AssertionError(f"{pid} has no {controller} cgroup")


def exited(cri, cid: str):
    return until(lambda: (s := cri.status(cid)).state == cri.pb.CONTAINER_EXITED and s, f"{cid} exited")


def test_version_and_status(cri):
    v = cri.rt.Version(cri.pb.VersionRequest(), timeout=30)
    assert (v.runtime_name, v.runtime_api_version) == ("containerd", "v1")
    conditions = {c.type: c.status for c in cri.rt.Status(cri.pb.StatusRequest(), timeout=30).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}


def test_a_pods_containers_share_net_ipc_and_uts(cri, handler):
    pod, config = cri.run_pod(handler, f"share-{handler}")
    one = cri.run_container(pod, config, "one", ["sh", "-c", "/pause shm 0x4b1d && exec sleep 1000"])
    two = cri.run_container(pod, config, "two", ["sleep", "1000"])
    ip = cri.rt.PodSandboxStatus(cri.pb.PodSandboxStatusRequest(pod_sandbox_id=pod), timeout=30).status.network.ip
    assert ip.startswith("10.89.0.")
    seen = [cri.exec_sync(cid, ["sh", "-c", "hostname; ip -4 -o addr show eth0 | awk '{print $4}'; "
                                            "until grep -q 19229 /proc/sysvipc/shm; do sleep 0.1; done; echo shm"])
            for cid in (one, two)]
    assert [s.exit_code for s in seen] == [0, 0]
    assert seen[0].stdout == seen[1].stdout == f"share-{handler}\n{ip}/24\nshm\n".encode()
    # Each container has a pid namespace of its own (NamespaceMode.CONTAINER).
    assert cri.exec_sync(two, ["sh", "-c", "ps -o comm | grep -c pause || true"]).stdout == b"0\n"
    cri.remove_pod(pod)


def test_a_shared_pid_namespace_and_a_pod_stop_that_leaves_no_process(cri, handler):
    pod, config = cri.run_pod(handler, f"pid-{handler}", pid="POD")
    marker = f"sleep 7{HANDLERS.index(handler)}1"
    first = cri.run_container(pod, config, "first", ["sh", "-c", f"{marker}1 & exec {marker}2"])
    second = cri.run_container(pod, config, "second", ["sleep", "1000"])
    ps = cri.exec_sync(second, ["ps", "-o", "pid,args"]).stdout.decode()
    assert f"{marker}1" in ps and f"{marker}2" in ps and "/pause" in ps
    # The first container's init goes; its child stays in the pod's pid
    # namespace (pause reaps it later): the shim's kill --all takes it.
    cri.rt.StopContainer(cri.pb.StopContainerRequest(container_id=first, timeout=0), timeout=60)
    assert exited(cri, first).exit_code == 137
    until(lambda: not processes_with(f"{marker}1"), "the first container's leftover child killed")
    cri.remove_pod(pod)
    assert not processes_with(marker) and not processes_with("/pause")


def test_exec_sync_codes_streams_and_timeout(cri, handler):
    pod, config = cri.run_pod(handler, f"exec-{handler}")
    cid = cri.run_container(pod, config, "c", ["sleep", "1000"])
    r = cri.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    import grpc

    # A program that is not there fails the exec itself (runc's answer:
    # the runtime's exec fails before the process starts).
    with pytest.raises(grpc.RpcError) as missing:
        cri.exec_sync(cid, ["/no/such/program"])
    assert "/no/such/program" in missing.value.details()
    with pytest.raises(grpc.RpcError) as timed_out:
        cri.exec_sync(cid, ["sleep", "30"], timeout=1)
    assert "timeout" in timed_out.value.details()
    until(lambda: not processes_with("sleep 30"), "the timed-out exec killed")
    cri.remove_pod(pod)


def test_streaming_exec_with_a_tty(cri, handler):
    pod, config = cri.run_pod(handler, f"tty-{handler}")
    cid = cri.run_container(pod, config, "c", ["sleep", "1000"])
    url = cri.rt.Exec(cri.pb.ExecRequest(container_id=cid, cmd=["sh"], tty=True, stdin=True, stdout=True),
                      timeout=30).url
    r = run([*cri.enter, sys.executable, "-I", os.path.join(HERE, "cri", "ws_exec.py"), url,
             "tty -s && echo a-tty; echo $((6 * 7)); exit 3\n"], timeout=120)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert "a-tty\r\n42\r\n" in answer["output"]
    assert answer["status"]["status"] == "Failure"
    assert answer["status"]["details"]["causes"][0] == {"reason": "ExitCode", "message": "3"}
    cri.remove_pod(pod)


def test_the_container_log_is_in_cri_format(cri, handler):
    pod, config = cri.run_pod(handler, f"log-{handler}")
    cid = cri.run_container(pod, config, "talk", ["sh", "-c", "echo to-out; echo to-err >&2"])
    assert exited(cri, cid).exit_code == 0
    lines = open(os.path.join(config.log_directory, "talk.log")).read().splitlines()
    parsed = sorted((stream, tag, text) for stamp, stream, tag, text in (line.split(" ", 3) for line in lines))
    assert parsed == [("stderr", "F", "to-err"), ("stdout", "F", "to-out")]
    for line in lines:
        stamp = line.split(" ", 1)[0]  # RFC 3339 with nanoseconds
        assert stamp[10] == "T" and "." in stamp and (stamp.endswith("Z") or "+" in stamp[19:] or "-" in stamp[19:])
    cri.remove_pod(pod)


def test_update_container_resources_reaches_the_cgroup(cri, handler):
    from runtime.core.cgroups.layout import detect

    pb = cri.pb
    pod, config = cri.run_pod(handler, f"update-{handler}")
    cid = cri.run_container(pod, config, "c", ["sleep", "1000"],
                            resources=pb.LinuxContainerResources(memory_limit_in_bytes=200 << 20))
    pid = pid_of(cri, cid)
    v2 = detect().mode == "v2"
    resources = pb.LinuxContainerResources(memory_limit_in_bytes=100 << 20, cpu_period=100000, cpu_quota=50000,
                                           cpu_shares=512)
    if v2:
        resources.unified["pids.max"] = "77"
    cri.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(container_id=cid, linux=resources),
                                    timeout=60)
    if v2:
        assert cgroup_file(pid, "memory", "memory.max") == str(100 << 20)
        assert cgroup_file(pid, "cpu", "cpu.max") == "50000 100000"
        assert cgroup_file(pid, "pids", "pids.max") == "77"
    else:
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(100 << 20)
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(pid, "cpu", "cpu.shares") == "512"
    # containerd's update carries only "deny all" for devices: the default
    # devices must stay usable (husk once emptied devices.list here).
    r = cri.exec_sync(cid, ["sh", "-c", "echo x > /dev/null && head -c1 /dev/urandom | wc -c"])
    assert (r.exit_code, r.stdout) == (0, b"1\n"), r.stderr
    cri.remove_pod(pod)


def test_container_and_pod_stats_of_a_busy_container(cri, handler):
    pb = cri.pb
    pod, config = cri.run_pod(handler, f"stats-{handler}")
    cid = cri.run_container(pod, config, "busy", ["sh", "-c", "while :; do :; done"])

    def busy():
        s = cri.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=30).stats
        return s.cpu.usage_core_nano_seconds.value > 0 and s.memory.working_set_bytes.value > 0 and s

    stats = until(busy, "cpu and memory use reported")
    assert stats.attributes.id == cid
    pstats = cri.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod), timeout=30).stats
    assert pstats.attributes.id == pod
    assert [c.attributes.id for c in pstats.linux.containers] == [cid]
    assert pstats.linux.containers[0].cpu.usage_core_nano_seconds.value > 0
    cri.remove_pod(pod)


def test_an_oom_killed_container_is_reported_oomkilled(cri, handler):
    pb = cri.pb
    pod, config = cri.run_pod(handler, f"oom-{handler}")
    cid = cri.run_container(pod, config, "hog", ["/checker", "memhog", "200"],
                            resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20,
                                                                 memory_swap_limit_in_bytes=32 << 20))
    status = exited(cri, cid)
    assert (status.reason, status.exit_code) == ("OOMKilled", 137)
    cri.remove_pod(pod)


def test_stop_container_honours_the_grace_period(cri, handler):
    pb = cri.pb
    pod, config = cri.run_pod(handler, f"stop-{handler}")
    polite = cri.run_container(pod, config, "polite", ["sh", "-c", "trap 'echo bye; exit 0' TERM; "
                                                                   "while :; do sleep 0.1; done"])
    stubborn = cri.run_container(pod, config, "stubborn", ["sh", "-c", "trap 'echo ignored TERM' TERM; "
                                                                       "while :; do sleep 0.1; done"])
    time.sleep(0.5)  # both shells have set their traps
    cri.rt.StopContainer(pb.StopContainerRequest(container_id=polite, timeout=30), timeout=90)
    assert exited(cri, polite).exit_code == 0
    cri.rt.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=2), timeout=90)
    assert exited(cri, stubborn).exit_code == 137  # SIGKILL once the grace period ran out
    logs = {name: open(os.path.join(config.log_directory, f"{name}.log")).read() for name in ("polite", "stubborn")}
    assert "stdout F bye" in logs["polite"] and "stdout F ignored TERM" in logs["stubborn"]
    cri.remove_pod(pod)


def test_remove_pod_sandbox_leaves_nothing(cri, handler):
    netns_before = set(os.listdir("/run/netns"))
    pod, config = cri.run_pod(handler, f"gone-{handler}")
    cid = cri.run_container(pod, config, "c", ["sleep", "4253"])
    assert set(os.listdir("/run/netns")) - netns_before  # containerd's cni-... namespace of the pod
    cri.remove_pod(pod)
    root = os.path.join(cri.roots[handler], "k8s.io")
    assert not (os.path.isdir(root) and os.listdir(root)), "the runtime's state of the pod"
    assert not [m for m in open("/proc/mounts") if pod in m or cid in m]
    assert not cgroups_named(pod) and not cgroups_named(cid)
    assert not processes_with(cid) and not processes_with(pod) and not processes_with("sleep 4253")
    assert set(os.listdir("/run/netns")) == netns_before


def test_a_pod_outlives_a_containerd_restart(cri, handler):
    pod, config = cri.run_pod(handler, f"restart-{handler}")
    cid = cri.run_container(pod, config, "c", ["sleep", "4266"])
    cri.restart()
    pods = cri.rt.ListPodSandbox(cri.pb.ListPodSandboxRequest(), timeout=60).items
    assert [(p.id, p.state) for p in pods] == [(pod, cri.pb.SANDBOX_READY)]
    assert cri.status(cid).state == cri.pb.CONTAINER_RUNNING
    assert cri.exec_sync(cid, ["echo", "still here"]).stdout == b"still here\n"
    cri.remove_pod(pod)
    assert not processes_with("sleep 4266")


# The shim's contract with the runtime binary (containerd pkg/process, go-runc)

def test_the_shims_contract(tmp_path):
    log = tmp_path / "log.json"
    base = [HUSK, "--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json"]
    r = run([*base, "kill", "nosuch", "9"])
    assert r.returncode == 1 and "does not exist" in r.stderr
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "does not exist" in last["msg"]
    assert last["time"][10] == "T" and last["time"].endswith("Z")  # RFC 3339
    assert run([*base, "delete", "--force", "nosuch"]).returncode == 0
    features = json.loads(run([HUSK, "features"], check=True).stdout)
    assert features["ociVersionMax"].startswith("1.")
