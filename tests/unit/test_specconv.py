"""specconv as a pure function: config.json -> Plan (no root needed)."""

import copy

import pytest

from runtime.core.errors import ConfigError
from runtime.core.linux import constants as k
from runtime.core.oci.example import example_spec
from runtime.core.oci.specconv import parse_mount_options, spec_to_plan
from runtime.core.process import protocol as proto

# As if husk held every capability: the tests must not depend on the
# bounding set of whoever runs them (test_unit_suite empties it).
ALL_CAPS = (1 << 41) - 1


@pytest.fixture
def bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def plan_of(bundle_dir, edit=None, held_caps=ALL_CAPS):
    config = copy.deepcopy(example_spec(args=["/bin/true"], terminal=False))
    if edit:
        edit(config)
    return spec_to_plan(config, bundle_dir, cgroup_mounts=lambda dest, flags: [], last_cap=40,
                        held_caps=held_caps)


def test_namespaces_become_clone_flags(bundle_dir):
    plan = plan_of(bundle_dir)
    for ns in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        assert plan.clone_flags & k.NAMESPACES[ns]
    assert not plan.clone_flags & k.NAMESPACES["user"]


def test_relative_root_is_relative_to_the_bundle(bundle_dir):
    assert plan_of(bundle_dir).rootfs.endswith("/rootfs")


@pytest.mark.parametrize("options,flags,prop,data", [
    (["ro", "nosuid", "nodev"], k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV, 0, ""),
    (["rbind", "rprivate"], k.MS_BIND | k.MS_REC, k.MS_PRIVATE | k.MS_REC, ""),
    (["ro", "rw", "mode=755", "size=1m"], 0, 0, "mode=755,size=1m"),
])
def test_mount_options(options, flags, prop, data):
    assert parse_mount_options(options, "mounts[0].options") == (flags, prop, data)


def test_capabilities_become_masks(bundle_dir):
    plan = plan_of(bundle_dir)
    expected = sum(1 << k.CAP_NUMBERS[c] for c in ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"))
    assert plan.caps[proto.Tag.CAP_BOUNDING] == expected
    assert plan.caps[proto.Tag.CAP_INHERITABLE] == 0  # a set the config leaves out is empty


def test_capabilities_beyond_the_kernel_are_dropped(bundle_dir):
    def edit(c):
        c["process"]["capabilities"]["bounding"].append("CAP_CHECKPOINT_RESTORE")
    config = copy.deepcopy(example_spec(args=["/bin/true"], terminal=False))
    edit(config)
    plan = spec_to_plan(config, bundle_dir, cgroup_mounts=lambda d, f: [], last_cap=39, held_caps=ALL_CAPS)
    assert not plan.caps[proto.Tag.CAP_BOUNDING] & (1 << 40)


@pytest.mark.parametrize("edit,field", [
    (lambda c: c["process"].update(args="sh"), "process.args"),
    (lambda c: c["process"]["user"].update(uid=-1), "process.user.uid"),
    (lambda c: c["process"].update(env=["NOEQUALS"]), "process.env[0]"),
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "linux.namespaces[6].type"),
    (lambda c: c["linux"].update(namespaces=[{"type": "pid"}]), "linux.namespaces"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}), "linux.uidMappings"),
    (lambda c: c["mounts"].append({"destination": "/x"}), "mounts[7].type"),
    (lambda c: c["linux"].update(rootfsPropagation="sideways"), "linux.rootfsPropagation"),
    (lambda c: c["linux"].update(devices=[{"path": "/etc/passwd", "type": "c", "major": 1, "minor": 3}]),
     "linux.devices[0].path"),
    (lambda c: c.update(hooks={"prestart": [{"path": "relative"}]}), "hooks.prestart[0].path"),
    (lambda c: c["process"].update(oomScoreAdj=5000), "process.oomScoreAdj"),
])
def test_errors_name_the_field(bundle_dir, edit, field):
    with pytest.raises(ConfigError) as e:
        plan_of(bundle_dir, edit)
    assert field in str(e.value)


def test_plan_encodes_to_records(bundle_dir):
    data = proto.encode_plan(plan_of(bundle_dir))
    tags = []
    offset = 0
    while offset < len(data):
        tag, length = proto._HEAD.unpack_from(data, offset)
        tags.append(tag)
        offset += 8 + length
    assert offset == len(data)
    assert tags[0] == proto.Tag.VERSION and tags[1] == proto.Tag.MODE and tags[-1] == proto.Tag.END
    assert tags.count(proto.Tag.MOUNT_BEGIN) == 6  # the cgroup mount expanded to nothing here


def test_rlim_infinity_travels_as_minus_one():
    w = proto._Writer()
    w.int(proto.Tag.RLIMIT_SOFT, k.RLIM_INFINITY)
    assert proto.decode_int(w.parts[1]) == -1


def test_a_capability_husk_lacks_is_named(bundle_dir):
    # husk runs with CAP_KILL dropped from its own sets (an outer container
    # or a host policy did it): capset(2) in husk-init would fail with a
    # bare EPERM, so create names the capability instead.
    with pytest.raises(ConfigError) as err:
        plan_of(bundle_dir, held_caps=ALL_CAPS & ~(1 << 5))
    assert "process.capabilities." in str(err.value) and "CAP_KILL" in str(err.value)


def test_a_user_namespace_does_not_need_husk_to_hold_the_capabilities(bundle_dir):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    plan = plan_of(bundle_dir, edit, held_caps=0)
    assert plan.caps[proto.Tag.CAP_PERMITTED] & (1 << 5)
