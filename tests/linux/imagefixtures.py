"""Fixtures for the image tests: a private store and state root per test
with a leak check, the test images as OCI layouts, and real registries."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time

import pytest
import registry as registries
from tarbuild import Layout, entry, layer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUSYBOX_LAYOUT = os.path.join(REPO, "rootfs", "build", "oci")


class HuskEnv:
    def __init__(self, base: str) -> None:
        from conftest import HUSK

        self.husk_bin = HUSK
        self.store = os.path.join(base, "store")
        self.state = os.path.join(base, "state")
        self.home = os.path.join(base, "home")
        os.makedirs(self.home, exist_ok=True)

    def env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ, HOME=self.home, HUSK_PULL_BACKOFF="0.05")
        env.pop("REGISTRY_AUTH_FILE", None)
        env.pop("HUSK_STORAGE_ROOT", None)
        env.update(extra or {})
        return env

    def __call__(self, *args, input=None, timeout=300, env=None, check=False, store=None):
        """Run husk on this test's state and store; returns conftest.Result."""
        from conftest import run_husk

        argv = [self.husk_bin, "--root", self.state, "--storage-root", store or self.store, *args]
        return run_husk(argv, input=input, timeout=timeout, check=check, env=self.env(env),
                        **({} if input is not None else {"stdin": subprocess.DEVNULL}))

    def load_busybox(self) -> None:
        self("load", "-q", "--name", "busybox", "-i", BUSYBOX_LAYOUT, check=True)

    def names(self) -> dict:
        try:
            with open(os.path.join(self.store, "images.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def store_files(self, sub: str) -> list[str]:
        path = os.path.join(self.store, sub)
        out = []
        for dirpath, dirnames, filenames in os.walk(path):
            out += [os.path.relpath(os.path.join(dirpath, n), path) for n in filenames]
            if dirpath != path and dirpath.count(os.sep) - path.count(os.sep) >= 2:
                dirnames[:] = []
                out.append(os.path.relpath(dirpath, path))
        return sorted(out)


def network_leaks(h: HuskEnv) -> list[str]:
    """What a container's network may not leave: veths, namespaces,
    address allocations, nftables rules of containers."""
    found = []
    with open("/proc/net/dev") as f:
        found += [f"veth {line.split(':')[0].strip()}" for line in f if line.strip().startswith("veth")]
    from runtime.engine.network import scope

    for base in (scope.NETNS_BASE, "/run/husk/netns"):  # and where older husks kept them
        for key in os.listdir(base) if os.path.isdir(base) else []:
            d = os.path.join(base, key)
            found += [f"netns {key}/{n}" for n in (os.listdir(d) if os.path.isdir(d) else [key])]
    nets = os.path.join(h.store, "networks")
    for name in os.listdir(nets) if os.path.isdir(nets) else []:
        ips = os.path.join(nets, name, "ips")
        if os.path.isdir(ips) and os.listdir(ips):
            found += [f"address {name}/{ip}" for ip in os.listdir(ips)]
    p = subprocess.run(["nft", "-j", "list", "table", "inet", "husk"], capture_output=True, text=True)
    if p.returncode == 0:
        found += [f"nft rule {o['rule'].get('comment')}" for o in json.loads(p.stdout)["nftables"]
                  if "rule" in o and o["rule"].get("comment", "").startswith("ctr:")]
    return found


def monitors(store: str) -> list[int]:
    """Running husk-monitor processes of this store (zombies are gone)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if not zombie and argv[0].endswith(b"husk-monitor") and any(store.encode() in a for a in argv):
            out.append(int(pid))
    return out


def leaks(h: HuskEnv) -> list[str]:
    found = network_leaks(h)
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if h.store in line.split()[4]]
    tmp = os.path.join(h.store, "tmp")
    if os.path.isdir(tmp) and os.listdir(tmp):
        found += [f"store tmp/{n}" for n in os.listdir(tmp)]
    if os.path.isdir(h.state) and os.listdir(h.state):
        found += [f"state {n}" for n in os.listdir(h.state)]
    found += [f"process {pid} (husk-monitor)" for pid in monitors(h.store)]
    from conftest import _cgroup_mounts

    for base in _cgroup_mounts():
        d = os.path.join(base, "husk")
        if os.path.isdir(d):  # the containers' cgroups, and their shared parent
            found.append(f"cgroup {d}")
    return found


@pytest.fixture
def husk_env(tmp_path):
    h = HuskEnv(str(tmp_path))
    yield h
    found = []
    for _ in range(40):
        found = leaks(h)
        if not found:
            break
        time.sleep(0.05)
    # Containers made by `husk run IMAGE` without --rm are the test's to
    # remove; everything else must be gone.
    for cid in os.listdir(os.path.join(h.store, "containers")) if os.path.isdir(h.store + "/containers") else []:
        subprocess.run([h.husk_bin, "--root", h.state, "--storage-root", h.store, "rm", "-f", cid],
                       capture_output=True)
    if found:
        subprocess.run([h.husk_bin, "--root", h.state, "--storage-root", h.store, "system", "prune"],
                       capture_output=True)
    # Bridges and husk's nftables table belong to networks, not containers:
    # each test's store has its own, removed here.
    if os.path.isdir(os.path.join(h.store, "networks")):
        subprocess.run([h.husk_bin, "--storage-root", h.store, "network", "prune"], capture_output=True)
    assert not found, f"left behind: {found}"


def busybox_layer_tar() -> bytes:
    """The built-in image's one layer, uncompressed."""
    with open(os.path.join(BUSYBOX_LAYOUT, "index.json")) as f:
        mdigest = json.load(f)["manifests"][0]["digest"]
    blob = lambda d: open(os.path.join(BUSYBOX_LAYOUT, "blobs", "sha256", d[7:]), "rb").read()
    manifest = json.loads(blob(mdigest))
    return gzip.decompress(blob(manifest["layers"][0]["digest"]))


def feature_layer() -> bytes:
    """A second layer: a file deleted, a directory made opaque, new files of
    every kind, a setuid binary, an xattr, a hardlink and a symlink."""
    return layer([
        entry("etc/.wh.os-release"),
        entry("home/.wh..wh..opq"),
        entry("home/fresh", "dir"),
        entry("home/fresh/file", data=b"fresh\n", uid=1000, gid=1000, mode=0o640),
        entry("opt", "dir"),
        entry("opt/app", "dir"),
        entry("opt/app/run.sh", data=b"#!/bin/sh\necho app says \"$@\"\n", mode=0o755),
        entry("opt/app/suid", data=b"not really a binary", mode=0o4755),
        entry("opt/app/hard", "hardlink", link="opt/app/run.sh"),
        entry("opt/app/abs", "symlink", link="/opt/app/run.sh"),
        entry("opt/app/xattr", data=b"x", xattrs={"user.husk": "kept"}),
        entry("opt/app/fifo", "fifo"),
        entry("etc/motd", data=b"welcome to layer two\n"),
        entry("etc/group", data=b"root:x:0:\nstaff:x:50:user\nuser:x:1000:\n"),
    ])


@pytest.fixture(scope="session")
def layouts(tmp_path_factory):
    """OCI layouts: busybox (the built-in image), `layers` (two layers,
    gzip), `zstd` (the same, zstd), `multiarch` (an index of amd64 and
    arm64), `entrypoint` (Entrypoint/Cmd/WorkingDir/User/Env set)."""
    base = tmp_path_factory.mktemp("layouts")
    out = {"busybox": BUSYBOX_LAYOUT}
    bb = busybox_layer_tar()
    two = feature_layer()
    for name, comp in (("layers", "gzip"), ("zstd", "zstd"), ("plain", "")):
        lay = Layout(str(base / name))
        mdesc, _ = lay.image([bb, two], compression=comp)
        lay.tag(mdesc, "latest")
        out[name] = lay.save()
    lay = Layout(str(base / "multiarch"))
    descs = []
    for arch in ("amd64", "arm64"):
        marker = layer([entry("etc/arch", data=f"{arch}\n".encode())])
        mdesc, _ = lay.image([bb, marker], arch=arch)
        descs.append(mdesc)
    lay.index(descs, "latest")
    out["multiarch"] = lay.save()
    from conftest import CHECKER

    lay = Layout(str(base / "netbox"))
    with open(CHECKER, "rb") as f:
        checker = layer([entry("checker", data=f.read(), mode=0o755)])
    mdesc, _ = lay.image([bb, checker], config={"ExposedPorts": {"8080/tcp": {}, "9090/udp": {}}})
    lay.tag(mdesc, "latest")
    out["netbox"] = lay.save()
    lay = Layout(str(base / "entrypoint"))
    mdesc, _ = lay.image([bb, two], config={
        "Entrypoint": ["/opt/app/run.sh"], "Cmd": ["default", "args"], "WorkingDir": "/opt/app",
        "User": "user", "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "GREETING=from-image", "HOME=/nowhere"]})
    lay.tag(mdesc, "latest")
    out["entrypoint"] = lay.save()
    # STOPSIGNAL: `husk stop` sends USR1, and the command traps it.
    lay = Layout(str(base / "stopsignal"))
    mdesc, _ = lay.image([bb], config={"StopSignal": "SIGUSR1", "Cmd": [
        "sh", "-c", "trap 'echo got USR1; exit 9' USR1; echo ready; while :; do sleep 0.1; done"]})
    lay.tag(mdesc, "latest")
    out["stopsignal"] = lay.save()
    # Volumes: content at a volume's destination is copied up (owner and
    # mode kept); /data is a symlink that must resolve inside the rootfs.
    lay = Layout(str(base / "volumes"))
    seed = layer([entry("var/lib/app", "dir", uid=1000, gid=1000, mode=0o750),
                  entry("var/lib/app/seed", data=b"from the image\n", uid=1000, gid=1000, mode=0o640),
                  entry("var/lib/app/tool", data=b"#!/bin/sh\n", mode=0o4755),
                  entry("var/lib/app/link", "symlink", link="/etc/passwd"),
                  entry("data", "symlink", link="/etc")])
    mdesc, _ = lay.image([bb, seed])
    lay.tag(mdesc, "latest")
    out["volumes"] = lay.save()
    return out


@pytest.fixture(scope="session")
def http_registry(tmp_path_factory, layouts):
    reg = registries.start(str(tmp_path_factory.mktemp("registry-http")))
    for name in ("busybox", "layers", "zstd", "entrypoint"):
        reg.push(layouts[name], "latest", f"test/{name}:latest")
    reg.push(layouts["multiarch"], "latest", "test/multiarch:latest", all_platforms=True)
    reg.push(layouts["plain"], "latest", "test/plain:latest")
    # Docker's own formats: a schema 2 manifest, and a manifest list
    reg.push(layouts["layers"], "latest", "test/docker-v2s2:latest", fmt="v2s2")
    reg.push(layouts["multiarch"], "latest", "test/docker-list:latest", all_platforms=True, fmt="v2s2")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory, layouts):
    reg = registries.start(str(tmp_path_factory.mktemp("registry-tls")), "tls")
    reg.push(layouts["busybox"], "latest", "private/busybox:latest")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory, layouts):
    workdir = str(tmp_path_factory.mktemp("registry-token"))
    tokens = registries.TokenServer(workdir)
    reg = registries.start(workdir, "token", token_realm=tokens.realm)
    tokens.ca, tokens.ca_key = reg.extra["ca"], reg.extra["ca_key"]
    reg.push(layouts["busybox"], "latest", "public/busybox:latest")
    reg.push(layouts["busybox"], "latest", "private/busybox:latest")
    reg.tokens = tokens
    yield reg
    reg.stop()
    tokens.stop()


def copy_layout(src: str, dst: str) -> str:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def busybox_env(husk_env, layouts):
    """husk_env with the busybox image loaded as `bb`; the test's image
    containers are removed after it (before husk_env's leak check)."""
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    yield husk_env
    for cid in husk_env("ps", "-a", "-q", check=True).out.split():
        husk_env("rm", "-f", cid, check=True)
