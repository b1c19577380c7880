"""`husk cp` between the host and image containers, running and stopped,
read back inside the container (a copy in) and on the host (a copy out).
The container's symlinks are hostile input: a link to a host path must
resolve inside the container's root, both ways (CVE-2018-15664's shape).
The husk_env fixture checks nothing is left behind (mounts included)."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def h(busybox_env):
    return busybox_env


def detach(h, *args) -> str:
    r = h("run", "-d", "--pull=never", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def sh(h, name: str, script: str) -> str:
    r = h("exec", name, "sh", "-c", script)
    assert r.code == 0, r.err
    return r.out


def write(path, text: str, mode: int = 0o644) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def test_copy_in_a_file_and_a_tree_to_a_running_container(h, tmp_path):
    detach(h, "--name", "web", "bb", "sleep", "1000")
    write(tmp_path / "index.html", "<h1>hi</h1>\n", 0o640)
    os.chown(tmp_path / "index.html", 1234, 1234)
    tree = tmp_path / "site"
    (tree / "css").mkdir(parents=True)
    write(tree / "css" / "a.css", "body{}\n")
    os.symlink("css/a.css", tree / "main.css")

    h("cp", str(tmp_path / "index.html"), "web:/tmp/", check=True)           # into a directory
    h("cp", str(tmp_path / "index.html"), "web:/tmp/renamed.html", check=True)  # a new name
    h("cp", str(tree), "web:/srv", check=True)                                # a missing DEST: the tree itself
    h("cp", str(tree), "web:/tmp", check=True)                                # a directory: under its name
    h("cp", "-a", str(tmp_path / "index.html"), "web:/tmp/kept.html", check=True)
    out = sh(h, "web", "cat /tmp/index.html /tmp/renamed.html; stat -c '%a %u:%g' /tmp/index.html /tmp/kept.html;"
                       "cat /srv/css/a.css /tmp/site/main.css; readlink /srv/main.css; ls -a /tmp | grep -c husk-cp; true")
    assert out.split("\n") == ["<h1>hi</h1>", "<h1>hi</h1>", "640 0:0", "640 1234:1234", "body{}", "body{}",
                               "css/a.css", "0", ""]


def test_copy_out_of_a_stopped_container_keeps_links_as_links(h, tmp_path):
    r = h("run", "--name", "done", "--pull=never", "bb", "sh", "-c",
          "mkdir -p /out/sub && echo result > /out/sub/r.txt && chmod 600 /out/sub/r.txt && ln -s sub/r.txt /out/link")
    assert r.code == 0, r.err
    h("cp", "done:/out", str(tmp_path / "copy"), check=True)
    assert (tmp_path / "copy" / "sub" / "r.txt").read_text() == "result\n"
    assert oct((tmp_path / "copy" / "sub" / "r.txt").stat().st_mode & 0o777) == "0o600"
    assert os.readlink(tmp_path / "copy" / "link") == "sub/r.txt"
    h("cp", "done:/out/.", str(tmp_path / "copy"), check=True)  # contents merge into an existing directory
    h("cp", "done:/out/sub/r.txt", str(tmp_path), check=True)
    assert (tmp_path / "r.txt").read_text() == "result\n"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".husk-cp")]
    # the stopped container's overlay was mounted for the copy only
    assert not os.path.ismount(os.path.join(h.store, "containers", h("inspect", "-f", "{{.Id}}", "done",
                                                                      check=True).out.strip(), "rootfs"))
    h("rm", "done", check=True)


def test_a_containers_symlinks_resolve_inside_its_root(h, tmp_path):
    """A link to /etc/shadow names the container's own /etc/shadow; a link
    to a host directory used as DEST writes inside the container."""
    secret = tmp_path / "host-secret"
    write(secret, "host only\n", 0o600)
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    detach(h, "--name", "evil", "bb", "sh", "-c",
           f"echo container-passwd > /etc/passwd.c; ln -s /etc/passwd.c /steal; ln -s {secret} /steal2;"
           f" mkdir -p {hostdir}; ln -s {hostdir} /drop; ln -s ../../../../../../.. /up; sleep 1000")
    h("cp", "-L", "evil:/steal", str(tmp_path / "got"), check=True)
    assert (tmp_path / "got").read_text() == "container-passwd\n"
    r = h("cp", "-L", "evil:/steal2", str(tmp_path / "got2"))  # the host path does not exist in the container
    assert r.code != 0 and "no such file" in r.err and not (tmp_path / "got2").exists()
    h("cp", "evil:/steal2", str(tmp_path / "link2"), check=True)  # without -L: the link itself
    assert os.readlink(tmp_path / "link2") == str(secret)
    write(tmp_path / "payload", "dropped\n")
    h("cp", str(tmp_path / "payload"), "evil:/drop/", check=True)
    h("cp", str(tmp_path / "payload"), "evil:/up/tmp/", check=True)
    assert os.listdir(hostdir) == []  # the host's directory is untouched
    assert sh(h, "evil", f"cat {hostdir}/payload /tmp/payload") == "dropped\ndropped\n"


@pytest.mark.parametrize("src, dest, words", [
    ("nobody:/etc/passwd", "{tmp}/x", ["nobody"]),
    ("box:/no/such/file", "{tmp}/x", ["box:/no/such/file", "no such"]),
    ("box:/etc/passwd", "{tmp}/missing/dir/x", ["no such directory"]),
    ("{tmp}/nofile", "box:/tmp/", ["nofile", "no such file"]),
    ("{tmp}/f", "box:/no/such/dir/x", ["no such directory in the container"]),
    ("{tmp}/f", "{tmp}/g", ["CONTAINER:PATH"]),
    ("box:/tmp/fifo", "{tmp}/x", ["box:/tmp/fifo", "FIFO"]),
])
def test_bad_copies_name_the_path_and_leave_nothing(h, tmp_path, src, dest, words):
    detach(h, "--name", "box", "bb", "sh", "-c", "mkfifo /tmp/fifo; exec sleep 1000")
    sh(h, "box", "while [ ! -p /tmp/fifo ]; do sleep 0.05; done")
    write(tmp_path / "f", "f\n")
    before = sorted(os.listdir(tmp_path))
    r = h("cp", src.format(tmp=tmp_path), dest.format(tmp=tmp_path))
    assert r.code != 0
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err
    for w in words:
        assert w in r.err, r.err
    assert sorted(os.listdir(tmp_path)) == before
    assert sh(h, "box", "ls -a /tmp | grep -c husk-cp || true").strip() == "0"
