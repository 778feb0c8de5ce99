# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.vxlan with ``underlay_netns`` through Ansible (issue 16): an encrypted network's device.

The device is made in a namespace of its own (here ``t``, standing for ``ovl-wg``: a veth holds the
"tunnel address" there) with ``local`` = that address, and moved into the overlay namespace: its UDP socket stays
in ``t``, never in the host namespace.  Switching the device between ``t`` and the host namespace (encrypted on
and off) recreates it, because its ``local`` changes; check mode predicts both.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kernel

LOCAL = "198.18.7.1"
TUNNEL = "10.255.7.1"


@pytest.fixture
def spaces(lab, nf):
    host = lab.netns("h")
    tunnel = lab.netns("t")
    ovl = lab.netns("o")
    lab.underlay(host, addr_a=f"{LOCAL}/24", addr_b="198.18.7.2/24")
    lab.underlay(tunnel, addr_a=f"{TUNNEL}/16")  # a veth pair in t holds the "tunnel address" (no dummy module)
    nf.ip(ovl, "link", "add", "br0", "mtu", "1390", "type", "bridge")
    nf.ip(ovl, "link", "set", "br0", "up")
    return host, tunnel, ovl


def test_made_in_its_underlay_netns_and_switched_to_the_host_and_back(spaces, nf):
    host, tunnel, ovl = spaces
    encrypted = {
        "name": "vxlan0",
        "netns": ovl,
        "underlay_netns": tunnel,
        "vni": 900,
        "port": 4789,
        "local": TUNNEL,
        "master": "br0",
        "mtu": 1390,
    }
    plain = {**encrypted, "underlay_netns": None, "local": LOCAL, "dev": "ul0"}
    create, off, on = nf.four_steps(
        host, [("vxlan", encrypted), ("vxlan", plain), ("vxlan", encrypted)], [host, tunnel, ovl]
    )

    nf.assert_four_steps(create)
    commands = create["check"]["commands"]
    assert commands == create["apply"]["commands"]
    assert commands[0].startswith(f"ip -n {tunnel} link add "), commands
    assert f" local {TUNNEL} " in commands[0] and " dev " not in commands[0], commands
    assert commands[1].startswith(f"ip -n {tunnel} link set ") and commands[1].endswith(f" netns {ovl}"), commands
    after = create["snap_after_apply"]
    vx = after[ovl]["links"]["vxlan0"]
    assert (vx["vxlan"]["id"], vx["vxlan"]["local"], vx["master"]) == (900, TUNNEL, "br0")
    # the socket is in the tunnel's namespace, and nowhere else
    assert "0.0.0.0:4789" in after[tunnel]["udp"]
    assert "0.0.0.0:4789" not in after[host]["udp"]
    assert not after[ovl]["udp"]
    assert set(after[tunnel]["links"]) == set(create["snap_before"][tunnel]["links"]), "a temporary device is left"

    nf.assert_four_steps(off)  # encrypted off: local changes, the device is made again in the host namespace
    assert off["check"]["recreated"] is True and off["apply"]["recreated"] is True
    assert off["check"]["recreate_reason"] == f"local {TUNNEL} -> {LOCAL}, dev None -> ul0"
    assert "0.0.0.0:4789" in off["snap_after_apply"][host]["udp"]
    assert "0.0.0.0:4789" not in off["snap_after_apply"][tunnel]["udp"]

    nf.assert_four_steps(on)  # and on again
    assert on["apply"]["recreate_reason"] == f"local {LOCAL} -> {TUNNEL}, dev ul0 -> None"
    assert "0.0.0.0:4789" in on["snap_after_apply"][tunnel]["udp"]
    assert "0.0.0.0:4789" not in on["snap_after_apply"][host]["udp"]


def test_bad_underlay_netns_is_named(spaces, nf, lab):
    host, tunnel, ovl = spaces
    base = {"name": "vxlan0", "netns": ovl, "vni": 901, "port": 4789, "local": TUNNEL}
    missing = lab.name("nothere")
    results = nf.run_tasks(
        host,
        [
            nf.Call("vxlan", {**base, "underlay_netns": missing}),
            nf.Call("vxlan", {**base, "underlay_netns": tunnel, "local": LOCAL}),
            nf.Call("vxlan", {**base, "underlay_netns": ovl}),
            nf.Call("vxlan", {**base, "underlay_netns": tunnel, "local": LOCAL}, check=True),
        ],
    )
    assert [r.get("failed") for r in results] == [True] * 4, results
    assert results[0]["msg"] == f"underlay_netns: netns {missing} does not exist; create it first"
    assert results[1]["msg"] == (
        f"local: {LOCAL} is not an address of netns {tunnel} (underlay_netns); use an address of netns {tunnel}"
    )
    assert results[2]["msg"].startswith(f"underlay_netns: {ovl} is also netns")
    assert results[3]["msg"] == results[1]["msg"]
    assert not nf.Kernel.link(ovl, "vxlan0")
