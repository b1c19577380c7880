"""The docker lifecycle of detached image containers, under husk-monitor:
exit codes and logs that outlive the command, --restart, --rm, stop
(STOPSIGNAL, then SIGKILL), start again, kill, wait, ps, inspect, and a
monitor killed with SIGKILL.  Every effect is read back from what the
container wrote (its log), the kernel (/proc, mounts) or husk's records;
the husk_env fixture checks that nothing is left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from imagefixtures import monitors

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    husk_env("load", "-q", "--name", "stopsig", "-i", layouts["stopsignal"], check=True)
    return husk_env


def detach(h, *args) -> str:
    r = h("run", "-d", "--pull=never", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def inspect(h, name: str) -> dict:
    return json.loads(h("inspect", name, check=True).out)[0]


def until(predicate, what: str, tries: int = 600):
    """Poll what the container does (no time is asserted: the bound only
    stops a broken run from hanging the suite)."""
    for _ in range(tries):
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def log_has(h, name: str, text: str) -> bool:
    return text in h("logs", name).out


def test_exit_code_and_output_outlive_the_command(h):
    detach(h, "--name", "job", "bb", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert h("wait", "job", check=True).out.strip() == "3"
    r = h("logs", "job", check=True)
    assert r.out == "to-out\n" and r.err == "to-err\n"
    state = inspect(h, "job")["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 3, False)
    assert state["StartedAt"] <= state["FinishedAt"]
    assert re.match(r"Exited \(3\) ", h("ps", "-a", "--format", "{{.Status}}", check=True).out)
    assert h("ps", "-q", check=True).out == ""  # not running: only ps -a lists it
    # Released when it exited: no overlay mount, no OCI state, no monitor.
    cdir = os.path.join(h.store, "containers", inspect(h, "job")["Id"])
    assert not os.path.ismount(os.path.join(cdir, "rootfs"))
    assert not os.listdir(h.state) and not monitors(h.store)
    h("rm", "job", check=True)


def test_the_log_is_k8s_file_with_timestamps(h):
    detach(h, "--name", "job", "bb", "sh", "-c", "echo one; echo two >&2")
    h("wait", "job", check=True)
    cid = inspect(h, "job")["Id"]
    with open(os.path.join(h.store, "containers", cid, "container.log")) as f:
        records = f.read().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
    assert sorted(records, key=lambda r: r.split()[1]) and all(re.fullmatch(stamp + r" (stdout|stderr) F \w+", r)
                                                              for r in records), records
    assert {r.split(" ", 1)[1] for r in records} == {"stdout F one", "stderr F two"}
    timed = h("logs", "-t", "job", check=True).out
    assert re.fullmatch(stamp + " one\n", timed)
    h("rm", "job", check=True)


def test_logs_tail_since_and_follow(h):
    detach(h, "--name", "job", "bb", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done")
    h("wait", "job", check=True)
    assert h("logs", "--tail", "2", "job", check=True).out == "line4\nline5\n"
    assert h("logs", "--since", "2999-01-01T00:00:00Z", "job", check=True).out == ""
    assert h("logs", "--since", "1h", "job", check=True).out.count("line") == 5
    r = h("logs", "--tail", "many", "job")
    assert r.code != 0 and "--tail" in r.err
    # -f returns once the container has stopped and its log is read out.
    detach(h, "--name", "slow", "bb", "sh", "-c", "echo a; sleep 0.5; echo b")
    assert h("logs", "-f", "slow", check=True).out == "a\nb\n"
    h("rm", "job", "slow", check=True)


def test_log_max_size_rotates_to_one_old_file(h):
    detach(h, "--name", "chatty", "--log-opt", "max-size=2k", "bb", "sh", "-c",
           "i=0; while [ $i -lt 200 ]; do echo line-$i-padding-padding; i=$((i+1)); done")
    h("wait", "chatty", check=True)
    log = os.path.join(h.store, "containers", inspect(h, "chatty")["Id"], "container.log")
    sizes = [os.path.getsize(log), os.path.getsize(log + ".1")]
    assert all(0 < s <= 2048 for s in sizes), sizes
    assert not os.path.exists(log + ".2")
    out = h("logs", "chatty", check=True).out.splitlines()
    assert out[-1] == "line-199-padding-padding"
    # What is kept is the end of the output, in order, without gaps.
    first = int(out[0].split("-")[1])
    assert out == [f"line-{i}-padding-padding" for i in range(first, 200)]
    h("rm", "chatty", check=True)


def test_restart_on_failure_stops_after_its_count(h):
    detach(h, "--name", "flaky", "--restart", "on-failure:2", "bb", "sh", "-c", "echo run; exit 1")
    until(lambda: inspect(h, "flaky")["RestartCount"] == 2 and inspect(h, "flaky")["State"]["Status"] == "exited",
          "two restarts, then exited")
    assert h("logs", "flaky", check=True).out == "run\n" * 3
    assert inspect(h, "flaky")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert inspect(h, "flaky")["State"]["ExitCode"] == 1
    h("rm", "flaky", check=True)


def test_restart_always_restarts_until_stopped(h):
    detach(h, "--name", "loop", "--restart", "always", "bb", "sh", "-c", "echo run; sleep 0.2")
    until(lambda: h("logs", "loop").out.count("run") >= 3, "three runs")
    assert h("stop", "loop", check=True).out.strip() == "loop"
    state = inspect(h, "loop")["State"]
    assert state["Status"] == "exited"
    runs = h("logs", "loop").out.count("run")
    assert h("ps", "-q").out == ""  # stopped by the user: no restart after it
    assert inspect(h, "loop")["RestartCount"] == runs - 1
    h("rm", "loop", check=True)


def test_stop_sends_the_images_stopsignal(h):
    detach(h, "--name", "svc", "stopsig")
    until(lambda: log_has(h, "svc", "ready"), "the trap is set")
    h("stop", "svc", check=True)
    assert h("logs", "svc", check=True).out == "ready\ngot USR1\n"
    assert inspect(h, "svc")["State"]["ExitCode"] == 9
    assert inspect(h, "svc")["Config"]["StopSignal"] == "SIGUSR1"
    h("rm", "svc", check=True)


def test_stop_kills_what_ignores_the_signal_after_the_timeout(h):
    detach(h, "--name", "stubborn", "bb", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    until(lambda: log_has(h, "stubborn", "ready"), "the trap is set")
    h("stop", "-t", "1", "stubborn", check=True)
    assert inspect(h, "stubborn")["State"]["ExitCode"] == 128 + signal.SIGKILL
    h("rm", "stubborn", check=True)


def test_start_runs_a_stopped_container_again_with_its_changes_and_network(h):
    detach(h, "--name", "again", "bb", "sh", "-c", "echo x >> /counter; wc -l < /counter; ip -4 -o addr show eth0")
    h("wait", "again", check=True)
    assert h("start", "again", check=True).out.strip() == "again"
    h("wait", "again", check=True)
    out = h("logs", "again", check=True).out.splitlines()
    assert [out[0].strip(), out[2].strip()] == ["1", "2"]  # the rootfs kept its upper directory
    assert "inet " in out[1] and "inet " in out[3]  # eth0 was given an address both times
    r = h("start", "-a", "again", check=True)
    assert r.out.splitlines()[0].strip() == "3"
    h("rm", "again", check=True)


def test_restart_and_kill(h):
    detach(h, "--name", "srv", "bb", "sh", "-c", "trap 'echo hup' HUP; echo up; while :; do sleep 0.1; done")
    until(lambda: log_has(h, "srv", "up"), "started")
    h("kill", "-s", "HUP", "srv", check=True)
    until(lambda: log_has(h, "srv", "hup"), "the HUP trap ran")
    assert inspect(h, "srv")["State"]["Running"]
    first_pid = inspect(h, "srv")["State"]["Pid"]
    h("restart", "-t", "0", "srv", check=True)
    until(lambda: h("logs", "srv").out.splitlines().count("up") == 2, "up again")
    state = inspect(h, "srv")["State"]
    assert state["Running"] and state["Pid"] != first_pid
    h("kill", "srv", check=True)  # docker's default: SIGKILL
    assert h("wait", "srv", check=True).out.strip() == str(128 + signal.SIGKILL)
    r = h("kill", "srv")
    assert r.code != 0 and "not running" in r.err
    h("rm", "srv", check=True)


def test_rm_detached_removes_the_container_when_it_exits(h):
    cid = detach(h, "--rm", "bb", "sh", "-c", "exit 0")
    until(lambda: not os.path.exists(os.path.join(h.store, "containers", cid)), "removed")


def test_rm_force_of_a_running_one(h):
    detach(h, "--name", "busy", "bb", "sleep", "1000")
    assert h("ps", "--format", "{{.Names}} {{.State}}", check=True).out == "busy running\n"
    r = h("rm", "busy")
    assert r.code != 0 and "running" in r.err
    h("rm", "-f", "busy", check=True)
    assert h("ps", "-a", "-q", check=True).out == ""


def test_a_killed_monitor_is_reported_and_rm_f_removes_everything(h):
    cid = detach(h, "--name", "orphan", "bb", "sleep", "1000")
    (pid,) = monitors(h.store)
    os.kill(pid, signal.SIGKILL)
    until(lambda: not monitors(h.store), "the monitor is gone")
    state = inspect(h, "orphan")["State"]
    assert state["Running"] and "monitor" in state["Error"] and str(pid) in state["Error"]
    assert "(monitor lost)" in h("ps", check=True).out
    # The container is still there (nobody waits for it): rm -f stops and removes it.
    assert os.path.exists(f"/proc/{state['Pid']}")
    h("rm", "-f", "orphan", check=True)
    assert not os.path.exists(os.path.join(h.store, "containers", cid))


def test_names_resolve_by_unique_prefix(h):
    a = detach(h, "--name", "alpha-one", "bb", "true")
    detach(h, "--name", "alpha-two", "bb", "true")
    h("wait", "alpha-one", "alpha-two", check=True)
    assert inspect(h, a[:5])["Name"] == "/alpha-one"
    assert inspect(h, "alpha-o")["Name"] == "/alpha-one"
    r = h("inspect", "alpha")
    assert r.code != 0 and "matches 2 containers" in r.err
    assert h("inspect", "-f", "{{.State.Status}} {{.HostConfig.AutoRemove}}", "alpha-two").out == "exited false\n"
    h("rm", "alpha-one", "alpha-two", check=True)


@pytest.mark.parametrize("args, field", [
    (["--restart", "sometimes"], "--restart"),
    (["--restart", "always", "--rm"], "--restart"),
    (["--log-opt", "max-file=3"], "--log-opt"),
    (["--log-opt", "max-size=lots"], "--log-opt"),
])
def test_bad_detach_options_name_the_flag_and_leave_nothing(h, args, field):
    r = h("run", "-d", "--pull=never", *args, "bb", "true")
    assert r.code == 125 and field in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert h("ps", "-a", "-q").out == ""


def test_a_command_that_is_not_there_exits_127_and_leaves_nothing(h):
    r = h("run", "-d", "--pull=never", "bb", "/no/such/program")
    assert r.code == 127, r.err
    assert "/no/such/program" in r.err and len(r.err.strip().splitlines()) == 1
    assert h("ps", "-a", "-q").out == ""
