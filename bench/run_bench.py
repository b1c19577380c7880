#!/usr/bin/env python3
"""husk vs runc vs crun: `run` of /bin/true in the busybox bundle.

    sudo python3 bench/run_bench.py [--runs N] [--sequential N]

Each runtime runs the same bundle (pid, ipc, uts, mount, network and
cgroup namespaces; read-only root; the default masks), interleaved in
one process so machine noise hits all of them alike.  It prints the
median of one-shot runs, the time for N sequential runs, the peak RSS of
each (from wait4), and the ratios husk/runc and husk/crun.

crun 1.8 refuses this machine's hybrid cgroup layout; as REFERENCE.md
section 3 describes, it runs in a private mount namespace where the
cgroup2 controllers file reads empty (an `unshare -m` wrapper, whose
few ms of overhead are counted against crun).

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")
CRUN_WRAPPER = """#!/bin/sh
exec unshare -m sh -c 'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec crun "$@"' {empty} "$@"
"""


LIMITS = {"memory": {"limit": 256 << 20}, "pids": {"limit": 1024}, "cpu": {"shares": 512, "quota": 50000,
                                                                        "period": 100000}}


def make_bundle(work: str, name: str = "bundle", limits: bool = False) -> str:
    sys.path.insert(0, REPO)
    from runtime.oci.example import example_spec

    bundle = os.path.join(work, name)
    os.makedirs(bundle)
    config = example_spec(args=["/bin/true"], terminal=False)
    config["root"]["path"] = os.path.join(REPO, "rootfs", "build", "bundle", "rootfs")
    config["ociVersion"] = "1.0.2"  # crun 1.8 knows no later version
    # runc and crun do not know the "cgroup" mount of a cgroup v1 host the same way; drop it for all three.
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    if limits:
        config["linux"]["resources"].update(LIMITS)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def timed(argv: list[str], cwd: str) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, the largest of the process tree reaped) of one command."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({status})")
    del cwd
    return elapsed, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30, help="one-shot runs per runtime (median)")
    ap.add_argument("--sequential", type=int, default=100, help="runs in the sequential batch")
    ap.add_argument("--cgroups", action="store_true",
                    help="instead: the cost of memory+pids+cpu limits, husk and runc, without and with them")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")

    if args.cgroups:
        return cgroup_cost(args.runs)
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        bundle = make_bundle(work)
        empty = os.path.join(work, "empty")
        open(empty, "w").close()
        wrapper = os.path.join(work, "crun-wrapper")
        with open(wrapper, "w") as f:
            f.write(CRUN_WRAPPER.format(empty=empty))
        os.chmod(wrapper, 0o755)

        runtimes = {"husk": [HUSK, "--root", f"{work}/husk"]}
        if shutil.which("runc"):
            runtimes["runc"] = [shutil.which("runc"), "--root", f"{work}/runc"]
        if shutil.which("crun"):
            runtimes["crun"] = [wrapper, "--root", f"{work}/crun"]

        def run_once(name: str, n: int) -> tuple[float, int]:
            return timed(runtimes[name] + ["run", "--bundle", bundle, f"b-{name}-{n}"], bundle)

        for name in runtimes:  # warm the page cache
            run_once(name, -1)
        samples: dict[str, list[float]] = {n: [] for n in runtimes}
        rss: dict[str, int] = {n: 0 for n in runtimes}
        for i in range(args.runs):
            for name in runtimes:
                t, peak = run_once(name, i)
                samples[name].append(t)
                rss[name] = max(rss[name], peak)
        batch: dict[str, float] = {}
        for name in runtimes:
            start = time.perf_counter()
            for i in range(args.sequential):
                run_once(name, 10_000 + i)
            batch[name] = time.perf_counter() - start

        print(f"busybox bundle, /bin/true, {args.runs} one-shot runs (median) and {args.sequential} sequential")
        print(f"{'runtime':<8}{'median ms':>11}{'batch s':>10}{'peak RSS MB':>13}")
        for name in runtimes:
            print(f"{name:<8}{statistics.median(samples[name]) * 1000:>11.1f}{batch[name]:>10.2f}"
                  f"{rss[name] / 1024:>13.1f}")
        for other in ("runc", "crun"):
            if other in runtimes:
                ratio = statistics.median(samples["husk"]) / statistics.median(samples[other])
                print(f"husk/{other}: median {ratio:.2f}"
                      f"  batch {batch['husk'] / batch[other]:.2f}  rss {rss['husk'] / rss[other]:.2f}")
        floor = [timed([sys.executable, "-I", "-S", "-c", "pass"], work)[0] for _ in range(10)]
        print(f"floor: python3 -I -S -c pass = {statistics.median(floor) * 1000:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cgroup_cost(runs: int) -> None:
    """Median `run` of /bin/true without and with a memory+pids+cpu limit."""
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        bundles = {"plain": make_bundle(work, "plain"), "limited": make_bundle(work, "limited", limits=True)}
        runtimes = {"husk": [HUSK, "--root", f"{work}/husk"]}
        if shutil.which("runc"):
            runtimes["runc"] = [shutil.which("runc"), "--root", f"{work}/runc"]
        samples = {(r, b): [] for r in runtimes for b in bundles}
        for i in range(runs + 1):
            for r, argv in runtimes.items():
                for b, path in bundles.items():
                    t, _ = timed(argv + ["run", "--bundle", path, f"c-{r}-{b}-{i}"], path)
                    if i:  # the first round warms the caches
                        samples[(r, b)].append(t)
        print(f"cgroup cost: median of {runs} `run` of /bin/true, limits = {json.dumps(LIMITS)}")
        for r in runtimes:
            plain = statistics.median(samples[(r, "plain")]) * 1000
            limited = statistics.median(samples[(r, "limited")]) * 1000
            print(f"{r:<6} plain {plain:7.1f} ms   limited {limited:7.1f} ms   limits add {limited - plain:+6.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
