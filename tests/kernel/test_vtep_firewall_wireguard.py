# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netfleet.overlay.vtep_firewall with the WireGuard tunnel's port (issue 16), through Ansible in a throw-away
namespace with a private ``/run``: the table read back from nft is what the module wrote (idempotent), a host with
encrypted networks only opens the tunnel's port alone, and the port of the tunnel may not be a VXLAN port."""

from __future__ import annotations

import json
import shutil

import pytest

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed (make deps installs nftables)"),
]

NFT = shutil.which("nft") or "/usr/sbin/nft"
V1, V2, V3 = "198.18.1.1", "198.18.1.2", "198.18.1.3"
WG_RULES = [f"udp dport 51820 ip daddr {V1} ip saddr @wg_vteps accept", "udp dport 51820 counter drop"]


def sets(result: dict) -> dict:
    """{set name: elements} of the collection's table (a Cmd result of `nft -j list table`)."""
    assert result["rc"] == 0, result
    items = json.loads(result["stdout"])["nftables"]
    return {item["set"]["name"]: item["set"].get("elem", []) for item in items if "set" in item}


def test_the_wireguard_port_is_guarded_like_the_vxlan_ports(lab, nf):
    host = lab.netns("h")
    mixed = {"vtep": V1, "allow": [V2], "ports": [4789], "wireguard_port": 51820, "wireguard_allow": [V3, V2]}
    only = {"vtep": V1, "ports": [], "wireguard_port": 51820, "wireguard_allow": [V3]}
    read = nf.Cmd(f"{NFT} -j list table inet netfleet_overlay")
    rows = nf.run_tasks(
        host,
        [
            nf.Call("vtep_firewall", mixed, check=True),
            nf.Call("vtep_firewall", mixed),
            read,
            nf.Call("vtep_firewall", mixed),
            nf.Call("vtep_firewall", only),
            read,
            nf.Call("vtep_firewall", only, check=True),
            nf.Call("vtep_firewall", {**mixed, "wireguard_port": 4789}),
            nf.Call("vtep_firewall", {"state": "absent"}),
        ],
        private_run=True,
    )
    check, apply, after, again, alone, after_alone, alone2, clash, gone = rows
    for r in (check, apply, again, alone, alone2, gone):
        nf.assert_ok(r)
    assert check["changed"] and apply["changed"] and check["after"] == apply["after"]
    assert apply["after"]["wireguard"] == {"allow": [V2, V3], "port": 51820}
    assert apply["after"]["rules"]["input"][2:] == WG_RULES and "other" not in apply["after"]
    assert sets(after) == {"ports": [4789], "vteps": [V2], "wg_vteps": [V2, V3]}
    assert again["changed"] is False and again["commands"] == [], "the table read back differs from the one written"
    assert alone["changed"] and alone["after"]["rules"]["input"] == WG_RULES and alone["after"]["ports"] == []
    assert sets(after_alone) == {"wg_vteps": [V3]}
    assert alone2["changed"] is False
    assert clash["failed"] and "wireguard_port: 4789 is also a VXLAN port of an unencrypted network" in clash["msg"]
    assert gone["changed"] is True
