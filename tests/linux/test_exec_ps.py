"""exec joins a running container; ps lists its processes."""

import json

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def running(bundle):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
    yield bundle
    bundle.husk("delete", "--force", "c1")


def test_exec_returns_the_exit_code(running):
    assert running.husk("exec", "c1", "/checker", "exit", "42").code == 42


def test_exec_joins_every_namespace_and_the_security_setup(running):
    init_pid = running.husk("state", "c1").json()["pid"]
    r = running.husk("exec", "c1", "/checker", "report")
    assert r.code == 0, r.err
    seen = r.json()
    for ns in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert seen["namespaces"][ns] == __import__("os").readlink(f"/proc/{init_pid}/ns/{ns}"), ns
    assert seen["pid"] != 1 and seen["hostname"] == "husk"
    assert seen["no_new_privs"] == 1
    assert [f["fd"] for f in seen["fds"]] == [0, 1, 2]
    assert seen["dumpable"] == 1  # the exec'd program, not husk-init


def test_exec_flags(running):
    r = running.husk("exec", "--cwd", "/tmp", "-e", "EXTRA=1", "--user", "1000:1000", "c1", "/checker", "report")
    seen = r.json()
    assert seen["cwd"] == "/tmp" and "EXTRA=1" in seen["env"]
    assert (seen["uid"], seen["gid"]) == (1000, 1000)


def test_exec_process_file_and_detach(running, tmp_path):
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"args": ["/checker", "wait-signal"], "cwd": "/", "env": ["PATH=/bin"]}))
    pid_file = tmp_path / "exec.pid"
    r = running.husk("exec", "--process", str(proc), "--detach", "--pid-file", str(pid_file), "c1")
    assert r.code == 0, r.err
    pids = json.loads(running.husk("ps", "--format", "json", "c1").out)
    assert int(pid_file.read_text()) in pids and len(pids) == 2


def test_exec_missing_program_fails_clearly(running):
    r = running.husk("exec", "c1", "no-such-thing")
    assert r.code != 0 and "no-such-thing" in r.err


def test_ps_table(running):
    out = running.husk("ps", "c1").out
    assert "/checker wait-signal" in out


def test_exec_into_a_no_pivot_container(bundle):
    # After MS_MOVE + chroot the mount namespace's root is not the container's:
    # exec must take the init's root, not the namespace's.
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--no-pivot", "--detach", "--bundle", bundle.path, "c1", check=True)
    try:
        r = bundle.husk("exec", "c1", "/checker", "report")
        assert r.code == 0, r.err
        assert any(m["target"] == "/proc" for m in r.json()["mounts"])
    finally:
        bundle.husk("delete", "--force", "c1", check=True)
