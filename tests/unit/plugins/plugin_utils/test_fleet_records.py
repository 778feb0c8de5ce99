# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the fleet records built from hostvars (plain dicts in, plain dicts out)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    FleetRecordsError,
    fleet_record,
    fleet_records,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    HOST_KEYS,
    PeerTableError,
    compute_peer_tables,
)

NET = {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"}


def facts(vtep, endpoints=None, underlay_mtu=1500, pyroute2=True):
    """What overlay_facts leaves in ansible_facts.netfleet_overlay (only what matters here, plus noise)."""
    return {
        "vtep": vtep,
        "vtep_dev": "eth0",
        "vtep_is_local": True,
        "underlay_mtu": underlay_mtu,
        "pyroute2": pyroute2,
        "kernel": {"release": "6.1.0", "version": [6, 1], "vxlan": True},
        "networks": {},
        "endpoints": endpoints or {},
    }


def fact_ep(name, ip, mac, network="overlay_network"):
    return {
        name: {
            "name": name,
            "netns": name,
            "network": network,
            "ip": ip,
            "prefixlen": 24,
            "mac": mac,
            "mtu": 1450,
            "veth": f"veth-{name}",
            "overlay_netns": "ovl-256",
            "ifname": "eth0",
        }
    }


def host(endpoints=(), overlay_facts=None, **variables):
    hv = {"inventory_hostname": "x", "overlay_endpoints": list(endpoints), **variables}
    if overlay_facts is not None:
        hv["ansible_facts"] = {"netfleet_overlay": overlay_facts, "distribution": "Debian"}
    return hv


def ep(name, network="overlay_network", **extra):
    return {"name": name, "network": network, **extra}


def seed_hostvars():
    return {
        "h1": host([ep("hosta")], facts("198.18.1.1", fact_ep("hosta", "10.213.0.2", "02:42:0a:d5:00:02"))),
        "h2": host([ep("hostb")], facts("198.18.1.2")),
    }


def test_reachable_hosts_with_facts():
    fleet = fleet_records(seed_hostvars(), ["h1", "h2"], ["h1", "h2"])
    assert fleet == {
        "h1": {
            "state": "present",
            "reachable": True,
            "vtep": "198.18.1.1",
            "underlay_mtu": 1500,
            "endpoints": [{"name": "hosta", "network": "overlay_network"}],
            "current": {
                "hosta": {
                    "network": "overlay_network",
                    "ip": "10.213.0.2",
                    "mac": "02:42:0a:d5:00:02",
                    "netns": "hosta",
                    "attached": False,
                }
            },
            "current_networks": {},
            "peers": None,
            "netns": None,
            "wireguard": None,
        },
        "h2": {
            "state": "present",
            "reachable": True,
            "vtep": "198.18.1.2",
            "underlay_mtu": 1500,
            "endpoints": [{"name": "hostb", "network": "overlay_network"}],
            "current": {},
            "current_networks": {},
            "peers": None,
            "netns": None,
            "wireguard": None,
        },
    }


def test_overlay_vtep_wins_over_the_facts_and_empty_means_unset():
    hostvars = {
        "h1": host(overlay_facts=facts("10.0.0.1"), overlay_vtep="198.18.1.1"),
        "h2": host(overlay_facts=facts("10.0.0.2"), overlay_vtep=""),
        "h3": host(overlay_facts=facts("10.0.0.3"), overlay_vtep=None),
    }
    fleet = fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2", "h3"])
    assert [fleet[h]["vtep"] for h in ("h1", "h2", "h3")] == ["198.18.1.1", "10.0.0.2", "10.0.0.3"]


def test_defaults_when_variables_are_missing():
    """Role defaults are not in hostvars: a host with nothing set is a present host without endpoints."""
    fleet = fleet_records({"h1": {}}, ["h1"], ["h1"])
    assert fleet == {
        "h1": {
            "state": "present",
            "reachable": True,
            "vtep": None,
            "underlay_mtu": None,
            "endpoints": [],
            "current": None,
            "current_networks": None,
            "peers": None,
            "netns": None,
            "wireguard": None,
        }
    }


def test_no_facts_means_current_none():
    hostvars = {"h3": host([ep("hostc")], overlay_vtep="198.18.1.3")}
    record = fleet_records(hostvars, ["h3"], [])["h3"]
    assert record["current"] is None
    assert record["underlay_mtu"] is None
    assert record["vtep"] == "198.18.1.3"
    assert record["reachable"] is False


def test_facts_without_pyroute2_count_as_no_facts():
    hostvars = {"h1": host([ep("hosta")], facts("198.18.1.1", pyroute2=False, underlay_mtu=None))}
    record = fleet_records(hostvars, ["h1"], ["h1"])["h1"]
    assert record["current"] is None
    assert record["vtep"] == "198.18.1.1"


def test_host_outside_the_play_uses_its_cached_facts():
    hostvars = seed_hostvars()
    hostvars["h3"] = host([ep("hostc")], facts("198.18.1.3", fact_ep("hostc", "10.213.0.9", "02:42:0a:d5:00:09")))
    fleet = fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2"])
    assert fleet["h3"]["reachable"] is False
    assert fleet["h3"]["current"] == {
        "hostc": {
            "network": "overlay_network",
            "ip": "10.213.0.9",
            "mac": "02:42:0a:d5:00:09",
            "netns": "hostc",
            "attached": False,
        }
    }
    tables = compute_peer_tables([NET], fleet)
    assert tables["h3"]["skip"] is True
    h1 = tables["h1"]["networks"][0]
    assert {"ip": "10.213.0.9", "mac": "02:42:0a:d5:00:09"} in h1["neigh"]
    assert {"mac": "02:42:0a:d5:00:09", "dst": "198.18.1.3"} in h1["fdb"]
    assert tables["h1"]["preserve_vteps"] == []


def test_host_outside_the_play_without_facts_is_preserved():
    hostvars = seed_hostvars()
    hostvars["h3"] = host([ep("hostc")], overlay_vtep="198.18.1.3")
    fleet = fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2"])
    tables = compute_peer_tables([NET], fleet)
    assert tables["h1"]["preserve_vteps"] == ["198.18.1.3"]
    assert tables["h2"]["preserve_vteps"] == ["198.18.1.3"]
    assert all(entry["dst"] != "198.18.1.3" for entry in tables["h1"]["networks"][0]["fdb"])


def test_unreachable_host_without_vtep_or_facts_fails_with_a_clear_message():
    hostvars = seed_hostvars()
    hostvars["h3"] = host([ep("hostc")])
    fleet = fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2"])
    with pytest.raises(PeerTableError) as info:
        compute_peer_tables([NET], fleet)
    message = str(info.value)
    assert message.startswith(
        "host h3 is not converged in this run (unreachable, failed or outside the play) and its VTEP"
    )
    assert "'hostc'" in message and "set overlay_vtep" in message


def desired_facts(state=None, networks=None, vtep="198.18.1.9"):
    """Facts of a host that overlay_facts read in this run, with ``desired`` as the role passes it."""
    wanted = {}
    if state is not None:
        wanted["state"] = state
    if networks is not None:
        wanted["networks"] = networks
    return {**facts(vtep), "desired": wanted}


def test_desired_state_in_the_facts_wins_for_hosts_of_the_run():
    hostvars = {
        "h1": host(overlay_facts=desired_facts("absent"), overlay_state="present"),
        "h2": host(overlay_state="absent"),
        "h3": host(overlay_facts=desired_facts(""), overlay_state=None),
        "h4": host(overlay_facts=desired_facts("absent"), overlay_state="present"),
    }
    fleet = fleet_records(hostvars, ["h1", "h2", "h3", "h4"], ["h1", "h2", "h3"])
    # h4 is outside the run: its cached facts tell what an earlier run was given, its variables decide
    assert [fleet[h]["state"] for h in ("h1", "h2", "h3", "h4")] == ["absent", "absent", "present", "present"]


def test_a_vtep_that_is_not_the_hosts_fails_naming_host_and_address():
    bad = {**facts("198.18.1.99"), "vtep_is_local": False}
    hostvars = {"h1": host(overlay_facts=facts("198.18.1.1")), "h2": host(overlay_facts=bad)}
    with pytest.raises(FleetRecordsError) as err:
        fleet_records(hostvars, ["h1", "h2"], ["h1", "h2"])
    assert str(err.value) == (
        "h2: overlay_vtep 198.18.1.99 is not an address of this host. Set overlay_vtep to one of its underlay addresses"
    )
    # not for a host that is torn down, nor for one outside the run (its facts may be old)
    assert fleet_records(hostvars, ["h1", "h2"], ["h1"])["h2"]["reachable"] is False
    hostvars["h2"]["overlay_state"] = "absent"
    assert fleet_records(hostvars, ["h1", "h2"], ["h1", "h2"])["h2"]["state"] == "absent"


def test_fleet_order_duplicates_and_hosts_outside_the_fleet():
    hostvars = {name: host() for name in ("b", "a", "c", "ctl")}
    fleet = fleet_records(hostvars, ["b", "a", "b", "c"], ("a", "ctl"))
    assert list(fleet) == ["b", "a", "c"]
    assert {name: record["reachable"] for name, record in fleet.items()} == {"b": False, "a": True, "c": False}


def test_current_keeps_network_ip_mac_and_skips_garbage():
    endpoints = {**fact_ep("a", "10.213.0.2", "02:42:0a:d5:00:02"), "junk": "not a dict", "b": {"name": "b"}}
    record = fleet_records({"h1": host(overlay_facts=facts("198.18.1.1", endpoints))}, ["h1"], ["h1"])["h1"]
    assert record["current"] == {
        "a": {
            "network": "overlay_network",
            "ip": "10.213.0.2",
            "mac": "02:42:0a:d5:00:02",
            "netns": "a",
            "attached": False,
        },
        "b": {"network": None, "ip": None, "mac": None, "netns": None, "attached": False},
    }


def test_endpoints_are_passed_through_for_the_peer_table_to_validate():
    hostvars = {"h1": host([ep("a", "nope")], facts("198.18.1.1"))}
    fleet = fleet_records(hostvars, ["h1"], ["h1"])
    assert fleet["h1"]["endpoints"] == [{"name": "a", "network": "nope"}]
    with pytest.raises(PeerTableError, match=r"host h1: endpoint 'a' network 'nope' is not defined"):
        compute_peer_tables([NET], fleet)


def test_duplicate_address_names_both_hosts_and_the_value():
    hostvars = {
        "h1": host([ep("hosta", address="10.213.0.9")], facts("198.18.1.1")),
        "h2": host([ep("hostb", address="10.213.0.9")], facts("198.18.1.2")),
    }
    with pytest.raises(PeerTableError) as info:
        compute_peer_tables([NET], fleet_records(hostvars, ["h1", "h2"], ["h1", "h2"]))
    assert (
        str(info.value) == "endpoints h1/hosta and h2/hostb both have address 10.213.0.9 on network 'overlay_network'"
    )


class CountingHostvars(Mapping):
    """Like Ansible's HostVars: a read-only mapping whose lookups are expensive, so each must happen once."""

    def __init__(self, data):
        self.data = data
        self.lookups = 0

    def __getitem__(self, key):
        self.lookups += 1
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_each_host_is_looked_up_once():
    hostvars = CountingHostvars(
        {f"h{k}": host([ep(f"e{k}")], facts(f"198.18.{k // 250}.{k % 250 + 1}")) for k in range(500)}
    )
    fleet = fleet_records(hostvars, list(hostvars.data), list(hostvars.data))
    assert len(fleet) == 500
    assert hostvars.lookups == 500
    assert len(compute_peer_tables([{**NET, "subnet": "10.213.0.0/22"}], fleet)) == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([], ["h1"], ["h1"]), "the input must be hostvars (hostname -> variables), got list"),
        (({"h1": {}}, "h1", ["h1"]), "fleet_hosts must be a list of hostnames"),
        (({"h1": {}}, ["h1"], None), "active_hosts must be a list of hostnames"),
        (({"h1": {}}, ["h1", 7], ["h1"]), "fleet_hosts[1] 7 must be a hostname, got int"),
        (({"h1": {}}, ["h1", "h9"], ["h1"]), "fleet_hosts: host h9 has no variables in hostvars"),
        (({"h1": {"ansible_facts": []}}, ["h1"], ["h1"]), "host h1: ansible_facts must be a dict, got list"),
        (
            ({"h1": {"ansible_facts": {"netfleet_overlay": "x"}}}, ["h1"], ["h1"]),
            "host h1: ansible_facts.netfleet_overlay must be the dict that netfleet.overlay.overlay_facts returns",
        ),
        (
            ({"h1": {"ansible_facts": {"netfleet_overlay": {"endpoints": [1]}}}}, ["h1"], ["h1"]),
            "host h1: ansible_facts.netfleet_overlay.endpoints must be a dict, got list",
        ),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(FleetRecordsError) as info:
        fleet_records(*args)
    assert str(info.value).startswith(message)


def test_play_hosts_must_see_the_same_overlay_networks():
    other = [{**NET, "subnet": "10.99.0.0/24"}]
    hostvars = {
        "h1": host(overlay_facts=desired_facts("present", [NET])),
        "h2": host(overlay_facts=desired_facts("present", other)),
        "h3": host(overlay_facts=desired_facts(networks=[NET])),
    }
    with pytest.raises(FleetRecordsError) as err:
        fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2", "h3"])
    message = str(err.value)
    assert message.startswith("host h2: overlay_networks differs from host h1's: overlay_networks[0] is ")
    assert "10.99.0.0/24" in message and "10.213.0.0/24" in message
    # a host outside the play, or one that is torn down, is not compared
    assert set(fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h3"])) == {"h1", "h2", "h3"}
    hostvars["h2"]["ansible_facts"]["netfleet_overlay"]["desired"]["state"] = "absent"
    assert fleet_records(hostvars, ["h1", "h2", "h3"], ["h1", "h2", "h3"])["h2"]["state"] == "absent"


def test_a_missing_network_is_named_by_count():
    hostvars = {
        "h1": host(overlay_facts=desired_facts(networks=[NET])),
        "h2": host(overlay_facts=desired_facts(networks=[NET, {**NET, "name": "b"}])),
    }
    with pytest.raises(FleetRecordsError, match=r"host h2: overlay_networks differs .*: 2 networks on h2 but 1 on h1"):
        fleet_records(hostvars, ["h1", "h2"], ["h1", "h2"])


def test_a_record_has_exactly_the_keys_that_the_peer_table_reads():
    assert set(fleet_record("h1", {"ansible_facts": {"netfleet_overlay": facts("198.18.1.1")}}, True)) == HOST_KEYS
    assert set(fleet_record("h1", {}, False)) == HOST_KEYS


def test_current_says_which_endpoints_joined_a_netns_they_did_not_create():
    joined = fact_ep("app1", "10.213.0.2", "02:42:0a:d5:00:02")
    joined["app1"].update(netns="podman-1", attached=True)
    made = fact_ep("b", "10.213.0.3", "02:42:0a:d5:00:03")
    made["b"]["attached"] = "yes"  # only true is true: anything else is a netns the collection made
    record = fleet_records({"h1": host(overlay_facts=facts("198.18.1.1", {**joined, **made}))}, ["h1"], ["h1"])["h1"]
    assert record["current"]["app1"]["netns"] == "podman-1"
    assert record["current"]["app1"]["attached"] is True
    assert record["current"]["b"]["attached"] is False
