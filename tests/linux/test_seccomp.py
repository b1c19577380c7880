"""linux.seccomp: the filter is in force from the first instruction of
the user's program, for create and for exec."""

import pytest

pytestmark = pytest.mark.root


def profile(**extra):
    p = {"defaultAction": "SCMP_ACT_ALLOW",
         "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    p.update(extra)
    return p


def test_denied_syscall_gets_the_errno(bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["seccomp"] = profile()
    r = bundle.run("mkdir", "/x")
    assert r.code != 0 and "not implemented" in r.err.lower()  # ENOSYS = 38
    assert bundle.report(cid="c2")["seccomp"] == "2"  # SECCOMP_MODE_FILTER


@pytest.mark.parametrize("nnp", [True, False])
def test_filter_with_and_without_no_new_privs(bundle, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = profile()
    assert bundle.report()["seccomp"] == "2"


def test_argument_conditions(bundle):
    # personality(0) allowed, anything else EPERM - as podman's profile does.
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]}]}
    bundle.config["linux"]["personality"] = {"domain": "LINUX"}  # personality(0) in husk-init
    assert bundle.run("true").code == 0
    r = bundle.run("setarch", "i686", "true", cid="c2")  # personality(PER_LINUX32)
    assert r.code != 0


def test_unknown_syscall_names_are_skipped(bundle):
    bundle.config["linux"]["seccomp"] = profile(syscalls=[
        {"names": ["no_such_syscall_anywhere", "mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert bundle.run("true").code == 0


def test_bad_profile_names_the_field(bundle):
    bundle.config["linux"]["seccomp"] = profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_MAYBE"}])
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "linux.seccomp.syscalls[0].action" in r.err


def test_exec_gets_the_containers_filter(bundle):
    bundle.config["linux"]["seccomp"] = profile()
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
    try:
        r = bundle.husk("exec", "c1", "/checker", "report")
        assert r.code == 0, r.err
        assert r.json()["seccomp"] == "2"
    finally:
        bundle.husk("delete", "--force", "c1", check=True)


@pytest.mark.parametrize("nnp", [False, True])
def test_a_filter_that_denies_getcwd_still_runs(bundle, nnp):
    """runtime-tools' linux_seccomp shape: getcwd denied.  husk-init's check
    of process.cwd (CVE-2024-21626) runs before the user's filter, so the
    container runs; its program then sees the filter's errno."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["process"]["cwd"] = "/tmp"
    bundle.config["linux"]["seccomp"] = profile(
        syscalls=[{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])
    r = bundle.run("/checker", "report")
    assert r.code == 0, r.err
    report = r.json()
    assert report["seccomp"] == "2" and report["cwd"] == ""  # getcwd fails under the filter
    assert bundle.run("readlink", "/proc/self/cwd", cid="c2").out == "/tmp\n"  # yet the cwd is /tmp
