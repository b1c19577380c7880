"""One meaning per command line: the OCI face (runc's argv, as podman,
containerd and Docker send it) and the docker face are told apart by the
argv alone, and every docker verb names an image container the same way
by its full id, a unique id prefix or its name.

An image container's full id is also the id of the OCI container each of
its runs makes, under the same --root: the case where probing what is on
disk used to pick the wrong face."""

from __future__ import annotations

import json
import subprocess

import pytest

from test_docker_lifecycle import detach, inspect, until

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env("load", "-q", "--name", "bb", "-i", layouts["busybox"], check=True)
    return husk_env


def status(h, ref: str) -> str:
    return inspect(h, ref)["State"]["Status"]


def test_kill_by_full_id_is_dockers_kill(h):
    """The issue's case: run -d --restart always, then `husk kill <full id>`:
    docker's SIGKILL, and the restart policy does not bring it back."""
    cid = detach(h, "--restart", "always", "--name", "kt", "bb", "sleep", "1000")
    assert len(cid) == 64
    assert h("kill", cid, check=True).out == "kt\n"
    state = until(lambda: (s := inspect(h, "kt")["State"])["Status"] == "exited" and s, "kt exited")
    assert state["ExitCode"] == 137
    assert inspect(h, "kt")["RestartCount"] == 0
    assert h("ps", "-q", check=True).out == ""
    h("rm", "kt", check=True)


def test_kill_with_a_signal_operand_is_runcs_kill_of_the_oci_container(h):
    """`kill ID SIGNAL` is runc's form: it signals the OCI container and
    is no docker stop, so --restart always runs the container again."""
    cid = detach(h, "--restart", "always", "--name", "rk", "bb", "sleep", "1000")
    pid = inspect(h, "rk")["State"]["Pid"]
    assert h("kill", cid, "KILL", check=True).out == ""  # runc prints nothing
    until(lambda: inspect(h, "rk")["RestartCount"] == 1 and status(h, "rk") == "running", "rk restarted")
    assert inspect(h, "rk")["State"]["Pid"] != pid
    h("rm", "-f", "rk", check=True)


def test_ps_with_an_id_is_runcs_and_without_is_dockers(h):
    cid = detach(h, "--name", "pl", "bb", "sleep", "1000")
    pids = json.loads(h("ps", "--format", "json", cid, check=True).out)
    assert pids == [inspect(h, "pl")["State"]["Pid"]]
    rows = h("ps", "--format", "{{.ID}} {{.Names}}", check=True).out.splitlines()
    assert rows == [f"{cid[:12]} pl"]
    h("rm", "-f", "pl", check=True)


def test_exec_by_full_id_resolves_dockers_user_names(h):
    """An image container's full id names it for exec as its name does:
    -u NAME is looked up in its /etc/passwd, stdin is /dev/null without -i."""
    cid = detach(h, "--name", "xu", "bb", "sleep", "1000")
    assert h("exec", "-u", "nobody", cid, "id", "-un", check=True).out == "nobody\n"
    assert h("exec", cid, "cat", input="typed\n", check=True).out == ""
    h("rm", "-f", "xu", check=True)


def test_start_by_full_id_runs_a_stopped_image_container_again(h):
    cid = detach(h, "--name", "st", "bb", "sh", "-c", "echo run; sleep 1000")
    h("stop", "-t", "0", cid, check=True)
    assert status(h, "st") == "exited"
    assert h("start", cid, check=True).out == "st\n"
    until(lambda: h("logs", "st").out.count("run") == 2, "a second run")
    assert status(h, "st") == "running"
    h("rm", "-f", cid, check=True)


@pytest.mark.parametrize("form", ["id", "prefix", "name"])
def test_every_docker_verb_names_a_container_by_id_prefix_or_name(h, form, tmp_path):
    name = f"by-{form}"
    cid = detach(h, "--name", name, "-p", "127.0.0.1::80", "--health-cmd", "true", "--health-interval", "1h",
                 "bb", "sh", "-c", "echo hello | tee /greeting; sleep 1000")
    ref = {"id": cid, "prefix": cid[:10], "name": name}[form]

    assert inspect(h, ref)["Id"] == cid
    until(lambda: "hello" in h("logs", ref).out, "the output in the log")
    assert h("exec", ref, "echo", "in", check=True).out == "in\n"
    assert any("sleep 1000" in line for line in h("top", ref, check=True).out.splitlines()[1:])
    assert h("port", ref, "80", check=True).out.startswith("127.0.0.1:")
    stats = json.loads(h("stats", "--no-stream", "--format", "json", ref, check=True).out)
    assert [row["Container"] for row in stats] == [cid]
    assert h("healthcheck", "run", ref).code == 0
    h("cp", f"{ref}:/greeting", str(tmp_path / "greeting"), check=True)
    assert (tmp_path / "greeting").read_text() == "hello\n"

    # attach follows the running container to its end; kill ends it.
    attached = subprocess.Popen([h.husk_bin, "--root", h.state, "--storage-root", h.store, "attach", "--no-stdin", ref],
                                stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=h.env())
    until(lambda: status(h, ref) == "running", "running")
    assert h("kill", ref, check=True).out == f"{name}\n"
    assert attached.wait(timeout=60) == 137
    assert h("wait", ref, check=True).out == "137\n"

    assert h("start", ref, check=True).out == f"{name}\n"
    until(lambda: h("logs", ref).out.count("hello") == 2, "a second run")
    assert h("stop", "-t", "0", ref, check=True).out == f"{name}\n"
    assert status(h, ref) == "exited"
    assert h("restart", "-t", "0", ref, check=True).out == f"{name}\n"
    assert status(h, ref) == "running"

    h("rename", ref, f"{name}-2", check=True)
    assert inspect(h, cid)["Name"] == f"/{name}-2"
    ref = f"{name}-2" if form == "name" else ref
    assert h("rm", "-f", ref, check=True).out == f"{name}-2\n"
    r = h("inspect", cid)
    assert r.code == 1 and f"container '{cid}' does not exist" in r.err


def test_a_prefix_two_containers_share_is_refused_by_name(h):
    a = detach(h, "--name", "twin-a", "bb", "sleep", "1000")
    b = detach(h, "--name", "twin-b", "bb", "sleep", "1000")
    r = h("kill", "twin-")
    assert r.code == 1 and "matches 2 containers" in r.err
    assert status(h, a) == status(h, b) == "running"
    h("rm", "-f", a, b, check=True)
