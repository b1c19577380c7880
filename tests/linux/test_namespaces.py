"""linux.namespaces: new ones, joined ones, user/time/cgroup specifics,
hostname and domainname - read back from /proc/self/ns inside."""

import os

import pytest

pytestmark = pytest.mark.root


def host_ns(name):
    return os.readlink(f"/proc/self/ns/{name}")


def test_new_namespaces_differ_from_the_host(bundle):
    seen = bundle.report()["namespaces"]
    for ns in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert seen[ns] != host_ns(ns), ns
    assert seen["user"] == host_ns("user")


def test_pid_namespace_makes_the_process_pid_1(bundle):
    seen = bundle.report()
    assert seen["pid"] == 1
    assert seen["ppid"] == 0


def test_without_a_namespace_the_host_one_is_shared(bundle):
    bundle.config["linux"]["namespaces"] = [{"type": "mount"}, {"type": "pid"}]
    bundle.config.pop("hostname")
    seen = bundle.report()["namespaces"]
    assert seen["net"] == host_ns("net")
    assert seen["uts"] == host_ns("uts")


def test_hostname_and_domainname(bundle):
    bundle.config["hostname"] = "box-one"
    bundle.config["domainname"] = "example.test"
    seen = bundle.report()
    assert seen["hostname"] == "box-one"
    assert seen["domainname"] == "example.test"


def test_join_namespaces_by_path(bundle):
    bundle.config["hostname"] = "first"
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "first", check=True)
    pid = bundle.husk("state", "first").json()["pid"]
    try:
        bundle.config.pop("hostname")
        first_cgroup = bundle.config["linux"]["cgroupsPath"]
        bundle.config["linux"]["cgroupsPath"] = first_cgroup + "-second"
        bundle.config["linux"]["namespaces"] = [
            {"type": "mount"}, {"type": "pid"},
            {"type": "network", "path": f"/proc/{pid}/ns/net"},
            {"type": "uts", "path": f"/proc/{pid}/ns/uts"},
        ]
        seen = bundle.report(cid="second")
        assert seen["namespaces"]["net"] == os.readlink(f"/proc/{pid}/ns/net")
        assert seen["hostname"] == "first"
    finally:
        bundle.config["linux"]["cgroupsPath"] = first_cgroup
        bundle.husk("delete", "--force", "first", check=True)


def test_user_namespace_with_mappings(bundle):
    # The container's root is host uid 100000: it must be able to reach its rootfs.
    d = bundle.path
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o011)
        d = os.path.dirname(d)
    os.chown(bundle.rootfs, 100000, 100000)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # sysfs of the host's network namespace cannot be mounted from a user namespace without one.
    r = bundle.run("cat", "/proc/self/uid_map", "/proc/self/gid_map")
    assert r.code == 0, r.err
    assert r.out.split() == ["0", "100000", "65536", "0", "100000", "65536"]
    seen = bundle.report(cid="c2")
    assert seen["uid"] == 0 and seen["namespaces"]["user"] != host_ns("user")


def test_time_namespace_offsets(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 1000, "nanosecs": 0}}
    r = bundle.run("cat", "/proc/uptime")
    assert r.code == 0, r.err
    assert float(r.out.split()[0]) > 86400 * 1000


def test_cgroup_namespace_hides_the_host_path(bundle):
    r = bundle.run("cat", "/proc/self/cgroup")
    assert r.code == 0, r.err
    for line in r.out.splitlines():
        assert line.split(":", 2)[2] == "/", line


def test_container_sees_only_its_own_cgroup(bundle):
    # `read` is a shell builtin: no second process joins the cgroup to read it.
    # v1 shows the pids hierarchy under pids/, v2 the container's own cgroup at the top.
    bundle.config["process"]["args"] = ["sh", "-c", "f=/sys/fs/cgroup/pids/cgroup.procs; [ -e $f ] || "
                                        "f=/sys/fs/cgroup/cgroup.procs; while read p; do echo $p; done < $f"]
    r = bundle.run()
    assert r.code == 0, r.err
    assert r.out.split() == ["1"]
