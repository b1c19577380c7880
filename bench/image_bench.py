#!/usr/bin/env python3
"""Images: husk vs umoci and skopeo, side by side in one process.

    sudo python3 bench/image_bench.py [--runs N]

1. unpack: `husk load` of the 3-layer Debian minbase image (verify every
   blob, unpack each layer, from an OCI layout) vs `umoci unpack` of the
   same layout;
2. pull: `husk pull` from a docker-registry on 127.0.0.1 (download,
   verify and unpack) vs `skopeo copy docker://... oci:DIR` (download and
   verify only);
3. run: `husk run --rm --network none IMAGE true` on a cached image vs `husk run --bundle`
   of the same busybox rootfs, and the same for the Debian image, to show
   the cost does not grow with the image.

Each comparison alternates the tools run by run and prints medians and
ratios.  Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "linux"))
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")


def timed(argv: list[str], **kw) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def compare(title: str, runs: int, a: tuple[str, callable], b: tuple[str, callable]) -> None:
    times: dict[str, list[float]] = {a[0]: [], b[0]: []}
    for _ in range(runs):
        for name, fn in (a, b):
            times[name].append(fn())
    ma, mb = statistics.median(times[a[0]]), statistics.median(times[b[0]])
    print(f"{title}\n  {a[0]:34} median {ma * 1000:8.1f} ms\n  {b[0]:34} median {mb * 1000:8.1f} ms\n"
          f"  ratio {a[0].split()[0]}/{b[0].split()[0]}: {ma / mb:.2f}\n", flush=True)


def main() -> None:
    import debian_image
    import registry

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="husk-image-bench-")
    reg = None
    try:
        layout = debian_image.build_layout(os.path.join(work, "layout"))
        size = sum(os.path.getsize(os.path.join(layout, "blobs/sha256", n))
                   for n in os.listdir(os.path.join(layout, "blobs/sha256")))
        print(f"image: Debian {debian_image.SUITE} minbase, 3 layers, {size / 1e6:.1f} MB compressed\n")
        store = os.path.join(work, "store")

        def husk_load() -> float:
            shutil.rmtree(store, ignore_errors=True)
            return timed([HUSK, "--storage-root", store, "load", "-q", "--name", "bench/debian", "-i", layout])

        def umoci_unpack() -> float:
            bundle = os.path.join(work, "umoci")
            shutil.rmtree(bundle, ignore_errors=True)
            return timed(["umoci", "unpack", "--image", f"{layout}:latest", bundle])

        compare("1. unpack the image", args.runs, ("husk load", husk_load), ("umoci unpack", umoci_unpack))

        reg = registry.start(os.path.join(work, "registry"))
        reg.push(layout, "latest", "bench/debian:latest")
        ref = f"{reg.host}/bench/debian:latest"

        def husk_pull() -> float:
            shutil.rmtree(store, ignore_errors=True)
            return timed([HUSK, "--storage-root", store, "pull", "-q", ref])

        def skopeo_copy() -> float:
            dest = os.path.join(work, "skopeo")
            shutil.rmtree(dest, ignore_errors=True)
            return timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:latest"])

        compare("2. pull from a local registry", args.runs, ("husk pull (+unpack)", husk_pull),
                ("skopeo copy (no unpack)", skopeo_copy))

        subprocess.run([HUSK, "--storage-root", store, "load", "-q", "--name", "busybox", "-i",
                        os.path.join(REPO, "rootfs/build/oci")],
                       check=True)
        bundle = os.path.join(REPO, "rootfs", "build", "bundle")
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        true_bundle = os.path.join(work, "true-bundle")
        os.makedirs(true_bundle)
        config["process"]["args"] = ["/bin/true"]
        config["process"]["terminal"] = False
        config["root"]["path"] = os.path.join(bundle, "rootfs")
        with open(os.path.join(true_bundle, "config.json"), "w") as f:
            json.dump(config, f)
        state = os.path.join(work, "state")
        n = [0]

        def bundle_run() -> float:
            n[0] += 1
            return timed([HUSK, "--root", state, "run", "--bundle", true_bundle, f"b{n[0]}"])

        def image_run(image: str):
            # --network none: the bundle has a bare network namespace too;
            # what bridge networking costs is bench/network_bench.py's subject.
            return lambda: timed([HUSK, "--root", state, "--storage-root", store, "run", "--rm", "--pull=never",
                                  "--network", "none", image, "true"])

        compare("3a. run true: busybox image vs its bundle", args.runs * 5,
                ("husk run IMAGE (busybox)", image_run("busybox")), ("husk run --bundle", bundle_run))
        compare("3b. run true: Debian image (150 MB) vs busybox image (2 MB)", args.runs * 5,
                ("husk run IMAGE (debian)", image_run(ref)), ("husk run IMAGE (busybox)", image_run("busybox")))
    finally:
        if reg:
            reg.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
