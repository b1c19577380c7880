"""The plan protocol: Python's encoder and husk-init's decoder agree.

Both come from native/include/husk_proto.def.  These tests build
husk-init's own decoder (src/plan.c) into a small program that prints
what it decoded (native/tests/plan_dump.c), feed it plans Python
encoded, and compare field by field; and they check that the decoder
refuses what it must (a wrong-size int, no version record first, another
version, an unknown tag) instead of reading it as something.
"""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess

import pytest

from runtime.core.errors import ConfigError
from runtime.core.linux import seccomp
from runtime.core.oci.example import example_spec
from runtime.core.oci.specconv import spec_to_plan
from runtime.core.process import protocol as proto

# The C sources of this checkout (the package under test is the installed one).
NATIVE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "native")


@pytest.fixture(scope="session")
def plan_dump(tmp_path_factory) -> str:
    exe = str(tmp_path_factory.mktemp("plan-dump") / "plan-dump")
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", f"-I{NATIVE}/include", f"-I{NATIVE}/src",
                    "-o", exe, f"{NATIVE}/tests/plan_dump.c", f"{NATIVE}/src/plan.c", f"{NATIVE}/src/proto.c",
                    f"{NATIVE}/src/util.c"], check=True)
    return exe


def decode(plan_dump: str, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([plan_dump], input=data, capture_output=True, timeout=10)


def rich_plan(tmp_path) -> proto.Plan:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = copy.deepcopy(example_spec(args=["/bin/sh", "-c", 'echo "quoted" \\ back'], terminal=False))
    config["process"]["env"].append("UNICODE=é✓")
    config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o27}
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 2**64 - 1}]
    config["hostname"] = "box"
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                   "fileMode": 0o600, "uid": 0, "gid": 0}]
    config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "size=1m", "tmpcopyup", "rshared"]})
    config["hooks"] = {"createContainer": [{"path": "/bin/hook", "args": ["hook", "a"], "timeout": 5}]}
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2**64 - 1, "valueTwo": 3, "op": "SCMP_CMP_EQ"}]}]}
    plan = spec_to_plan(config, str(tmp_path), cgroup_mounts=lambda dest, flags: [], last_cap=40,
                        held_caps=(1 << 41) - 1)
    plan.preserve_fds = 2
    plan.session_keyring = "husk-c1"
    return plan


def signed(n: int) -> int:
    return n - 2**64 if n >= 2**63 else n


def test_every_row_of_the_table_is_a_tag_or_a_message():
    names = {r.name for r in proto.RECORDS.values()}
    assert {f"PLAN_{t.name}" for t in proto.Tag} | {f"MSG_{m.name}" for m in proto.Msg} == names
    assert len(names) == len(proto.RECORDS)  # no tag twice
    assert proto.RECORDS[proto.Tag.VERSION].kind == proto.Kind.INT
    assert proto.RECORDS[proto.Tag.SECCOMP_ARG].kind == proto.Kind.SECCOMP_ARG


def test_what_python_encodes_is_what_husk_init_decodes(plan_dump, tmp_path):
    plan = rich_plan(tmp_path)
    r = decode(plan_dump, proto.encode_plan(plan))
    assert r.returncode == 0, r.stderr.decode()
    c = json.loads(r.stdout)
    assert c["mode"] == plan.mode and c["clone_flags"] == plan.clone_flags
    assert c["uid_map"] == plan.uid_map and c["gid_map"] == plan.gid_map
    assert (c["rootfs"], c["hostname"]) == (plan.rootfs, "box")
    assert c["rootfs_propagation"] == plan.rootfs_propagation
    assert [m["dest"] for m in c["mounts"]] == [m.destination for m in plan.mounts]
    for cm, m in zip(c["mounts"], plan.mounts):
        assert (cm["source"], cm["type"], cm["data"], cm["flags"], cm["propagation"], bool(cm["copyup"])) == \
            (m.source, m.type, m.data, m.flags, m.propagation, m.copyup)
    assert [(d["path"], d["mode"], d["rdev"]) for d in c["devices"]] == [(d.path, d.mode, d.rdev) for d in plan.devices]
    assert [x["s"] for x in c["masked"]] == plan.masked_paths
    assert [x["s"] for x in c["readonly"]] == plan.readonly_paths
    assert c["rlimits"] == [[t, s, signed(h)] for t, s, h in plan.rlimits]
    assert (c["uid"], c["gid"], c["groups"], c["umask"]) == (1000, 1001, [5, 6], 0o27)
    assert c["cap_bounding"] == plan.caps[proto.Tag.CAP_BOUNDING]
    assert c["cap_effective"] == plan.caps[proto.Tag.CAP_EFFECTIVE]
    assert c["no_new_privs"] == int(plan.no_new_privs)
    assert [x["s"] for x in c["args"]] == plan.args and [x["s"] for x in c["env"]] == plan.env
    assert c["cwd"] == plan.cwd and c["preserve_fds"] == 2
    assert [(h["kind"], h["path"], [a["s"] for a in h["args"]], h["timeout"]) for h in c["hooks"]] == \
        [(h.kind, h.path, h.args, h.timeout) for h in plan.hooks]
    f = plan.seccomp
    assert (c["seccomp_default"], c["seccomp_flags"]) == (f.default, seccomp.FLAGS["SECCOMP_FILTER_FLAG_LOG"])
    assert [(r["action"], [n["s"] for n in r["names"]], [tuple(a) for a in r["args"]]) for r in c["seccomp_rules"]] \
        == [(r.action, r.names, r.args) for r in f.rules]
    assert c["session_keyring"] == "husk-c1"


def record(tag: int, value: bytes = b"") -> bytes:
    return proto.encode_record(tag, value)


VERSION = record(proto.Tag.VERSION, struct.pack("=q", proto.PROTO_VERSION))


@pytest.mark.parametrize("data,message", [
    (VERSION + record(proto.Tag.MODE, b"\0\0\0\0") + record(proto.Tag.END),
     "record PLAN_MODE (4 bytes) is not an 8-byte integer"),
    (record(proto.Tag.MODE, struct.pack("=q", 0)) + record(proto.Tag.END),
     "PLAN_MODE where the plan must start with PLAN_VERSION"),
    (record(proto.Tag.VERSION, struct.pack("=q", proto.PROTO_VERSION + 1)) + record(proto.Tag.END),
     f"plan version {proto.PROTO_VERSION + 1}, husk-init reads version {proto.PROTO_VERSION}"),
    (VERSION + record(9999, b"x") + record(proto.Tag.END), "unknown record 9999"),
    (VERSION + record(proto.Tag.ARG, b"/bin/sh\0-c") + record(proto.Tag.END), "record PLAN_ARG (10 bytes) holds a NUL"),
    (VERSION + record(proto.Tag.MOUNT_BEGIN, b"x") + record(proto.Tag.END), "carries a value where none belongs"),
    (VERSION + record(proto.Tag.MOUNT_DEST, b"/x") + record(proto.Tag.END), "mount without its begin record"),
    (VERSION + record(proto.Msg.READY) + record(proto.Tag.END), "unknown record 103"),
    (VERSION + record(proto.Tag.MODE, struct.pack("=q", 0)), "truncated plan"),
])
def test_husk_init_refuses_a_malformed_plan(plan_dump, data, message):
    r = decode(plan_dump, data)
    assert r.returncode != 0 and r.stdout == b""
    assert message in r.stderr.decode(), r.stderr.decode()


def test_the_encoder_writes_each_record_as_its_kind():
    w = proto._Writer()
    with pytest.raises(TypeError, match="PLAN_ARG is STR, written as INT"):
        w.int(proto.Tag.ARG, 1)
    with pytest.raises(TypeError, match="PLAN_MODE is INT, written as STR"):
        w.str(proto.Tag.MODE, "1")
    with pytest.raises(ConfigError, match="process.env: .* contains a NUL byte"):
        w.str(proto.Tag.ENV, "A=\0B")


def test_the_plan_starts_with_the_version(tmp_path):
    data = proto.encode_plan(rich_plan(tmp_path))
    tag, length = proto.HEAD.unpack_from(data)
    assert (tag, proto.decode_int(data[8:8 + length])) == (proto.Tag.VERSION, proto.PROTO_VERSION)
