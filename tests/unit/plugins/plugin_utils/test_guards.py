# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for overlay_plan's guards (issue 11), on plain data: unknown names, the purge guard, vanished hosts,
netns takeover, the network naming rule and the MTU that fits the underlay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.fleet_data import NET, ep

from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    KNOWN_VARIABLES,
    FleetRecordsError,
    check_variable_names,
    fleet_records,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    PeerTableError,
    compute_plan,
    host_tables,
    kept_warnings,
)

REPO = Path(__file__).resolve().parents[4]
BACK = {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24"}
NETS = [NET, BACK]


def current(*names, network="overlay_network"):
    return {name: {"network": network, "ip": None, "mac": None, "netns": name} for name in names}


def host(vtep, *endpoints, **extra):
    return {"vtep": vtep, "endpoints": list(endpoints), **extra}


def converged():
    """The demo fleet as its facts show it after a converge: h1 (hosta, web1) and h2 (hostb, web2)."""
    hosts = {"h1": ("198.18.1.1", "hosta", "web1", "h2"), "h2": ("198.18.1.2", "hostb", "web2", "h1")}
    records = {}
    for name, (vtep, first, second, peer) in hosts.items():
        peer_vtep = hosts[peer][0]
        records[name] = host(
            vtep,
            ep(first),
            ep(second, "backend"),
            current={**current(first), **current(second, network="backend")},
            current_networks={"overlay_network": "ovl-256", "backend": "ovl-300"},
            peers={"overlay_network": {peer_vtep: peer}, "backend": {peer_vtep: peer}},
            netns=[first, "ovl-256", "ovl-300", second],
        )
    return records


# --- unknown variables -------------------------------------------------------------------------------------


def test_an_unknown_overlay_variable_names_the_host_the_variable_and_the_close_name():
    with pytest.raises(FleetRecordsError, match=r"^host h2: unknown variable overlay_endpoint: .*did you mean"):
        fleet_records({"h1": {}, "h2": {"overlay_endpoint": []}}, ["h1", "h2"], ["h1", "h2"])
    for typo, close in (("overlay_netwroks", "overlay_networks"), ("overlay_firewal", "overlay_firewall")):
        with pytest.raises(FleetRecordsError, match=f"did you mean {close}\\? Rename or remove it"):
            check_variable_names("h1", [typo])


def test_an_unknown_name_far_from_every_known_one_gets_the_list():
    with pytest.raises(FleetRecordsError) as exc:
        check_variable_names("h1", ["overlay_zzzzzzzzzzzz"])
    assert "did you mean" not in str(exc.value)
    assert "overlay_endpoints, overlay_firewall" in str(exc.value)


def test_known_and_foreign_variables_pass():
    check_variable_names("h1", [*KNOWN_VARIABLES, "ansible_host", "overlayish", "_overlay_private", "Overlay_x", 3])


def test_a_host_outside_the_run_is_checked_too():
    with pytest.raises(FleetRecordsError, match=r"^host h9: unknown variable overlay_stat"):
        fleet_records({"h1": {}, "h9": {"overlay_stat": "absent"}}, ["h1", "h9"], ["h1"])


def test_the_known_variables_are_the_role_spec_and_the_playbooks_variables():
    spec = yaml.safe_load((REPO / "roles/overlay/meta/argument_specs.yml").read_text(encoding="utf-8"))
    options = set(spec["argument_specs"]["main"]["options"])
    assert options <= KNOWN_VARIABLES
    used = set()
    for folder in ("playbooks", "roles", "inventories", "molecule"):
        for path in (REPO / folder).rglob("*.yml"):
            used.update(
                re.findall(r"(?<![.\w])(overlay_[a-z0-9_]+)\b(?=\s*(?:[:|}=]|\)|\s+default))", path.read_text("utf-8"))
            )
    used.discard("overlay_network")  # the demo's network name, as `network: overlay_network`
    assert used <= KNOWN_VARIABLES, used - KNOWN_VARIABLES
    assert KNOWN_VARIABLES - options == {"overlay_hosts", "overlay_verify_egress_target"}  # the playbooks' own


# --- unknown keys, names, values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("networks", "endpoints", "words"),
    [
        ([{**NET, "sbunet": "x"}], [], "network 'overlay_network': unknown key 'sbunet' (did you mean 'subnet'?)"),
        ([NET], [{"name": "a", "netwrok": "overlay_network"}], "host h1: endpoint 'a': unknown key 'netwrok' (did"),
        ([NET], [ep("a", adress="10.213.0.5")], "unknown key 'adress' (did you mean 'address'?); the keys are address"),
        (
            [{**NET, "colour": "red"}],
            [],
            "unknown key 'colour'; the keys are dns, egress, encrypted, flood, mtu, name, port, proxy, subnet, vni",
        ),
    ],
)
def test_unknown_keys_get_one_short_message_with_the_closest_key(networks, endpoints, words):
    with pytest.raises(PeerTableError) as exc:
        compute_plan(networks, {"h1": host("198.18.1.1", *endpoints)})
    assert words in str(exc.value)
    assert len(str(exc.value)) < 200


@pytest.mark.parametrize(
    ("name", "example"),
    [("my front end", "'my_front_end'"), ("env=prod", "'env_prod'"), (".hidden", "'hidden'"), ("a'b", "'a_b'")],
)
def test_network_names_follow_the_endpoint_rule(name, example):
    with pytest.raises(PeerTableError, match=r"^overlay_networks\[1\] name .* is not a valid network name") as exc:
        compute_plan([NET, {**BACK, "name": name}], {})
    assert f"for example {example}" in str(exc.value)
    with pytest.raises(PeerTableError, match=r"endpoints\[0\] name .* is not a valid endpoint name"):
        compute_plan([NET], {"h1": host("198.18.1.1", ep(name))})


def test_the_naming_rule_takes_64_characters_and_no_more():
    compute_plan([NET, {**BACK, "name": "n" * 64}], {})
    for bad in ("n" * 65, "", "-x", 7):
        with pytest.raises(PeerTableError, match="is not a valid network name"):
            compute_plan([NET, {**BACK, "name": bad}], {})


def test_a_network_mtu_above_the_underlay_names_the_host_the_network_and_the_largest_mtu():
    fleet = {"h1": host("198.18.1.1", ep("a", "backend"), underlay_mtu=1500), "h2": host("198.18.1.2", ep("b"))}
    with pytest.raises(PeerTableError) as exc:
        compute_plan([NET, {**BACK, "mtu": 9000}], fleet)
    assert str(exc.value).startswith("host h1: network 'backend' mtu 9000 does not fit the host's underlay")
    assert "underlay_mtu 1500 minus 50 of VXLAN over IPv4 leaves at most 1450" in str(exc.value)
    assert "Set the network's mtu to 1450 or less, or leave it out" in str(exc.value)
    assert compute_plan([NET, {**BACK, "mtu": 1450}], fleet)["hosts"]["h1"]["networks"][0]["mtu"] == 1450
    # over IPv6 the overhead is 70; a host without facts (no underlay MTU) or not on the network is not checked
    v6 = {"h1": host("fd00::1", ep("a", "backend"), underlay_mtu=1500)}
    with pytest.raises(PeerTableError, match="minus 70 of VXLAN over IPv6 leaves at most 1430"):
        compute_plan([NET, {**BACK, "mtu": 1431}], v6)
    assert compute_plan([NET, {**BACK, "mtu": 9000}], {"h1": host("198.18.1.1", ep("a", "backend"))})
    assert compute_plan([NET, {**BACK, "mtu": 9000}], {"h1": host("198.18.1.1", ep("a"), underlay_mtu=1500)})


# --- the purge guard ---------------------------------------------------------------------------------------


def test_a_converged_fleet_removes_nothing():
    plan = compute_plan(NETS, converged())
    assert plan["removed"] == {} and plan["kept"] == []


def test_emptying_a_host_is_refused_listing_what_would_go():
    fleet = converged()
    fleet["h2"]["endpoints"] = []
    with pytest.raises(PeerTableError) as exc:
        compute_plan(NETS, fleet)
    message = str(exc.value)
    assert message.startswith("this run would remove the whole overlay of host h2 (endpoints hostb, web2, networks")
    assert "backend, overlay_network" in message
    assert "host_vars/h2.yml" in message and "overlay_state: absent" in message
    assert "-e overlay_allow_purge=true" in message


def test_overlay_state_absent_and_allow_purge_let_the_purge_through():
    fleet = converged()
    fleet["h2"]["state"] = "absent"
    plan = compute_plan(NETS, fleet)
    assert plan["removed"] == {
        "h2": {"state": "absent", "endpoints": ["hostb", "web2"], "networks": ["backend", "overlay_network"]}
    }
    fleet = converged()
    fleet["h2"]["endpoints"] = []
    plan = compute_plan(NETS, fleet, allow_purge=True)
    assert plan["removed"]["h2"]["endpoints"] == ["hostb", "web2"]
    assert plan["hosts"]["h2"]["networks"] == []


def test_more_endpoints_than_the_limit_are_refused_naming_each_host():
    fleet = converged()
    fleet["h1"]["endpoints"] = [ep("hosta")]
    fleet["h2"]["endpoints"] = [ep("hostb")]
    with pytest.raises(PeerTableError) as exc:
        compute_plan(NETS, fleet, purge_limit=1)
    assert str(exc.value).startswith(
        "this run would remove 2 endpoints, more than overlay_purge_limit (1): h1: endpoints web1, networks backend;"
        " h2: endpoints web2, networks backend. If that is what you want"
    )
    assert compute_plan(NETS, fleet, purge_limit=2)["removed"]["h1"]["endpoints"] == ["web1"]
    with pytest.raises(PeerTableError, match=r"would remove 1 endpoint, more than overlay_purge_limit \(0\): h1:"):
        compute_plan(NETS, {**fleet, "h2": converged()["h2"]}, purge_limit=0)


def test_hosts_outside_the_run_or_without_facts_never_count():
    fleet = converged()
    fleet["h2"].update(endpoints=[], reachable=False)
    assert compute_plan(NETS, fleet)["removed"] == {}
    fleet = converged()
    fleet["h2"].update(endpoints=[], current=None, current_networks=None)
    assert compute_plan(NETS, fleet)["removed"] == {}


def test_the_guard_options_are_checked():
    for options, words in (
        ({"purge_limit": -1}, "overlay_purge_limit -1 is outside 0..2147483647"),
        ({"allow_purge": "yes"}, "overlay_allow_purge 'yes' must be true or false"),
        ({"forget_hosts": "h3"}, "overlay_forget_hosts 'h3' must be a list"),
    ):
        with pytest.raises(PeerTableError, match=words):
            compute_plan(NETS, converged(), **options)


# --- vanished hosts ----------------------------------------------------------------------------------------


def sliced():
    """h1 and h2 of a fleet whose h3 (198.18.1.3) is in another slice; h1 recorded its name, h2 did not."""
    fleet = converged()
    fleet["h1"]["peers"]["overlay_network"]["198.18.1.3"] = "h3"
    fleet["h2"]["peers"]["overlay_network"]["198.18.1.3"] = None
    return fleet


def test_a_vanished_host_is_kept_preserved_and_named():
    plan = compute_plan(NETS, sliced())
    assert plan["kept"] == [
        {"host": "h3", "vtep": "198.18.1.3", "networks": ["overlay_network"], "held_by": ["h1", "h2"]}
    ]
    assert plan["networks"]["overlay_network"]["preserve"] == ["198.18.1.3"]
    assert plan["networks"]["overlay_network"]["preserve_hosts"] == ["h3"]
    assert plan["networks"]["backend"]["preserve"] == []
    record = host_tables(plan, "h1")
    assert record["preserve_vteps"] == ["198.18.1.3"] and "198.18.1.3" in record["allowlist"]
    assert record["networks"][0]["peer_hosts"] == {"198.18.1.2": "h2", "198.18.1.3": "h3"}
    (warning,) = kept_warnings(plan["kept"], "all")
    assert warning.startswith("host h3 (VTEP 198.18.1.3) is not in the fleet group 'all' (overlay_fleet_group), but")
    assert "h1, h2 hold its entries on network overlay_network: they are kept" in warning
    assert """-e '{"overlay_forget_hosts": ["h3"]}'""" in warning


def test_a_vanished_host_without_a_recorded_name_is_named_by_its_vtep():
    fleet = sliced()
    del fleet["h1"]["peers"]["overlay_network"]["198.18.1.3"]
    plan = compute_plan(NETS, fleet)
    assert plan["kept"][0]["host"] is None
    (warning,) = kept_warnings(plan["kept"])
    assert warning.startswith("the host with VTEP 198.18.1.3 (its name is not recorded) is not in the fleet group")
    assert """overlay_forget_hosts": ["198.18.1.3"]""" in warning
    assert host_tables(plan, "h2")["networks"][0]["peer_hosts"]["198.18.1.3"] is None


@pytest.mark.parametrize("options", [{"forget_hosts": ["h3", "198.18.1.3"]}, {"allow_purge": True}])
def test_forget_hosts_and_allow_purge_drop_a_vanished_host(options):
    plan = compute_plan(NETS, sliced(), **options)
    assert plan["kept"] == []
    assert plan["networks"]["overlay_network"]["preserve"] == []


def test_a_name_that_one_host_recorded_names_the_vtep_for_all():
    # h2 holds h3's entries without a name (converged by 0.1.0); h1 recorded it: forgetting h3 drops both
    assert compute_plan(NETS, sliced(), forget_hosts=["h3"])["kept"] == []


def test_hosts_of_the_fleet_and_networks_that_are_left_are_not_kept():
    fleet = sliced()
    # h3 is in the fleet (outside the run): its entries are the fleet's business, not a vanished host's
    fleet["h3"] = host("198.18.1.3", ep("hostc"), reachable=False)
    assert compute_plan(NETS, fleet)["kept"] == []
    # a fleet host whose VTEP changed: its old entries go
    fleet["h3"]["vtep"] = "198.18.1.33"
    del fleet["h2"]["peers"]["overlay_network"]["198.18.1.3"]
    assert compute_plan(NETS, fleet)["kept"] == []
    # a host that leaves the network drops its entries with it; garbage VTEPs are ignored
    fleet = sliced()
    fleet["h1"]["peers"]["backend"]["not an address"] = "x"
    fleet["h1"]["endpoints"] = [ep("hosta"), ep("web1", "backend")]
    fleet["h2"]["endpoints"] = [ep("web2", "backend")]
    plan = compute_plan(NETS, fleet)
    assert [k["held_by"] for k in plan["kept"]] == [["h1"]]


# --- no takeover -------------------------------------------------------------------------------------------


def test_a_netns_the_collection_did_not_create_is_never_taken_over():
    fleet = converged()
    fleet["h1"]["endpoints"].append(ep("myapp", "backend"))
    fleet["h1"]["netns"] = [*fleet["h1"]["netns"], "myapp"]
    with pytest.raises(PeerTableError) as exc:
        compute_plan(NETS, fleet)
    assert str(exc.value).startswith(
        "host h1: endpoint 'myapp' would take over netns 'myapp', which exists on the host and was not created by"
        " netfleet.overlay; it is left as it is. Rename the endpoint, or, if that namespace is unused, remove it"
        " (ip netns del myapp)"
    )
    # the network's netns too
    fleet = converged()
    fleet["h1"]["endpoints"].append(ep("z", "red"))
    fleet["h1"]["netns"] = [*fleet["h1"]["netns"], "ovl-400"]
    red = {"name": "red", "vni": 400, "subnet": "10.215.0.0/24"}
    with pytest.raises(PeerTableError, match=r"host h1: network 'red' would take over netns 'ovl-400'.*another vni"):
        compute_plan([*NETS, red], fleet)


def test_what_the_collection_owns_and_older_facts_pass():
    assert compute_plan(NETS, converged())  # every planned netns exists and is owned
    fleet = converged()
    fleet["h1"]["endpoints"].append(ep("myapp", "backend"))
    fleet["h1"]["netns"] = None  # facts of an older release do not list the netns
    assert compute_plan(NETS, fleet)
    fleet = converged()
    fleet["h1"]["endpoints"].append(ep("newone", "backend"))  # a new name, not on the host yet
    assert compute_plan(NETS, fleet)


def test_fleet_records_carry_what_the_facts_hold():
    facts = {
        "vtep": "198.18.1.1",
        "vtep_is_local": True,
        "underlay_mtu": 1500,
        "endpoints": {"a": {"network": "overlay_network", "ip": "10.213.0.2", "mac": None, "netns": "a"}},
        "networks": {"overlay_network": {"netns": "ovl-256"}},
        "peers": {"overlay_network": {"198.18.1.2": "h2"}},
        "netns": ["a", "ovl-256"],
    }
    record = fleet_records({"h1": {"ansible_facts": {"netfleet_overlay": facts}}}, ["h1"], ["h1"])["h1"]
    assert record["current_networks"] == {"overlay_network": "ovl-256"}
    assert record["peers"] == {"overlay_network": {"198.18.1.2": "h2"}}
    assert record["netns"] == ["a", "ovl-256"]
    assert record["current"]["a"]["netns"] == "a"


def test_the_peer_tables_filter_takes_the_guard_options():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.netfleet.overlay.plugins.filter.peer_tables import FilterModule

    peer_tables = FilterModule().filters()["peer_tables"]
    fleet = converged()
    fleet["h2"]["endpoints"] = []
    with pytest.raises(AnsibleFilterError, match="peer_tables: this run would remove the whole overlay of host h2"):
        peer_tables(NETS, fleet)
    assert peer_tables(NETS, fleet, allow_purge=True)["h2"]["networks"] == []
    assert peer_tables(NETS, sliced(), forget_hosts=["h3"])["h1"]["preserve_vteps"] == []
    with pytest.raises(AnsibleFilterError, match="unknown argument 'allow_purges'"):
        peer_tables(NETS, fleet, allow_purges=True)


@pytest.mark.parametrize(
    ("network", "fleet_host", "words"),
    [
        ({**NET, "subnet": "fd00:1::%eth0/64"}, host("198.18.1.1"), ["overlay_network", "subnet", "fd00:1::%eth0/64"]),
        (NET, host("fe80::1%eth0"), ["h1", "vtep", "fe80::1%eth0"]),
        (
            {**NET, "subnet": "fd00:1::/64"},
            host("fd00::1", ep("a", address="fd00:1::5%x")),
            ["h1", "'a'", "fd00:1::5%x"],
        ),
    ],
)
def test_ipv6_scope_ids_are_refused_on_the_controller(network, fleet_host, words):
    """A zone ('%...') would reach the hosts' nft scripts and command lines; the modules refuse it too."""
    with pytest.raises(PeerTableError, match="scope ID") as caught:
        compute_plan([network], {"h1": fleet_host})
    assert all(word in str(caught.value) for word in words), caught.value
