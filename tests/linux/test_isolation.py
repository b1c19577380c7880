"""`husk isolation`: what isolates a running process, read from the kernel
for a container of husk's (OCI and image), for a process on the host, and
for two side by side; what it reports is checked against what the
container was configured with and against /proc itself."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from test_docker_lifecycle import detach, inspect

pytestmark = pytest.mark.root

CONTAINER_NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "cgroup")


def findings(report: dict) -> dict[tuple[str, str], dict]:
    return {(f["area"], f["name"]): f for f in report["findings"]}


def isolation(husk, *args) -> list[dict]:
    r = husk("isolation", "--format", "json", *args)
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.fixture
def running(bundle):
    """An OCI container of husk's, started, waiting for a signal."""
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "iso", check=True)
    bundle.husk("start", "iso", check=True)
    yield bundle
    bundle.husk("delete", "--force", "iso", check=True)


@pytest.fixture
def host_process():
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_an_oci_containers_isolation_is_what_its_config_asked(running):
    config = running.config
    [report] = isolation(running.husk, "iso")
    pid = json.loads(running.husk("state", "iso", check=True).out)["pid"]
    assert report["pid"] == pid
    f = findings(report)
    for ns in CONTAINER_NAMESPACES:
        assert f["namespace", ns]["own"] is True, ns
        assert f["namespace", ns]["value"] == os.readlink(f"/proc/{pid}/ns/{ns}")
    assert f["namespace", "user"]["own"] is False  # the config makes no user namespace
    bounding = config["process"]["capabilities"]["bounding"]
    assert f["capabilities", "CapBnd"]["value"].startswith(f"{len(bounding)} of ")
    assert f["capabilities", "CapBnd"]["own"] is True
    assert f["security", "NoNewPrivs"]["value"] == ("1" if config["process"].get("noNewPrivileges") else "0")
    assert f["mounts", "/"]["own"] is True and f["mounts", "propagation of /"]["own"] is True
    # Each path the config masks or makes read-only, where this kernel has it.
    masked = set(f["mounts", "masked paths"]["value"].split(", "))
    assert masked == {p for p in config["linux"]["maskedPaths"] if os.path.exists(p)}
    readonly = set(f["mounts", "read-only paths"]["value"].split(", "))
    assert readonly == {p for p in config["linux"]["readonlyPaths"] if os.path.exists(p)}
    assert config["linux"]["cgroupsPath"] in f["cgroup", "cgroups"]["value"]
    devices = f["devices", "/dev"]["value"]
    assert "null (1:3)" in devices and "vda" not in devices  # the default devices, not the host's


def test_a_host_process_shares_everything(running, host_process):
    [report] = isolation(running.husk, "--pid", str(host_process))
    f = findings(report)
    for ns in (*CONTAINER_NAMESPACES, "user"):
        assert f["namespace", ns]["own"] is False, ns
    assert f["mounts", "/"]["own"] is False
    assert "masked paths" not in {name for _, name in f}


def test_two_side_by_side(running, host_process):
    r = running.husk("isolation", "iso", "--pid", str(host_process))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "iso" in lines[0] and f"pid {host_process}" in lines[0]
    net = next(line for line in lines if line.split()[:2] == ["namespace", "net"])
    assert net.split()[2] == "own" and "host's" in net.split()


def test_an_image_container_by_name(husk_env, layouts):
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    detach(husk_env, "--name", "isolated", "--memory", "64m", "--pids-limit", "50", "bb", "sleep", "1000")
    try:
        [report] = isolation(husk_env, "isolated")
        assert report["pid"] == inspect(husk_env, "isolated")["State"]["Pid"]
        f = findings(report)
        assert f["namespace", "net"]["own"] is True
        limits = {name: x["value"] for (area, name), x in f.items() if area == "cgroup"}
        assert limits.get("memory.max", limits.get("memory.limit_in_bytes")) == str(64 << 20)
        assert limits["pids.max"] == "50"
    finally:
        husk_env("rm", "-f", "isolated", check=True)


def test_what_is_not_there_is_one_line(running):
    for args, words in ((("nosuch",), "nosuch"), (("--pid", "999999999"), "no process 999999999"),
                        ((), "name one or two"), (("iso", "iso", "iso"), "name one or two")):
        r = running.husk("isolation", *args)
        assert r.code == 1 and words in r.err and r.err.count("\n") == 1, (args, r.err)
