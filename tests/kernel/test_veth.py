# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.veth through Ansible: an endpoint plugged into br0 of an overlay namespace."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.kernel


@pytest.fixture
def overlay(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    nf.ip(ovl, "link", "add", "br0", "mtu", "1450", "type", "bridge")
    nf.ip(ovl, "link", "set", "br0", "up")
    return host, ovl


def test_veth_create_change_absent(overlay, lab, nf):
    host, ovl = overlay
    ep = lab.name("a")  # the endpoint namespace: the module creates it
    base = {"name": "veth-a", "netns": ovl, "master": "br0", "peer_netns": ep, "address": "10.213.0.2/24", "mtu": 1450}
    change = {**base, "address": "10.213.0.5/24", "mac": "02:AA:BB:CC:DD:05", "mtu": 1400}
    create, modify, absent = nf.four_steps(
        host,
        [
            ("veth", base),
            ("veth", change),
            ("veth", {"name": "veth-a", "netns": ovl, "peer_netns": ep, "state": "absent"}),
        ],
        [ovl, ep],
    )

    # --- create: endpoint namespace made, far end addressed, MAC derived from the IPv4 address -----------------
    nf.assert_four_steps(create)
    assert create["snap_before"][ep] is None
    assert create["snap_after_check"][ep] is None, "check mode created the endpoint namespace"
    assert create["check"]["commands"][0] == f"ip netns add {ep}"
    after = create["apply"]["after"]
    assert after["mac"] == "02:42:0a:d5:00:02"
    assert (after["address"], after["mtu"], after["peer_mtu"], after["master"]) == ("10.213.0.2/24", 1450, 1450, "br0")
    snap = create["snap_after_apply"]
    near = snap[ovl]["links"]["veth-a"]
    far = snap[ep]["links"]["eth0"]
    assert (near["kind"], near["master"], near["mtu"], near["up"]) == ("veth", "br0", 1450, True)
    assert (far["kind"], far["mac"], far["mtu"], far["up"]) == ("veth", "02:42:0a:d5:00:02", 1450, True)
    assert far["mtu"] == near["mtu"]
    assert near["link_netnsid"] is not None and far["link_netnsid"] is not None
    assert far["link_index"] == near["ifindex"], "eth0 must be veth-a's partner"
    assert ("eth0", "10.213.0.2/24") in snap[ep]["addrs"]
    assert snap[ep]["links"]["lo"]["up"] is True
    assert "eth0" not in snap[ovl]["links"]

    # --- change address, MAC and MTU in place ------------------------------------------------------------------------
    nf.assert_four_steps(modify)
    assert modify["apply"]["after"]["mac"] == "02:aa:bb:cc:dd:05"
    snap2 = modify["snap_after_apply"]
    near2, far2 = snap2[ovl]["links"]["veth-a"], snap2[ep]["links"]["eth0"]
    assert near2["ifindex"] == near["ifindex"] and far2["ifindex"] == far["ifindex"], "the pair was recreated"
    assert (far2["mac"], far2["mtu"], near2["mtu"]) == ("02:aa:bb:cc:dd:05", 1400, 1400)
    assert {a for d, a in snap2[ep]["addrs"] if d == "eth0"} == {"10.213.0.5/24"}, "the old address must go"
    assert f"ip -n {ep} addr del 10.213.0.2/24 dev eth0" in modify["check"]["commands"]

    # --- absent: the pair goes, the endpoint namespace stays ---------------------------------------------------------
    nf.assert_four_steps(absent)
    assert absent["apply"]["after"] == {}
    assert "veth-a" not in absent["snap_after_apply"][ovl]["links"]
    assert absent["snap_after_apply"][ep] is not None
    assert "eth0" not in absent["snap_after_apply"][ep]["links"]


def test_veth_ipv6_endpoint_and_moved_peer(overlay, lab, nf):
    """An IPv6 endpoint gets a stable locally administered MAC; a pair whose far end is elsewhere is recreated."""
    host, ovl = overlay
    ep = lab.name("b")
    args = {"name": "veth-b", "netns": ovl, "master": "br0", "peer_netns": ep, "address": "fd00:213::2/64"}
    first, again = nf.run_tasks(host, [nf.Call("veth", args), nf.Call("veth", args)])
    nf.assert_ok(first)
    nf.assert_ok(again)
    mac = first["after"]["mac"]
    assert mac.startswith("02:") and len(mac) == 17
    assert again["changed"] is False
    assert nf.Kernel.link(ep, "eth0")["address"] == mac
    assert nf.Kernel.addrs(ep, "eth0") == ["fd00:213::2/64"]
    assert nf.Kernel.link(ep, "eth0")["mtu"] == 1500 == nf.Kernel.link(ovl, "veth-b")["mtu"]

    # another endpoint namespace: the existing pair's far end is not there, so the pair is recreated
    ep2 = lab.name("c")
    (moved,) = nf.run_tasks(host, [nf.Call("veth", {**args, "peer_netns": ep2})])
    nf.assert_ok(moved)
    assert moved["changed"] is True
    assert moved["before"]["peer"] == "missing"
    assert moved["commands"][:2] == [f"ip -n {ovl} link del veth-b", f"ip netns add {ep2}"]
    assert moved["after"]["mac"] == mac, "the derived MAC must be stable"
    assert nf.Kernel.link(ep2, "eth0")["address"] == mac
    assert nf.Kernel.link(ep, "eth0") is None
    assert nf.Kernel.link(ovl, "veth-b")["master"] == "br0"


@pytest.mark.parametrize(("address", "brd"), [("10.213.0.2/24", "10.213.0.255"), ("10.213.0.2/31", None)])
def test_an_ipv4_endpoint_gets_its_subnets_broadcast_address(overlay, lab, nf, address, brd):
    """As ``ip addr add ... brd +``: without it a broadcast to the subnet's last address is routed as unicast (an
    ARP for it, never answered), so it is neither sent nor received (issue 15, ``flood``)."""
    host, ovl = overlay
    ep = lab.name("d")
    (made,) = nf.run_tasks(
        host, [nf.Call("veth", {"name": "veth-d", "netns": ovl, "peer_netns": ep, "address": address})]
    )
    nf.assert_ok(made)
    shown = nf.ip(ep, "-4", "-j", "addr", "show", "dev", "eth0").stdout
    assert [a.get("broadcast") for a in json.loads(shown)[0]["addr_info"]] == [brd]
