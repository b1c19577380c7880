"""kill: names and numbers, --all, and what is refused."""

import os
import time

import pytest
from test_lifecycle import wait_status

pytestmark = pytest.mark.root


def start_waiting(bundle, args=("/checker", "wait-signal"), cid="c1"):
    bundle.config["process"]["args"] = list(args)
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, cid, check=True)
    bundle.husk("start", cid, check=True)
    return bundle.husk("state", cid).json()["pid"]


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "10"])
def test_signal_reaches_the_process(bundle, sig):
    bundle.config["process"]["args"] = ["sh", "-c", "/checker wait-signal > /tmp/out"]
    bundle.config["root"]["readonly"] = False
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.husk("start", "c1", check=True)
    out = os.path.join(bundle.rootfs, "tmp", "out")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "ready" not in (open(out).read() if os.path.exists(out) else ""):
        time.sleep(0.02)
    bundle.husk("kill", "c1", sig, check=True)
    wait_status(bundle, "c1", "stopped")
    assert open(out).read().split() == ["ready", "USR1"]
    bundle.husk("delete", "c1", check=True)


def test_default_signal_is_term(bundle):
    start_waiting(bundle, args=("/checker", "trap-term", "0"))
    time.sleep(0.2)
    bundle.husk("kill", "--all", "c1", check=True)  # runc's form without a signal: --all
    wait_status(bundle, "c1", "stopped")
    bundle.husk("delete", "c1", check=True)


def test_kill_with_one_operand_is_dockers_form(bundle):
    """`kill NAME` is docker's kill of an image container, whatever is on
    disk: an OCI container of that id is not signalled, and the error
    says how runc's form goes."""
    start_waiting(bundle, args=("/checker", "trap-term", "0"))
    r = bundle.husk("kill", "c1")
    assert r.code == 1 and "container 'c1' does not exist" in r.err and "husk kill c1 TERM" in r.err, r.err
    assert bundle.husk("state", "c1").json()["status"] == "running"
    bundle.husk("kill", "c1", "KILL", check=True)
    wait_status(bundle, "c1", "stopped")
    bundle.husk("delete", "c1", check=True)


def test_kill_all_signals_every_process(bundle):
    # No pid namespace: killing pid 1 would not take the others with it.
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    start_waiting(bundle, args=("sh", "-c", "sleep 100 & sleep 100 & wait"))
    bundle.husk("kill", "--all", "c1", "KILL", check=True)
    wait_status(bundle, "c1", "stopped")
    bundle.husk("delete", "c1", check=True)


def test_kill_of_stopped_container_fails(bundle):
    start_waiting(bundle, args=("/checker", "exit", "0"))
    wait_status(bundle, "c1", "stopped")
    r = bundle.husk("kill", "c1", "KILL")
    assert r.code != 0 and "not running" in r.err
    assert bundle.husk("state", "c1").json()["status"] == "stopped"
    bundle.husk("delete", "c1", check=True)


def test_kill_of_created_container_works(bundle):
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.husk("kill", "c1", "KILL", check=True)
    wait_status(bundle, "c1", "stopped")
    bundle.husk("delete", "c1", check=True)


def test_bad_signal_is_refused(bundle):
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    r = bundle.husk("kill", "c1", "NOTASIGNAL")
    assert r.code != 0 and "NOTASIGNAL" in r.err
    assert bundle.husk("state", "c1").json()["status"] == "created"
    bundle.husk("delete", "--force", "c1", check=True)


def test_kill_of_unknown_container_fails(bundle):
    r = bundle.husk("kill", "ghost", "KILL")
    assert r.code != 0 and "ghost" in r.err


def test_kill_of_a_stopped_container_says_containerds_words(bundle):
    """containerd's shim retries a kill until its error says "container not
    running" (or "does not exist"); a stopped container's kill must say it."""
    bundle.config["process"]["args"] = ["/checker", "exit", "0"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.husk("start", "c1", check=True)
    wait_status(bundle, "c1", "stopped")
    r = bundle.husk("kill", "c1", "15")
    assert r.code == 1 and "container not running" in r.err, r.err
    assert bundle.husk("state", "c1").json()["status"] == "stopped"
    bundle.husk("delete", "c1", check=True)


def test_kill_all_after_the_init_exited_kills_what_is_left(bundle):
    """A container sharing the host's pid namespace: its init exits and
    leaves a child in the container's cgroup.  runc's kill --all then
    kills that child and succeeds (what the shim sends when a pod's
    shared pid namespace outlives a container)."""
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    bundle.config["process"]["args"] = ["sh", "-c", "sleep 1000 & echo $! > /tmp/child"]
    bundle.config["root"]["readonly"] = False
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.husk("start", "c1", check=True)
    wait_status(bundle, "c1", "stopped")
    child = int(open(os.path.join(bundle.rootfs, "tmp", "child")).read())
    assert os.path.exists(f"/proc/{child}")
    bundle.husk("kill", "--all", "c1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and not _zombie(child):
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{child}") or _zombie(child)
    bundle.husk("delete", "c1", check=True)


def _zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
