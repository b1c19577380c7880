#!/usr/bin/env python3
"""husk vs runc vs crun: `run` of /bin/true in the busybox bundle, and
the create -> start -> state -> kill -> delete sequence.

    sudo python3 bench/run_bench.py [--runs N] [--sequential N] [--cgroups | --systemd]

Each runtime runs the same bundle (pid, ipc, uts, mount, network and
cgroup namespaces; read-only root; the default masks), interleaved in
one process so machine noise hits all of them alike.  It prints the
median of one-shot runs, the time for N sequential runs, the peak RSS of
each (from wait4), and the ratios husk/runc and husk/crun.

The sequence is what containerd's shim and conmon drive, each verb a new
process: create (of /bin/sleep), start, state, kill KILL, then delete
once the container has exited.  This process is a child subreaper, as
the shim and conmon are, so it reaps the container and knows it exited;
the time counted is the five commands', not the wait.

husk's first create of a config plans it in Python and caches the recipe
(runtime/recipe.py); the warm-up round pays that, the measured rounds
show the path every later container of the same config takes.

crun 1.8 refuses this machine's hybrid cgroup layout; as REFERENCE.md
section 3 describes, it runs in a private mount namespace where the
cgroup2 controllers file reads empty (an `unshare -m` wrapper, whose
few ms of overhead are counted against crun).

--systemd (on a systemd host, e.g. the VM of tests/vm/run_v2.py
--systemd --command): each runtime's `run` with cgroupfs and with
--systemd-cgroup, whose transient scope costs D-Bus round trips to
systemd and systemd's own work; ratios side by side.

--trace-cost: husk as installed (every --explain step compiled in, off)
against the same husk built with -DHUSK_NO_TRACE (native/src/trace.h),
`run` of /bin/true interleaved: what the steps cost a run that does not
ask for them.

Not a test: nothing here asserts a time.
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
CRUN_WRAPPER = """#!/bin/sh
exec unshare -m sh -c 'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec crun "$@"' {empty} "$@"
"""


LIMITS = {"memory": {"limit": 256 << 20}, "pids": {"limit": 1024}, "cpu": {"shares": 512, "quota": 50000,
                                                                        "period": 100000}}


def make_bundle(work: str, name: str = "bundle", limits: bool = False, args: list[str] | None = None) -> str:
    sys.path.insert(0, REPO)
    from runtime.core.oci.example import example_spec

    bundle = os.path.join(work, name)
    os.makedirs(bundle)
    config = example_spec(args=args or ["/bin/true"], terminal=False)
    config["root"]["path"] = os.path.join(REPO, "rootfs", "build", "bundle", "rootfs")
    config["ociVersion"] = "1.0.2"  # crun 1.8 knows no later version
    # runc and crun do not know the "cgroup" mount of a cgroup v1 host the same way; drop it for all three.
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    if limits:
        config["linux"]["resources"].update(LIMITS)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


# A child's ru_maxrss starts at its parent's RSS when it forked (the mm
# it ran on until execve counts), so a command spawned straight from this
# Python process would report Python's size.  Each command is started by
# this small static C program instead: its own RSS is a few hundred KiB,
# the same floor for every runtime.  It prints the command's peak RSS.
RSS_PROBE = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main (int argc, char **argv)
{
  pid_t pid = fork ();
  if (pid == 0) { close (3); execv (argv[1], argv + 1); _exit (127); }
  int status; struct rusage ru;
  if (argc < 2 || wait4 (pid, &status, 0, &ru) < 0) return 125;
  dprintf (3, "%ld\n", ru.ru_maxrss);  /* fd 3: not held by a container that outlives the command */
  return WIFEXITED (status) ? WEXITSTATUS (status) : 126;
}
"""
_probe: str | None = None


def build_rss_probe(work: str) -> None:
    global _probe
    if _probe is None:
        src = os.path.join(work, "rss_probe.c")
        with open(src, "w") as f:
            f.write(RSS_PROBE)
        _probe = os.path.join(work, "rss_probe")
        subprocess.run(["gcc", "-O2", "-static", "-o", _probe, src], check=True)


def timed(argv: list[str], cwd: str, out: str = "/dev/null") -> tuple[float, int]:
    """Wall time and peak RSS (KiB, the largest of the process tree it reaped) of one command."""
    del cwd
    probe = _probe
    assert probe, "build_rss_probe() first"
    r, w = os.pipe()
    start = time.perf_counter()
    pid = os.posix_spawn(probe, [probe, *argv], os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_CLOSE, r), (os.POSIX_SPAWN_DUP2, w, 3)])
    os.close(w)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    with os.fdopen(r) as f:
        report = f.read().split()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({status}): {' '.join(report)}")
    return elapsed, int(report[-1])


def _become_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER: created containers are reparented to us."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
        raise SystemExit("bench: prctl(PR_SET_CHILD_SUBREAPER) failed")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30, help="one-shot runs per runtime (median)")
    ap.add_argument("--sequential", type=int, default=100, help="runs in the sequential batch")
    ap.add_argument("--cgroups", action="store_true",
                    help="instead: the cost of memory+pids+cpu limits, husk and runc, without and with them")
    ap.add_argument("--systemd", action="store_true",
                    help="instead: each runtime's run with cgroupfs and with --systemd-cgroup (a systemd host)")
    ap.add_argument("--trace-cost", action="store_true",
                    help="instead: husk as built against husk built without --explain's steps (-DHUSK_NO_TRACE)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")

    if args.cgroups:
        return cgroup_cost(args.runs)
    if args.systemd:
        return systemd_cost(args.runs)
    if args.trace_cost:
        return trace_cost(args.runs)
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        build_rss_probe(work)
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

        sleeper = make_bundle(work, "sleeper", args=["/bin/sleep", "60"])

        def sequence(name: str, n: int) -> tuple[float, int]:
            """create, start, state, kill, (reap), delete: their summed time and the largest peak RSS."""
            cid, pid_file = f"s-{name}-{n}", os.path.join(work, f"s-{name}-{n}.pid")
            total, peak = 0.0, 0
            for verb in (["create", "--bundle", sleeper, "--pid-file", pid_file, cid], ["start", cid],
                         ["state", cid], ["kill", cid, "KILL"]):
                t, rss_kib = timed(runtimes[name] + verb, sleeper)
                total, peak = total + t, max(peak, rss_kib)
            with open(pid_file) as f:
                os.waitpid(int(f.read()), 0)  # as the shim: the exit is seen before delete
            os.unlink(pid_file)
            t, rss_kib = timed(runtimes[name] + ["delete", cid], sleeper)
            return total + t, max(peak, rss_kib)

        _become_subreaper()
        for name in runtimes:  # warm the page cache (and husk's recipe cache)
            run_once(name, -1)
            sequence(name, -1)
        samples: dict[str, list[float]] = {n: [] for n in runtimes}
        seq: dict[str, list[float]] = {n: [] for n in runtimes}
        rss: dict[str, int] = {n: 0 for n in runtimes}
        seq_rss: dict[str, int] = {n: 0 for n in runtimes}
        for i in range(args.runs):
            for name in runtimes:
                t, peak = run_once(name, i)
                samples[name].append(t)
                rss[name] = max(rss[name], peak)
                t, peak = sequence(name, i)
                seq[name].append(t)
                seq_rss[name] = max(seq_rss[name], peak)
        batch: dict[str, float] = {}
        for name in runtimes:
            start = time.perf_counter()
            for i in range(args.sequential):
                run_once(name, 10_000 + i)
            batch[name] = time.perf_counter() - start

        print(f"busybox bundle: `run` of /bin/true, {args.runs} one-shot runs (median) and {args.sequential} "
              f"sequential; create/start/state/kill/delete of /bin/sleep, {args.runs} sequences (median)")
        print(f"{'runtime':<8}{'run ms':>9}{'batch s':>10}{'run RSS MB':>12}{'5 verbs ms':>12}{'verb RSS MB':>13}")
        for name in runtimes:
            print(f"{name:<8}{statistics.median(samples[name]) * 1000:>9.1f}{batch[name]:>10.2f}"
                  f"{rss[name] / 1024:>12.1f}{statistics.median(seq[name]) * 1000:>12.1f}{seq_rss[name] / 1024:>13.1f}")
        for other in ("runc", "crun"):
            if other in runtimes:
                ratio = statistics.median(samples["husk"]) / statistics.median(samples[other])
                seq_ratio = statistics.median(seq["husk"]) / statistics.median(seq[other])
                print(f"husk/{other}: run {ratio:.2f}  batch {batch['husk'] / batch[other]:.2f}"
                      f"  5 verbs {seq_ratio:.2f}  run rss {rss['husk'] / rss[other]:.2f}"
                      f"  verb rss {seq_rss['husk'] / seq_rss[other]:.2f}")
        floor = [timed([sys.executable, "-I", "-S", "-c", "pass"], work)[0] for _ in range(10)]
        print(f"floor: python3 -I -S -c pass = {statistics.median(floor) * 1000:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def interleaved_medians(commands: dict, cwd: str, runs: int) -> dict:
    """Median ms of each command over RUNS rounds, the commands taking
    turns in each round; COMMANDS maps a key to its argv for round i.
    Round 0 only warms the caches (and plans husk's recipes)."""
    samples = {key: [] for key in commands}
    for i in range(runs + 1):
        for key, argv_of in commands.items():
            t, _ = timed(argv_of(i), cwd)
            if i:
                samples[key].append(t)
    return {key: statistics.median(v) * 1000 for key, v in samples.items()}


def cgroup_cost(runs: int) -> None:
    """Median `run` of /bin/true without and with a memory+pids+cpu limit."""
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        build_rss_probe(work)
        bundles = {"plain": make_bundle(work, "plain"), "limited": make_bundle(work, "limited", limits=True)}
        runtimes = {"husk": [HUSK, "--root", f"{work}/husk"]}
        if shutil.which("runc"):
            runtimes["runc"] = [shutil.which("runc"), "--root", f"{work}/runc"]
        median = interleaved_medians(
            {(r, b): lambda i, r=r, b=b: runtimes[r] + ["run", "--bundle", bundles[b], f"c-{r}-{b}-{i}"]
             for r in runtimes for b in bundles}, work, runs)
        print(f"cgroup cost: median of {runs} `run` of /bin/true, limits = {json.dumps(LIMITS)}")
        for r in runtimes:
            plain, limited = median[(r, "plain")], median[(r, "limited")]
            print(f"{r:<6} plain {plain:7.1f} ms   limited {limited:7.1f} ms   limits add {limited - plain:+6.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def systemd_cost(runs: int) -> None:
    """Median `run` of /bin/true (with the limits) per runtime and driver:
    cgroupfs, and --systemd-cgroup with no cgroupsPath, so each runtime
    makes system.slice's <runtime>-<id>.scope."""
    if not os.path.isdir("/run/systemd/system"):
        sys.exit("bench: --systemd needs systemd as the init")
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        build_rss_probe(work)
        bundle = make_bundle(work, "limited", limits=True)
        runtimes = {"husk": [HUSK, "--root", f"{work}/husk"]}
        for other in ("runc", "crun"):
            if shutil.which(other):
                runtimes[other] = [shutil.which(other), "--root", f"{work}/{other}"]
        drivers = {"cgroupfs": [], "systemd": ["--systemd-cgroup"]}
        median = interleaved_medians(
            {(r, d): lambda i, r=r, d=d: runtimes[r][:1] + drivers[d] + runtimes[r][1:]
             + ["run", "--bundle", bundle, f"d-{r}-{d}-{i}"] for r in runtimes for d in drivers}, bundle, runs)
        print(f"cgroup drivers: median of {runs} `run` of /bin/true, limits = {json.dumps(LIMITS)}")
        for r in runtimes:
            print(f"{r:<6} cgroupfs {median[(r, 'cgroupfs')]:7.1f} ms   systemd {median[(r, 'systemd')]:7.1f} ms"
                  f"   systemd/cgroupfs {median[(r, 'systemd')] / median[(r, 'cgroupfs')]:.2f}")
        for other in ("runc", "crun"):
            if other in runtimes:
                print(f"husk/{other}: cgroupfs {median[('husk', 'cgroupfs')] / median[(other, 'cgroupfs')]:.2f}"
                      f"  systemd {median[('husk', 'systemd')] / median[(other, 'systemd')]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_without_trace(work: str) -> str:
    """The front end and husk-init built with -DHUSK_NO_TRACE, beside a
    copy of the installed runtime/ (links to it) whose _bin has that
    husk-init: the front end finds husk-init, and Python, by that path."""
    import sysconfig

    installed = os.path.join(sysconfig.get_paths()["purelib"], "runtime")
    purelib = os.path.join(work, "purelib")
    os.makedirs(os.path.join(purelib, "runtime", "_bin"))
    for name in os.listdir(installed):
        if name != "_bin":
            os.symlink(os.path.join(installed, name), os.path.join(purelib, "runtime", name))
    for name in os.listdir(os.path.join(installed, "_bin")):
        os.symlink(os.path.join(installed, "_bin", name), os.path.join(purelib, "runtime", "_bin", name))
    os.unlink(os.path.join(purelib, "runtime", "_bin", "husk-init"))
    config = os.path.join(work, "front_config.h")
    with open(config, "w") as f:
        f.write(f'#define HUSK_PYTHON "{sys.executable}"\n#define HUSK_PURELIB "{purelib}"\n'
                f'#define HUSK_PURELIB_PY "{purelib!r}"\n')
    out = os.path.join(work, "notrace")
    env = dict(os.environ, CFLAGS="-O2 -g -DHUSK_NO_TRACE")  # the Makefile's own flags are added to these
    subprocess.run(["make", "-s", "-C", os.path.join(REPO, "native"), f"OUT={out}", f"FRONT_CONFIG={config}",
                    f"{out}/husk", f"{out}/husk-init"], env=env, check=True, stderr=subprocess.DEVNULL)
    shutil.copy(os.path.join(out, "husk-init"), os.path.join(purelib, "runtime", "_bin", "husk-init"))
    return os.path.join(out, "husk")


def trace_cost(runs: int) -> None:
    """Median `run` of /bin/true (with the limits): husk with --explain's
    steps compiled in and off, and husk without them."""
    work = tempfile.mkdtemp(prefix="husk-bench-")
    try:
        build_rss_probe(work)
        bundle = make_bundle(work, "limited", limits=True)
        builds = {"steps compiled in": HUSK, "-DHUSK_NO_TRACE": build_without_trace(work)}
        median = interleaved_medians(
            {b: lambda i, b=b: [builds[b], "--root", f"{work}/husk", "run", "--bundle", bundle, f"t-{i}-{len(b)}"]
             for b in builds}, bundle, runs)
        print(f"--explain's steps, off: median of {runs} `run` of /bin/true, limits = {json.dumps(LIMITS)}")
        for b in builds:
            print(f"husk, {b:<18} {median[b]:7.2f} ms")
        print(f"compiled in / compiled out: {median['steps compiled in'] / median['-DHUSK_NO_TRACE']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
