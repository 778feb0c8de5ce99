# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role and the playbooks on a 3-host lab: converge, verify, idempotency, purge, outages, validation, teardown.

The fleet is the demo's (inventories/lab: two networks over h1..h3). Tests run in file order on one lab; every
test that changes the inventory converges the demo fleet first, so each can also run alone.
"""

from __future__ import annotations

import re

import pytest
from lab_helpers import needs_root
from reliability_helpers import CHANGED_RE, Fleet, demo_lab
from support.demo_fleet import DEMO, VNI, VTEP, mac_of

pytestmark = [pytest.mark.lab, needs_root]

# One dump per host: its netns, and per overlay netns the vxlan device, its FDB and its ARP table.
DUMP = r"""
echo "@netns"; ip netns list | cut -d' ' -f1
echo "@links"; ip -o link show | cut -d: -f2 | cut -d@ -f1
for ns in $(ip netns list | cut -d' ' -f1 | grep '^ovl-'); do
  echo "@vxlan $ns"; ip -n "$ns" -d link show vxlan0
  echo "@fdb $ns"; bridge -n "$ns" fdb show dev vxlan0
  echo "@neigh $ns"; ip -n "$ns" neigh show dev vxlan0
done
"""


class TableFleet(Fleet):
    """The demo fleet, and a read of the hosts' overlay tables (read-only)."""

    def state(self, host: str) -> dict:
        """netns, links, and per overlay netns: vxlan details, fdb and neigh lines."""
        out: dict = {"netns": [], "links": [], "vxlan": {}, "fdb": {}, "neigh": {}}
        section = None
        for line in self.sh(host, DUMP).splitlines():
            if line.startswith("@"):
                words = line[1:].split()
                section = (words[0], words[1] if len(words) > 1 else None)
                if section[1]:
                    out[section[0]][section[1]] = []
                continue
            if not line.strip():
                continue
            kind, ns = section
            # bridge port timers (forward_delay_timer counts down for 15 s after a port comes up) are not state
            stable = TIMER_RE.sub(r"\1", line.strip())
            (out[kind] if ns is None else out[kind][ns]).append(stable)
        return out

    def states(self) -> dict:
        return {host: self.state(host) for host in VTEP}


TIMER_RE = re.compile(r"\b(\w+_timer)\s+[0-9.]+")


def fdb_self_entries(lines: list[str]) -> set[tuple[str, str, bool]]:
    """(mac, dst, permanent) of the vxlan device's own entries (not the bridge's learned ones)."""
    entries = set()
    for line in lines:
        words = line.split()
        if "self" not in words:
            continue
        dst = words[words.index("dst") + 1] if "dst" in words else None
        entries.add((words[0], dst, "permanent" in words))
    return entries


def neigh_entries(lines: list[str]) -> set[tuple[str, str, str]]:
    entries = set()
    for line in lines:
        words = line.split()
        entries.add((words[0], words[words.index("lladdr") + 1] if "lladdr" in words else None, words[-1]))
    return entries


def networks_of(host: str, fleet_map: dict | None = None) -> set[str]:
    fleet_map = DEMO if fleet_map is None else fleet_map
    return {network for (owner, _name), (network, _ip) in fleet_map.items() if owner == host}


def expected_tables(host: str, network: str, fleet: dict | None = None):
    fleet = DEMO if fleet is None else fleet
    remote = [(h, ip) for (h, _unused), (net, ip) in fleet.items() if net == network and h != host]
    fdb = {(mac_of(ip), VTEP[h], True) for h, ip in remote}
    neigh = {(ip, mac_of(ip), "PERMANENT") for _unused, ip in remote}
    return fdb, neigh


def assert_tables(fleet: TableFleet, fleet_map: dict | None = None, states: dict | None = None):
    """Every host's FDB and ARP tables hold exactly the remote endpoints of each of its networks."""
    fleet_map = DEMO if fleet_map is None else fleet_map
    states = states or fleet.states()
    for host in VTEP:
        networks = networks_of(host, fleet_map)
        assert sorted(states[host]["fdb"]) == sorted(f"ovl-{VNI[n]}" for n in networks), host
        for network in networks:
            ns = f"ovl-{VNI[network]}"
            fdb, neigh = expected_tables(host, network, fleet_map)
            assert fdb_self_entries(states[host]["fdb"][ns]) == fdb, (host, ns, states[host]["fdb"][ns])
            assert neigh_entries(states[host]["neigh"][ns]) == neigh, (host, ns, states[host]["neigh"][ns])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    yield from demo_lab(tmp_path_factory, "role", TableFleet)


# --- converge and verify --------------------------------------------------------------------------------------


def test_site_converges_the_fleet(fleet):
    _unused, recap, _changed = fleet.converge()
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    states = fleet.states()
    for host in VTEP:
        names = {name for (owner, name) in DEMO if owner == host}
        assert set(states[host]["netns"]) == names | {f"ovl-{VNI[net]}" for net in networks_of(host)}
    assert_tables(fleet, states=states)
    hosta = fleet.sh("h1", "ip -n hosta -o -4 addr show dev eth0; ip -n hosta link show dev eth0")
    assert "10.213.0.2/24" in hosta and "02:42:0a:d5:00:02" in hosta and "mtu 1450" in hosta


def test_verify_passes(fleet):
    res, recap, _changed = fleet.play("verify.yml")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    assert "Reachability OK: 7 endpoints, 42 pings, 18 replies, 0 wrong" in res.stdout
    assert "7 endpoints, 42 pings: all as expected" in res.stdout
    assert all(counts["changed"] == 0 and counts["failed"] == 0 for counts in recap.values())


def test_second_run_changes_nothing(fleet):
    _unused, recap, _changed = fleet.converge()
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 0, "h2": 0, "h3": 0}
    res, recap, _changed = fleet.play("site.yml", "--check", "--diff")
    assert res.returncode == 0, res.stdout[-4000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 0, "h2": 0, "h3": 0}


def test_vxlan_device_on_h1(fleet):
    out = fleet.sh("h1", "ip -n ovl-256 -d link show vxlan0")
    assert re.search(r"vxlan id 256 local 198\.18\.1\.1 .*dstport 4789 nolearning proxy", out), out
    assert "master br0" in out and "mtu 1450" in out
    out = fleet.sh("h1", "ip -n ovl-300 -d link show vxlan0")
    assert "vxlan id 300 " in out and "dstport 4789" in out and "nolearning" in out


def test_h1_tables_exactly(fleet):
    """h1's ovl-256: an FDB entry per remote endpoint to its host's VTEP, an ARP entry per remote IP."""
    state = fleet.state("h1")
    fdb = [line for line in state["fdb"]["ovl-256"] if " self" in line]
    assert sorted(fdb) == sorted(
        [
            "02:42:0a:d5:00:03 dst 198.18.1.2 link-netnsid 0 self permanent",
            "02:42:0a:d5:00:04 dst 198.18.1.3 link-netnsid 0 self permanent",
            "02:42:0a:d5:00:05 dst 198.18.1.3 link-netnsid 0 self permanent",
        ]
    )
    assert sorted(state["neigh"]["ovl-256"]) == [
        "10.213.0.3 lladdr 02:42:0a:d5:00:03 PERMANENT",
        "10.213.0.4 lladdr 02:42:0a:d5:00:04 PERMANENT",
        "10.213.0.5 lladdr 02:42:0a:d5:00:05 PERMANENT",
    ]


# --- changes of the inventory ---------------------------------------------------------------------------------

H3_WITHOUT_HOSTD = """
overlay_endpoints:
  - {name: hostc, network: overlay_network}
  - {name: db, network: backend, address: 10.214.0.10}
"""
H1_WITHOUT_WEB1 = """
overlay_endpoints:
  - {name: hosta, network: overlay_network}
"""
UNREACHABLE = "ansible_nsenter_pidfile: {path}\n"


def without(*keys) -> dict:
    return {key: value for key, value in DEMO.items() if key not in keys}


def test_removed_endpoint_is_purged_everywhere_in_one_run(fleet):
    fleet.converge()
    res, recap, _changed = fleet.play("site.yml", overrides={"h3": H3_WITHOUT_HOSTD})
    assert res.returncode == 0, res.stdout[-4000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    states = fleet.states()
    assert "hostd" not in states["h3"]["netns"]
    assert "veth-hostd" not in fleet.sh("h3", "ip -n ovl-256 -o link show")
    assert_tables(fleet, without(("h3", "hostd")), states)
    # back again: hostd gets its old address (the lowest free one) and everyone learns it again
    fleet.converge()
    assert_tables(fleet)
    assert "10.213.0.5/24" in fleet.sh("h3", "ip -n hostd -o -4 addr show dev eth0")


def test_unreachable_host_keeps_its_entries_on_the_others(fleet):
    fleet.converge()
    overrides = {"h3": UNREACHABLE.format(path=fleet.tmp / "no-such.pid"), "h1": H1_WITHOUT_WEB1}
    res, recap, _changed = fleet.play("site.yml", overrides=overrides)
    assert res.returncode == 4, res.stdout[-4000:]  # some host unreachable
    assert recap["h3"]["unreachable"] == 1
    assert recap["h1"]["failed"] == recap["h2"]["failed"] == 0
    assert sorted(CHANGED_RE.findall(res.stdout)) == ["h1", "h2"]
    states = fleet.states()
    # h1 and h2 dropped web1 but kept every entry of h3's endpoints; h3 itself was not touched
    wanted = without(("h1", "web1"))
    for host in ("h1", "h2"):
        for network in networks_of(host, wanted):
            ns = f"ovl-{VNI[network]}"
            fdb, neigh = expected_tables(host, network, wanted)
            assert fdb_self_entries(states[host]["fdb"][ns]) == fdb, (host, ns)
            assert neigh_entries(states[host]["neigh"][ns]) == neigh, (host, ns)
    assert "web1" not in states["h1"]["netns"] and "ovl-300" not in states["h1"]["netns"]
    assert ("10.214.0.2", "02:42:0a:d6:00:02", "PERMANENT") in neigh_entries(states["h3"]["neigh"]["ovl-300"])
    fleet.converge()
    assert_tables(fleet)


def test_hosts_outside_the_limit(fleet):
    """Outside the --limit, a host's endpoints come from the fact cache when there is one, else its VTEP is
    preserved: existing entries stay, but nothing new can be learned about it."""
    drop_hostd = (
        "ip -n ovl-256 neigh del 10.213.0.5 dev vxlan0 && bridge -n ovl-256 fdb del 02:42:0a:d5:00:05 dev vxlan0"
    )
    hostd_fdb = ("02:42:0a:d5:00:05", "198.18.1.3", True)
    # without a fact cache: h2's entries for h3 stay as they are, and the missing one stays missing
    fleet.converge()
    fleet.sh("h2", drop_hostd)
    res, recap, _changed = fleet.play("site.yml", "--limit", "h1,h2")
    assert res.returncode == 0, res.stdout[-4000:]
    assert set(recap) == {"h1", "h2"}
    assert not CHANGED_RE.findall(res.stdout)
    h2 = fdb_self_entries(fleet.state("h2")["fdb"]["ovl-256"])
    assert ("02:42:0a:d5:00:04", "198.18.1.3", True) in h2
    assert hostd_fdb not in h2
    # with a fact cache: h3's cached facts bring the entries back
    cache = {
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(fleet.tmp / "facts"),
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "3600",
    }
    res, _unused, _changed = fleet.play("site.yml", env=cache)  # the whole fleet: fills the cache (and repairs h2)
    assert res.returncode == 0, res.stdout[-4000:]
    fleet.sh("h2", drop_hostd)
    res, recap, _changed = fleet.play("site.yml", "--limit", "h1,h2", env=cache)
    assert res.returncode == 0, res.stdout[-4000:]
    assert sorted(CHANGED_RE.findall(res.stdout)) == ["h2"]
    assert_tables(fleet)


def test_duplicate_address_fails_before_any_change(fleet):
    fleet.converge()
    before = fleet.states()
    overrides = {
        "h1": "overlay_endpoints: [{name: hosta, network: overlay_network, address: 10.213.0.9}]\n",
        "h2": "overlay_endpoints: [{name: hostb, network: overlay_network, address: 10.213.0.9}]\n",
    }
    res, recap, _changed = fleet.play("site.yml", overrides=overrides)
    assert res.returncode == 2
    assert "endpoints h1/hosta and h2/hostb both have address 10.213.0.9 on network 'overlay_network'" in res.stdout
    assert not CHANGED_RE.findall(res.stdout)
    assert all(counts["changed"] == 0 for counts in recap.values())
    assert fleet.states() == before


def test_argument_spec_rejects_a_bad_state(fleet):
    res, _unused, _changed = fleet.play("site.yml", "-e", "overlay_state=gone")
    assert res.returncode == 2
    assert "value of overlay_state must be one of: present, absent, got: gone" in res.stdout
    assert not CHANGED_RE.findall(res.stdout)


# --- teardown -------------------------------------------------------------------------------------------------


def test_teardown_leaves_nothing(fleet):
    fleet.converge()
    res, recap, _changed = fleet.play("teardown.yml")
    assert res.returncode == 0, res.stdout[-4000:]
    assert {host: counts["changed"] for host, counts in recap.items()} == {"h1": 1, "h2": 1, "h3": 1}
    for host, state in fleet.states().items():
        assert state["netns"] == [], host
        assert sorted(state["links"]) == ["eth0", "lo"], host
    res, recap, _changed = fleet.play("teardown.yml")
    assert res.returncode == 0
    assert all(counts["changed"] == 0 for counts in recap.values())
    # check mode from scratch predicts the whole build and creates nothing
    res, recap, _changed = fleet.play("site.yml", "--check")
    assert res.returncode == 0, res.stdout[-4000:]
    assert sorted(CHANGED_RE.findall(res.stdout)) == ["h1", "h2", "h3"]
    assert all(state["netns"] == [] for state in fleet.states().values())
