"""process: user, groups, umask, env, cwd, rlimits, capabilities,
noNewPrivileges, oomScoreAdj - as the process sees them."""

import pytest

pytestmark = pytest.mark.root


def caps_mask(names):
    from runtime.core.linux.constants import CAP_NUMBERS
    return sum(1 << CAP_NUMBERS[n] for n in names)


def test_user_groups_and_umask(bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 65534], "umask": 0o027}
    seen = bundle.report()
    assert (seen["uid"], seen["euid"], seen["gid"], seen["egid"]) == (1000, 1000, 1001, 1001)
    assert sorted(seen["groups"]) == [5, 65534]
    assert seen["umask"] == "0027"


def test_default_umask_is_0022(bundle):
    assert bundle.report()["umask"] == "0022"


def test_env_and_cwd(bundle):
    bundle.config["process"]["env"] = ["PATH=/bin", "HELLO=world"]
    bundle.config["process"]["cwd"] = "/tmp/work/dir"
    seen = bundle.report()
    assert seen["env"] == ["PATH=/bin", "HELLO=world"]
    assert seen["cwd"] == "/tmp/work/dir" or seen["cwd"] == "/tmp/work/dir"


def test_capability_sets(bundle):
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["capabilities"] = {
        "bounding": caps + ["CAP_SYS_TIME"], "effective": caps, "permitted": caps,
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}
    seen = bundle.report()["caps"]
    assert int(seen["CapBnd"], 16) == caps_mask(caps + ["CAP_SYS_TIME"])
    assert int(seen["CapEff"], 16) == caps_mask(caps)
    assert int(seen["CapPrm"], 16) == caps_mask(caps)
    assert int(seen["CapInh"], 16) == caps_mask(["CAP_KILL"])
    assert int(seen["CapAmb"], 16) == caps_mask(["CAP_KILL"])


def test_capabilities_survive_a_non_root_user(bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    caps = ["CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                                "inheritable": caps, "ambient": caps}
    seen = bundle.report()
    assert seen["uid"] == 1000
    assert int(seen["caps"]["CapEff"], 16) == caps_mask(caps)


def test_default_spec_capabilities_and_no_new_privs(bundle):
    seen = bundle.report()
    expected = caps_mask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    assert int(seen["caps"]["CapBnd"], 16) == expected
    assert int(seen["caps"]["CapInh"], 16) == 0
    assert seen["no_new_privs"] == 1


def test_no_new_privileges_off(bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    assert bundle.report()["no_new_privs"] == 0


def test_rlimits(bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
                                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    limits = bundle.report()["rlimits"]
    assert limits["7"] == [512, 2048]
    assert limits["4"] == [0, 0]


def test_oom_score_adj(bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    assert bundle.run("cat", "/proc/self/oom_score_adj").out.strip() == "500"


def test_sysctl_in_the_container_namespace(bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1000"}
    r = bundle.run("cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni")
    assert r.out.split() == ["1", "1000"]


def test_process_is_a_session_leader(bundle):
    seen = bundle.report()
    assert seen["sid"] == seen["pid"]


def test_path_lookup_uses_the_container_path(bundle):
    bundle.config["process"]["env"] = ["PATH=/nowhere:/bin"]
    assert bundle.run("true").code == 0
