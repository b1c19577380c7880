"""`husk run IMAGE`: the image config and docker's flags, read back from
inside the container; exit codes; what --rm and a failed run leave."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env.load_busybox()
    husk_env("load", "-q", "--name", "example/app", "-i", layouts["entrypoint"], check=True)
    return husk_env


def run(h, *args, **kw):
    return h("run", "--rm", "--pull=never", *args, **kw)


def test_image_config_is_applied(h):
    r = run(h, "example/app")
    assert (r.code, r.out) == (0, "app says default args\n"), r.err
    r = run(h, "example/app", "given")
    assert r.out == "app says given\n"
    r = run(h, "--entrypoint", "sh", "example/app", "-c", "id -u; id -g; id -G; pwd; echo $GREETING $HOME")
    assert r.out.split("\n")[:5] == ["1000", "1000", "1000 50", "/opt/app", "from-image /nowhere"], r.err


def test_env_workdir_user_hostname(h, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nGREETING=file\n")
    r = run(h, "-e", "GREETING=flag", "--env-file", str(env_file), "-w", "/tmp", "-u", "nobody",
            "--hostname", "box", "--entrypoint", "", "example/app",
            "sh", "-c", "echo $GREETING $FROM_FILE; pwd; id -u; hostname; echo $HOSTNAME")
    assert r.out.split("\n")[:5] == ["flag yes", "/tmp", "65534", "box", "box"], r.err
    r = run(h, "-u", "0:50", "busybox", "sh", "-c", "id -u; id -g")
    assert r.out == "0\n50\n"
    r = run(h, "-u", "nosuchuser", "busybox", "true")
    assert r.code == 125 and "nosuchuser" in r.err and "/etc/passwd" in r.err


def test_exit_codes_like_docker(h):
    assert run(h, "busybox", "sh", "-c", "exit 3").code == 3
    r = run(h, "busybox", "/no/such/binary")
    assert r.code == 127 and "/no/such/binary" in r.err
    r = run(h, "busybox", "/etc/passwd")
    assert r.code == 126
    r = run(h, "no-such-image-here")
    assert r.code == 125 and "not in the store" in r.err
    r = run(h, "-w", "relative", "busybox", "true")
    assert r.code == 125 and "workdir" in r.err


def test_docker_default_capabilities_and_no_new_privs_off(h):
    r = run(h, "busybox", "sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    fields = dict(line.split(":\t") for line in r.out.splitlines())
    assert fields["CapEff"] == "00000000a80425fb", "docker's 14 default capabilities"
    assert fields["NoNewPrivs"] == "0"


def test_stdin_only_with_i(h):
    assert run(h, "busybox", "cat", input="ignored\n").out == ""
    assert run(h, "-i", "busybox", "cat", input="piped\n").out == "piped\n"


def test_read_only_rootfs(h):
    r = run(h, "--read-only", "busybox", "sh", "-c", "touch /x 2>&1; touch /tmp/y 2>&1 && echo tmp-writable")
    assert "Read-only file system" in r.out


def test_changes_stay_in_the_container_not_the_image(h):
    r = h("run", "--name", "writer", "--pull=never", "busybox", "sh", "-c", "echo changed > /etc/os-release")
    assert r.code == 0, r.err
    upper = os.path.join(h.store, "containers")
    (cid,) = os.listdir(upper)
    assert open(os.path.join(upper, cid, "upper", "etc", "os-release")).read() == "changed\n"
    assert run(h, "busybox", "cat", "/etc/os-release").out.startswith("NAME=")
    listing = json.loads(h("containers", "--format", "json", check=True).out)
    assert [(c["name"], c["status"]) for c in listing] == [("writer", "exited (0)")]
    r = h("run", "--name", "writer", "--pull=never", "busybox", "true")
    assert r.code == 125 and "already in use" in r.err
    h("rm", "writer", check=True)
    assert os.listdir(upper) == []


def test_rm_leaves_nothing(h):
    assert run(h, "busybox", "true").code == 0
    assert os.listdir(os.path.join(h.store, "containers")) == []


def test_vfs_driver_copies_layers_with_whiteouts(h, layouts):
    h("load", "-q", "--name", "example/layers", "-i", layouts["layers"], check=True)
    r = run(h, "--storage-driver", "vfs", "example/layers", "sh", "-c",
            "test -e /etc/os-release || echo deleted; ls -A /home; grep -c overlay /proc/self/mountinfo")
    assert r.out.split("\n")[:3] == ["deleted", "fresh", "0"], r.err


def test_overlay_mount_costs_the_same_for_any_image_size(h):
    """The rootfs is one overlay mount over the shared layer directories:
    nothing is copied per container."""
    r = run(h, "busybox", "sh", "-c", "grep ' / ' /proc/self/mountinfo")
    assert " overlay " in r.out and "lowerdir" in r.out


def test_tty(h):
    import pty
    import subprocess

    master, slave = pty.openpty()
    p = subprocess.Popen([h.husk_bin, "--root", h.state, "--storage-root", h.store, "run", "--rm", "-t",
                          "--pull=never", "busybox", "sh", "-c", "tty; echo $TERM"],
                         stdin=slave, stdout=slave, stderr=slave, env=h.env())
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    assert p.wait(30) == 0
    os.close(master)
    assert b"/dev/pts/0" in out and b"xterm" in out
