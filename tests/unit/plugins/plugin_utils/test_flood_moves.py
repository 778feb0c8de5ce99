# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 15 on the controller: a network's ``flood`` and ``proxy``, every host's flood list, the endpoints that
move between hosts in a run, and MACs that two endpoints of a network would share; on plain data."""

from __future__ import annotations

import json

import pytest
from support.fleet_data import BLUE, NET, RED, ep

from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC, derive_mac
from ansible_collections.netfleet.overlay.plugins.plugin_utils import peer_tables

FLOOD = {**NET, "flood": True}


def host(vtep, *endpoints, **extra):
    return {"vtep": vtep, "endpoints": list(endpoints), **extra}


def seen(ip, network="overlay_network", mac=None):
    """An endpoint as its host's facts show it."""
    return {"network": network, "ip": ip} | ({"mac": mac} if mac else {})


def error(networks, fleet) -> str:
    with pytest.raises(peer_tables.PeerTableError) as exc:
        peer_tables.compute_plan(networks, fleet)
    return str(exc.value)


def net_of(tables: dict, hostname: str, name: str = "overlay_network") -> dict:
    (found,) = [network for network in tables[hostname]["networks"] if network["name"] == name]
    return found


def flood_list(tables: dict, hostname: str, name: str = "overlay_network") -> list[str]:
    """The destinations of a host's flood entries on a network, in the order the plan gives them."""
    return [entry["dst"] for entry in net_of(tables, hostname, name)["fdb"] if entry["mac"] == ZERO_MAC]


def unicast(tables: dict, hostname: str, name: str = "overlay_network") -> list[dict]:
    return [entry for entry in net_of(tables, hostname, name)["fdb"] if entry["mac"] != ZERO_MAC]


def three(network=FLOOD):
    """h1, h2, h3 on one network, two endpoints on h2."""
    return [network], {
        "h1": host("198.18.1.1", ep("a")),
        "h2": host("198.18.1.2", ep("b"), ep("b2")),
        "h3": host("198.18.1.3", ep("c")),
    }


# --- the keys ----------------------------------------------------------------------------------------------------


def test_by_default_a_network_does_not_flood_and_keeps_the_proxy():
    tables = peer_tables.compute_peer_tables(*three(NET))
    plan = peer_tables.compute_plan(*three(NET))["networks"]["overlay_network"]
    assert (plan["flood"], plan["proxy"]) == (False, True)
    for hostname in tables:
        record = net_of(tables, hostname)
        assert (record["flood"], record["proxy"]) == (False, True)
        assert flood_list(tables, hostname) == []


def test_flood_changes_nothing_but_the_flood_entries_and_the_flags():
    off, on = peer_tables.compute_peer_tables(*three(NET)), peer_tables.compute_peer_tables(*three(FLOOD))
    for hostname in off:
        assert unicast(on, hostname) == net_of(off, hostname)["fdb"]
        assert {**net_of(on, hostname), "fdb": None, "flood": None} == {
            **net_of(off, hostname),
            "fdb": None,
            "flood": None,
        }


@pytest.mark.parametrize(
    ("flood", "proxy", "expected"),
    [(True, False, (True, False)), ("yes", "no", (True, False)), ("on", None, (True, True))],
)
def test_proxy_false_with_flood_is_taken_and_text_booleans_are_read(flood, proxy, expected):
    network = {**NET, "flood": flood, "proxy": proxy}
    plan = peer_tables.compute_plan(*three(network))["networks"]["overlay_network"]
    assert (plan["flood"], plan["proxy"]) == expected
    assert (net_of(peer_tables.compute_peer_tables(*three(network)), "h1")["proxy"]) is expected[1]


@pytest.mark.parametrize("flood", [None, False, "no"])
def test_proxy_false_without_flood_is_refused_since_arp_would_never_resolve(flood):
    network = {**NET, "proxy": False} | ({} if flood is None else {"flood": flood})
    message = error(*three(network))
    assert message.startswith(
        f"network 'overlay_network' proxy False with flood {flood!r}: proxy false needs flood true: without the proxy"
    )
    assert "no address would ever resolve" in message
    assert "set flood: true on the network, or leave proxy out" in message


@pytest.mark.parametrize(("key", "value"), [("flood", "maybe"), ("proxy", 2), ("flood", [])])
def test_a_flag_that_is_not_a_boolean_is_named_with_its_value(key, value):
    message = error(*three({**NET, "flood": True, key: value}))
    assert message.startswith(f"network 'overlay_network' {key} {value!r} is not a boolean")


# --- the flood list ----------------------------------------------------------------------------------------------


def test_every_host_floods_to_each_peer_vtep_once_and_never_to_its_own():
    tables = peer_tables.compute_peer_tables(*three())
    assert flood_list(tables, "h1") == ["198.18.1.2", "198.18.1.3"]
    assert flood_list(tables, "h2") == ["198.18.1.1", "198.18.1.3"]  # two endpoints there, one entry
    assert flood_list(tables, "h3") == ["198.18.1.1", "198.18.1.2"]
    for hostname, record in tables.items():
        assert record["vtep"] not in flood_list(tables, hostname)
        # the flood entries lead the table, which stays sorted by MAC
        fdb = net_of(tables, hostname)["fdb"]
        assert [entry["mac"] for entry in fdb] == sorted(entry["mac"] for entry in fdb)


def test_the_flood_list_is_exact_after_a_host_joins():
    networks, fleet = three()
    fleet["h4"] = host("198.18.1.4")  # in the fleet, not yet in the network
    before = peer_tables.compute_peer_tables(networks, fleet)
    assert flood_list(before, "h1") == ["198.18.1.2", "198.18.1.3"]
    assert before["h4"]["networks"] == []
    fleet["h4"] = host("198.18.1.4", ep("d"))
    after = peer_tables.compute_peer_tables(networks, fleet)
    assert flood_list(after, "h1") == ["198.18.1.2", "198.18.1.3", "198.18.1.4"]
    assert flood_list(after, "h4") == ["198.18.1.1", "198.18.1.2", "198.18.1.3"]


def test_the_flood_list_is_exact_after_a_host_leaves():
    networks, fleet = three()
    # h3 leaves the network (its facts still show c) but stays in the fleet on another one
    fleet["h3"] = host("198.18.1.3", ep("r", "red"), current={"c": seen("10.213.0.5")})
    tables = peer_tables.compute_peer_tables([*networks, {**RED, "flood": True}], fleet)
    assert flood_list(tables, "h1") == ["198.18.1.2"]
    assert flood_list(tables, "h2") == ["198.18.1.1"]
    assert flood_list(tables, "h3", "red") == []  # alone there
    # a host torn down leaves every list too
    fleet["h2"] = {"vtep": "198.18.1.2", "state": "absent", "current": {"b": seen("10.213.0.3")}}
    tables = peer_tables.compute_peer_tables([*networks, RED], fleet)
    assert flood_list(tables, "h1") == []
    assert tables["h2"]["networks"] == []


def test_another_networks_vteps_are_never_in_the_list():
    red, blue = {**RED, "flood": True}, {**BLUE, "flood": True}
    fleet = {
        "h1": host("198.18.1.1", ep("r1", "red"), ep("b1", "blue")),
        "h2": host("198.18.1.2", ep("r2", "red")),
        "h3": host("198.18.1.3", ep("b3", "blue")),
        "h4": host("198.18.1.4", ep("x4", "overlay_network")),  # on a network that does not flood
        "h5": host("198.18.1.5", ep("x5", "overlay_network"), ep("r5", "red")),
    }
    tables = peer_tables.compute_peer_tables([NET, red, blue], fleet)
    assert flood_list(tables, "h1", "red") == ["198.18.1.2", "198.18.1.5"]
    assert flood_list(tables, "h1", "blue") == ["198.18.1.3"]
    assert flood_list(tables, "h2", "red") == ["198.18.1.1", "198.18.1.5"]
    assert flood_list(tables, "h5", "red") == ["198.18.1.1", "198.18.1.2"]
    assert flood_list(tables, "h4") == flood_list(tables, "h5") == []


def test_preserved_vteps_are_flooded_to_and_forgotten_ones_are_not():
    networks, fleet = three()
    # h4: unreachable, no facts: its VTEP is preserved; h5: unreachable, its facts show its endpoint
    fleet["h4"] = host("198.18.1.4", ep("d"), reachable=False)
    fleet["h5"] = host("198.18.1.5", ep("e"), reachable=False, current={"e": seen("10.213.0.9")})
    # h9 is no longer in the fleet group, but h1 holds its entries (per its facts): kept
    fleet["h1"]["peers"] = {"overlay_network": {"198.18.1.9": "h9", "198.18.1.2": "h2"}}
    plan = peer_tables.compute_plan(networks, fleet)
    assert plan["networks"]["overlay_network"]["preserve"] == ["198.18.1.4", "198.18.1.9"]
    tables = {name: peer_tables.host_tables(plan, name) for name in ("h1", "h2", "h3")}
    everyone = ["198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4", "198.18.1.5", "198.18.1.9"]
    for hostname, record in tables.items():
        assert flood_list(tables, hostname) == [vtep for vtep in everyone if vtep != record["vtep"]]
    forgotten = peer_tables.compute_peer_tables(networks, fleet, forget_hosts=["h9"])
    assert "198.18.1.9" not in flood_list(forgotten, "h1")
    assert "198.18.1.4" in flood_list(forgotten, "h1")


def test_the_flood_list_is_sorted_by_address_across_peers_and_preserved_vteps():
    fleet = {
        "h1": host("198.18.1.10", ep("a")),
        "h2": host("198.18.1.2", ep("b")),
        "h3": host("198.18.1.30", ep("c")),
        "h4": host("198.18.1.9", ep("d"), reachable=False),  # preserved, between the others
    }
    tables = peer_tables.compute_peer_tables([FLOOD], fleet)
    assert flood_list(tables, "h1") == ["198.18.1.2", "198.18.1.9", "198.18.1.30"]


def test_an_ipv6_underlay_floods_to_ipv6_vteps():
    fleet = {"h1": host("fd00:18::1", ep("a")), "h2": host("fd00:18::2", ep("b"))}
    tables = peer_tables.compute_peer_tables([FLOOD], fleet)
    assert net_of(tables, "h1")["fdb"][0] == {"mac": ZERO_MAC, "dst": "fd00:18::2"}


def test_the_plan_stays_packed_and_linear_the_flood_lists_are_only_expanded_per_host():
    networks, fleet = three()
    on, off = peer_tables.compute_plan(networks, fleet), peer_tables.compute_plan([NET], fleet)
    # the plan grows by a flag per network, never by a list per host
    assert len(json.dumps(on)) - len(json.dumps(off)) == len("true") - len("false")
    packed = peer_tables.pack_plan(on)
    assert {name: peer_tables.host_tables(packed, name) for name in fleet} == peer_tables.compute_peer_tables(
        networks, fleet
    )
    # 3 hosts with 2 peers each
    assert peer_tables.plan_summary(packed) | {"fdb": None} == peer_tables.plan_summary(off) | {"fdb": None, "flood": 6}
    assert peer_tables.plan_summary(packed)["fdb"] == peer_tables.plan_summary(off)["fdb"] + 6


# --- moves -------------------------------------------------------------------------------------------------------


def moved_web(**web):
    """``web`` (10.213.0.7 per h1's facts) is now declared on h2; h1 keeps ``a``."""
    return [NET], {
        "h1": host("198.18.1.1", ep("a"), current={"a": seen("10.213.0.2"), "web": seen("10.213.0.7")}),
        "h2": host("198.18.1.2", ep("b"), ep("web", **web), current={"b": seen("10.213.0.3")}),
        "h3": host("198.18.1.3", ep("c"), current={"c": seen("10.213.0.4")}),
    }


def test_a_move_keeps_its_address_and_is_in_the_plan_and_the_summary():
    plan = peer_tables.compute_plan(*moved_web())
    move = {
        "endpoint": "web",
        "network": "overlay_network",
        "ip": "10.213.0.7",  # kept, though .5 is free
        "mac": derive_mac("10.213.0.7"),
        "from": "h1",
        "to": "h2",
    }
    assert plan["moves"] == [move]
    assert peer_tables.pack_plan(plan)["moves"] == [move]
    assert (
        peer_tables.plan_summary(plan)["moves"] == peer_tables.plan_summary(peer_tables.pack_plan(plan))["moves"] == 1
    )
    tables = peer_tables.compute_peer_tables(*moved_web())
    # every peer switches the same MAC to the new VTEP
    assert {"mac": derive_mac("10.213.0.7"), "dst": "198.18.1.2"} in net_of(tables, "h3")["fdb"]
    assert {"mac": derive_mac("10.213.0.7"), "dst": "198.18.1.2"} in net_of(tables, "h1")["fdb"]
    assert plan["removed"] == {"h1": {"state": "present", "endpoints": ["web"], "networks": []}}


def test_a_move_is_not_a_removal_for_the_purge_guard():
    networks, fleet = moved_web()
    plan = peer_tables.compute_plan(networks, fleet, purge_limit=0)  # web lives on, on h2
    assert [m["endpoint"] for m in plan["moves"]] == ["web"]
    assert plan["removed"] == {"h1": {"state": "present", "endpoints": ["web"], "networks": []}}  # the report
    # a real removal next to the move still counts, and alone
    fleet["h3"]["current"]["gone"] = seen("10.213.0.9")
    with pytest.raises(peer_tables.PeerTableError, match=r"remove 1 endpoint, .*\(0\): h3: endpoints gone\."):
        peer_tables.compute_plan(networks, fleet, purge_limit=0)


def test_moving_every_endpoint_off_a_host_does_not_empty_it():
    networks, fleet = moved_web()
    fleet["h1"]["endpoints"] = []
    fleet["h1"]["current"] = {"web": seen("10.213.0.7")}
    plan = peer_tables.compute_plan(networks, fleet)
    assert [(m["endpoint"], m["from"]) for m in plan["moves"]] == [("web", "h1")]
    fleet["h1"]["current"]["a"] = seen("10.213.0.2")  # a goes for good: that empties h1
    assert error(networks, fleet).startswith("this run would remove the whole overlay of host h1 (endpoints a)")


@pytest.mark.parametrize("address", ["10.213.0.7", "10.213.0.7/24"])
def test_a_move_with_an_explicit_address_and_mac(address):
    plan = peer_tables.compute_plan(*moved_web(address=address, mac="02:00:00:00:00:07"))
    assert [(m["endpoint"], m["ip"], m["mac"], m["from"], m["to"]) for m in plan["moves"]] == [
        ("web", "10.213.0.7", "02:00:00:00:00:07", "h1", "h2")
    ]


def test_a_move_from_a_host_that_is_torn_down():
    networks, fleet = moved_web()
    fleet["h1"] = {"vtep": "198.18.1.1", "state": "absent", "current": fleet["h1"]["current"]}
    assert [(m["endpoint"], m["from"], m["to"]) for m in peer_tables.compute_plan(networks, fleet)["moves"]] == [
        ("web", "h1", "h2")
    ]


def test_a_move_whose_source_reuses_the_name_on_another_network():
    networks, fleet = moved_web()
    fleet["h1"]["endpoints"].append(ep("web", "red"))
    assert [(m["endpoint"], m["network"]) for m in peer_tables.compute_plan([*networks, RED], fleet)["moves"]] == [
        ("web", "overlay_network")
    ]


def test_not_a_move_when_the_address_changes():
    plan = peer_tables.compute_plan(*moved_web(address="10.213.0.20"))
    assert plan["moves"] == []
    assert peer_tables.plan_summary(plan)["moves"] == 0


def test_not_a_move_when_the_old_address_is_reused_by_another_endpoint():
    networks, fleet = moved_web()
    # db takes web's old address (another MAC): web gets a new one, and the old pair goes
    fleet["h3"]["endpoints"].append(ep("db", address="10.213.0.7", mac="02:00:00:00:00:db"))
    plan = peer_tables.compute_plan(networks, fleet)
    assert plan["moves"] == []
    tables = peer_tables.compute_peer_tables(networks, fleet)
    assert {"ip": "10.213.0.7", "mac": "02:00:00:00:00:db"} in net_of(tables, "h1")["neigh"]
    web = next(e for e in net_of(tables, "h2")["endpoints"] if e["name"] == "web")
    assert web["ip"] == "10.213.0.5"


def test_not_a_move_from_a_host_this_run_does_not_reach():
    networks, fleet = moved_web()
    fleet["h1"]["reachable"] = False  # its facts cannot be acted on: h2's web is a new endpoint
    plan = peer_tables.compute_plan(networks, fleet)
    assert plan["moves"] == []
    web = next(e for n in plan["hosts"]["h2"]["networks"] for e in n["endpoints"] if e["name"] == "web")
    assert web["ip"] == "10.213.0.5"


def test_not_a_move_when_the_new_host_already_has_it_or_on_another_network():
    networks, fleet = moved_web()
    fleet["h2"]["current"]["web"] = seen("10.213.0.8")  # both had a web: h1's goes, h2's stays
    assert peer_tables.compute_plan(networks, fleet)["moves"] == []
    networks, fleet = moved_web()
    fleet["h2"]["endpoints"][1] = ep("web", "red")  # h1's web left overlay_network; h2's is on red
    assert peer_tables.compute_plan([*networks, RED], fleet)["moves"] == []


def test_moves_are_listed_by_network_then_endpoint():
    networks, fleet = moved_web()
    fleet["h1"]["current"]["api"] = seen("10.213.0.9")
    fleet["h3"]["endpoints"].append(ep("api"))
    fleet["h3"]["current"]["r"] = seen("10.1.0.5", "red")
    fleet["h1"]["endpoints"].append(ep("r", "red"))
    moves = peer_tables.compute_plan([*networks, RED], fleet)["moves"]
    assert [(m["network"], m["endpoint"], m["ip"], m["from"], m["to"]) for m in moves] == [
        ("overlay_network", "api", "10.213.0.9", "h1", "h3"),
        ("overlay_network", "web", "10.213.0.7", "h1", "h2"),
        ("red", "r", "10.1.0.5", "h3", "h1"),
    ]


# --- one MAC, one endpoint of a network ------------------------------------------------------------------------


def test_an_explicit_mac_given_twice_names_both_endpoints_their_hosts_and_where_each_mac_comes_from():
    fleet = {
        "h1": host("198.18.1.1", ep("a", mac="02:00:00:00:00:01")),
        "h2": host("198.18.1.2", ep("b", mac="02:00:00:00:00:01")),
    }
    assert error([NET], fleet) == (
        "endpoints h1/a and h2/b both have mac 02:00:00:00:00:01 on network 'overlay_network' (h1/a: its mac"
        " key; h2/b: its mac key); a MAC names one endpoint of a network, on every host: give one of them another"
        " mac, or leave its mac out to have one derived from its address"
    )


def test_an_explicit_mac_equal_to_another_endpoints_derived_one_says_so():
    fleet = {
        "h1": host("198.18.1.1", ep("a")),  # 10.213.0.2
        "h2": host("198.18.1.2", ep("b", mac="02:42:0a:d5:00:02")),
    }
    message = error([NET], fleet)
    assert message.startswith("endpoints h1/a and h2/b both have mac 02:42:0a:d5:00:02 on network 'overlay_network'")
    assert "(h1/a: derived from its address 10.213.0.2; h2/b: its mac key)" in message


def test_a_mac_that_an_unreachable_hosts_facts_show_counts_too():
    fleet = {
        "h1": host("198.18.1.1", ep("a", mac="02:00:00:00:00:0a")),
        "h2": host("198.18.1.2", ep("b"), reachable=False, current={"b": seen("10.213.0.9", mac="02:00:00:00:00:0a")}),
    }
    message = error([NET], fleet)
    assert "h1/a" in message and "h2/b" in message
    assert "per the facts of its host, unreachable" in message
