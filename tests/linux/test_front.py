"""The C front end (native/front) and its recipe cache (runtime/recipe.py).

Every other test runs through the front end too; these check what is
its own: a recipe is planned once per config shape and reused for any
container of that shape, each with its own per-container values (id,
rootfs, hostname, args, env, bind sources, cgroupsPath, annotations), a
changed shape or filesystem is planned again, a cache entry that does not
match is never used, and what the front end hands to Python comes out as
Python says it.
"""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess

import pytest
from conftest import HUSK
from runtime.core.container import plan_create
from runtime.core.oci.spec import load_config
from runtime.core.process import protocol as proto

pytestmark = pytest.mark.root

CACHE = "/run/husk-plans"


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with no recipe: pytest names a run's directories
    as an earlier run named them (their contents are gone once it passed),
    so an earlier run's recipe would have the same key."""
    for name in entries():
        os.unlink(os.path.join(CACHE, name))


def entries() -> dict[str, int]:
    """Cache entry name -> inode (a rewritten entry is a new file)."""
    try:
        return {n: os.stat(os.path.join(CACHE, n)).st_ino for n in os.listdir(CACHE) if not n.startswith(".")}
    except FileNotFoundError:
        return {}


def test_the_husk_command_is_the_c_front_end():
    with open(HUSK, "rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_a_recipe_is_planned_once_and_reused_for_other_ids(bundle):
    bundle.config["process"]["args"] = ["/checker", "keyring"]
    bundle.save()
    before = entries()
    first = json.loads(bundle.husk("run", "--bundle", bundle.path, "a1", check=True).out)
    made = {n: i for n, i in entries().items() if before.get(n) != i}
    assert len(made) == 1, made
    second = json.loads(bundle.husk("run", "--bundle", bundle.path, "a2", check=True).out)  # another id
    assert {n: entries().get(n) for n in made} == made, "the entry was planned again"
    # Each container's own id, filled in: here, the session keyring's name.
    assert first["description"].endswith(";_ses.a1") and second["description"].endswith(";_ses.a2")


def test_a_container_of_the_same_shape_reuses_the_recipe_with_its_own_values(bundle, tmp_path):
    """What podman, containerd and Docker do: every container a new config
    that differs only in per-container values.  The second one is not
    planned again, and it runs with its own values, not the first's."""
    def variant(name: str, args: list[str]) -> tuple[str, str]:
        path = tmp_path / name
        (path / "data").mkdir(parents=True)
        (path / "data" / "f").write_text(f"bind of {name}\n")
        rootfs = path / "rootfs"
        subprocess.run(["cp", "-a", bundle.rootfs, str(rootfs)], check=True)
        (rootfs / "marker").write_text(f"rootfs of {name}\n")
        config = copy.deepcopy(bundle.config)
        config["root"]["path"] = str(rootfs)
        config["hostname"] = f"host-{name}"
        config["process"]["args"] = args
        config["process"]["env"] = ["PATH=/bin", f"HOSTNAME=host-{name}"]
        config["mounts"].append({"destination": "/data", "type": "bind", "source": str(path / "data"),
                                 "options": ["rbind", "ro"]})
        config["linux"]["cgroupsPath"] = f"{bundle.config['linux']['cgroupsPath']}-{name}"
        config["annotations"] = {"org.example.made-for": name}
        (path / "config.json").write_text(json.dumps(config))
        cid = f"shape-{name}"
        r = bundle.husk("run", "--keep", "--bundle", str(path), cid, check=True)
        state = json.loads(bundle.husk("state", cid, check=True).out)
        saved = json.loads((tmp_path / "state" / cid / "state.json").read_text())
        bundle.husk("delete", cid, check=True)
        assert not any(os.path.isdir(os.path.join(base, config["linux"]["cgroupsPath"].lstrip("/")))
                       for base in cgroup_bases())
        assert state["bundle"] == str(path) and state["annotations"] == {"org.example.made-for": name}
        assert saved["husk"]["cgroup"] == config["linux"]["cgroupsPath"]
        assert saved["husk"]["rootfs"] == str(rootfs)
        assert saved["husk"]["process"]["args"] == args
        return r.out

    before = entries()
    script = "cat /marker /data/f; hostname; echo $HOSTNAME; echo"
    out = variant("one", ["/bin/sh", "-c", script + " one"])
    assert out == "rootfs of one\nbind of one\nhost-one\nhost-one\none\n"
    made = {n: i for n, i in entries().items() if before.get(n) != i}
    assert len(made) == 1, made
    out = variant("two", ["/bin/sh", "-c", script + " two"])
    assert out == "rootfs of two\nbind of two\nhost-two\nhost-two\ntwo\n"
    assert {n: i for n, i in entries().items() if before.get(n) != i} == made, "the second was planned again"


def test_mounts_in_another_order_take_the_same_recipe_in_their_own_order(bundle, tmp_path):
    """podman lists its mounts in a new order for each container: one
    recipe serves every order, and each container's mounts are made in
    its own config's order (which matters where one lies on another)."""
    def data(name: str) -> str:
        d = tmp_path / name
        d.mkdir()
        (d / "f").write_text(f"{name}\n")
        return str(d)

    def bind(source: str, dest: str) -> dict:
        return {"destination": dest, "type": "bind", "source": source, "options": ["rbind", "ro"]}

    tmpfs = {"destination": "/n", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
    base = list(bundle.config["mounts"])
    orders = {
        "one": [bind(data("a1"), "/ma"), tmpfs, bind(data("x1"), "/n/x"), bind(data("b1"), "/mb")],
        "two": [bind(data("b2"), "/mb"), tmpfs, bind(data("x2"), "/n/x"), bind(data("a2"), "/ma")],
        # The tmpfs on /n after the bind under it: it hides that bind.
        "three": [bind(data("x3"), "/n/x"), bind(data("a3"), "/ma"), bind(data("b3"), "/mb"), tmpfs],
    }
    before = entries()
    outputs = {}
    for name, mounts in orders.items():
        bundle.config["mounts"] = base + mounts
        r = bundle.run("/bin/sh", "-c", "cat /ma/f /mb/f; cat /n/x/f 2>/dev/null || echo hidden", cid=f"o-{name}")
        assert r.code == 0, r.err
        outputs[name] = r.out
        if name == "one":
            made = {n: i for n, i in entries().items() if before.get(n) != i}
    bundle.config["mounts"] = base
    assert outputs == {"one": "a1\nb1\nx1\n", "two": "a2\nb2\nx2\n", "three": "a3\nb3\nhidden\n"}
    assert {n: i for n, i in entries().items() if before.get(n) != i} == made, "another order was planned again"


def test_the_same_config_gives_the_same_state_on_every_path(bundle, tmp_path):
    """Parity: planned for this container, taken from the cache, or of
    another shape (a relative cgroupsPath, unclean as runc takes it) -
    the state.json differs only in what is per-container."""
    states = {}
    absolute = bundle.config["linux"]["cgroupsPath"]
    for cid, cgroups_path in (("p-fresh", absolute), ("p-cached", absolute), ("p-python", "./husk-parity//p/")):
        bundle.config["linux"]["cgroupsPath"] = cgroups_path
        bundle.config["process"]["args"] = ["/checker", "wait-signal"]
        bundle.save()
        bundle.husk("create", "--bundle", bundle.path, cid, check=True)
        states[cid] = json.loads((tmp_path / "state" / cid / "state.json").read_text())
        bundle.husk("delete", "--force", cid, check=True)
    bundle.config["linux"]["cgroupsPath"] = absolute
    assert states["p-python"]["husk"]["cgroup"] == "/husk/husk-parity/p"
    for st in states.values():
        for volatile in ("id", "pid"):
            st.pop(volatile)
        for volatile in ("created", "start_time", "cgroup_created", "cgroup", "cgroup_dirs"):
            st["husk"].pop(volatile)
    assert states["p-fresh"] == states["p-cached"]
    assert states["p-fresh"] == states["p-python"]


# A list item in a plan: its *_BEGIN record and the records that fill it.
ITEMS = {proto.Tag.MOUNT_BEGIN: range(21, 28), proto.Tag.DEVICE_BEGIN: range(32, 37),
         proto.Tag.HOOK_BEGIN: range(71, 75), proto.Tag.SECCOMP_RULE: range(84, 86)}


def normalized(plan: bytes) -> tuple[dict, list]:
    """A plan as what it means: each record kind's values in order, and the
    list items (mounts, devices, hooks, seccomp rules) whole, in order.
    The front end adds a container's own values just before PLAN_END;
    Python's encoder puts them where they belong: the order of different
    kinds means nothing to husk-init."""
    values, items, item = {}, [], None
    for tag, value in proto.split_records(plan):
        if tag in ITEMS:
            item = (tag, [value])
            items.append(item)
        elif item is not None and tag in ITEMS[item[0]]:
            item[1].append((tag, value))
        else:
            item = None
            values.setdefault(proto.Tag(tag).name, []).append(value)
    return values, items


def test_the_plan_husk_init_gets_is_the_one_python_makes(bundle, tmp_path):
    """Parity of the plan: what husk-init is sent for a container whose
    recipe was planned for another one, with its own values filled in,
    is the plan Python makes for that container itself."""
    data = tmp_path / "data"
    data.mkdir()
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.config["process"]["env"] = ["PATH=/bin", "HOSTNAME=parity"]
    bundle.config["hostname"] = "parity"
    bundle.config["mounts"].insert(0, {"destination": "/data", "type": "bind", "source": str(data),
                                       "options": ["rbind", "ro"]})
    bundle.save()
    sent = {}
    for cid in ("q-planned", "q-filled"):
        out = tmp_path / f"{cid}.plan"
        bundle.husk("create", "--bundle", bundle.path, cid, check=True,
                    env=dict(os.environ, HUSK_PLAN_OUT=str(out)))
        sent[cid] = out.read_bytes()
        bundle.husk("delete", "--force", cid, check=True)
    bundle.config["mounts"].pop(0)

    created = plan_create(load_config(bundle.path), bundle.path, "q-filled", no_pivot=False, no_new_keyring=False)
    created.plan.exec_fifo = str(tmp_path / "state" / "q-filled" / "exec.fifo")
    own = normalized(proto.encode_plan(created.plan))
    assert normalized(sent["q-filled"]) == own
    assert normalized(sent["q-planned"]) != own  # its own id: the keyring, the fifo


def test_a_changed_config_is_planned_again(bundle):
    bundle.config["hostname"] = "before"
    assert bundle.report(cid="b1")["hostname"] == "before"
    bundle.config["hostname"] = "after"
    assert bundle.report(cid="b2")["hostname"] == "after"


def test_a_bind_source_gone_since_planning_is_reported_by_name(bundle, tmp_path):
    source = tmp_path / "data"
    source.mkdir()
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(source),
                                    "options": ["rbind", "ro"]})
    bundle.report(cid="c1")
    source.rmdir()
    r = bundle.run("/checker", "report", cid="c2")
    assert r.code == 1
    assert r.err.strip().splitlines() == [f"husk: config.json: mounts[{len(bundle.config['mounts']) - 1}].source: "
                                          f"{source} does not exist"]


def test_an_entry_that_does_not_match_is_not_used(bundle):
    bundle.config["hostname"] = "genuine"
    before = entries()
    bundle.report(cid="d1")
    name = next(n for n, i in entries().items() if before.get(n) != i)
    path = os.path.join(CACHE, name)
    with open(path, "r+b") as f:  # the key is stored first: change a byte of it
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 1]))
    assert bundle.report(cid="d2")["hostname"] == "genuine"
    assert os.stat(path).st_ino != before.get(name), "the entry was planned again"


def test_a_recipe_that_is_not_husk_recipe_defs_is_planned_afresh(bundle):
    """The front end checks a cached recipe's meta against
    native/include/husk_recipe.def: one with a field it does not declare
    (changed by hand, or by another build of husk) is not carried out."""
    bundle.config["hostname"] = "declared"
    before = entries()
    bundle.report(cid="m1")
    name = next(n for n, i in entries().items() if before.get(n) != i)
    path = os.path.join(CACHE, name)
    with open(path, "rb") as f:
        entry = f.read()
    (klen,) = struct.unpack_from("=Q", entry)
    recipe = entry[8 + klen:]
    (head,) = struct.unpack_from("=I", recipe)
    meta = json.loads(recipe[4:4 + head])
    meta["undeclared"] = True
    text = json.dumps(meta).encode()
    with open(path, "wb") as f:
        f.write(entry[:8 + klen] + struct.pack("=I", len(text)) + text + recipe[4 + head:])
    assert bundle.report(cid="m2")["hostname"] == "declared"
    with open(path, "rb") as f:
        assert b"undeclared" not in f.read(), "the entry was not planned again"


@pytest.mark.parametrize("field, value", [("cgroupsPath", 42), ("hostname", ["a"]), ("annotations", "a"),
                                          ("annotations", {"org.example.n": 1})])
def test_a_value_planning_refuses_is_refused_with_a_recipe_of_its_shape(bundle, field, value):
    """A per-container value is taken out of the shape, so a recipe made for
    good values would fit; the front end checks the value's type first."""
    bundle.config["linux"]["cgroupsPath"] = "/husk-front/typed"
    bundle.report(cid="t1")
    part = bundle.config["linux"] if field == "cgroupsPath" else bundle.config
    good, part[field] = part.get(field), value
    r = bundle.run("/checker", "report", cid="t2")
    part[field] = good  # for the fixture's check that nothing was left
    assert r.code == 1 and field in r.err, r.err
    assert r.err.count("\n") == 1


def test_an_untrusted_cache_directory_is_not_used(bundle):
    os.chmod(CACHE, 0o777)
    try:
        bundle.config["hostname"] = "untrusted"
        before = entries()
        assert bundle.report(cid="e1")["hostname"] == "untrusted"
        assert entries() == before, "a recipe was written into a directory others can write"
    finally:
        os.chmod(CACHE, 0o700)


def test_errors_come_from_python_one_line_and_logged_as_json(bundle, tmp_path):
    log = tmp_path / "log.json"
    r = run_front(bundle, f"--log={log}", "--log-format=json", "start", "nosuch")
    assert r.returncode == 1
    assert r.stderr.strip() == "husk: container 'nosuch' does not exist"
    assert json.loads(log.read_text().splitlines()[-1])["msg"] == "container 'nosuch' does not exist"
    r = run_front(bundle, "kill", "nosuch", "RTMIN+3")  # a name only Python parses
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_host_hooks_are_run_by_the_front_end(bundle, tmp_path):
    marker = tmp_path / "poststart"
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {marker}"]}]}
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "h1", check=True)
    bundle.husk("start", "h1", check=True)
    assert json.loads(marker.read_text())["id"] == "h1"
    bundle.husk("delete", "--force", "h1", check=True)


def test_delete_force_of_a_deleted_container_is_not_an_error(bundle):
    assert run_front(bundle, "delete", "--force", "never-made").returncode == 0
    r = run_front(bundle, "delete", "never-made")
    assert r.returncode == 1 and "does not exist" in r.stderr


def cgroup_bases() -> list[str]:
    from runtime.core.cgroups.layout import detect
    layout = detect()
    return list(layout.v1.values()) + ([layout.unified] if layout.unified else [])


def run_front(bundle, *args) -> subprocess.CompletedProcess:
    return subprocess.run([HUSK, "--root", bundle.root, *args], capture_output=True, text=True, cwd=bundle.path,
                          timeout=60)


def test_debug_is_a_global_flag_the_front_end_takes(bundle):
    """containerd's shim passes --debug when it logs at debug level."""
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    r = bundle.husk("--debug", "run", "--bundle", bundle.path, "dbg")
    assert r.code == 0, r.err
    assert json.loads(r.out)["hostname"]


def test_a_number_past_int64_is_carried_exactly(bundle):
    """docker's and podman's --ulimit ...=-1 write RLIM_INFINITY as 2^64-1,
    past the front end's int64: such a config still runs, and exec (whose
    process comes from the bundle then) sees the same limit."""
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "big", check=True)
    try:
        r = bundle.husk("exec", "big", "sh", "-c", "ulimit -c")
        assert r.code == 0 and r.out == "unlimited\n", (r.out, r.err)
    finally:
        bundle.husk("delete", "--force", "big", check=True)


def test_host_hooks_are_the_containers_own(bundle, tmp_path):
    """docker's prestart hook names the container it is for: two containers
    whose hooks differ only so take one recipe, and each runs its own."""
    before = entries()
    made = None
    for cid in ("hook-a", "hook-b"):
        marker = tmp_path / f"{cid}.state"
        bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {marker}", cid]}]}
        bundle.config["process"]["args"] = ["/checker", "wait-signal"]
        bundle.save()
        bundle.husk("create", "--bundle", bundle.path, cid, check=True)
        bundle.husk("delete", "--force", cid, check=True)
        assert json.loads(marker.read_text())["id"] == cid
        if made is None:
            made = {n: i for n, i in entries().items() if before.get(n) != i}
    assert {n: i for n, i in entries().items() if before.get(n) != i} == made, "the second was planned again"
