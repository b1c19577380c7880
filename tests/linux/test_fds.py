"""fd hygiene (CVE-2024-21626): only 0-2, --preserve-fds and LISTEN_FDS
reach the process; a cwd through a leaked fd is refused."""

import os
import subprocess

import pytest
from conftest import HUSK

pytestmark = pytest.mark.root


def husk_with_fd3(bundle, path, *args):
    """Run husk with fd 3 open on path and inheritable, as a caller leaks it."""
    return subprocess.run(["sh", "-c", 'exec "$0" "$@" 3<"$FD3"', HUSK, "--root", bundle.root, *args],
                          env=dict(os.environ, FD3=str(path)), capture_output=True, text=True, timeout=60)


def test_leaked_fd_does_not_reach_the_container(bundle):
    # containerd's shim leaks its listening socket as fd 3 into create.
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    r = husk_with_fd3(bundle, "/etc/hostname", "run", "--bundle", bundle.path, "c1")
    assert r.returncode == 0, r.stderr
    import json
    assert [f["fd"] for f in json.loads(r.stdout)["fds"]] == [0, 1, 2]


def test_preserve_fds_passes_fd_3(bundle, tmp_path):
    secret = tmp_path / "passed"
    secret.write_text("hello through fd 3")
    bundle.config["process"]["args"] = ["cat", "/proc/self/fd/3"]
    bundle.save()
    r = husk_with_fd3(bundle, secret, "run", "--preserve-fds", "1", "--bundle", bundle.path, "c1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello through fd 3"


def test_socket_activation_passes_the_listen_fds(bundle, tmp_path):
    """systemd's LISTEN_FDS for husk's own pid: those fds reach the
    process as 3..3+N-1, --preserve-fds ones after them (runc's order)."""
    (tmp_path / "listen").write_text("from systemd")
    (tmp_path / "preserved").write_text("preserved")
    bundle.config["process"]["args"] = ["sh", "-c", "cat /proc/self/fd/3; echo; cat /proc/self/fd/4"]
    bundle.save()
    r = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@" 3<"$FD3" 4<"$FD4"', HUSK,
                        "--root", bundle.root, "run", "--preserve-fds", "1", "--bundle", bundle.path, "c1"],
                       env=dict(os.environ, FD3=str(tmp_path / "listen"), FD4=str(tmp_path / "preserved")),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from systemd\npreserved"


@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_cwd_through_a_leaked_fd_is_refused(bundle, fd):
    bundle.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
    r = bundle.run("/checker", "report")
    if r.code == 0:  # no such fd in the process: then cwd must still be inside the root
        assert r.json()["cwd"].startswith("/")
        assert r.json()["cwd"] != f"/proc/self/fd/{fd}"
    else:
        assert "chdir" in r.err or "cwd" in r.err


def test_helper_is_not_dumpable_target(bundle):
    # The process that runs is the user's program, not husk-init.
    r = bundle.run("readlink", "/proc/self/exe")
    assert r.out.strip() == "/bin/busybox"
