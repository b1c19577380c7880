"""The process's security setup beyond the config: a session keyring of
its own, empty capability sets when the config names none, exec bounded
by the container, default signals, only the fds really passed, and no
NUL byte smuggled into a string husk-init reads as C."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess

import pytest
from conftest import HUSK

pytestmark = pytest.mark.root

KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3
SYS_KEYCTL = 250  # x86_64
SYS_RT_SIGACTION = 13


def my_session_keyring() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)


def test_container_gets_a_session_keyring_of_its_own(bundle):
    seen = json.loads(bundle.run("/checker", "keyring").out)
    assert seen["serial"] > 0 and seen["serial"] != my_session_keyring()
    assert seen["description"].endswith(";_ses.c1"), seen


def test_no_new_keyring_keeps_the_callers(bundle):
    bundle.config["process"]["args"] = ["/checker", "keyring"]
    bundle.save()
    r = bundle.husk("run", "--no-new-keyring", "--bundle", bundle.path, "c1")
    assert json.loads(r.out)["serial"] == my_session_keyring()


def test_exec_gets_the_containers_keyring_name(bundle):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
    try:
        seen = json.loads(bundle.husk("exec", "c1", "/checker", "keyring", check=True).out)
        assert seen["serial"] != my_session_keyring() and seen["description"].endswith(";_ses.c1")
    finally:
        bundle.husk("delete", "--force", "c1")


def test_no_capabilities_in_the_config_means_none(bundle):
    del bundle.config["process"]["capabilities"]
    caps = bundle.report()["caps"]
    assert set(caps.values()) == {"0000000000000000"}, caps


def test_a_missing_bounding_set_is_empty(bundle):
    # Without a bounding set, host root's would stay, and execve gives
    # root every capability in it.
    bundle.config["process"]["capabilities"] = {"permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]}
    caps = bundle.report()["caps"]
    assert caps["CapBnd"] == caps["CapInh"] == caps["CapAmb"] == "0000000000000000", caps
    assert caps["CapPrm"] == caps["CapEff"] == "0000000000000000", caps  # root's execve: P' = P(bset) = none


def test_ambient_caps_that_are_not_inheritable_are_skipped(bundle):
    # runc spec's own config: ambient lists caps it does not make inheritable.
    kill = ["CAP_KILL"]
    bundle.config["process"]["capabilities"] = {"bounding": kill, "effective": kill, "permitted": kill,
                                                "ambient": kill}
    caps = bundle.report()["caps"]
    assert caps["CapAmb"] == "0000000000000000" and caps["CapPrm"] == "%016x" % (1 << 5)


def test_exec_process_without_capabilities_gets_none(bundle, tmp_path):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
    try:
        process = {"args": ["/checker", "report"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        (tmp_path / "p.json").write_text(json.dumps(process))
        seen = bundle.husk("exec", "--process", str(tmp_path / "p.json"), "c1", check=True).json()
        assert set(seen["caps"].values()) == {"0000000000000000"}
        # Asking for more than the container's bounding set gets only what it has.
        process["capabilities"] = {s: ["CAP_KILL", "CAP_SYS_ADMIN"] for s in ("bounding", "effective", "permitted")}
        (tmp_path / "p.json").write_text(json.dumps(process))
        seen = bundle.husk("exec", "--process", str(tmp_path / "p.json"), "c1", check=True).json()
        assert seen["caps"]["CapEff"] == seen["caps"]["CapBnd"] == "%016x" % (1 << 5)  # KILL, not SYS_ADMIN
    finally:
        bundle.husk("delete", "--force", "c1")


def test_signals_are_reset_before_execve(bundle):
    # husk's caller ignores SIGPIPE, SIGHUP and a real-time signal, and
    # blocks SIGTERM and SIGUSR1.
    def caller_setup():
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGRTMIN + 2, signal.SIG_IGN)
        # glibc's reserved 33 (SIGSETXID) too, as some callers leave it:
        # only the raw rt_sigaction reaches it.
        libc = ctypes.CDLL(None, use_errno=True)
        ign = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # SIG_IGN, flags, restorer, mask
        assert libc.syscall(SYS_RT_SIGACTION, 33, ign, None, 8) == 0
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})

    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    r = subprocess.run([HUSK, "--root", bundle.root, "run", "--bundle", bundle.path, "c1"], capture_output=True,
                       text=True, timeout=60, preexec_fn=caller_setup, restore_signals=False)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert int(seen["sigblk"], 16) == 0 and int(seen["sigign"], 16) == 0, seen


def test_preserve_fds_passes_only_fds_the_caller_passed(bundle, tmp_path):
    # The caller passes fd 5 only; 3 and 4 are gaps that husk may fill
    # with fds of its own (state directory, sockets): they must stay closed.
    (tmp_path / "five").write_text("five")
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    r = subprocess.run(["sh", "-c", 'exec "$0" "$@" 5<"$F"', HUSK, "--root", bundle.root, "run",
                        "--preserve-fds", "3", "--bundle", bundle.path, "c1"],
                       env=dict(os.environ, F=str(tmp_path / "five")), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    fds = {f["fd"]: f["target"] for f in json.loads(r.stdout)["fds"]}
    assert sorted(fds) == [0, 1, 2, 5] and fds[5].endswith("/five"), fds


@pytest.mark.parametrize("field, value", [
    ("args", ["/checker", "re\0port"]),
    ("env", ["A=b\0c"]),
    ("cwd", "/tmp\0/x"),
])
def test_nul_bytes_are_refused_by_name(bundle, field, value):
    bundle.config["process"][field] = value
    bundle.save()
    r = bundle.husk("run", "--bundle", bundle.path, "c1")
    assert r.code != 0 and f"process.{field}" in r.err and "NUL" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
