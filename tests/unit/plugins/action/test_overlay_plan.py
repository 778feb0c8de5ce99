# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the compact fleet plan (overlay_plan) and its per-host expansion (host_tables)."""

from __future__ import annotations

import json

import pytest
from support.fleet_data import BLUE, NET, RED, ep

from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    PeerTableError,
    compute_peer_tables,
    compute_plan,
    host_tables,
    pack_plan,
    plan_summary,
)

NETWORKS = [NET, RED, BLUE]


def fleet():
    """Three networks, a host on two of them, an absent host, an unreachable host with and one without facts."""
    return {
        "h1": {"vtep": "198.18.1.1", "endpoints": [ep("hosta"), ep("r1", "red"), ep("b1", "blue")]},
        "h2": {"vtep": "198.18.1.2", "endpoints": [ep("hostb"), ep("r2", "red", address="10.1.0.9")]},
        "h3": {"vtep": "198.18.1.3", "endpoints": [ep("hostc"), ep("b3", "blue")], "reachable": False},
        "h4": {
            "vtep": "198.18.1.4",
            "endpoints": [ep("hostd"), ep("r4", "red")],
            "reachable": False,
            "current": {"hostd": {"network": "overlay_network", "ip": "10.213.0.7", "mac": "02:42:0a:d5:00:07"}},
        },
        "h5": {"vtep": "198.18.1.5", "endpoints": [ep("hoste")], "state": "absent"},
        "h6": {"vtep": "198.18.1.6", "endpoints": []},
    }


def test_expanding_the_plan_for_every_host_is_the_peer_table():
    plan = compute_plan(NETWORKS, fleet())
    expected = compute_peer_tables(NETWORKS, fleet())
    assert {host: host_tables(plan, host) for host in plan["hosts"]} == expected
    assert list(plan["hosts"]) == list(expected)  # fleet order


def test_the_plan_survives_json_as_ansible_passes_it_to_every_host():
    plan = compute_plan(NETWORKS, fleet())
    again = json.loads(json.dumps(plan))
    assert {host: host_tables(again, host) for host in again["hosts"]} == compute_peer_tables(NETWORKS, fleet())


def test_each_network_lists_its_endpoints_once_and_hosts_hold_no_tables():
    plan = compute_plan(NETWORKS, fleet())
    red = plan["networks"]["red"]
    # by IP; h4 is unreachable and its facts do not show r4, so nobody gets an entry for it
    assert red["neigh"] == [["10.1.0.2", "02:42:0a:01:00:02", "h1"], ["10.1.0.9", "02:42:0a:01:00:09", "h2"]]
    assert red["fdb"] == [["02:42:0a:01:00:02", "198.18.1.1", "h1"], ["02:42:0a:01:00:09", "198.18.1.2", "h2"]]
    assert red["vteps"] == ["198.18.1.1", "198.18.1.2"]
    for network in plan["networks"].values():
        assert len(network["neigh"]) == len(network["fdb"]) == len({tuple(entry) for entry in network["neigh"]})
    for part in plan["hosts"].values():
        assert set(part) == {"state", "skip", "vtep", "networks"}
        for mine in part["networks"]:
            assert set(mine) == {"name", "mtu", "endpoints"}
    # the unreachable host without facts is preserved, not listed
    assert plan["networks"]["blue"]["preserve"] == ["198.18.1.3"]
    assert all(entry[2] != "h3" for network in plan["networks"].values() for entry in network["neigh"])


def test_the_plan_grows_linearly_with_the_fleet():
    def sized(hosts):
        nets = [{"name": f"n{j}", "vni": 1000 + j, "subnet": f"10.{j}.0.0/16"} for j in range(hosts // 20)]
        records = {
            f"h{i}": {
                "vtep": f"198.18.{i // 250}.{1 + i % 250}",
                "endpoints": [ep(f"e{i}-{k}", f"n{(i * 5 + k) % len(nets)}") for k in range(5)],
            }
            for i in range(hosts)
        }
        return len(json.dumps(compute_plan(nets, records)))

    small, large = sized(200), sized(800)
    assert large < 4.5 * small  # 4x the hosts: about 4x the plan (the expanded tables would be 16x)


@pytest.mark.parametrize("flood", [False, True])
def test_plan_summary_counts_what_the_expanded_tables_hold(flood):
    networks = [{**network, "flood": flood} for network in NETWORKS]  # blue has a preserved VTEP (h3)
    plan = compute_plan(networks, fleet())
    records = compute_peer_tables(networks, fleet()).values()
    expanded = [network for record in records for network in record["networks"]]
    flooded = sum(entry["mac"] == "00:00:00:00:00:00" for network in expanded for entry in network["fdb"])
    assert (flooded > 0) is flood
    assert plan_summary(pack_plan(plan)) == plan_summary(plan)
    assert plan_summary(plan) == {
        "hosts": len(records),
        "hosts_present": sum(record["state"] == "present" for record in records),
        "hosts_absent": sum(record["state"] == "absent" for record in records),
        "hosts_skipped": sum(bool(record["skip"]) for record in records),
        "networks": len({network["name"] for network in expanded}),
        "endpoints": sum(len(network["endpoints"]) for network in expanded),
        "neigh": sum(len(network["neigh"]) for network in expanded),
        "fdb": sum(len(network["fdb"]) for network in expanded),
        "flood": flooded,
        "moves": 0,
    }


def test_host_tables_names_what_is_wrong():
    plan = compute_plan(NETWORKS, fleet())
    with pytest.raises(PeerTableError, match=r"^host h9 is not in the plan"):
        host_tables(plan, "h9")
    with pytest.raises(PeerTableError, match=r"overlay_plan returns \(version 1\), got dict"):
        host_tables({"hosts": {}}, "h1")
    with pytest.raises(PeerTableError, match=r"got list"):
        host_tables([], "h1")


def test_skipped_and_absent_hosts_get_empty_records():
    plan = compute_plan(NETWORKS, fleet())
    for name, state, skip in (("h3", "present", True), ("h5", "absent", False), ("h6", "present", False)):
        record = host_tables(plan, name)
        assert (record["state"], record["skip"], record["networks"]) == (state, skip, [])


def test_a_packed_plan_expands_to_the_same_records_and_summary():
    plan = compute_plan(NETWORKS, fleet())
    packed = json.loads(json.dumps(pack_plan(plan)))
    assert packed["packed"] is True
    assert all(isinstance(value, str) for value in [*packed["networks"].values(), *packed["hosts"].values()])
    assert {host: host_tables(packed, host) for host in packed["hosts"]} == compute_peer_tables(NETWORKS, fleet())
    assert plan_summary(packed) == plan_summary(plan)


# --- the action plugin's reading of hostvars and its diff ----------------------------------------------------


class _HostVars(dict):
    """hostvars as the action sees it: raw_get gives the untemplated variables, [] the templated ones."""

    def __init__(self, raw, templated):
        super().__init__(templated)
        self.raw = raw

    def raw_get(self, host):
        return self.raw.get(host)


def test_the_action_reads_every_overlay_variable_and_templates_only_what_could_hold_a_template():
    from ansible_collections.netfleet.overlay.plugins.action.overlay_plan import _FleetVars

    raw = {
        "h1": {
            "overlay_endpoints": "{{ my_endpoints }}",
            "overlay_vtep": "198.18.1.1",
            "overlay_endpoint": [],
            "ansible_host": "x",
            "ansible_facts": {"netfleet_overlay": {"vtep": "198.18.1.1"}},
        }
    }
    templated = {"h1": {"overlay_endpoints": [ep("a")]}}
    found = _FleetVars(_HostVars(raw, templated))["h1"]
    assert found == {
        "overlay_endpoints": [ep("a")],
        "overlay_vtep": "198.18.1.1",
        "overlay_endpoint": [],  # only its name is checked (fleet_records), so it is not templated
        "ansible_facts": {"netfleet_overlay": {"vtep": "198.18.1.1"}},
    }
    with pytest.raises(KeyError):
        _FleetVars(_HostVars(raw, templated))["h9"]


def test_the_diff_lists_what_the_run_removes_by_host_and_name():
    from ansible_collections.netfleet.overlay.plugins.action.overlay_plan import _removed_text

    removed = {
        "h2": {"state": "present", "endpoints": ["web2"], "networks": ["backend"]},
        "h3": {"state": "absent", "endpoints": ["hostc"], "networks": []},
    }
    assert _removed_text(removed).splitlines() == [
        "overlay_plan: this run removes",
        "-  h2: endpoint web2",
        "-  h2: network backend",
        "-  h3: endpoint hostc (overlay_state: absent)",
    ]
