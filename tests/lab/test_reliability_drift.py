# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift made by hand on one host (h2) of the converged demo fleet, one kind at a time.

For every kind: ``site.yml --check --diff`` reports changed on h2 only, shows that very drift in h2's diff and
changes nothing (kernel snapshots of h1, h2, h3 identical before and after); the following normal run repairs it
(changed on h2 only, h2 back to its converged state, h1 and h3 untouched); the run after that reports changed=0
everywhere. Last, teardown.yml brings every host back to its snapshot from before the first site.yml.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from lab_helpers import needs_root
from reliability_helpers import HOSTS, check_teardown_leaves_no_residue, host_diff, lab_fleet, snapshot_diff
from support.demo_fleet import DEMO, VTEP, mac_of

pytestmark = [pytest.mark.lab, needs_root]

HOST = "h2"
HOSTC_IP = DEMO[("h3", "hostc")][1]  # h3's hostc, as h2's tables know it
HOSTC_MAC = mac_of(HOSTC_IP)
HOSTC_FDB = f"{HOSTC_MAC} dev vxlan0 dst {VTEP['h3']}"  # its FDB entry on h2


@dataclass
class Drift:
    id: str
    what: str
    shell: str  # run inside h2
    diff: list[tuple[str, str]]  # (sign, text): a line of h2's diff that starts with sign and contains text


DRIFTS = [
    Drift(
        "fdb-entry-deleted",
        "an FDB entry deleted",
        f"bridge -n ovl-256 fdb del {HOSTC_FDB} self",
        [("+", f"{HOSTC_FDB} self permanent")],
    ),
    Drift(
        "fdb-dst-changed",
        "an FDB entry's dst changed",
        f"bridge -n ovl-256 fdb replace {HOSTC_MAC} dev vxlan0 dst 198.18.1.9 self permanent",
        [
            ("-", f"{HOSTC_MAC} dev vxlan0 dst 198.18.1.9 self permanent"),
            ("+", HOSTC_FDB),
        ],
    ),
    Drift(
        "arp-entry-deleted",
        "an ARP entry deleted",
        f"ip -n ovl-256 neigh del {HOSTC_IP} dev vxlan0",
        [("+", f"{HOSTC_IP} dev vxlan0 lladdr {HOSTC_MAC} PERMANENT")],
    ),
    Drift(
        "foreign-arp-added",
        "a foreign permanent ARP entry added",
        "ip -n ovl-256 neigh add 10.213.0.77 lladdr 02:42:0a:d5:00:4d dev vxlan0 nud permanent",
        [("-", "10.213.0.77 dev vxlan0 lladdr 02:42:0a:d5:00:4d PERMANENT")],
    ),
    Drift(
        "vxlan0-deleted",
        "vxlan0 deleted",
        "ip -n ovl-256 link del vxlan0",
        [("-", '"vxlan": null'), ("+", '"vni": 256'), ("+", HOSTC_FDB)],
    ),
    Drift(
        "vxlan0-other-vni",
        "vxlan0 recreated with another VNI",
        "ip -n ovl-256 link del vxlan0"
        " && ip link add vxdrift type vxlan id 999 dstport 4789 local 198.18.1.2 dev eth0 nolearning proxy"
        " && ip link set vxdrift netns ovl-256 && ip -n ovl-256 link set vxdrift name vxlan0"
        " && ip -n ovl-256 link set vxlan0 master br0 up",
        [("-", '"vni": 999'), ("+", '"vni": 256'), ("+", HOSTC_FDB)],
    ),
    Drift(
        "veth-deleted",
        "an endpoint's veth deleted",
        "ip -n ovl-256 link del veth-hostb",
        [("-", '"hostb": null'), ("+", '"address": "10.213.0.3/24"')],
    ),
    Drift(
        "netns-deleted",
        "the overlay netns deleted",
        "ip netns del ovl-256",
        [("-", '"netns": null'), ("+", '"netns": "ovl-256"'), ("+", HOSTC_FDB)],
    ),
    Drift(
        "learning-on",
        "learning turned back on",
        "ip -n ovl-256 link set vxlan0 type vxlan learning",
        [("-", '"learning": true'), ("+", '"learning": false')],
    ),
]
CHECKS = [
    "site.yml --check --diff: changed on h2 only",
    "h2's diff shows the drift",
    "check mode changes nothing (snapshot of h1, h2, h3 identical)",
    "next run: changed on h2 only; h2 back to its converged state; h1, h3 snapshots untouched",
    "run after that: changed=0 on every host",
]


def essentials(snap: dict) -> dict:
    """What a repair must restore, without what a recreated device gets anew (ifindex, random MACs, peers):
    per namespace the links (kind, mtu, master, state, alias, vxlan attributes, endpoint MACs), the global
    addresses, the vxlan FDB entries and the static neighbours."""
    out = {}
    for ns, sections in snap.items():
        links = {}
        for link in sections["link"]:
            info = link.get("linkinfo", {})
            entry = {
                "kind": info.get("info_kind"),
                "mtu": link.get("mtu"),
                "master": link.get("master"),
                "operstate": link.get("operstate"),
                "alias": link.get("ifalias"),
            }
            if info.get("info_kind") == "vxlan":
                entry["vxlan"] = info.get("info_data")
            if link["ifname"] == "eth0" and ns != "-":
                entry["mac"] = link.get("address")
            links[link["ifname"]] = entry
        addrs = sorted(
            (a["ifname"], i["local"], i["prefixlen"])
            for a in sections["addr"]
            for i in a.get("addr_info", [])
            if i.get("scope") == "global"
        )
        fdb = sorted((e["mac"], e["ifname"], e["dst"], e.get("state")) for e in sections["fdb"] if "dst" in e)
        neigh = sorted((e["dst"], e.get("dev"), e.get("lladdr"), tuple(e.get("state", []))) for e in sections["neigh"])
        out[ns] = {"links": links, "addrs": addrs, "fdb": fdb, "neigh": neigh}
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for fleet in lab_fleet(tmp_path_factory, "drift"):
        recap, changed = fleet.converge()[1:]
        assert changed == [], recap
        fleet.converged = fleet.snapshot()
        yield fleet


@pytest.mark.parametrize("drift", DRIFTS, ids=[d.id for d in DRIFTS])
def test_drift_is_reported_then_repaired(fleet, drift):
    started = time.monotonic()
    problems = []
    converged = fleet.snapshot()
    assert converged == fleet.converged, "not converged before the drift:\n" + snapshot_diff(fleet.converged, converged)
    fleet.sh(HOST, drift.shell)
    drifted = fleet.snapshot()
    assert drifted != converged, "the drift changed nothing"

    # 1. check mode: reported on h2 only, visible in the diff, nothing changed
    res, recap, changed = fleet.play("site.yml", "--check", "--diff")
    assert res.returncode == 0, res.stdout[-6000:]
    if changed != [HOST] or recap[HOST]["changed"] != 1:
        problems.append(f"check mode reported changed on {changed} (recap {recap})")
    diff = host_diff(res.stdout, HOST)
    lines = diff.splitlines()
    for sign, text in drift.diff:
        if not any(line.startswith(sign) and text in line for line in lines):
            problems.append(f"h2's diff has no line {sign} ...{text}...")
    after_check = fleet.snapshot()
    if after_check != drifted:
        problems.append("check mode changed the kernel:\n" + snapshot_diff(drifted, after_check))

    # 2. the next run repairs it, on h2 only
    res, recap, changed = fleet.play("site.yml")
    assert res.returncode == 0, res.stdout[-6000:]
    if changed != [HOST]:
        problems.append(f"the repair run reported changed on {changed}")
    repaired = fleet.snapshot()
    if essentials(repaired[HOST]) != essentials(converged[HOST]):
        problems.append("h2 is not back to its converged state:\n" + snapshot_diff(converged, repaired))
    others = [h for h in HOSTS if h != HOST]
    if any(repaired[h] != converged[h] for h in others):
        problems.append("the repair touched h1 or h3:\n" + snapshot_diff(converged, repaired))

    # 3. and the run after that changes nothing
    res, recap, changed = fleet.play("site.yml")
    assert res.returncode == 0, res.stdout[-6000:]
    if changed or any(c["changed"] for c in recap.values()):
        problems.append(f"the run after the repair reported changed on {changed} ({recap})")
    fleet.converged = fleet.snapshot()

    fleet.results.add(
        "drift",
        drift.id,
        CHECKS,
        not problems,
        time.monotonic() - started,
        what=drift.what,
        shell=drift.shell,
        problems=problems,
    )
    assert not problems, f"{drift.id}: " + "\n".join(problems) + "\n--- h2's diff:\n" + diff[-4000:]


# --- the DNS server of a dns network (issue 14) killed by hand ---------------------------------------------------

# backend with dns on every host (host_vars win over the demo's group_vars)
DNS_ON = dict.fromkeys(
    HOSTS,
    "overlay_networks:\n  - {name: overlay_network, vni: 256, subnet: 10.213.0.0/24}\n"
    "  - {name: backend, vni: 300, subnet: 10.214.0.0/24, dns: true}\n",
)
DNS_PID = "/run/netfleet-overlay/dns-300.pid"  # the server's pid and start time (no systemd in the lab)
DNS_KILL = f"kill -9 $(cut -d' ' -f1 {DNS_PID})"
DB_IP = DEMO[("h3", "db")][1]
DNS_CHECKS = [
    "with backend's dns on, web2 (h2) resolves db; after the kill it does not",
    "site.yml --check: changed on h2 only, 'dns (started ovl-300' predicted, snapshots identical",
    "next run: changed on h2 only, a new dnsmasq pid, web2 resolves db again",
    "run after that: changed=0 on every host",
]


def broken_then_repaired(fleet, overrides: dict, works, shell: str, *, predicted="", remember=None, repaired=None):
    """What the issue-14 cases share: with ``overrides``, ``works()``; after ``shell`` on h2 it does not; check mode
    reports changed on h2 only (with ``predicted`` in its output) and changes nothing; the next run changes h2 only
    and ``works()`` again (and ``repaired(remember())``, remembered before ``shell``, when given); the run after
    that changes nothing. Returns the problems."""
    problems = []
    res = fleet.play("site.yml", overrides=overrides)[0]
    assert res.returncode == 0, res.stdout[-6000:]
    if not works():
        problems.append("it does not work before the breakage")
    memo = remember() if remember else None
    fleet.sh(HOST, shell)
    if works():
        problems.append("it still works after the breakage")
    before = fleet.snapshot()
    res, recap, changed = fleet.play("site.yml", "--check", overrides=overrides)
    assert res.returncode == 0, res.stdout[-6000:]
    if changed != [HOST] or predicted not in res.stdout:
        problems.append(f"check mode reported changed on {changed}, or not {predicted!r}: {res.stdout[-2000:]}")
    if fleet.snapshot() != before:
        problems.append("check mode changed the kernel")
    res, recap, changed = fleet.play("site.yml", overrides=overrides)
    assert res.returncode == 0, res.stdout[-6000:]
    if changed != [HOST]:
        problems.append(f"the repair run reported changed on {changed}")
    if not works() or (repaired and not repaired(memo)):
        problems.append("not repaired by the run")
    res, recap, changed = fleet.play("site.yml", overrides=overrides)
    if res.returncode != 0 or changed:
        problems.append(f"the run after the repair reported changed on {changed} ({recap})")
    return problems


def record_and_reset(fleet, case: str, checks: list[str], problems: list[str], started: float, **detail) -> None:
    """Record an issue-14 case, converge the demo's own variables again for the cases that follow, and fail with
    the problems."""
    fleet.results.add("drift", case, checks, not problems, time.monotonic() - started, problems=problems, **detail)
    fleet.converge()
    fleet.converged = fleet.snapshot()
    assert not problems, f"{case}: " + "\n".join(problems)


def test_dns_server_killed_then_a_run_restarts_it(fleet):
    started = time.monotonic()

    def resolves() -> bool:
        out = fleet.sh(HOST, "ip netns exec web2 getent hosts db || true")
        return out.split()[:1] == [DB_IP]

    def pid() -> str:
        return fleet.sh(HOST, f"cat {DNS_PID}").split()[0]

    problems = broken_then_repaired(
        fleet,
        DNS_ON,
        resolves,
        DNS_KILL,
        predicted=f"{HOST}: dns (started ovl-300",
        remember=pid,
        repaired=lambda before: pid() != before,
    )
    what = "the DNS server (dnsmasq) of a dns network killed, by its pid"
    record_and_reset(fleet, "dns-server-killed", DNS_CHECKS, problems, started, what=what, shell=DNS_KILL)


# --- the egress rules of an egress network (issue 14) deleted by hand ---------------------------------------------

# backend with egress on every host
EGRESS_ON = dict.fromkeys(
    HOSTS,
    "overlay_networks:\n  - {name: overlay_network, vni: 256, subnet: 10.213.0.0/24}\n"
    "  - {name: backend, vni: 300, subnet: 10.214.0.0/24, egress: true}\n",
)
OUTSIDE = "198.18.0.1"  # the lab's switch: on the underlay, in no overlay network
EGRESS_DELETE = " && ".join(
    f"nft {verb} chain inet netfleet_overlay {chain}"
    for verb, chain in (("flush", "egress_forward"), ("flush", "egress_nat"), ("delete", "egress_nat"))
)
EGRESS_CHECKS = [
    "with backend's egress on, web2 (h2) reaches the switch; after the deletion it does not (no masquerade)",
    "site.yml --check: changed on h2 only, snapshots identical",
    "next run: changed on h2 only, the egress chains back, web2 reaches the switch again",
    "run after that: changed=0 on every host",
]


def test_egress_rules_deleted_then_a_run_restores_them(fleet):
    started = time.monotonic()

    def reaches() -> bool:
        ping = ("ip", "netns", "exec", "web2", "ping", "-c", "2", "-W", "1", OUTSIDE)
        return fleet.lab.exec(HOST, *ping).returncode == 0

    problems = broken_then_repaired(
        fleet,
        EGRESS_ON,
        reaches,
        EGRESS_DELETE,
        repaired=lambda _before: "masquerade" in fleet.sh(HOST, "nft list chain inet netfleet_overlay egress_nat"),
    )
    what = "the egress rules of an egress network deleted by hand (nft flush/delete chain)"
    record_and_reset(fleet, "egress-rules-deleted", EGRESS_CHECKS, problems, started, what=what, shell=EGRESS_DELETE)


def test_teardown_leaves_no_residue(fleet):
    check_teardown_leaves_no_residue(fleet, "teardown-after-drift")
