# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.vxlan through Ansible.

The device is created in the host namespace (where the module runs) on the underlay ``ul0`` and moved into the
overlay namespace.  ``ul0`` gets a pinned ifindex, so ``ip -d link show`` in the overlay namespace shows the
binding as ``if4242`` (an index that only exists in the host namespace).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.kernel

UL_INDEX = 4242
LOCAL = "198.18.7.1"


@pytest.fixture
def underlay(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    lab.underlay(host, addr_a=f"{LOCAL}/24", addr_b="198.18.7.2/24", index=UL_INDEX)
    nf.ip(ovl, "link", "add", "br0", "mtu", "1450", "type", "bridge")
    nf.ip(ovl, "link", "set", "br0", "up")
    return host, ovl


def test_vxlan_create_change_recreate_absent(underlay, nf):
    host, ovl = underlay
    base = {
        "name": "vxlan0",
        "netns": ovl,
        "vni": 256,
        "port": 4789,
        "local": LOCAL,
        "dev": "ul0",
        "master": "br0",
        "mtu": 1450,
    }
    mutable = {**base, "mtu": 1400, "learning": True}
    immutable = {**mutable, "vni": 300}
    create, change, recreate, absent = nf.four_steps(
        host,
        [
            ("vxlan", base),
            ("vxlan", mutable),
            ("vxlan", immutable),
            ("vxlan", {"name": "vxlan0", "netns": ovl, "state": "absent"}),
        ],
        [host, ovl],
    )

    # --- create -----------------------------------------------------------------------------------------------
    nf.assert_four_steps(create)
    assert create["check"]["recreated"] is False
    want = {**base, "learning": False, "proxy": True, "up": True}
    assert {k: create["apply"]["after"].get(k) for k in want} == want
    vx = create["snap_after_apply"][ovl]["links"]["vxlan0"]
    data = vx["vxlan"]
    assert vx["kind"] == "vxlan"
    assert (data["id"], data["port"], data["local"]) == (256, 4789, LOCAL)
    assert data["learning"] is False
    assert data["proxy"] is True
    assert data["link"] == f"if{UL_INDEX}", "the device must be bound to ul0 of the host namespace"
    assert vx["link_netnsid"] is not None, "the device's link-netns must be the host namespace"
    assert (vx["master"], vx["mtu"], vx["up"]) == ("br0", 1450, True)
    # nothing left behind in the host namespace (no temporary device), and the UDP socket lives there
    host_links = create["snap_after_apply"][host]["links"]
    assert set(host_links) == set(create["snap_before"][host]["links"])
    assert "0.0.0.0:4789" in create["snap_after_apply"][host]["udp"]
    assert not create["snap_after_apply"][ovl]["udp"]

    # --- mutable change: mtu and learning in place --------------------------------------------------------------
    nf.assert_four_steps(change)
    assert change["apply"]["recreated"] is False
    assert "recreate_reason" not in change["apply"]
    assert change["check"]["commands"] == [
        f"ip -n {ovl} link set vxlan0 type vxlan learning",
        f"ip -n {ovl} link set vxlan0 mtu 1400",
    ]
    vx2 = change["snap_after_apply"][ovl]["links"]["vxlan0"]
    assert vx2["ifindex"] == vx["ifindex"], "a mutable change must not recreate the device"
    assert vx2["mtu"] == 1400
    assert vx2["vxlan"]["learning"] is True
    assert vx2["vxlan"]["id"] == 256

    # --- immutable change: the VNI forces a recreate -----------------------------------------------------------------
    nf.assert_four_steps(recreate)
    for key in ("check", "apply"):
        assert recreate[key]["recreated"] is True, recreate[key]
        assert recreate[key]["recreate_reason"] == "vni 256 -> 300"
    assert recreate["check"]["commands"][0] == f"ip -n {ovl} link del vxlan0"
    assert recreate["check2"]["recreated"] is False
    vx3 = recreate["snap_after_apply"][ovl]["links"]["vxlan0"]
    assert vx3["vxlan"]["id"] == 300
    assert vx3["vxlan"]["learning"] is True
    assert vx3["vxlan"]["link"] == f"if{UL_INDEX}"
    assert (vx3["master"], vx3["mtu"], vx3["up"]) == ("br0", 1400, True)

    # --- absent -----------------------------------------------------------------------------------------------------
    nf.assert_four_steps(absent)
    assert absent["apply"]["after"] == {}
    assert "vxlan0" not in absent["snap_after_apply"][ovl]["links"]
    assert not absent["snap_after_apply"][host]["udp"]


def test_vxlan_local_not_on_host_fails_and_creates_nothing(underlay, nf):
    host, ovl = underlay
    args = {"name": "vxlan0", "netns": ovl, "vni": 256, "local": "198.18.9.9", "dev": "ul0", "master": "br0"}
    before, check, apply, after = nf.run_tasks(
        host,
        [nf.Snap((host, ovl)), nf.Call("vxlan", args, check=True), nf.Call("vxlan", args), nf.Snap((host, ovl))],
    )
    for r in (check, apply):
        assert r["failed"] is True
        assert "local" in r["msg"]
        assert "198.18.9.9" in r["msg"]
    assert after == before
    assert "vxlan0" not in after[ovl]["links"]


def test_vxlan_ipv6_local(underlay, lab, nf):
    host, ovl = underlay
    nf.ip(host, "addr", "add", "2001:db8:7::1/64", "dev", "ul0", "nodad")
    args = {"name": "vxlan6", "netns": ovl, "vni": 4242, "local": "2001:db8:7:0::1", "dev": "ul0"}
    (r,) = nf.run_tasks(host, [nf.Call("vxlan", args)])
    nf.assert_ok(r)
    assert r["after"]["local"] == "2001:db8:7::1"
    data = nf.Kernel.link(ovl, "vxlan6")["linkinfo"]["info_data"]
    assert data["local6"] == "2001:db8:7::1", json.dumps(data)
    assert data["id"] == 4242
    # the default MTU leaves room for the IPv6 encapsulation: 1500 - 70
    assert nf.Kernel.link(ovl, "vxlan6")["mtu"] == 1430
