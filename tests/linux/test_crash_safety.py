"""A husk killed at any point leaves nothing that `delete -f` (or, for
images, `system prune`) cannot remove; clean-up never reaches a process
that is not the container's.

husk is killed at many points of create and run, from just after it
started to just before it finished, and at a prestart hook; the leak
check after each (cgroups, state, mounts, processes) is the fixture's.
No timing is asserted: the delays only spread the kill points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import HUSK, find_leaks

pytestmark = pytest.mark.root

DELAYS_MS = [0, 20, 40, 60, 80, 100, 120, 140, 160, 200, 250, 300, 400]


def kill_after(bundle, args, delay_ms: float, sig=signal.SIGKILL) -> None:
    proc = subprocess.Popen([HUSK, "--root", bundle.root, *args], cwd=bundle.path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    proc.send_signal(sig)
    proc.wait(timeout=60)


def clean_with_delete(bundle, cid="c1") -> None:
    r = bundle.husk("delete", "--force", cid)
    assert r.code == 0, r.err
    for _ in range(100):
        if not find_leaks(bundle):
            break
        time.sleep(0.02)
    assert find_leaks(bundle) == []


@pytest.mark.parametrize("verb", ["create", "run"])
def test_sigkill_at_every_step(bundle, verb):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    for delay in DELAYS_MS:
        kill_after(bundle, [verb, "--bundle", bundle.path, "c1"], delay)
        clean_with_delete(bundle)


def test_sigterm_unwinds_create(bundle):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    for delay in DELAYS_MS:
        kill_after(bundle, ["create", "--bundle", bundle.path, "c1"], delay, signal.SIGTERM)
        if os.path.isdir(os.path.join(bundle.root, "c1")):  # it finished before the signal
            assert bundle.husk("delete", "--force", "c1").code == 0
        assert find_leaks(bundle) == []


def test_sigkill_during_a_prestart_hook(bundle, tmp_path):
    marker = tmp_path / "hook-started"
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}; sleep 3"]}]}
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    proc = subprocess.Popen([HUSK, "--root", bundle.root, "create", "--bundle", bundle.path, "c1"], cwd=bundle.path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.01)
    assert marker.exists()
    proc.kill()
    proc.wait()
    clean_with_delete(bundle)


def test_delete_kills_only_in_cgroups_husk_made(bundle):
    # cgroupsPath names a cgroup that exists, with a stranger's process in it.
    from conftest import _cgroup_mounts

    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    cgroup = bundle.config["linux"]["cgroupsPath"].lstrip("/")
    stranger = subprocess.Popen(["sleep", "60"])
    made = []
    try:
        for base in _cgroup_mounts():
            d = os.path.join(base, cgroup)
            if not os.path.isdir(d):
                os.makedirs(d)
                made.append(d)
            if base.endswith(("pids", "freezer")):
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(stranger.pid))
        bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
        bundle.husk("kill", "--all", "c1", "KILL", check=True)
        bundle.husk("delete", "--force", "c1", check=True)
        assert stranger.poll() is None, "delete killed a process that was not the container's"
    finally:
        stranger.kill()
        stranger.wait()
        for d in sorted(made, key=len, reverse=True):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.02)


def _kill_husk_env(h, args, delay_ms: float) -> None:
    argv = [h.husk_bin, "--root", h.state, "--storage-root", h.store, *args]
    proc = subprocess.Popen(argv, env=h.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    proc.kill()
    proc.wait(timeout=60)


def test_sigkill_of_run_image_then_prune_leaves_nothing(husk_env, layouts):
    from imagefixtures import leaks

    h = husk_env
    h("load", "-q", "--name", "netbox", "-i", layouts["netbox"], check=True)
    for delay in DELAYS_MS:
        _kill_husk_env(h, ["run", "--rm", "--pull=never", "-p", "18090:8080", "netbox", "/checker", "wait-signal"],
                       delay)
        # A run killed after its container started leaves it running, as
        # docker's would without its daemon: the user removes it.
        for c in json.loads(h("containers", "--format", "json", check=True).out):
            h("rm", "-f", c["id"], check=True)
        h("system", "prune", check=True)
        assert leaks(h) == [], f"after a kill at {delay} ms"
        assert h.store_files("containers") == [] and h.store_files("tmp") == []


def test_sigkill_of_pull_then_prune_leaves_nothing(husk_env, http_registry):
    h = husk_env
    for delay in DELAYS_MS:
        _kill_husk_env(h, ["pull", "-q", f"{http_registry.host}/test/layers"], delay)
        h("system", "prune", check=True)
        assert h.store_files("tmp") == [], f"after a kill at {delay} ms"
        if not h.names():  # the pull did not finish: nothing of it may stay
            assert h.store_files("blobs") == [] and h.store_files("layers") == []
        h("rmi", f"{http_registry.host}/test/layers")
        h("image", "prune")


def test_prune_removes_a_layer_record_whose_write_was_killed(husk_env, http_registry):
    # A SIGKILL between the write and the rename of a layer's metadata
    # leaves "<hex>.json.tmp<pid>" beside the layers: prune removes it
    # rather than reading its name as a diffID. The kill timing above only
    # reaches this state sometimes; this makes it directly.
    h = husk_env
    h("pull", "-q", f"{http_registry.host}/test/layers", check=True)
    layers = os.path.join(h.store, "layers", "sha256")
    record = next(n for n in os.listdir(layers) if n.endswith(".json"))
    stale = os.path.join(layers, f"{record}.tmp99999")
    with open(stale, "w") as f:
        f.write("{")
    h("system", "prune", check=True)
    assert not os.path.exists(stale)
    assert h.names(), "prune removed the image's own layers"
    h("rmi", f"{http_registry.host}/test/layers", check=True)
    h("image", "prune", check=True)
    assert h.store_files("layers") == [] and h.store_files("blobs") == []
