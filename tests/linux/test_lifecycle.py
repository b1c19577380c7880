"""create / start / state / kill / delete / run, as runtime-spec
"Lifecycle" and "Operations" describe them."""

import json
import os
import time

import pytest

pytestmark = pytest.mark.root


def wait_status(b, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = b.husk("state", cid)
        if r.code == 0 and r.json()["status"] == status:
            return r.json()
        time.sleep(0.02)
    raise AssertionError(f"{cid} never became {status}: {b.husk('state', cid)}")


def test_run_returns_exit_code(bundle):
    assert bundle.run("/checker", "exit", "42").code == 42


def test_run_signal_exit_is_128_plus_signal(bundle):
    # Without a pid namespace the shell is not an init, so SIGKILL from itself lands.
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    assert bundle.run("sh", "-c", "kill -9 $$").code == 137


def test_create_start_state_delete(bundle, tmp_path):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    pid_file = tmp_path / "pid"
    bundle.husk("create", "--bundle", bundle.path, "--pid-file", str(pid_file), "c1", check=True)
    state = bundle.husk("state", "c1").json()
    assert state["status"] == "created"
    assert state["id"] == "c1"
    assert state["bundle"] == bundle.path
    assert state["ociVersion"]
    assert pid_file.read_text() == str(state["pid"])
    # The user process must not run before start: the pid still runs husk-init.
    assert os.readlink(f"/proc/{state['pid']}/exe") == "/memfd:husk-init (deleted)"  # the sealed copy

    bundle.husk("start", "c1", check=True)
    state = bundle.husk("state", "c1").json()
    assert state["status"] == "running"
    assert os.readlink(f"/proc/{state['pid']}/exe").endswith("checker")

    bundle.husk("kill", "c1", "KILL", check=True)
    wait_status(bundle, "c1", "stopped")
    bundle.husk("delete", "c1", check=True)
    assert bundle.husk("state", "c1").code != 0


def test_create_twice_fails(bundle):
    bundle.husk("create", "--bundle", bundle.path, "dup", check=True)
    r = bundle.husk("create", "--bundle", bundle.path, "dup")
    assert r.code != 0 and "already exists" in r.err
    # The first container is untouched.
    assert bundle.husk("state", "dup").json()["status"] == "created"
    bundle.husk("delete", "--force", "dup", check=True)


def test_start_of_stopped_container_fails(bundle):
    bundle.config["process"]["args"] = ["/checker", "exit", "0"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.husk("start", "c1", check=True)
    wait_status(bundle, "c1", "stopped")
    r = bundle.husk("start", "c1")
    assert r.code != 0 and "stopped" in r.err
    assert bundle.husk("state", "c1").json()["status"] == "stopped"
    bundle.husk("delete", "c1", check=True)


def test_delete_without_force_refuses_live_container(bundle):
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    r = bundle.husk("delete", "c1")
    assert r.code != 0 and "created" in r.err
    assert bundle.husk("state", "c1").json()["status"] == "created"
    bundle.husk("delete", "--force", "c1", check=True)
    assert bundle.husk("state", "c1").code != 0


def test_delete_force_of_missing_container_succeeds(bundle):
    assert bundle.husk("delete", "--force", "never-was").code == 0
    r = bundle.husk("delete", "never-was")
    assert r.code != 0 and "does not exist" in r.err


def test_state_of_unknown_container_fails(bundle):
    r = bundle.husk("state", "nope")
    assert r.code != 0 and "nope" in r.err


def test_config_changes_after_create_have_no_effect(bundle):
    bundle.config["process"]["args"] = ["/checker", "exit", "7"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    bundle.config["process"]["args"] = ["/checker", "exit", "9"]
    bundle.save()
    bundle.husk("start", "c1", check=True)
    st = wait_status(bundle, "c1", "stopped")
    assert st["pid"] == 0
    bundle.husk("delete", "c1", check=True)


def test_unknown_fields_and_annotations_are_accepted(bundle):
    bundle.config["somethingNew"] = {"x": 1}
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    assert bundle.husk("state", "c1").json()["annotations"] == {"org.example.key": "value"}
    bundle.husk("delete", "--force", "c1", check=True)


def test_relative_root_path_and_cwd_bundle(bundle):
    # containerd runs every command in the bundle with root.path "rootfs".
    bundle.config["root"]["path"] = "rootfs"
    bundle.config["process"]["args"] = ["/checker", "exit", "3"]
    bundle.save()
    r = bundle.husk("run", "-b", ".", "c1", cwd=bundle.path)
    assert r.code == 3, r.err


def test_run_without_a_runc_flag_is_the_image_form_even_in_a_bundle(bundle, tmp_path):
    """The command line alone picks the face: `run ID` in a bundle
    directory asks for an image named ID, as it would anywhere."""
    store = tmp_path / "store"
    r = bundle.husk("--storage-root", str(store), "run", "--pull=never", "c1", cwd=bundle.path)
    assert r.code == 125 and "not in the store" in r.err, r.err
    assert bundle.husk("state", "c1").code != 0
    assert json.loads(bundle.husk("list", "--format", "json").out) == []


def test_list_shows_containers(bundle):
    bundle.husk("create", "--bundle", bundle.path, "listed", check=True)
    rows = json.loads(bundle.husk("list", "--format", "json").out)
    assert [(r["id"], r["status"]) for r in rows] == [("listed", "created")]
    assert "listed" in bundle.husk("list").out
    bundle.husk("delete", "--force", "listed", check=True)


def test_run_detach_then_delete_force(bundle):
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    r = bundle.husk("run", "--detach", "--bundle", bundle.path, "c1")
    assert r.code == 0, r.err
    assert bundle.husk("state", "c1").json()["status"] == "running"
    bundle.husk("delete", "--force", "c1", check=True)


def test_husk_works_without_path_and_home(bundle):
    # podman calls kill and delete with only LC_CTYPE set.
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    env = {"LC_CTYPE": "C.UTF-8", "XDG_RUNTIME_DIR": ""}
    assert bundle.husk("kill", "c1", "9", env=env).code == 0
    wait_status(bundle, "c1", "stopped")
    assert bundle.husk("delete", "--force", "c1", env=env).code == 0
