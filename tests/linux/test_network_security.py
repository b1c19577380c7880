"""Network isolation a hostile container tries to break: the host's
loopback services through the bridge (CVE-2020-8558), IPv6 router
advertisements, and -P with an image's hostile ExposedPorts.  Traffic
only between the host and the test's own containers."""

from __future__ import annotations

import json
import os
import socket

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def h(husk_env, layouts):
    husk_env("load", "-q", "--name", "netbox", "-i", layouts["netbox"], check=True)
    return husk_env


def run(h, *args, **kw):
    return h("run", "--rm", "--pull=never", *args, **kw)


def listener(addr: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    s.settimeout(2)
    return s


def received(s: socket.socket) -> bytes | None:
    try:
        return s.recv(100)
    except TimeoutError:
        return None


def test_host_loopback_is_not_reachable_through_the_bridge(h):
    # The attack: a raw frame to the bridge's MAC with destination
    # 127.0.0.1 (CAP_NET_RAW is in docker's default set).  The same frame
    # to the gateway's own address shows the path works.
    h("run", "-d", "--pull=never", "--name", "keeper", "netbox", "/checker", "wait-signal", check=True)
    try:
        _attack(h)
    finally:
        h("rm", "-f", "keeper", check=True)


def _attack(h):
    net = json.loads(h("network", "inspect", "husk", check=True).out)[0]
    gw_ip = net["gateway"]
    # The bridge's MAC as the container learns it (ARP): a bridge takes
    # the lowest MAC of its ports, so the host's view may change as ours joins.
    mac = f"$(ping -c1 -W1 {gw_ip} >/dev/null; ip neigh show {gw_ip} | cut -d' ' -f5)"
    with listener("127.0.0.1") as lo, listener(gw_ip) as gw:
        # Frames to the gateway first (a few: the new port may not forward
        # yet), then to 127.0.0.1, all from one container.
        script = (f"for i in 1 2 3 4 5 6 7 8 9 10; do /checker raw-udp eth0 {mac} {gw_ip} "
                  f"{gw.getsockname()[1]} hello; sleep 0.1; done; "
                  f"for i in 1 2 3; do /checker raw-udp eth0 {mac} 127.0.0.1 {lo.getsockname()[1]} leak; done")
        r = run(h, "netbox", "sh", "-c", script)
        assert r.out.split().count("sent") == 13, r.out + r.err
        assert received(gw) == b"hello"  # the path works
        assert received(lo) is None, "a container reached a service on the host's 127.0.0.1"


def test_no_router_advertisements(h):
    r = run(h, "netbox", "sh", "-c", "cat /proc/sys/net/ipv6/conf/eth0/accept_ra "
            "/proc/sys/net/ipv6/conf/default/accept_ra /proc/sys/net/ipv6/conf/all/accept_ra; "
            "cat /sys/class/net/eth0/master/../address 2>/dev/null; ip route | grep -c default")
    assert r.out.split()[:3] == ["0", "0", "0"], r.out + r.err
    h("run", "-d", "--pull=never", "--name", "keeper", "netbox", "/checker", "wait-signal", check=True)
    try:
        net = json.loads(h("network", "inspect", "husk", check=True).out)[0]
        with open(f"/proc/sys/net/ipv6/conf/{net['bridge']}/accept_ra") as f:
            assert f.read().strip() == "0"
    finally:
        h("rm", "-f", "keeper", check=True)


def test_network_rm_removes_only_its_own_rules(h):
    from runtime.engine.network import nft

    h("network", "create", "aud", check=True)
    h("network", "create", "audx", check=True)
    try:
        run(h, "--network", "aud", "netbox", "true", check=True)
        h("run", "-d", "--pull=never", "--name", "keeper", "--network", "audx", "netbox", "/checker",
          "wait-signal", check=True)
        assert {"net:aud", "net:audx"} <= nft.tags()
        h("network", "rm", "aud", check=True)
        assert "net:audx" in nft.tags() and "net:aud" not in nft.tags()
    finally:
        h("rm", "-f", "keeper")
        h("network", "rm", "aud")
        h("network", "rm", "audx")


@pytest.mark.parametrize("key", ["127.0.0.1:2222:8080/tcp", "0.0.0.0:80:80", "80:8080", "8080/sctp", "99999"])
def test_publish_all_refuses_host_addresses_and_ports_from_the_image(h, tmp_path, key):
    from imagefixtures import busybox_layer_tar
    from tarbuild import Layout

    lay = Layout(str(tmp_path / "ports"))
    mdesc, _ = lay.image([busybox_layer_tar()], config={"ExposedPorts": {key: {}}})
    lay.tag(mdesc, "latest")
    h("load", "-q", "--name", "ports", "-i", lay.save(), check=True)
    r = h("run", "-d", "--pull=never", "-P", "ports", "sleep", "100")
    assert r.code == 125 and "ExposedPorts" in r.err and key in r.err, r.err
    from runtime.engine.network import nft

    assert not any(t.startswith("ctr:") for t in nft.tags())
    assert h.store_files("containers") == []


def test_publish_all_maps_to_free_ephemeral_ports(h):
    h("run", "-d", "--pull=never", "--name", "pall", "-P", "netbox", "/checker", "tcp-echo", "8080", check=True)
    try:
        record = next(c for c in json.loads(h("containers", "--format", "json", check=True).out)
                      if c["name"] == "pall")
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
        for host_ip, host_port, *_ in record["network"]["ports"]:
            assert host_ip == "" and low <= host_port <= high
    finally:
        h("rm", "-f", "pall")


def test_prune_leaves_another_stores_containers_alone(h, tmp_path, layouts):
    from imagefixtures import HuskEnv, leaks

    from runtime.engine.network import nft

    other = HuskEnv(str(tmp_path / "other"))
    other("load", "-q", "--name", "netbox", "-i", layouts["netbox"], check=True)
    try:
        other("run", "-d", "--pull=never", "--name", "theirs", "-p", "18081:8080", "netbox", "/checker",
              "tcp-echo", "8080", check=True)
        cid = next(c for c in json.loads(other("containers", "--format", "json", check=True).out))["id"]
        with open(os.path.join(other.store, "containers", cid, "network.json")) as f:
            rec = {"network": json.load(f)}
        before = (nft.tags(), sorted(os.listdir(os.path.dirname(rec["network"]["netns"]))))
        h("system", "prune", check=True)
        assert (nft.tags(), sorted(os.listdir(os.path.dirname(rec["network"]["netns"])))) == before
        assert os.path.ismount(rec["network"]["netns"])
        with open("/proc/net/dev") as f:
            assert rec["network"]["veth"] in f.read()
    finally:
        other("rm", "-f", "theirs")
        other("system", "prune")
    assert [x for x in leaks(other) if "netns" in x or "veth" in x] == []


def test_netns_is_not_in_the_oci_state_root(h):
    h("run", "-d", "--pull=never", "--name", "keeper", "netbox", "/checker", "wait-signal", check=True)
    try:
        cid = next(c for c in json.loads(h("containers", "--format", "json", check=True).out))["id"]
        with open(os.path.join(h.store, "containers", cid, "network.json")) as f:
            netns = json.load(f)["netns"]
        assert os.path.ismount(netns) and not netns.startswith("/run/husk/")
        assert "netns" not in h("list", "-q").out.split()
    finally:
        h("rm", "-f", "keeper", check=True)


def test_network_create_refuses_a_bridge_husk_did_not_make(h):
    import subprocess

    subprocess.run(["ip", "link", "add", "hostbr0", "type", "bridge"], check=True)
    try:
        r = h("network", "create", "--bridge", "hostbr0", "taken")
        if r.code == 0:  # refused at first use, then
            r = h("run", "--rm", "--pull=never", "--network", "taken", "netbox", "true")
        assert r.code != 0 and "hostbr0" in r.err and "not made by husk" in r.err, r.err
        subprocess.run(["ip", "link", "show", "hostbr0"], check=True, capture_output=True)  # still there
    finally:
        h("network", "rm", "taken")
        subprocess.run(["ip", "link", "del", "hostbr0"])
