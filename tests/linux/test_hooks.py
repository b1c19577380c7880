"""hooks: each kind runs at its point with the state on stdin; failures
of the create-time hooks abort and leave nothing; later ones only warn."""

import json
import os

import pytest

pytestmark = pytest.mark.root


def hook(path, *args, timeout=None):
    h = {"path": "/bin/sh", "args": ["sh", "-c", *args]}
    if timeout:
        h["timeout"] = timeout
    return h


def test_runtime_hooks_get_the_state(bundle, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    bundle.config["hooks"] = {
        kind: [hook("/bin/sh", f"cat > {out}/{kind}")]
        for kind in ("prestart", "createRuntime", "poststart", "poststop")}
    bundle.config["process"]["args"] = ["/checker", "exit", "0"]
    assert bundle.run().code == 0
    for kind, status in (("prestart", "created"), ("createRuntime", "created"), ("poststart", "running"),
                         ("poststop", "stopped")):
        state = json.loads((out / kind).read_text())
        assert state["id"] == "c1" and state["status"] == status, kind
        assert state["bundle"] == bundle.path
    assert json.loads((out / "prestart").read_text())["pid"] > 0


def test_create_container_hook_runs_in_the_container_mount_namespace(bundle, tmp_path):
    out = tmp_path / "cc"
    # Before pivot_root the container's mounts are visible under the rootfs path.
    bundle.config["hooks"] = {"createContainer": [hook(
        "/bin/sh", f"cat > {out}; readlink /proc/self/ns/mnt > {out}.ns; test -e {bundle.rootfs}/proc/self")]}
    bundle.config["process"]["args"] = ["/checker", "report"]
    r = bundle.run()
    assert r.code == 0, r.err
    assert json.loads(out.read_text())["id"] == "c1"
    assert (tmp_path / "cc.ns").read_text().strip() == r.json()["namespaces"]["mnt"]


def test_start_container_hook_runs_inside_the_container(bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["hooks"] = {"startContainer": [hook("/bin/sh", "cat > /started")]}
    bundle.config["process"]["args"] = ["cat", "/started"]
    r = bundle.run()
    assert r.code == 0, r.err
    assert json.loads(r.out)["id"] == "c1"


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(bundle, kind):
    bundle.config["hooks"] = {kind: [hook("/bin/sh", "exit 3")]}
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0
    assert f"{kind} hook" in r.err and "exit status 3" in r.err
    assert bundle.husk("state", "c1").code != 0


def test_failing_start_container_hook_fails_start(bundle):
    bundle.config["hooks"] = {"startContainer": [hook("/bin/sh", "exit 4")]}
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
    r = bundle.husk("start", "c1")
    assert r.code != 0 and "startContainer hook" in r.err
    bundle.husk("delete", "--force", "c1", check=True)


def test_failing_poststart_hook_only_warns(bundle, tmp_path):
    marker = tmp_path / "second-ran"
    bundle.config["hooks"] = {"poststart": [hook("/bin/sh", "exit 5"), hook("/bin/sh", f"touch {marker}")]}
    bundle.config["process"]["args"] = ["/checker", "exit", "0"]
    r = bundle.run()
    assert r.code == 0
    assert "poststart hook" in r.err and marker.exists()


def test_hook_timeout(bundle):
    bundle.config["hooks"] = {"createRuntime": [hook("/bin/sh", "sleep 30", timeout=1)]}
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "timed out" in r.err


def test_hook_env_and_args(bundle, tmp_path):
    out = tmp_path / "env"
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f'echo "$0 $FOO" > {out}', "arg0"],
                                            "env": ["FOO=bar"]}]}
    bundle.config["process"]["args"] = ["true"]
    assert bundle.run().code == 0
    assert out.read_text().strip() == "arg0 bar"
    assert not os.path.exists(os.path.join(bundle.rootfs, "started"))


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_both_hook_runners_fail_alike(bundle, kind, tmp_path):
    """prestart and createRuntime run in husk (Python), createContainer in
    husk-init (C): a missing hook, a failing one and one that talks on
    stdout give the same message, and the hook's stdout is not the
    container's output."""
    bundle.config["process"]["args"] = ["/checker", "exit", "0"]
    bundle.config["hooks"] = {kind: [{"path": "/no/such/hook"}]}
    r = bundle.run()
    assert r.code != 0 and f"{kind} hook: /no/such/hook: No such file or directory" in r.err, r.err
    bundle.config["hooks"] = {kind: [hook("/bin/sh", "echo chatter; exit 3")]}
    r = bundle.run()
    assert r.code != 0 and f"{kind} hook: /bin/sh: exit status 3" in r.err, r.err
    assert r.out == "" and "chatter" in r.err
    bundle.config["hooks"] = {kind: [hook("/bin/sh", "echo chatter")]}
    r = bundle.run()
    assert (r.code, r.out) == (0, ""), r.err
    assert "chatter" in r.err
