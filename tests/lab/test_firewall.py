# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VTEP allowlist (overlay_firewall) on a 3-host lab with the demo fleet.

A rogue namespace on the lab's underlay (198.18.9.9, not in the inventory, plugged into the switch ``sw``)
sends VXLAN-encapsulated ICMP echo requests with VNI 256 to h1's VTEP, addressed to hosta's MAC and IP. Whether
hosta received them is read from hosta's own ICMP counter (``IcmpInEchos`` in its ``/proc/net/snmp``): with the
allowlist on it never moves (and h1's drop counter counts them); with ``overlay_firewall: false`` every frame
arrives. A member VTEP (h2) sending the same frames is the positive control.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from lab_helpers import needs_root
from reliability_helpers import CHANGED_RE, demo_lab
from support.demo_fleet import DEMO, VTEP, mac_of
from test_role import TableFleet, assert_tables

pytestmark = [pytest.mark.lab, needs_root]

TABLE = ("inet", "netfleet_overlay")
ROGUE_NS, ROGUE_ADDR = "rogue", "198.18.9.9"
HOSTA_IP = DEMO[("h1", "hosta")][1]
HOSTA_MAC = mac_of(HOSTA_IP)
FRAMES = 20
FOREIGN = """
table inet site_admin {
  set trusted { type ipv4_addr; elements = { 192.0.2.7 } }
  chain input { type filter hook input priority 10; policy accept; ip saddr @trusted udp dport 4789 accept; }
}
table ip legacy_nat {
  chain post { type nat hook postrouting priority 100; policy accept; }
}
"""

# Sends COUNT VXLAN packets (UDP to VTEP:PORT, VNI) that carry an Ethernet frame with an ICMP echo request
# from 10.213.0.99 to DST_IP / DST_MAC.  Runs inside the sender's namespace (standard library only).
INJECT = r"""
import socket, struct, sys
def csum(data):
    data += b"\0" * (len(data) % 2)
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
vtep, dst_mac, dst_ip = sys.argv[1], sys.argv[4], sys.argv[5]
port, vni, count = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[6])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for seq in range(count):
        icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4E46, seq) + b"netfleet-rogue-frame"
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton("10.213.0.99"), socket.inet_aton(dst_ip))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        eth = bytes.fromhex(dst_mac.replace(":", "") + "02420ad50063") + b"\x08\x00"
        sock.sendto(struct.pack("!II", 0x08000000, vni << 8) + eth + ip + icmp, (vtep, port))
print("sent", count)
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in demo_lab(tmp_path_factory, "fw", TableFleet):
        lab = fleet.lab
        # An admin's own tables on h2, there before the collection: they must survive everything below.
        res = lab.exec("h2", "nft", "-f", "-", input=FOREIGN)
        assert res.returncode == 0, res.stderr
        # The rogue: a namespace made inside the switch (its /run), on the underlay bridge, outside the inventory.
        script = (
            f"ip netns add {ROGUE_NS} && ip link add vrogue type veth peer name eth0 netns {ROGUE_NS}"
            f" && ip link set vrogue master br0 up && ip -n {ROGUE_NS} addr add {ROGUE_ADDR}/16 dev eth0"
            f" && ip -n {ROGUE_NS} link set eth0 up"
        )
        res = lab.exec("sw", "sh", "-c", script)
        assert res.returncode == 0, res.stderr
        yield fleet


def table(fleet, host: str) -> dict | None:
    """Our table on a host as {sets: {name: elements}, rules: [...]} from nft's JSON, or None when absent."""
    res = fleet.lab.exec(host, "nft", "-j", "list", "table", *TABLE)
    if res.returncode != 0:
        assert "No such file or directory" in res.stderr, res.stderr
        return None
    items = json.loads(res.stdout)["nftables"]
    sets = {i["set"]["name"]: i["set"].get("elem", []) for i in items if "set" in i}
    rules = [i["rule"]["expr"] for i in items if "rule" in i]
    return {"sets": sets, "rules": rules}


def allowlists(fleet) -> dict:
    return {host: (t["sets"]["vteps"] if (t := table(fleet, host)) else None) for host in VTEP}


def others(host: str, members=tuple(VTEP)) -> list[str]:
    return sorted(VTEP[h] for h in members if h != host)


def foreign_ruleset(fleet, host: str) -> list:
    """Everything in the host's ruleset that is not our table (stateless: no counter values)."""
    res = fleet.lab.exec(host, "nft", "-j", "-s", "list", "ruleset")
    assert res.returncode == 0, res.stderr
    out = []
    for item in json.loads(res.stdout)["nftables"]:
        kind, obj = next(iter(item.items()))
        ours = obj.get("family") == TABLE[0] and obj.get("table", obj.get("name")) == TABLE[1]
        if kind == "metainfo" or ours:
            continue
        out.append(item)
    return out


def ensure_demo(fleet) -> None:
    """Converge the demo fleet unless it already is (each test can run alone, without a run per test)."""
    if allowlists(fleet) == {host: others(host) for host in VTEP}:
        try:
            assert_tables(fleet)
            return
        except AssertionError:
            pass
    fleet.converge()


def drops(fleet, host: str = "h1") -> int:
    rule = table(fleet, host)["rules"][-1]
    return next(e["counter"]["packets"] for e in rule if "counter" in e)


def echos_received(fleet, host: str = "h1", ns: str = "hosta") -> int:
    """IcmpInEchos of an endpoint: the ICMP echo requests its IP stack received."""
    lines = [line.split() for line in fleet.sh(host, f"ip netns exec {ns} cat /proc/net/snmp").splitlines()]
    header, values = [words for words in lines if words[0] == "Icmp:"][:2]
    return int(values[header.index("InEchos")])


def inject(fleet, sender: str, count: int = FRAMES, vtep: str = VTEP["h1"]) -> None:
    """Send crafted VXLAN frames for hosta: from the rogue (sender 'rogue') or from a lab host's underlay."""
    args = [sys.executable, "-c", INJECT, vtep, "4789", "256", HOSTA_MAC, HOSTA_IP, str(count)]
    if sender == "rogue":
        res = fleet.lab.exec("sw", "ip", "netns", "exec", ROGUE_NS, *args)
    else:
        res = fleet.lab.exec(sender, *args)
    assert res.returncode == 0 and f"sent {count}" in res.stdout, res.stderr


def received(fleet, sender: str) -> int:
    """How many of FRAMES injected frames hosta's stack received (the kernel counts synchronously; allow a moment)."""
    before = echos_received(fleet)
    inject(fleet, sender)
    fleet.sh("h1", "sleep 0.3")
    return echos_received(fleet) - before


# --- the tests ------------------------------------------------------------------------------------------------


def test_allowlist_holds_exactly_the_other_members(fleet):
    foreign = foreign_ruleset(fleet, "h2")
    assert len(foreign) > 3  # the admin's tables, set and chains
    _res, recap, _changed = fleet.converge()
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    assert allowlists(fleet) == {host: others(host) for host in VTEP}
    t = table(fleet, "h1")
    assert t["sets"]["ports"] == [4789]
    rendered = fleet.sh("h1", "nft list chain inet netfleet_overlay input")
    assert "udp dport @ports ip daddr 198.18.1.1 ip saddr @vteps accept" in rendered
    # the drop names no address: the VXLAN sockets listen on all of them (tests/lab/test_vxlan_injection.py)
    assert "\t\tudp dport @ports counter packets" in rendered and rendered.rstrip().endswith("}")
    assert foreign_ruleset(fleet, "h2") == foreign  # only our table changed
    _res, recap, _changed = fleet.converge()  # idempotent, also with the firewall
    assert all(counts["changed"] == 0 for counts in recap.values())


def test_rogue_frames_are_dropped_and_members_pass(fleet):
    ensure_demo(fleet)
    dropped = drops(fleet)
    assert received(fleet, "rogue") == 0
    assert drops(fleet) - dropped == FRAMES
    assert received(fleet, "h2") == FRAMES  # a member VTEP: the same frames arrive


def test_without_the_allowlist_rogue_frames_arrive(fleet):
    ensure_demo(fleet)
    res, recap, _changed = fleet.play("site.yml", "-e", "overlay_firewall=false")
    assert res.returncode == 0, res.stdout[-4000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    assert allowlists(fleet) == dict.fromkeys(VTEP)
    assert received(fleet, "rogue") == FRAMES  # the injection works: this is what the allowlist prevents
    assert_tables(fleet)  # the overlay itself did not change
    # on again: dropped again
    _res, recap, _changed = fleet.converge()
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    assert received(fleet, "rogue") == 0


def test_check_mode_predicts_the_removal(fleet):
    ensure_demo(fleet)
    res, _recap, _changed = fleet.play("site.yml", "--check", "--diff", "-e", "overlay_firewall=false")
    assert res.returncode == 0, res.stdout[-4000:]
    assert sorted(CHANGED_RE.findall(res.stdout)) == ["h1", "h2", "h3"]
    assert allowlists(fleet) == {host: others(host) for host in VTEP}  # nothing changed


def test_leaving_host_is_dropped_from_every_set_in_the_same_run(fleet):
    ensure_demo(fleet)
    foreign = foreign_ruleset(fleet, "h2")
    res, recap, _changed = fleet.play("site.yml", overrides={"h3": "overlay_state: absent\n"})
    assert res.returncode == 0, res.stdout[-4000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    assert allowlists(fleet) == {"h1": [VTEP["h2"]], "h2": [VTEP["h1"]], "h3": None}
    assert foreign_ruleset(fleet, "h2") == foreign
    # and back: every set has it again, in one run
    _res, recap, _changed = fleet.converge()
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    assert allowlists(fleet) == {host: others(host) for host in VTEP}


def test_a_hand_edited_set_is_repaired(fleet):
    ensure_demo(fleet)
    fleet.sh("h2", f"nft add element inet netfleet_overlay vteps '{{ {ROGUE_ADDR} }}'")
    assert ROGUE_ADDR in allowlists(fleet)["h2"]
    res, _recap, _changed = fleet.converge()
    assert sorted(CHANGED_RE.findall(res.stdout)) == ["h2"]
    assert allowlists(fleet)["h2"] == others("h2")


def test_preflight_names_the_missing_nft(fleet):
    """nft hidden on h3 only (a bind mount in h3's private mount namespace): the preflight says what to do."""
    ensure_demo(fleet)
    nft = shutil.which("nft")
    fleet.sh("h3", f"mount --bind /dev/null {nft}")
    try:
        res, recap, _changed = fleet.play("site.yml")
        assert res.returncode == 2
        assert recap["h3"]["failed"] == 1 and recap["h1"]["failed"] == recap["h2"]["failed"] == 0
        assert (
            "h3: nft is not installed there, so the nftables table inet netfleet_overlay (the VTEP allowlist of"
            " overlay_firewall) cannot be kept" in res.stdout
        )
        assert "Install the package nftables" in res.stdout
    finally:
        fleet.sh("h3", f"umount {nft}")
    assert allowlists(fleet) == {host: others(host) for host in VTEP}


def test_teardown_removes_only_our_table(fleet):
    ensure_demo(fleet)
    foreign = foreign_ruleset(fleet, "h2")
    res, _recap, _changed = fleet.play("teardown.yml")
    assert res.returncode == 0, res.stdout[-4000:]
    assert allowlists(fleet) == dict.fromkeys(VTEP)
    assert foreign_ruleset(fleet, "h2") == foreign
    assert "table inet site_admin" in fleet.sh("h2", "nft list tables")
