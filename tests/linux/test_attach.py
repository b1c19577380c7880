"""`husk attach` through husk-monitor's attach socket: a detached
container's stdout and stderr arrive on ours, our stdin reaches a
container run with -d -i (and its end closes the container's), and
attach exits with the container's code.  The log keeps everything too."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def h(busybox_env):
    return busybox_env


def attach(h, *args, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([h.husk_bin, "--root", h.state, "--storage-root", h.store, "attach", *args],
                          env=h.env(), input=input, capture_output=True, timeout=60)


def wait_for_clients(h, name: str, n: int) -> None:
    """Until the container's monitor holds N attach clients (its sockets
    besides the listening one)."""
    cid = h("inspect", "-f", "{{.Id}}", name, check=True).out.strip()
    with open(os.path.join(h.store, "containers", cid, "monitor.pid")) as f:
        pid = f.read().split()[0]
    deadline = time.monotonic() + 60  # a guard against a hang, not a measure of speed
    while time.monotonic() < deadline:
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        if sum(link.startswith("socket:") for link in fds) - 1 >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the monitor of {name} never held {n} attach clients")


def test_attach_relays_stdin_stdout_stderr_and_the_exit_code(h):
    # The container waits for our line, so nothing it writes comes before we attach.
    r = h("run", "-d", "-i", "--name", "talk", "--pull=never", "bb", "sh", "-c",
          'read line; echo "got $line"; echo "to stderr" >&2; cat; exit 3')
    assert r.code == 0, r.err
    p = attach(h, "talk", input=b"hello\nmore input\n")
    assert p.returncode == 3, p.stderr
    assert p.stdout == b"got hello\nmore input\n"
    assert p.stderr == b"to stderr\n"
    logs = h("logs", "talk", check=True)
    assert logs.out == "got hello\nmore input\n" and logs.err == "to stderr\n"
    assert h("inspect", "-f", "{{.State.ExitCode}}", "talk", check=True).out.strip() == "3"


def test_attach_no_stdin_leaves_the_containers_stdin_open(h):
    h("run", "-d", "-i", "--name", "wait", "--pull=never", "bb", "sh", "-c", "read line; echo got $line",
      check=True)
    p = subprocess.Popen([h.husk_bin, "--root", h.state, "--storage-root", h.store, "attach", "--no-stdin", "wait"],
                         env=h.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_clients(h, "wait", 1)
    # The container is still reading (our /dev/null did not close its stdin): a second client ends it.
    q = attach(h, "wait", input=b"second\n")
    out, err = p.communicate(timeout=60)
    assert q.returncode == 0 and q.stdout == b"got second\n", q.stderr
    assert p.returncode == 0 and out == b"got second\n", err


def test_attach_to_a_stopped_container_is_refused(h):
    h("run", "--name", "done", "--pull=never", "bb", "true", check=True)
    p = attach(h, "done")
    assert p.returncode != 0 and p.stderr.decode().strip() == "husk: attach: container done is not running " \
                                                                 "(start it with husk start)"
    r = h("run", "-d", "-t", "--pull=never", "bb", "true")
    assert r.code != 0 and "--detach" in r.err, r.err
    assert len(h("ps", "-a", "-q", check=True).out.split()) == 1
