#!/usr/bin/env python3
"""The people's engine, side by side with podman's:

  1. the per-container monitor's memory: husk-monitor (husk run -d) next
     to conmon (podman run -d, with husk as podman's OCI runtime), each
     over N detached `sleep` containers: VmRSS and Pss from /proc;
  2. `husk stats --no-stream` next to `podman stats --no-stream` for the
     same container (one podman ran with husk as its runtime, which
     husk stats reads by its OCI id): wall time, and the figures each
     reports (memory usage, pids) so they can be compared.

    sudo python3 bench/monitor_bench.py [--containers N] [--runs N]

podman runs with cgroupfs and no network (netns none): its bridge
networking writes firewall rules outside husk's nftables table, which
this project's machines do not allow.  Not a test: nothing asserts a
time or a size.
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
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")
LAYOUT = os.path.join(REPO, "rootfs", "build", "oci")


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of PID in KiB: RSS counts shared pages whole, Pss shares them out."""
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _ulimits() -> list[str]:
    """Within what this host lets husk set: podman's default of 1048576
    open files needs CAP_SYS_RESOURCE, which some hosts' root lacks."""
    import resource

    nofile = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


def podman_env(work: str) -> tuple[list[str], dict[str, str]]:
    conf = os.path.join(work, "containers.conf")
    with open(conf, "w") as f:
        f.write(f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                f'events_logfile_path = "{work}/events.log"\nruntime = "husk"\n'
                f'[engine.runtimes]\nhusk = ["{HUSK}"]\n[containers]\nnetns = "none"\n'
                f"default_ulimits = {json.dumps(_ulimits())}\n")
    base = ["podman", "--root", f"{work}/storage", "--runroot", f"{work}/run", "--storage-driver", "overlay"]
    return base, dict(os.environ, CONTAINERS_CONF=conf)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hmb", dir="/tmp")  # podman wants a short runroot
    husk = [HUSK, "--root", os.path.join(work, "state"), "--storage-root", os.path.join(work, "store")]
    pm, env = podman_env(work)
    run = lambda argv, **kw: subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout
    have_podman = shutil.which("podman") is not None
    try:
        run(husk + ["load", "-q", "--name", "busybox", "-i", LAYOUT])
        husk_ids = [run(husk + ["run", "-d", "--pull=never", "--network", "none", "busybox", "sleep", "1000"]).strip()
                    for _ in range(args.containers)]
        monitors = []
        for cid in husk_ids:
            with open(os.path.join(work, "store", "containers", cid, "monitor.pid")) as f:
                monitors.append(memory_kb(int(f.read().split()[0])))
        print(f"per-container monitor, {args.containers} detached sleep containers (median):")
        print(f"  husk-monitor  RSS {statistics.median(m[0] for m in monitors):6.0f} KiB   "
              f"Pss {statistics.median(m[1] for m in monitors):6.0f} KiB")
        if not have_podman:
            print("  conmon        (podman is not installed)")
            return
        image = run(pm + ["pull", "-q", f"oci:{LAYOUT}:latest"], env=env).strip()
        podman_ids = [run(pm + ["run", "-d", image, "sleep", "1000"], env=env).strip()
                      for _ in range(args.containers)]
        conmons = [memory_kb(int(run(pm + ["inspect", "--format", "{{.State.ConmonPid}}", c], env=env)))
                   for c in podman_ids]
        rss = (statistics.median(m[0] for m in monitors), statistics.median(m[0] for m in conmons))
        print(f"  conmon        RSS {rss[1]:6.0f} KiB   Pss {statistics.median(m[1] for m in conmons):6.0f} KiB")
        print(f"  husk-monitor / conmon RSS: {rss[0] / rss[1]:.2f}")

        target = podman_ids[0]
        husk_stats = lambda: run([HUSK, "stats", "--no-stream", "--format", "json", target])
        podman_stats = lambda: run(pm + ["stats", "--no-stream", "--format", "json", target], env=env)
        h_ms, p_ms = median_ms(husk_stats, args.runs), median_ms(podman_stats, args.runs)
        (h,) = json.loads(husk_stats())
        (p,) = json.loads(podman_stats())
        print(f"stats --no-stream of one container podman ran with husk (median of {args.runs}):")
        print(f"  husk stats    {h_ms:7.1f} ms   mem {h['MemUsage']:>24}   pids {h['PIDs']}")
        print(f"  podman stats  {p_ms:7.1f} ms   mem {p.get('mem_usage', p.get('MemUsage', '?')):>24}   "
              f"pids {p.get('pids', p.get('PIDs', '?'))}")
        print(f"  husk / podman time: {h_ms / p_ms:.2f}")
    finally:
        if have_podman:
            subprocess.run(pm + ["rm", "-a", "-f", "-t", "0"], env=env, capture_output=True)
            subprocess.run(pm + ["system", "reset", "-f"], env=env, capture_output=True)
        for d in ("containers",):
            path = os.path.join(work, "store", d)
            for cid in os.listdir(path) if os.path.isdir(path) else []:
                subprocess.run(husk + ["rm", "-f", cid], capture_output=True)
        subprocess.run(["umount", "-R", os.path.join(work, "storage")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
