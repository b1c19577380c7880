"""The systemd cgroup driver's parts that need no systemd: the unit a
cgroupsPath names, slice nesting, the properties a config makes, and the
D-Bus messages themselves, which a real dbus-daemon (it validates each
message against its signature, and drops a connection that sends a bad
one) must accept.  tests/linux/test_systemd.py runs the driver against
systemd."""

import os
import shutil
import subprocess

import pytest

from runtime.core.cgroups import systemd as sd
from runtime.core.cgroups.controllers import shares_to_weight
from runtime.core.errors import ConfigError


@pytest.mark.parametrize("path,slice_,unit,cgroup", [
    ("", "system.slice", "husk-ID.scope", "/system.slice/husk-ID.scope"),
    ("machine.slice:libpod:abc", "machine.slice", "libpod-abc.scope", "/machine.slice/libpod-abc.scope"),
    ("machine-libpod_pod_p1.slice:libpod:c1", "machine-libpod_pod_p1.slice", "libpod-c1.scope",
     "/machine.slice/machine-libpod_pod_p1.slice/libpod-c1.scope"),
    ("kubepods-besteffort-pod1_2.slice:cri-containerd:x", "kubepods-besteffort-pod1_2.slice",
     "cri-containerd-x.scope", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/"
     "cri-containerd-x.scope"),
    (":husk:n", "system.slice", "husk-n.scope", "/system.slice/husk-n.scope"),  # no slice: system.slice
    ("-.slice:p:n", "-.slice", "p-n.scope", "/p-n.scope"),  # the root slice
    ("a.slice::n", "a.slice", "n.scope", "/a.slice/n.scope"),  # no prefix
    ("a.slice:p:a-b.slice", "a.slice", "a-b.slice", "/a.slice/a-b.slice"),  # the unit is a slice
])
def test_the_unit_a_cgroups_path_names(path, slice_, unit, cgroup):
    assert sd.unit_of(path, "ID") == sd.Unit(slice_, unit, cgroup)


@pytest.mark.parametrize("path,why", [
    ("machine.slice", 'with --systemd-cgroup it must be "slice:prefix:name"'),
    ("a:b:c:d", 'with --systemd-cgroup it must be "slice:prefix:name"'),
    ("/husk/c1", 'with --systemd-cgroup it must be "slice:prefix:name"'),
    ("machine.slice:p:", "the name (after the second ':') is empty"),
    ("machine:p:n", "machine is not a valid slice name"),
    ("a--b.slice:p:n", "a--b.slice is not a valid slice name"),
    ("-a.slice:p:n", "-a.slice is not a valid slice name"),
    ("a-.slice:p:n", "a-.slice is not a valid slice name"),
    ("a/b.slice:p:n", "a/b.slice is not a valid slice name"),
    ("a.slice:p:n/x", "p-n/x.scope is not a valid systemd unit name"),
    ("a.slice:p:n x", "p-n x.scope is not a valid systemd unit name"),
    ("a.slice:p:-.slice", "the root slice is not a container's cgroup"),
])
def test_bad_cgroups_paths_name_the_field(path, why):
    with pytest.raises(ConfigError) as e:
        sd.unit_of(path, "ID")
    assert str(e.value) == f"config.json: linux.cgroupsPath: {path}: {why}"


def test_slices_nest_by_their_dashes():
    assert sd.expand_slice("kubepods-besteffort-pod1.slice") == \
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"
    assert sd.expand_slice("machine.slice") == "/machine.slice"
    assert sd.expand_slice("-.slice") == ""
    for bad in ("machine", "a--b.slice", "-.slice.slice/x", ".slice"):
        with pytest.raises(ValueError):
            sd.expand_slice(bad)


def test_shares_to_weight_is_runc_and_cruns_curve():
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 100, 10000]
    assert shares_to_weight(1) == 1 and shares_to_weight(1 << 20) == 10000
    weights = [shares_to_weight(s) for s in range(2, 262145, 97)]
    assert weights == sorted(weights)


def test_cpu_quota_is_rounded_up_to_10ms_as_systemd_keeps_it():
    assert sd.cpu_quota_per_sec(50000, 100000) == 500000
    assert sd.cpu_quota_per_sec(12345, 100000) == 130000
    assert sd.cpu_quota_per_sec(1000, 100000) == 10000
    assert sd.cpu_quota_per_sec(200000, 100000) == 2000000
    assert sd.cpu_quota_per_sec(-1, 100000) == sd.INFINITY


def test_the_limits_become_properties_on_v2_and_v1():
    resources = {"memory": {"limit": 64 << 20, "reservation": 16 << 20, "swap": 96 << 20},
                 "cpu": {"shares": 1024, "quota": 12345, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                 "pids": {"limit": 50}}
    v2 = {name: value for name, _, value in sd.resource_properties(resources, "v2")}
    assert v2 == {"MemoryMax": 64 << 20, "MemoryLow": 16 << 20, "MemorySwapMax": 32 << 20, "CPUWeight": 100,
                  "CPUQuotaPeriodUSec": 100000, "CPUQuotaPerSecUSec": 130000, "AllowedCPUs": [0b111, 0b10],
                  "AllowedMemoryNodes": [1], "TasksMax": 50}
    v1 = {name: value for name, _, value in sd.resource_properties(resources, "hybrid")}
    assert v1 == {"MemoryLimit": 64 << 20, "CPUShares": 1024, "CPUQuotaPeriodUSec": 100000,
                  "CPUQuotaPerSecUSec": 130000, "TasksMax": 50}
    unlimited = {name: value for name, _, value in sd.resource_properties(
        {"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}}, "v2")}
    assert unlimited == {"MemoryMax": sd.INFINITY, "MemorySwapMax": sd.INFINITY, "TasksMax": sd.INFINITY}


def test_a_unit_without_a_pids_limit_has_none():
    """Not systemd's DefaultTasksMax (moby#45188)."""
    props = sd.unit_properties({}, "v2", {})
    assert ["TasksMax", "t", sd.INFINITY] in props
    assert ["Delegate", "b", True] not in props  # the front end's, for a scope only
    assert ["DefaultDependencies", "b", False] in props


def test_unified_files_systemd_knows_become_properties():
    props = sd.resource_properties({"unified": {"memory.high": "1000000", "pids.max": "max", "cpu.max": "50000 100000",
                                                "io.weight": "default 100"}}, "v2")
    assert props == [["MemoryHigh", "t", 1000000], ["TasksMax", "t", sd.INFINITY],
                     ["CPUQuotaPeriodUSec", "t", 100000], ["CPUQuotaPerSecUSec", "t", 500000]]
    with pytest.raises(ConfigError, match=r"linux.resources.unified.memory.max: '1G' is not a number"):
        sd.resource_properties({"unified": {"memory.max": "1G"}}, "v2")


def test_device_rules_allow_at_least_what_husk_allows():
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": True, "type": "c", "major": 136, "access": "rw"},
             {"allow": True, "type": "b", "access": "r"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]  # narrower: husk's own program
    assert sd.device_properties(rules) == [
        ["DeviceAllow", "a(ss)", []],
        ["DeviceAllow", "a(ss)", [["/dev/char/1:3", "rwm"], ["char-pts", "rw"], ["block-*", "r"]]],
        ["DevicePolicy", "s", "strict"]]
    assert sd.device_properties([{"allow": True, "access": "rwm"}]) == [
        ["DeviceAllow", "a(ss)", []], ["DevicePolicy", "s", "auto"]]


@pytest.mark.parametrize("value,prop", [
    ("'inactive-or-failed'", ["CollectMode", "s", "inactive-or-failed"]),
    ('"x"', ["CollectMode", "s", "x"]),
    ("true", ["CollectMode", "b", True]),
    ("uint64 5", ["CollectMode", "t", 5]),
    ("@t 5", ["CollectMode", "t", 5]),
    ("uint32 5", ["CollectMode", "u", 5]),
    ("5", ["CollectMode", "i", 5]),
    ("['a', 'b']", ["CollectMode", "as", ["a", "b"]]),
])
def test_annotations_are_read_as_gvariant_text(value, prop):
    assert sd.annotation_properties({"org.systemd.property.CollectMode": value, "other": "x"}) == [prop]


def test_a_time_in_seconds_is_systemds_usec():
    assert sd.annotation_properties({"org.systemd.property.TimeoutStopSec": "2.5"}) == \
        [["TimeoutStopUSec", "t", 2500000]]
    assert sd.annotation_properties({"org.systemd.property.TimeoutStopUSec": "uint64 7"}) == \
        [["TimeoutStopUSec", "t", 7]]


@pytest.mark.parametrize("name,value,why", [
    ("lower", "'x'", "'lower' is not a systemd property name"),
    ("Name", "x y z", "'x y z' is not a GVariant value husk reads"),
    ("Name", "uint64 'x'", "\"uint64 'x'\" is not a uint64"),
    ("TimeoutSec", "'x'", "a time in seconds must be a number"),
    ("Name", "1.5", "only a time in seconds"),
])
def test_bad_annotations_name_themselves(name, value, why):
    with pytest.raises(ConfigError) as e:
        sd.annotation_properties({f"org.systemd.property.{name}": value})
    assert str(e.value).startswith(f"config.json: annotations.org.systemd.property.{name}: ")
    assert why in str(e.value)


@pytest.fixture
def bus(tmp_path, monkeypatch):
    """A dbus-daemon of the test's own, as the "system bus": it checks
    every message against its signature; no systemd answers on it."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    config = tmp_path / "bus.conf"
    config.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>custom</type><listen>unix:path={tmp_path}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/><allow user="*"/></policy></busconfig>""")
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(tmp_path / "bus"):
            break
        daemon.poll()
        import time
        time.sleep(0.01)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/bus")
    yield
    daemon.terminate()
    daemon.wait()


def _call(fn, *args):
    from runtime.core._native import ffi, lib

    conn = ffi.new("struct husk_sd *")
    assert lib.husk_sd_connect(conn) == 0, ffi.string(conn.error).decode()
    try:
        rc = fn(conn, *args)
        return rc, ffi.string(conn.error).decode()
    finally:
        lib.husk_sd_close(conn)


def test_every_message_husk_sends_is_valid_d_bus(bus):
    """Each call gets an answer (no systemd1 on this bus), not a dropped
    connection: the messages are well formed, properties of every type
    (and the empty arrays' padding) included."""
    import json

    from runtime.core._native import lib

    props = sd.unit_properties({"memory": {"limit": 1 << 26}, "cpu": {"shares": 512, "quota": 5000, "cpus": "0-1"},
                                "devices": [{"allow": False, "access": "rwm"},
                                            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]},
                               "v2", {"org.systemd.property.CollectMode": "'inactive-or-failed'",
                                      "org.systemd.property.Wants": "['a.service']"})
    for n in range(len(props) + 1):  # every length: each alignment the end of the list can fall on
        subset = json.dumps(props[:n]).encode()
        for rc, error in (_call(lib.husk_sd_start_unit, b"husk-x.scope", b"machine.slice", b"husk container x",
                                subset, 1),
                          _call(lib.husk_sd_set_properties, b"husk-x.scope", subset)):
            assert rc == -1
            assert "org.freedesktop.DBus.Error.ServiceUnknown" in error, error
    rc, error = _call(lib.husk_sd_stop_unit, b"husk-x.scope")
    assert rc == -1 and "ServiceUnknown" in error, error
    rc, error = _call(lib.husk_sd_attach, b"husk-x.scope", 1)
    assert rc == -1 and "ServiceUnknown" in error, error


def test_a_value_that_does_not_fit_its_type_is_refused_before_sending(bus):
    from runtime.core._native import lib

    rc, error = _call(lib.husk_sd_set_properties, b"husk-x.scope", b'[["MemoryMax", "t", "lots"]]')
    assert rc == -1 and error == "systemd: unit property MemoryMax: a value husk cannot send"
