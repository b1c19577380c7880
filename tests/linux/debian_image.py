"""A larger, real image: Debian minbase from debootstrap, split into three
layers the way a Dockerfile would make them:

    0  the system without /usr/share
    1  /usr/share
    2  changes: files deleted (whiteouts), /usr/share/doc replaced
       (an opaque directory), a file rewritten, a directory added

The debootstrap tree is cached (HUSK_TEST_CACHE, default
/var/cache/husk-test); layouts are rebuilt from it per test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tarbuild import Layout, entry, layer

CACHE = os.environ.get("HUSK_TEST_CACHE", "/var/cache/husk-test")
MIRROR = os.environ.get("HUSK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"


def minbase(include: tuple[str, ...] = ()) -> str:
    """The debootstrap tree (with the INCLUDE packages too), cached."""
    root = os.path.join(CACHE, f"debian-{SUITE}-minbase" + "".join(f"-{p}" for p in include))
    if os.path.isdir(root):
        return root
    tmp = root + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(CACHE, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", *([f"--include={','.join(include)}"] if include else []),
                    SUITE, tmp, MIRROR], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.rename(tmp, root)
    return root


def gcc_layout(dest: str) -> str:
    """Debian minbase with gcc and libc6-dev, one layer: a base image for
    Dockerfiles that compile (husk build, podman build)."""
    lay = Layout(dest)
    mdesc, _ = lay.image([_tar(minbase(("gcc", "libc6-dev")), ".")], compression="",
                         config={"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
    lay.tag(mdesc, "latest")
    return lay.save()


def redis_layout(dest: str) -> str:
    """Debian minbase with redis-server, one layer: a real database server
    made from Debian's packages (the docker compose test's db service)."""
    lay = Layout(dest)
    mdesc, _ = lay.image([_tar(minbase(("redis-server",)), ".")], compression="",
                         config={"Cmd": ["redis-server", "--protected-mode", "no"], "ExposedPorts": {"6379/tcp": {}},
                                 "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
    lay.tag(mdesc, "latest")
    return lay.save()


def _tar(root: str, *args: str) -> bytes:
    return subprocess.run(["tar", "-C", root, "--numeric-owner", "--format=posix", "--xattrs",
                           "--xattrs-include=*", "--pax-option=delete=atime,delete=ctime", "-cf", "-", *args],
                          check=True, capture_output=True).stdout


def changes_layer() -> bytes:
    return layer([
        entry("etc/.wh.motd"),
        entry("usr/bin/.wh.rgrep"),
        entry("usr/share/doc/.wh..wh..opq"),
        entry("usr/share/doc/README.husk", data=b"docs were replaced by this layer\n"),
        entry("etc/debian_version", data=b"husk\n"),
        entry("srv/data", "dir", mode=0o750, uid=33, gid=33),
        entry("srv/data/file", data=b"x" * 10000, uid=33, gid=33, mode=0o640),
    ])


def build_layout(dest: str, compression: str = "gzip") -> str:
    """An OCI layout at DEST tagged `latest`."""
    root = minbase()
    layers = [_tar(root, "--exclude=./usr/share", "."), _tar(root, "./usr/share"), changes_layer()]
    lay = Layout(dest)
    compressed = None
    if compression == "gzip":
        # gzip -1 from the command line: much faster than Python's level 9.
        compressed = [subprocess.run(["gzip", "-1", "-n"], input=t, check=True, capture_output=True).stdout
                      for t in layers]
    mdesc, _ = lay.image(layers, compression="" if compressed else compression, compressed=compressed,
                         layer_media_type="application/vnd.oci.image.layer.v1.tar+gzip" if compressed else None,
                         config={"Cmd": ["bash"]})
    lay.tag(mdesc, "latest")
    return lay.save()
