# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two networks on the same hosts never leak into each other, not even when an endpoint is misconfigured.

The demo fleet has ``overlay_network`` (VNI 256, 10.213.0.0/24) and ``backend`` (VNI 300, 10.214.0.0/24) on all
three hosts. hosta (h1, VNI 256) tries to reach web1 (h1, the same host) and web2 (h2) of the other network:
with the other subnet routed on-link, with the other endpoints given addresses in hosta's own subnet, and with a
static ARP entry for them. Ping fails, arping gets no answer, the neighbour entry never resolves, and a counter
in web1's and web2's namespaces (an nftables ``netdev`` ingress rule on their ``eth0`` matching hosta's MAC)
shows that no frame of hosta ever arrived. The same counter in hostb (same network) is the positive control.
"""

from __future__ import annotations

import json

import pytest
from lab_helpers import needs_root
from reliability_helpers import demo_lab
from support.demo_fleet import DEMO, mac_of
from test_role import TableFleet, assert_tables

pytestmark = [pytest.mark.lab, needs_root]


def endpoint(host: str, ns: str) -> dict:
    ip = DEMO[(host, ns)][1]
    return {"host": host, "ns": ns, "ip": ip, "mac": mac_of(ip)}


HOSTA, HOSTB = endpoint("h1", "hosta"), endpoint("h2", "hostb")  # overlay_network
WEB1, WEB2 = endpoint("h1", "web1"), endpoint("h2", "web2")  # backend; web1 is on the same host as hosta
OTHERS = (WEB1, WEB2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "iso", TableFleet):
        fleet.converge()
        assert_tables(fleet)
        for ep in (HOSTA, HOSTB, WEB1, WEB2):  # count every frame from hosta / web2 that reaches an endpoint
            probe = (
                "table netdev isolation_probe {\n chain in {\n"
                "  type filter hook ingress device eth0 priority 0; policy accept;\n"
                f"  ether saddr {HOSTA['mac']} counter\n  ether saddr {WEB2['mac']} counter\n }}\n}}\n"
            )
            fleet.sh(ep["host"], f"ip netns exec {ep['ns']} nft -f - <<'EOF'\n{probe}EOF")
        yield fleet


def frames_from(fleet, ep: dict, sender: dict) -> int:
    """Frames with the sender's source MAC that reached the endpoint's eth0."""
    out = fleet.sh(ep["host"], f"ip netns exec {ep['ns']} nft -j list chain netdev isolation_probe in")
    for item in json.loads(out)["nftables"]:
        expr = item.get("rule", {}).get("expr", [])
        if expr and expr[0]["match"]["right"] == sender["mac"]:
            return expr[1]["counter"]["packets"]
    raise AssertionError(f"no probe rule for {sender['mac']} in {ep['ns']}")


def run_in(fleet, ep: dict, command: str) -> int:
    return fleet.lab.exec(ep["host"], "sh", "-c", f"ip netns exec {ep['ns']} {command}").returncode


def ping(fleet, src: dict, ip: str) -> bool:
    return run_in(fleet, src, f"ping -n -q -c 2 -i 0.2 -W 1 {ip} >/dev/null 2>&1") == 0


def arping(fleet, src: dict, ip: str) -> bool:
    return run_in(fleet, src, f"arping -q -c 2 -w 2 -I eth0 {ip}") == 0


def neighbour(fleet, src: dict, ip: str) -> str:
    return fleet.sh(src["host"], f"ip -n {src['ns']} neigh show {ip} dev eth0").strip()


def assert_unreachable(fleet, src: dict, ip: str) -> None:
    assert not ping(fleet, src, ip), f"{src['ns']} pinged {ip}"
    assert not arping(fleet, src, ip), f"{src['ns']} got an ARP answer for {ip}"
    entry = neighbour(fleet, src, ip)
    assert "lladdr" not in entry or "PERMANENT" in entry, entry
    assert entry == "" or any(state in entry for state in ("FAILED", "INCOMPLETE", "PERMANENT")), entry


def test_probe_sees_frames_within_a_network(fleet):
    before = frames_from(fleet, HOSTB, HOSTA)
    assert ping(fleet, HOSTA, HOSTB["ip"]) and arping(fleet, HOSTA, HOSTB["ip"])
    assert frames_from(fleet, HOSTB, HOSTA) > before


def test_other_network_routed_on_link_is_unreachable(fleet):
    """hosta routes 10.214.0.0/24 out of eth0 (an L3 misconfiguration): its ARP requests stay in VNI 256."""
    counts = {ep["ns"]: frames_from(fleet, ep, HOSTA) for ep in OTHERS}
    fleet.sh("h1", "ip -n hosta route add 10.214.0.0/24 dev eth0")
    try:
        for ep in OTHERS:
            assert_unreachable(fleet, HOSTA, ep["ip"])
    finally:
        fleet.sh("h1", "ip -n hosta route del 10.214.0.0/24 dev eth0; ip -n hosta neigh flush dev eth0")
    assert {ep["ns"]: frames_from(fleet, ep, HOSTA) for ep in OTHERS} == counts


def test_other_network_endpoint_in_the_same_subnet_is_unreachable(fleet):
    """web1 and web2 (VNI 300) get addresses in hosta's subnet; hosta even gets static ARP entries for them."""
    counts = {ep["ns"]: frames_from(fleet, ep, HOSTA) for ep in OTHERS}
    reverse = frames_from(fleet, HOSTA, WEB2)
    added = {"web1": "10.213.0.51", "web2": "10.213.0.50"}
    for ep in OTHERS:
        fleet.sh(ep["host"], f"ip -n {ep['ns']} addr add {added[ep['ns']]}/24 dev eth0")
    try:
        for ep in OTHERS:
            assert_unreachable(fleet, HOSTA, added[ep["ns"]])
        # web2 now has 10.213.0.0/24 on-link too, and tries hosta the other way
        assert_unreachable(fleet, WEB2, HOSTA["ip"])
        # even a static ARP entry only makes hosta send to an unknown MAC in VNI 256, where it is dropped
        for ep in OTHERS:
            fleet.sh("h1", f"ip -n hosta neigh replace {added[ep['ns']]} lladdr {ep['mac']} dev eth0 nud permanent")
            assert not ping(fleet, HOSTA, added[ep["ns"]])
    finally:
        for ep in OTHERS:
            fleet.sh(ep["host"], f"ip -n {ep['ns']} addr del {added[ep['ns']]}/24 dev eth0")
        fleet.sh("h1", "ip -n hosta neigh flush dev eth0 nud all")
        fleet.sh("h2", "ip -n web2 neigh flush dev eth0 nud all")
    assert {ep["ns"]: frames_from(fleet, ep, HOSTA) for ep in OTHERS} == counts
    assert frames_from(fleet, HOSTA, WEB2) == reverse
    assert ping(fleet, HOSTA, HOSTB["ip"])  # the network itself still works
    _res, recap, _changed = fleet.converge()  # and the collection sees nothing of its own to repair
    assert all(host_counts["changed"] == 0 for host_counts in recap.values())
