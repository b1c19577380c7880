#!/usr/bin/env python3
"""What networking costs: `husk run --rm busybox true` with --network none
vs bridge (netns, veth, address, NAT, name files), and 20 containers
started at once on one network (time per container).

    sudo python3 bench/network_bench.py [--runs N] [--concurrent N]

podman's bridge networking is not run beside it: its CNI firewall plugin
writes iptables rules outside husk's own nftables table, which this
project's machines do not allow.  Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--concurrent", type=int, default=20)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="husk-net-bench-")
    base = [HUSK, "--root", os.path.join(work, "state"), "--storage-root", os.path.join(work, "store")]
    try:
        subprocess.run(base + ["load", "-q", "--name", "busybox", "-i", os.path.join(REPO, "rootfs/build/oci")],
                       check=True)
        times: dict[str, list[float]] = {"none": [], "bridge": []}
        for _ in range(args.runs):
            for mode in times:
                t = time.perf_counter()
                subprocess.run(base + ["run", "--rm", "--pull=never", "--network", mode, "busybox", "true"],
                               check=True)
                times[mode].append(time.perf_counter() - t)
        none, bridge = statistics.median(times["none"]), statistics.median(times["bridge"])
        print(f"husk run --rm busybox true, median of {args.runs}:")
        print(f"  --network none    {none * 1000:7.1f} ms")
        print(f"  --network bridge  {bridge * 1000:7.1f} ms   (network setup and teardown: "
              f"{(bridge - none) * 1000:.1f} ms)")
        t = time.perf_counter()
        procs = [subprocess.Popen(base + ["run", "--rm", "--pull=never", "busybox", "true"])
                 for _ in range(args.concurrent)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t
        print(f"{args.concurrent} containers at once on one bridge network: {wall:.2f} s wall, "
              f"{wall / args.concurrent * 1000:.1f} ms per container, {codes.count(0)} succeeded")
    finally:
        subprocess.run(base + ["network", "prune"], capture_output=True)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
