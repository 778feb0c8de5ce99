# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.bridge through Ansible: create, change the MTU in place, remove."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kernel


def test_bridge_create_mtu_absent(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    base = {"name": "br0", "netns": ovl}
    create, mtu, absent = nf.four_steps(
        host,
        [
            ("bridge", {**base, "mtu": 1450}),
            ("bridge", {**base, "mtu": 1400}),
            ("bridge", {**base, "state": "absent"}),
        ],
        [ovl, host],
    )

    nf.assert_four_steps(create)
    assert "br0" not in create["snap_before"][ovl]["links"]
    assert create["check"]["after"] == {"name": "br0", "netns": ovl, "mtu": 1450, "up": True}
    assert create["check"]["commands"] == [
        f"ip -n {ovl} link add br0 type bridge",
        f"ip -n {ovl} link set br0 mtu 1450",
        f"ip -n {ovl} link set br0 up",
    ]
    br0 = create["snap_after_apply"][ovl]["links"]["br0"]
    assert (br0["kind"], br0["mtu"], br0["up"]) == ("bridge", 1450, True)
    # only the overlay namespace changed, never the host namespace the module ran in
    assert create["snap_after_apply"][host] == create["snap_before"][host]

    nf.assert_four_steps(mtu)
    assert mtu["check"]["commands"] == [f"ip -n {ovl} link set br0 mtu 1400"]
    assert mtu["check"]["diff"]["before"]["mtu"] == 1450
    assert mtu["check"]["diff"]["after"]["mtu"] == 1400
    after = mtu["snap_after_apply"][ovl]["links"]["br0"]
    assert after["mtu"] == 1400
    assert after["ifindex"] == br0["ifindex"], "an MTU change must not recreate the bridge"

    nf.assert_four_steps(absent)
    assert absent["check"]["after"] == {}
    assert absent["check"]["commands"] == [f"ip -n {ovl} link del br0"]
    assert "br0" not in absent["snap_after_apply"][ovl]["links"]
    assert nf.Kernel.link(ovl, "br0") is None


def test_bridge_without_mtu_keeps_the_existing_one(lab, nf):
    host = lab.netns("h")
    ovl = lab.netns("o")
    nf.ip(ovl, "link", "add", "br0", "mtu", "1300", "type", "bridge")
    (r,) = nf.run_tasks(host, [nf.Call("bridge", {"name": "br0", "netns": ovl})])
    nf.assert_ok(r)
    # only "up" was missing
    assert r["commands"] == [f"ip -n {ovl} link set br0 up"]
    link = nf.Kernel.link(ovl, "br0")
    assert link["mtu"] == 1300
    assert "UP" in link["flags"]


def test_bridge_mtu_stays_when_a_smaller_port_joins(lab, nf):
    """An MTU given at creation is not 'set by the user' for the kernel, which then lowers the bridge to its
    smallest port's MTU (br_mtu_auto_adjust): an endpoint with a smaller MTU made every second run change br0."""
    host = lab.netns("h")
    ovl = lab.netns("o")
    (r,) = nf.run_tasks(host, [nf.Call("bridge", {"name": "br0", "netns": ovl, "mtu": 1450})])
    nf.assert_ok(r)
    nf.ip(ovl, "link", "add", "p0", "mtu", "1300", "type", "veth", "peer", "name", "p1", "mtu", "1300")
    nf.ip(ovl, "link", "set", "p0", "master", "br0")
    assert nf.Kernel.link(ovl, "br0")["mtu"] == 1450
    (again,) = nf.run_tasks(host, [nf.Call("bridge", {"name": "br0", "netns": ovl, "mtu": 1450})])
    nf.assert_ok(again)
    assert again["changed"] is False and again["commands"] == []


def test_bridge_gateway_address_and_mac(lab, nf):
    """A network's gateway on br0 (issue 14): the address and the anycast MAC, predicted in check mode, changed in
    place, and the address removed with ``address: ""`` while the MAC stays."""
    host = lab.netns("h")
    ovl = lab.netns("o")
    base = {"name": "br0", "netns": ovl, "mtu": 1450}
    gateway, moved, removed = nf.four_steps(
        host,
        [
            ("bridge", {**base, "address": "10.214.0.1/24", "mac": "06:00:00:01:2C:01"}),
            ("bridge", {**base, "address": "10.214.1.1/24", "mac": "06:00:00:01:2c:01"}),
            ("bridge", {**base, "address": ""}),
        ],
        [ovl, host],
    )
    nf.assert_four_steps(gateway)
    assert gateway["check"]["after"] == {
        "name": "br0",
        "netns": ovl,
        "mtu": 1450,
        "up": True,
        "address": "10.214.0.1/24",
        "mac": "06:00:00:01:2c:01",
    }
    assert gateway["check"]["commands"] == [
        f"ip -n {ovl} link add br0 type bridge",
        f"ip -n {ovl} link set br0 address 06:00:00:01:2c:01",
        f"ip -n {ovl} link set br0 mtu 1450",
        f"ip -n {ovl} link set br0 up",
        f"ip -n {ovl} addr add 10.214.0.1/24 dev br0",
    ]
    snap = gateway["snap_after_apply"][ovl]
    assert snap["links"]["br0"]["mac"] == "06:00:00:01:2c:01"
    assert ("br0", "10.214.0.1/24") in snap["addrs"]

    nf.assert_four_steps(moved)
    assert moved["check"]["commands"] == [
        f"ip -n {ovl} addr del 10.214.0.1/24 dev br0",
        f"ip -n {ovl} addr add 10.214.1.1/24 dev br0",
    ]
    assert {a for a in moved["snap_after_apply"][ovl]["addrs"] if a[0] == "br0"} == {("br0", "10.214.1.1/24")}

    nf.assert_four_steps(removed)
    assert removed["check"]["commands"] == [f"ip -n {ovl} addr del 10.214.1.1/24 dev br0"]
    assert removed["apply"]["after"]["address"] is None
    assert not {a for a in removed["snap_after_apply"][ovl]["addrs"] if a[0] == "br0"}
    assert removed["snap_after_apply"][ovl]["links"]["br0"]["mac"] == "06:00:00:01:2c:01"
