#!/usr/bin/env python3
"""Build husk's built-in image from the host's static busybox.

    python3 rootfs/build.py [OUTDIR]      (default: rootfs/build)

makes
    OUTDIR/bundle/         a runnable OCI bundle: rootfs/ + config.json
    OUTDIR/demo/           a bundle sharing that rootfs whose process says hello
    OUTDIR/oci/            the same rootfs as an OCI image layout
                           (index.json, oci-layout, blobs/sha256/...)

from Debian's busybox-static (/bin/busybox).  Nothing here is committed
as a binary: the image is built on each machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def check_static(path: str) -> None:
    out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout \
        if shutil.which("file") else ""
    if out and "statically linked" not in out and "static-pie" not in out:
        sys.exit(f"build.py: {path} is not static: install Debian's busybox-static")


def make_rootfs(root: str) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
              "var/tmp", "run", "home"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.chmod(os.path.join(root, "var/tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = os.path.join(root, applet)
        if os.path.lexists(link) or applet == "bin/busybox":
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                      "user:x:1000:1000:user:/home/user:/bin/sh\n",
        "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\nuser:x:1000:\n",
        "etc/hostname": "husk\n",
        "etc/os-release": 'NAME="husk busybox"\nID=busybox\n',
    }
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def make_layout(rootfs: str, out: str) -> None:
    """An OCI image layout with one gzip layer (reproducible: mtimes 0)."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(rootfs)):
            tar.add(os.path.join(rootfs, name), arcname=name, filter=_reset)
    layer_tar = raw.getvalue()
    layer_gz = gzip.compress(layer_tar, mtime=0)
    layer = put(layer_gz)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    config = json.dumps({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch, "os": "linux",
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "husk rootfs/build.py (busybox-static)"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer,
                    "size": len(layer_gz)}],
    }, sort_keys=True).encode()
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
                            "size": len(manifest),
                            "annotations": {"org.opencontainers.image.ref.name": "latest"},
                            "platform": {"architecture": arch, "os": "linux"}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def main() -> None:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "build"))
    if not os.path.exists(BUSYBOX):
        sys.exit("build.py: /bin/busybox not found: apt-get install busybox-static")
    check_static(BUSYBOX)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    bundle = os.path.join(tmp, "bundle")
    make_rootfs(os.path.join(bundle, "rootfs"))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from runtime.core.oci.example import example_spec
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(example_spec(), f, indent=2)
    demo = example_spec(args=["sh", "-c", 'echo "hello from a husk container: host $(hostname), '
                                           'pid $$, $(id)"'], terminal=False)
    demo["root"]["path"] = "../bundle/rootfs"
    os.makedirs(os.path.join(tmp, "demo"))
    with open(os.path.join(tmp, "demo", "config.json"), "w") as f:
        json.dump(demo, f, indent=2)
    make_layout(os.path.join(bundle, "rootfs"), os.path.join(tmp, "oci"))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"built {out}/bundle and {out}/oci")


if __name__ == "__main__":
    main()
