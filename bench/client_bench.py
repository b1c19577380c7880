#!/usr/bin/env python3
"""husk vs runc vs crun as real clients use them: every run a *new* container.

    sudo python3 bench/client_bench.py [--runs N] [--burst N]

- podman: `podman run --rm --network none busybox true`, one runtime
  after the other in each round (interleaved, so machine noise hits all
  alike), podman on cgroupfs with its storage in a directory of ours.
- containerd: `ctr run --rm --runc-binary RUNTIME busybox ID true`
  through the runc v2 shim, containerd with its root, state and socket
  in a directory of ours (no CRI plugin, no network: ctr's container
  gets a network namespace with only lo).
- Docker: `docker run --rm --runtime RUNTIME --network none busybox
  true` on one dockerd 20.10 with every runtime registered, dockerd and
  what it makes inside a network namespace of ours.
- Kubernetes: containerd 1.6's CRI, played as kubelet plays it (the
  test's harness, tests/linux/cri_harness.py), with one runtime handler
  per runtime: each run a new pod (RunPodSandbox with CNI networking,
  CreateContainer and StartContainer of `true`, its exit, then
  StopPodSandbox and RemovePodSandbox), containerd and its pods inside a
  network namespace of ours.
- a burst: N OCI `run`s of /bin/true started at once, each with a new
  bundle, id and cgroupsPath (what a pod or a compose file of N services
  does), and a config shape no runtime has seen before: the wall time
  until all N have exited.

Each client's container is new (new id, cgroupsPath, rootfs, hostname,
bind sources): husk's first container of a shape plans it in Python and
the later ones take the recipe (runtime/core/recipe.py).  A warm-up round
per client is not counted.

crun 1.8 refuses this machine's hybrid cgroup layout: as in run_bench.py
it runs in a private mount namespace where the cgroup2 controllers file
reads empty (an `unshare -m` wrapper whose few ms are counted against it).

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
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(REPO)  # after site-packages: the installed runtime (with its built helpers) comes first
sys.path.insert(0, os.path.join(REPO, "tests", "linux"))
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")
OCI_LAYOUT = os.path.join(REPO, "rootfs", "build", "oci")
IMAGE = "docker.io/library/busybox:latest"

from run_bench import CRUN_WRAPPER, make_bundle


def runtimes(work: str) -> dict[str, str]:
    """name -> the binary a client is told to call."""
    found = {"husk": HUSK}
    if shutil.which("runc"):
        found["runc"] = shutil.which("runc")
    if shutil.which("crun"):
        empty = os.path.join(work, "empty")
        open(empty, "w").close()
        wrapper = os.path.join(work, "crun-wrapper")
        with open(wrapper, "w") as f:
            f.write(CRUN_WRAPPER.format(empty=empty))
        os.chmod(wrapper, 0o755)
        found["crun"] = wrapper
    return found


def timed(argv: list[str], **kw) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                       **kw)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ...: {r.stderr.strip()}")
    return elapsed


def interleaved(names: list[str], runs: int, once) -> dict[str, list[float]]:
    """once(name, i) -> seconds; a warm-up round (a runtime the client
    cannot use is left out, and says why), then RUNS rounds."""
    usable = []
    for name in names:
        try:
            once(name, -1)
            usable.append(name)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"  {name} left out: {str(e).strip().splitlines()[-1:]}", file=sys.stderr)
    samples: dict[str, list[float]] = {n: [] for n in usable}
    for i in range(runs):
        for name in usable:
            samples[name].append(once(name, i))
    return samples


def podman_bench(work: str, found: dict[str, str], runs: int) -> dict[str, list[float]] | None:
    if not shutil.which("podman"):
        return None
    from clients import host_ulimits

    tmp = os.path.join(work, "podman")
    os.makedirs(tmp)
    conf = os.path.join(tmp, "containers.conf")
    table = "\n".join(f'{n} = ["{path}"]' for n, path in found.items())
    with open(conf, "w") as f:
        f.write(f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                f'events_logfile_path = "{tmp}/events.log"\n[engine.runtimes]\n{table}\n'
                f'[containers]\nnetns = "none"\ndefault_ulimits = {json.dumps(host_ulimits())}\n')
    env = dict(os.environ, CONTAINERS_CONF=conf)
    base = ["podman", "--root", f"{tmp}/storage", "--runroot", f"{tmp}/run", "--storage-driver", "overlay"]
    subprocess.run(base + ["load", "-q", "-i", OCI_LAYOUT], env=env, check=True, capture_output=True)
    image = subprocess.run(base + ["images", "-q"], env=env, check=True, capture_output=True,
                           text=True).stdout.split()[0]
    try:
        return interleaved(list(found), runs, lambda name, i: timed(
            base + ["--runtime", name, "run", "--rm", "--network", "none", image, "true"], env=env))
    finally:
        subprocess.run(base + ["rm", "-af"], env=env, capture_output=True, check=False)
        subprocess.run(base + ["system", "reset", "-f"], env=env, capture_output=True, check=False)
        for d in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):  # podman's own, left behind
            for dirpath, dirnames, _ in os.walk(d):
                if os.path.basename(dirpath) == "libpod_parent":
                    for sub in dirnames:
                        try_rmdir(os.path.join(dirpath, sub))
                    try_rmdir(dirpath)


def try_rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def containerd_bench(work: str, found: dict[str, str], runs: int) -> dict[str, list[float]] | None:
    if not shutil.which("containerd"):
        return None
    from clients import containerd_config, stop_daemon

    tmp = os.path.join(work, "containerd")
    os.makedirs(tmp)
    sock = os.path.join(tmp, "containerd.sock")
    config = os.path.join(tmp, "config.toml")
    with open(config, "w") as f:
        f.write(containerd_config(tmp, sock))
    log = open(os.path.join(tmp, "containerd.log"), "w")
    daemon = subprocess.Popen(["containerd", "--config", config], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError(f"containerd did not start: see {tmp}/containerd.log")
            time.sleep(0.05)
        ctr = ["ctr", "-a", sock]
        archive = os.path.join(tmp, "busybox.tar")
        subprocess.run(["tar", "-C", OCI_LAYOUT, "-cf", archive, "."], check=True)
        subprocess.run(ctr + ["images", "import", "--index-name", IMAGE, archive], check=True, capture_output=True)
        return interleaved(list(found), runs, lambda name, i: timed(
            ctr + ["run", "--rm", "--runc-binary", found[name], IMAGE, f"bench-{name}-{i + 1}", "true"]))
    finally:
        stop_daemon(daemon)
        log.close()


def docker_bench(work: str, found: dict[str, str], runs: int) -> dict[str, list[float]] | None:
    """dockerd (20.10) with every runtime registered, and everything it
    makes inside a network namespace of ours."""
    if not shutil.which("dockerd") or not shutil.which("skopeo"):
        return None
    from clients import cgroups_named, stop_daemon

    base = os.path.join(work, "docker")
    os.makedirs(base)
    netns = f"husk-bench-{uuid.uuid4().hex[:8]}"
    sock = os.path.join(base, "docker.sock")
    config = os.path.join(base, "daemon.json")
    with open(config, "w") as f:
        json.dump({"runtimes": {n: {"path": p} for n, p in found.items() if n != "runc"},
                   "data-root": os.path.join(base, "data"), "exec-root": os.path.join(base, "exec"),
                   "pidfile": os.path.join(base, "docker.pid"), "hosts": [f"unix://{sock}"],
                   "storage-driver": "overlay2", "log-level": "warn", "cgroup-parent": f"/{netns}",
                   "features": {"buildkit": False}}, f)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", HOME=base)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    log = open(os.path.join(base, "dockerd.log"), "w")
    daemon = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", "dockerd", "--config-file", config],
                              stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(["docker", "version"], env=env, capture_output=True, check=False).returncode != 0:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError(f"dockerd did not start: see {base}/dockerd.log")
            time.sleep(0.2)
        archive = os.path.join(base, "busybox.tar")
        subprocess.run(["skopeo", "copy", "-q", f"oci:{OCI_LAYOUT}", f"docker-archive:{archive}:busybox:latest"],
                       check=True)
        subprocess.run(["docker", "load", "-q", "-i", archive], env=env, check=True, capture_output=True)
        return interleaved(list(found), runs, lambda name, i: timed(
            ["docker", "run", "--rm", "--runtime", name, "--network", "none", "busybox", "true"], env=env))
    finally:
        stop_daemon(daemon)
        log.close()
        for m in reversed([m.split()[1] for m in open("/proc/mounts") if m.split()[1].startswith(base + "/")]):
            subprocess.run(["umount", "-l", m], check=False)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        for top in cgroups_named(netns):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try_rmdir(dirpath)


def cri_bench(work: str, found: dict[str, str], runs: int) -> dict[str, list[float]] | None:
    if not shutil.which("containerd") or not shutil.which("gcc"):
        return None
    try:
        import grpc  # noqa: F401 - the test extra's; without it, no CRI client
        from cri_harness import Containerd, clean_up
    except ImportError:
        return None
    from clients import until

    base = os.path.join(work, "cri")
    os.makedirs(base)
    netns = f"husk-bench-{uuid.uuid4().hex[:8]}"
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    try:
        cri = Containerd(base, netns, handlers=found)
        exited = cri.pb.CONTAINER_EXITED

        def pod(name: str, i: int) -> float:
            start = time.perf_counter()
            sandbox, config = cri.run_pod(name, f"bench-{name}-{i + 2}")
            cid = cri.run_container(sandbox, config, "true", ["true"])
            until(lambda: cri.status(cid).state == exited, f"{cid} exited", interval=0.005)
            cri.remove_pod(sandbox)
            return time.perf_counter() - start

        try:
            return interleaved(list(found), runs, pod)
        finally:
            cri.close()
    finally:
        clean_up(base, netns_before | {netns}, cgroup_top="husk-cri-test")
        subprocess.run(["ip", "netns", "del", netns], check=False)


def burst_bench(work: str, found: dict[str, str], count: int) -> dict[str, float]:
    """COUNT OCI runs at once, each a new bundle, id and cgroupsPath, of a
    shape nobody has planned: the wall time until all have exited."""
    shape = uuid.uuid4().hex[:12]  # a masked path of its own: a config shape new to husk
    bundles = []
    for i in range(count):
        path = make_bundle(work, f"burst-{i}")
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        config["linux"]["maskedPaths"].append(f"/proc/bench-{shape}")
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
        bundles.append(path)
    result = {}
    for name, binary in found.items():
        for i, path in enumerate(bundles):  # a new cgroupsPath for each container and runtime
            with open(os.path.join(path, "config.json")) as f:
                config = json.load(f)
            config["linux"]["cgroupsPath"] = f"/husk-bench/{name}-{shape}-{i}"
            config["hostname"] = f"{name}-{i}"
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(config, f)
        start = time.perf_counter()
        procs = [subprocess.Popen([binary, "--root", f"{work}/burst-{name}", "run", "--bundle", path,
                                   f"burst-{name}-{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i, path in enumerate(bundles)]
        failed = [p.stderr.read().decode() for p in procs if p.wait() != 0]
        if failed:
            print(f"  {name} left out: {len(failed)} of {count} failed: {failed[0].strip()}", file=sys.stderr)
            continue
        result[name] = time.perf_counter() - start
    from clients import cgroups_named

    for top in cgroups_named("husk-bench"):  # what a failed run left, deepest first
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try_rmdir(dirpath)
    return result


def report(title: str, samples: dict[str, list[float]] | None) -> None:
    if not samples:
        print(f"{title}: not installed")
        return
    medians = {n: statistics.median(s) * 1000 for n, s in samples.items() if s}
    runs = len(next(iter(samples.values())))
    print(f"{title} (median of {runs}, each a new container): "
          + "  ".join(f"{n} {ms:.0f} ms" for n, ms in medians.items())
          + "".join(f"  husk/{o} {medians['husk'] / medians[o]:.2f}" for o in ("runc", "crun") if o in medians))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15, help="containers per runtime and client (median)")
    ap.add_argument("--burst", type=int, default=40, help="OCI runs started at once")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    work = tempfile.mkdtemp(prefix="husk-client-bench-")
    try:
        found = runtimes(work)
        report("podman run --rm", podman_bench(work, found, args.runs))
        report("ctr run --rm", containerd_bench(work, found, args.runs))
        report("docker run --rm", docker_bench(work, found, args.runs))
        report("CRI: a new pod running true", cri_bench(work, found, args.runs))
        burst = burst_bench(work, found, args.burst)
        print(f"{args.burst} first-time OCI runs at once: "
              + "  ".join(f"{n} {s:.2f} s" for n, s in burst.items())
              + "".join(f"  husk/{o} {burst['husk'] / burst[o]:.2f}" for o in ("runc", "crun") if o in burst))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
