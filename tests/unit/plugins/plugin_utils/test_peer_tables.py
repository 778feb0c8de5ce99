# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the fleet-wide peer table (plain data in, plain data out)."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import random

import pytest
from support.fleet_data import BLUE, H1_ENDPOINT, H1_NET, NET, RED, ep

from ansible_collections.netfleet.overlay.plugins.module_utils._model import derive_mac, veth_name
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import (
    PeerTableError,
    compute_peer_tables,
    compute_plan,
    plan_summary,
)

V6 = {"name": "six", "vni": 600, "subnet": "fd00:213::/64"}


def host(vtep, *endpoints, **extra):
    return {"vtep": vtep, "endpoints": list(endpoints), **extra}


def seen(ip, mac=None, network="overlay_network"):
    """An endpoint as its host's facts show it (without ``mac``: facts that lack it)."""
    return {"network": network, "ip": ip} | ({"mac": mac} if mac else {})


def unreachable_h2(*endpoints, **current):
    """h1 with one endpoint ``a``, and an unreachable h2 with ``endpoints`` whose facts show ``current``."""
    return {"h1": host("198.18.1.1", ep("a")), "h2": host("198.18.1.2", *endpoints, reachable=False, current=current)}


def no_tables(vtep, *, state="present", skip=False):
    """The record of a host that gets no network: absent, or skipped (unreachable)."""
    return {
        "state": state,
        "skip": skip,
        "vtep": vtep,
        "networks": [],
        "allowlist": [],
        "ports": [],
        "preserve_vteps": [],
        "wireguard": None,
        "wireguard_allow": [],
    }


def seed_fleet():
    return {"h1": host("198.18.1.1", ep("hosta")), "h2": host("198.18.1.2", ep("hostb"))}


def network_of(result, hostname, name):
    found = [network for network in result[hostname]["networks"] if network["name"] == name]
    return found[0] if found else None


def endpoint_ips(result):
    """(host, endpoint) -> ip over every host's own endpoints."""
    return {
        (hostname, endpoint["name"]): endpoint["ip"]
        for hostname, record in result.items()
        for network in record["networks"]
        for endpoint in network["endpoints"]
    }


def current_from(result, hostname):
    """What the host's overlay facts would show after applying ``result``."""
    return {
        endpoint["name"]: {"network": network["name"], "ip": endpoint["ip"], "mac": endpoint["mac"]}
        for network in result[hostname]["networks"]
        for endpoint in network["endpoints"]
    }


def error(networks, fleet) -> str:
    with pytest.raises(PeerTableError) as info:
        compute_peer_tables(networks, fleet)
    return str(info.value)


# --- the seed topology -------------------------------------------------------------------------------------


def test_seed_topology_exact():
    result = compute_peer_tables([NET], seed_fleet())
    assert result["h1"] == {
        "state": "present",
        "skip": False,
        "vtep": "198.18.1.1",
        "networks": [
            {
                **H1_NET,  # what overlay_host gets, and what only the controller uses:
                "subnet": "10.213.0.0/24",
                "prefixlen": 24,
                "family": 4,
                "egress": False,
                "dns": False,
                "flood": False,
                "proxy": True,
                "encrypted": False,
                "gateway": None,
                "names": {},
                "endpoints": [{**H1_ENDPOINT, "ifname": "eth0", "attached": False, "ip": "10.213.0.2"}],
                "peers": ["198.18.1.2"],
                "peer_hosts": {"198.18.1.2": "h2"},
            }
        ],
        "allowlist": ["198.18.1.2"],
        "ports": [4789],
        "preserve_vteps": [],
        "wireguard": None,
        "wireguard_allow": [],
    }


def test_seed_topology_vice_versa():
    h2 = network_of(compute_peer_tables([NET], seed_fleet()), "h2", "overlay_network")
    assert h2["endpoints"][0]["ip"] == "10.213.0.3"
    assert h2["endpoints"][0]["mac"] == "02:42:0a:d5:00:03"
    assert h2["neigh"] == [{"ip": "10.213.0.2", "mac": "02:42:0a:d5:00:02"}]
    assert h2["fdb"] == [{"mac": "02:42:0a:d5:00:02", "dst": "198.18.1.1"}]
    assert h2["peers"] == ["198.18.1.1"]


def test_plan_summary_seed():
    assert plan_summary(compute_plan([NET], seed_fleet())) == {
        "hosts": 2,
        "hosts_present": 2,
        "hosts_absent": 0,
        "hosts_skipped": 0,
        "networks": 1,
        "endpoints": 2,
        "neigh": 2,
        "fdb": 2,
        "flood": 0,
        "moves": 0,
    }


def test_input_is_not_modified():
    networks, fleet = [NET], seed_fleet()
    fleet["h2"]["current"] = {"hostb": seen("10.213.0.9", "02:42:0a:d5:00:09")}
    before = copy.deepcopy((networks, fleet))
    compute_peer_tables(networks, fleet)
    assert (networks, fleet) == before


def test_input_order_does_not_matter():
    fleet = {
        "h3": host("198.18.1.3", ep("z"), ep("c", "red")),
        "h1": host("198.18.1.1", ep("b"), ep("a"), ep("d", "red")),
        "h2": host("198.18.1.2", ep("y", "blue"), ep("x")),
    }
    shuffled = {name: {**fleet[name], "endpoints": fleet[name]["endpoints"][::-1]} for name in reversed(fleet)}
    assert compute_peer_tables([NET, RED, BLUE], fleet) == compute_peer_tables([BLUE, RED, NET], shuffled)


# --- isolation and shape -----------------------------------------------------------------------------------


def test_two_networks_are_isolated():
    fleet = {
        "h1": host("198.18.1.1", ep("a", "red"), ep("b", "blue")),
        "h2": host("198.18.1.2", ep("c", "red")),
        "h3": host("198.18.1.3", ep("d", "blue")),
    }
    result = compute_peer_tables([RED, BLUE], fleet)
    # h1 is on both, sorted by vni (blue 200 before red 300)
    assert [network["name"] for network in result["h1"]["networks"]] == ["blue", "red"]
    assert network_of(result, "h1", "red")["neigh"] == [{"ip": "10.1.0.3", "mac": "02:42:0a:01:00:03"}]
    assert network_of(result, "h1", "red")["fdb"] == [{"mac": "02:42:0a:01:00:03", "dst": "198.18.1.2"}]
    assert network_of(result, "h1", "blue")["fdb"] == [{"mac": "02:42:0a:02:00:03", "dst": "198.18.1.3"}]
    # h2 is on red only and never sees blue endpoints or h3
    assert [network["name"] for network in result["h2"]["networks"]] == ["red"]
    assert network_of(result, "h2", "red")["neigh"] == [{"ip": "10.1.0.2", "mac": "02:42:0a:01:00:02"}]
    assert result["h2"]["allowlist"] == ["198.18.1.1"]
    assert result["h2"]["ports"] == [4789]
    assert network_of(result, "h3", "blue")["fdb"] == [{"mac": "02:42:0a:02:00:02", "dst": "198.18.1.1"}]
    assert result["h3"]["allowlist"] == ["198.18.1.1"]
    assert result["h3"]["ports"] == [4790]
    assert result["h1"]["allowlist"] == ["198.18.1.2", "198.18.1.3"]
    assert result["h1"]["ports"] == [4789, 4790]
    assert network_of(result, "h1", "blue")["netns"] == "ovl-200"


def test_host_without_endpoints_on_a_network_gets_nothing_for_it():
    fleet = {
        "h1": host("198.18.1.1", ep("a", "red")),
        "h2": host("198.18.1.2", ep("b", "red")),
        "h3": host("198.18.1.3", ep("c", "blue")),
        "h4": host("198.18.1.4"),
        "h5": {},
    }
    result = compute_peer_tables([RED, BLUE], fleet)
    assert [network["name"] for network in result["h3"]["networks"]] == ["blue"]
    assert network_of(result, "h3", "blue")["neigh"] == []
    assert network_of(result, "h3", "blue")["peers"] == []
    assert result["h3"]["allowlist"] == []
    for empty in ("h4", "h5"):
        assert result[empty]["networks"] == []
        assert result[empty]["allowlist"] == []
        assert result[empty]["ports"] == []
    assert result["h4"]["vtep"] == "198.18.1.4"
    assert result["h5"]["vtep"] is None
    assert result["h5"]["state"] == "present"


def test_local_endpoints_on_the_same_network_are_not_remote():
    fleet = {"h1": host("198.18.1.1", ep("b"), ep("a")), "h2": host("198.18.1.2", ep("c"))}
    result = compute_peer_tables([NET], fleet)
    h1 = network_of(result, "h1", "overlay_network")
    assert [endpoint["name"] for endpoint in h1["endpoints"]] == ["a", "b"]
    assert [entry["ip"] for entry in h1["neigh"]] == ["10.213.0.4"]
    h2 = network_of(result, "h2", "overlay_network")
    assert [entry["ip"] for entry in h2["neigh"]] == ["10.213.0.2", "10.213.0.3"]
    assert h2["peers"] == ["198.18.1.1"]  # one VTEP, however many endpoints behind it
    assert [entry["dst"] for entry in h2["fdb"]] == ["198.18.1.1", "198.18.1.1"]


def test_tables_are_sorted_numerically_by_ip_and_by_mac():
    fleet = {"h1": host("198.18.1.1", ep("a"))}
    fleet["h2"] = host("198.18.1.2", *(ep(f"e{i:02d}") for i in range(12)))
    fleet["h2"]["endpoints"].append(ep("zz", mac="00:00:00:00:00:01"))
    h1 = network_of(compute_peer_tables([NET], fleet), "h1", "overlay_network")
    ips = [entry["ip"] for entry in h1["neigh"]]
    assert ips == sorted(ips, key=ipaddress.ip_address)
    assert ips[:2] == ["10.213.0.3", "10.213.0.4"] and "10.213.0.10" in ips
    macs = [entry["mac"] for entry in h1["fdb"]]
    assert macs == sorted(macs)
    assert macs[0] == "00:00:00:00:00:01"


# --- IPv6 ---------------------------------------------------------------------------------------------------


def test_ipv6_overlay_on_ipv4_underlay():
    fleet = {"h1": host("198.18.1.1", ep("a", "six")), "h2": host("198.18.1.2", ep("b", "six"))}
    result = compute_peer_tables([V6], fleet)
    h1 = network_of(result, "h1", "six")
    assert h1["family"] == 6
    assert h1["prefixlen"] == 64
    assert h1["mtu"] == 1450
    own = h1["endpoints"][0]
    assert own["ip"] == "fd00:213::2"
    assert own["address"] == "fd00:213::2/64"
    digest = hashlib.sha256(b"six/" + ipaddress.ip_address("fd00:213::2").packed).digest()
    assert own["mac"] == "02:" + ":".join(f"{byte:02x}" for byte in digest[:5])
    first_octet = int(own["mac"][:2], 16)
    assert first_octet & 1 == 0 and first_octet & 2 == 2  # unicast, locally administered
    assert h1["neigh"] == [{"ip": "fd00:213::3", "mac": network_of(result, "h2", "six")["endpoints"][0]["mac"]}]
    assert h1["fdb"][0]["dst"] == "198.18.1.2"


def test_ipv6_mac_depends_on_network_name_and_is_stable():
    address = ipaddress.ip_address("fd00:213::2")
    assert derive_mac(address.compressed, salt="six") == derive_mac(address.compressed, salt="six")
    assert derive_mac(address.compressed, salt="six") != derive_mac(address.compressed, salt="seven")
    assert derive_mac(ipaddress.ip_address("10.213.0.2").compressed, salt="x") == "02:42:0a:d5:00:02"


def test_ipv6_underlay():
    fleet = {
        "h1": host("fd00:18::1", ep("a"), underlay_mtu=1500),
        "h2": host("FD00:18:0::2", ep("b"), underlay_mtu=9000),
    }
    result = compute_peer_tables([NET], fleet)
    assert result["h2"]["vtep"] == "fd00:18::2"  # normalised
    h1 = network_of(result, "h1", "overlay_network")
    assert h1["fdb"] == [{"mac": "02:42:0a:d5:00:03", "dst": "fd00:18::2"}]
    assert h1["mtu"] == 1430  # 70 bytes of VXLAN over IPv6
    assert network_of(result, "h2", "overlay_network")["mtu"] == 8930
    assert result["h1"]["allowlist"] == ["fd00:18::2"]


def test_ipv6_overlay_on_ipv6_underlay():
    fleet = {"h1": host("fd00:18::1", ep("a", "six")), "h2": host("fd00:18::2", ep("b", "six"))}
    h2 = network_of(compute_peer_tables([V6], fleet), "h2", "six")
    assert h2["neigh"][0]["ip"] == "fd00:213::2"
    assert h2["fdb"][0]["dst"] == "fd00:18::1"
    assert h2["mtu"] == 1430


def test_mixed_vtep_families_on_one_network_is_an_error():
    fleet = {"h1": host("198.18.1.1", ep("a")), "h2": host("fd00:18::2", ep("b"))}
    message = error([NET], fleet)
    assert "network 'overlay_network' mixes IPv4 and IPv6 VTEPs" in message
    assert "host h1 vtep 198.18.1.1" in message and "host h2 vtep fd00:18::2" in message


def test_mixed_vtep_families_on_different_networks_is_fine():
    fleet = {"h1": host("198.18.1.1", ep("a", "red")), "h2": host("fd00:18::2", ep("b", "blue"))}
    result = compute_peer_tables([RED, BLUE], fleet)
    assert result["h1"]["networks"][0]["neigh"] == []


def test_large_ipv6_subnet_is_not_enumerated():
    wide = {"name": "wide", "vni": 9, "subnet": "fd00::/32"}
    fleet = {"h1": host("198.18.1.1", ep("a", "wide", address="fd00::ffff:ffff:ffff:fffe"), ep("b", "wide"))}
    endpoints = compute_peer_tables([wide], fleet)["h1"]["networks"][0]["endpoints"]
    assert [endpoint["ip"] for endpoint in endpoints] == ["fd00::ffff:ffff:ffff:fffe", "fd00::2"]


# --- IPAM ---------------------------------------------------------------------------------------------------


def test_allocation_order_is_host_then_endpoint_name():
    fleet = {
        "h2": host("198.18.1.2", ep("a")),
        "h1": host("198.18.1.1", ep("z"), ep("m")),
    }
    ips = endpoint_ips(compute_peer_tables([NET], fleet))
    assert ips == {("h1", "m"): "10.213.0.2", ("h1", "z"): "10.213.0.3", ("h2", "a"): "10.213.0.4"}


def test_existing_endpoints_keep_their_address_when_others_come_and_go():
    fleet = {
        "h1": host("198.18.1.1", ep("a"), ep("b")),
        "h2": host("198.18.1.2", ep("c")),
    }
    first = compute_peer_tables([NET], fleet)
    assert endpoint_ips(first) == {("h1", "a"): "10.213.0.2", ("h1", "b"): "10.213.0.3", ("h2", "c"): "10.213.0.4"}

    # remove b, add h0/z and h2/d: a and c keep theirs; the newcomers take the lowest free addresses
    second_fleet = {
        "h0": host("198.18.1.10", ep("z")),
        "h1": host("198.18.1.1", ep("a"), current=current_from(first, "h1")),
        "h2": host("198.18.1.2", ep("c"), ep("d"), current=current_from(first, "h2")),
    }
    second = compute_peer_tables([NET], second_fleet)
    assert endpoint_ips(second) == {
        ("h0", "z"): "10.213.0.3",
        ("h1", "a"): "10.213.0.2",
        ("h2", "c"): "10.213.0.4",
        ("h2", "d"): "10.213.0.5",
    }
    # without h1's facts the same declaration would renumber a (h0/z sorts first): the facts keep it stable
    second_fleet["h1"].pop("current")
    assert endpoint_ips(compute_peer_tables([NET], second_fleet))[("h1", "a")] == "10.213.0.3"


def test_existing_address_from_facts_given_as_cidr_is_kept():
    fleet = seed_fleet()
    fleet["h1"]["current"] = {"hosta": {"network": "overlay_network", "ip": "10.213.0.77/24", "mac": "x"}}
    assert endpoint_ips(compute_peer_tables([NET], fleet))[("h1", "hosta")] == "10.213.0.77"


@pytest.mark.parametrize(
    "entry",
    [
        seen("10.213.0.50", network="red"),  # the endpoint moved to another network
        seen("10.9.0.50"),  # outside the subnet (subnet changed)
        seen("10.213.0.1"),  # the gateway
        seen("10.213.0.255"),  # broadcast
        {"network": "overlay_network", "ip": "fd00::5"},  # other family
        {"network": "overlay_network", "ip": "garbage"},
        {"network": "overlay_network"},
        "not a dict",
    ],
)
def test_stale_facts_are_ignored(entry):
    fleet = seed_fleet()
    fleet["h1"]["current"] = {"hosta": entry}
    assert endpoint_ips(compute_peer_tables([NET, RED], fleet))[("h1", "hosta")] == "10.213.0.2"


def test_facts_of_undeclared_endpoints_do_not_reserve_addresses():
    fleet = seed_fleet()
    fleet["h1"]["current"] = {"gone": seen("10.213.0.2", "02:42:0a:d5:00:02")}
    assert endpoint_ips(compute_peer_tables([NET], fleet))[("h1", "hosta")] == "10.213.0.2"


def test_allocation_skips_explicit_and_existing_addresses():
    fleet = {
        "h1": host("198.18.1.1", ep("a", address="10.213.0.2"), ep("b"), ep("c")),
        "h2": host("198.18.1.2", ep("d"), current={"d": seen("10.213.0.3", "02:42:0a:d5:00:03")}),
    }
    ips = endpoint_ips(compute_peer_tables([NET], fleet))
    assert ips == {
        ("h1", "a"): "10.213.0.2",
        ("h1", "b"): "10.213.0.4",
        ("h1", "c"): "10.213.0.5",
        ("h2", "d"): "10.213.0.3",
    }


def test_explicit_address_forms():
    fleet = {
        "h1": host("198.18.1.1", ep("a", address="10.213.0.9/24"), ep("b", address=" 10.213.0.254 ")),
    }
    endpoints = compute_peer_tables([NET], fleet)["h1"]["networks"][0]["endpoints"]
    assert [(endpoint["ip"], endpoint["address"]) for endpoint in endpoints] == [
        ("10.213.0.9", "10.213.0.9/24"),
        ("10.213.0.254", "10.213.0.254/24"),
    ]


@pytest.mark.parametrize(
    ("key", "first", "second", "shown"),
    [
        ("address", "10.213.0.7", "10.213.0.7/24", "10.213.0.7"),  # one address in two forms
        ("mac", "02:00:00:00:00:01", "02:00:00:00:00:01", "02:00:00:00:00:01"),
    ],
)
def test_one_explicit_address_or_mac_on_two_endpoints_is_an_error(key, first, second, shown):
    fleet = {"h1": host("198.18.1.1", ep("a", **{key: first})), "h2": host("198.18.1.2", ep("b", **{key: second}))}
    message = error([NET], fleet)
    assert "h1/a" in message and "h2/b" in message and shown in message
    assert "'overlay_network'" in message


def test_overlapping_subnets_are_refused_naming_both_networks():
    # an address in both would be ambiguous (Docker refuses overlapping subnets too)
    fleet = {"h1": host("198.18.1.1", ep("a", address="10.213.0.7"))}
    for other in ("10.213.0.0/24", "10.213.0.128/25", "10.0.0.0/8"):
        same = {"name": "same", "vni": 257, "subnet": other}
        with pytest.raises(PeerTableError, match=r"^networks '.*' \(subnet .*\) and '.*' \(subnet .*\) overlap") as exc:
            compute_peer_tables([NET, same], fleet)
        assert "'overlay_network' (subnet 10.213.0.0/24)" in str(exc.value)
        assert f"'same' (subnet {other})" in str(exc.value)
        assert "give each network a subnet of its own" in str(exc.value)
    # neighbours, other families and a network after a wide one are fine
    nets = [
        NET,
        {"name": "next", "vni": 2, "subnet": "10.213.1.0/24"},
        {"name": "wide", "vni": 3, "subnet": "10.0.0.0/16"},
        {"name": "after", "vni": 4, "subnet": "10.1.0.0/16"},
        {"name": "v6", "vni": 5, "subnet": "fd00::/64"},
    ]
    assert compute_peer_tables(nets, fleet)
    inner = {"name": "inner", "vni": 6, "subnet": "10.0.5.0/24"}
    with pytest.raises(
        PeerTableError, match=r"networks 'wide' \(subnet 10.0.0.0/16\) and 'inner' \(subnet 10.0.5.0/24\)"
    ):
        compute_peer_tables([*nets, inner], fleet)


def test_explicit_wins_over_existing_which_is_reallocated():
    fleet = {
        "h1": host("198.18.1.1", ep("a"), current={"a": seen("10.213.0.5", "02:42:0a:d5:00:05")}),
        "h2": host("198.18.1.2", ep("b", address="10.213.0.5")),
    }
    ips = endpoint_ips(compute_peer_tables([NET], fleet))
    assert ips == {("h2", "b"): "10.213.0.5", ("h1", "a"): "10.213.0.2"}


def test_existing_vs_existing_collision_keeps_the_first_and_moves_the_second():
    fact = seen("10.213.0.5", "02:42:0a:d5:00:05")
    fleet = {
        "h1": host("198.18.1.1", ep("a"), current={"a": fact}),
        "h2": host("198.18.1.2", ep("b"), current={"b": fact}),
    }
    assert endpoint_ips(compute_peer_tables([NET], fleet)) == {("h1", "a"): "10.213.0.5", ("h2", "b"): "10.213.0.2"}


def test_full_subnet():
    tiny = {"name": "tiny", "vni": 5, "subnet": "10.0.0.0/29"}  # .2 .. .6 usable
    fleet = {"h1": host("198.18.1.1", *(ep(f"e{i}", "tiny") for i in range(5)))}
    ips = sorted(endpoint_ips(compute_peer_tables([tiny], fleet)).values())
    assert ips == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    fleet["h2"] = host("198.18.1.2", ep("one-too-many", "tiny"))
    message = error([tiny], fleet)
    assert "network 'tiny' subnet 10.0.0.0/29" in message and "5" in message and "6 endpoints" in message


def test_smallest_subnets():
    v4 = {"name": "v4", "vni": 4, "subnet": "10.0.0.0/30"}
    v6 = {"name": "v6", "vni": 6, "subnet": "fd00::/126"}
    fleet = {"h1": host("198.18.1.1", ep("a", "v4"), ep("b", "v6"))}
    assert endpoint_ips(compute_peer_tables([v4, v6], fleet)) == {("h1", "a"): "10.0.0.2", ("h1", "b"): "fd00::2"}


def test_unreachable_explicit_and_observed_addresses_leave_allocation_full():
    tiny = {"name": "tiny", "vni": 5, "subnet": "10.0.0.0/29"}  # 5 usable
    fleet = {
        "h1": host(
            "198.18.1.1",
            ep("a", "tiny", address="10.0.0.2"),
            ep("b", "tiny"),
            reachable=False,
            current={"b": seen("10.0.0.3", "02:42:0a:00:00:03", network="tiny")},
        ),
        "h2": host("198.18.1.2", ep("c", "tiny"), ep("d", "tiny"), ep("e", "tiny")),
    }
    ips = endpoint_ips(compute_peer_tables([tiny], fleet))  # h1 is skipped: only h2's own are listed
    assert ips == {("h2", "c"): "10.0.0.4", ("h2", "d"): "10.0.0.5", ("h2", "e"): "10.0.0.6"}


# --- MACs ---------------------------------------------------------------------------------------------------


def test_explicit_mac_is_normalised_and_used_everywhere():
    fleet = seed_fleet()
    fleet["h2"]["endpoints"][0]["mac"] = "AA-BB-CC-DD-EE-F0"
    result = compute_peer_tables([NET], fleet)
    assert network_of(result, "h2", "overlay_network")["endpoints"][0]["mac"] == "aa:bb:cc:dd:ee:f0"
    h1 = network_of(result, "h1", "overlay_network")
    assert h1["neigh"] == [{"ip": "10.213.0.3", "mac": "aa:bb:cc:dd:ee:f0"}]
    assert h1["fdb"] == [{"mac": "aa:bb:cc:dd:ee:f0", "dst": "198.18.1.2"}]


def test_explicit_mac_equal_to_a_derived_one_is_an_error():
    fleet = {
        "h1": host("198.18.1.1", ep("a")),  # gets 10.213.0.2 -> 02:42:0a:d5:00:02
        "h2": host("198.18.1.2", ep("b", mac="02:42:0a:d5:00:02")),
    }
    message = error([NET], fleet)
    assert "h1/a" in message and "h2/b" in message and "mac 02:42:0a:d5:00:02" in message


def test_same_mac_on_different_networks_is_fine():
    fleet = {
        "h1": host("198.18.1.1", ep("a", "red", mac="02:00:00:00:00:01"), ep("b", "blue", mac="02:00:00:00:00:01"))
    }
    assert len(endpoint_ips(compute_peer_tables([RED, BLUE], fleet))) == 2


# --- names --------------------------------------------------------------------------------------------------


def test_veth_names():
    assert veth_name("hosta") == "veth-hosta"
    assert veth_name("abcdefghij") == "veth-abcdefghij"  # exactly 15
    long = "abcdefghijk"
    assert veth_name(long) == "veth-" + hashlib.sha1(long.encode()).hexdigest()[:10]
    assert len(veth_name("x" * 64)) == 15
    fleet = {"h1": host("198.18.1.1", ep("a-rather-long-endpoint-name"))}
    endpoint = compute_peer_tables([NET], fleet)["h1"]["networks"][0]["endpoints"][0]
    assert endpoint["veth"] == veth_name("a-rather-long-endpoint-name")
    assert endpoint["netns"] == "a-rather-long-endpoint-name"
    assert endpoint["ifname"] == "eth0"


def test_veth_name_collision_on_one_host_is_an_error():
    long = "abcdefghijk"
    literal = hashlib.sha1(long.encode()).hexdigest()[:10]
    message = error([NET], {"h1": host("198.18.1.1", ep(long), ep(literal))})
    assert "host h1" in message and long in message and literal in message and "veth" in message


@pytest.mark.parametrize("name", ["a", "A_b.c-9", "_x", "9", "x" * 64])
def test_valid_endpoint_names(name):
    assert compute_peer_tables([NET], {"h1": host("198.18.1.1", ep(name))})["h1"]["networks"][0]["endpoints"]


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a b", "a/b", "x" * 65, "ä", 7, "..", "a:b"])
def test_invalid_endpoint_names(name):
    message = error([NET], {"h1": host("198.18.1.1", ep(name))})
    assert message.startswith("host h1: endpoints[0] name ")
    assert repr(name) in message


def test_duplicate_endpoint_name_on_one_host_is_an_error_even_across_networks():
    message = error([RED, BLUE], {"h1": host("198.18.1.1", ep("a", "red"), ep("a", "blue"))})
    assert "host h1: endpoint name 'a' is used twice" in message and "endpoints[0]" in message


def test_same_endpoint_name_on_two_hosts_is_fine():
    result = compute_peer_tables([NET], {"h1": host("198.18.1.1", ep("web")), "h2": host("198.18.1.2", ep("web"))})
    assert endpoint_ips(result) == {("h1", "web"): "10.213.0.2", ("h2", "web"): "10.213.0.3"}


def test_endpoint_name_clashing_with_an_overlay_netns_is_an_error():
    message = error([NET, RED], {"h1": host("198.18.1.1", ep("ovl-300"))})
    assert "host h1: endpoint 'ovl-300'" in message and "network 'red'" in message and "300" in message


# --- MTU ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("underlay", "network_mtu", "expected"),
    [(None, None, 1450), (1500, None, 1450), (9000, None, 8950), ("9000", None, 8950), (9000, 1400, 1400)],
)
def test_network_mtu(underlay, network_mtu, expected):
    network = {**NET, "mtu": network_mtu}
    fleet = {"h1": host("198.18.1.1", ep("a"), underlay_mtu=underlay)}
    record = compute_peer_tables([network], fleet)["h1"]["networks"][0]
    assert record["mtu"] == expected
    assert record["endpoints"][0]["mtu"] == expected


def test_mtu_is_per_host():
    fleet = {"h1": host("198.18.1.1", ep("a"), underlay_mtu=9000), "h2": host("198.18.1.2", ep("b"))}
    result = compute_peer_tables([NET], fleet)
    assert network_of(result, "h1", "overlay_network")["mtu"] == 8950
    assert network_of(result, "h2", "overlay_network")["mtu"] == 1450


def test_endpoint_mtu():
    fleet = {"h1": host("198.18.1.1", ep("a", mtu=1300), ep("b"))}
    endpoints = compute_peer_tables([NET], fleet)["h1"]["networks"][0]["endpoints"]
    assert [endpoint["mtu"] for endpoint in endpoints] == [1300, 1450]


def test_endpoint_mtu_above_network_mtu_is_an_error():
    message = error([NET], {"h1": host("198.18.1.1", ep("a", mtu=1451))})
    assert message == "host h1: endpoint 'a' mtu 1451 exceeds network 'overlay_network' mtu 1450"


def test_default_mtu_below_ipv6_minimum_is_an_error():
    message = error([V6], {"h1": host("198.18.1.1", ep("a", "six"), underlay_mtu=1300)})
    assert "host h1: network 'six' mtu would default to 1250" in message
    assert "underlay_mtu 1300" in message and "1280" in message


# --- unreachable and absent hosts ---------------------------------------------------------------------------


def test_unreachable_host_with_facts_keeps_its_entries():
    fleet = unreachable_h2(
        ep("b"),
        ep("not-there-yet"),
        b=seen("10.213.0.2", "02:42:0A:D5:00:02"),
        removed=seen("10.213.0.3", "02:42:0a:d5:00:03"),
    )
    result = compute_peer_tables([NET], fleet)
    assert result["h2"] == no_tables("198.18.1.2", skip=True)
    h1 = network_of(result, "h1", "overlay_network")
    # b keeps .2 (a cannot take it); the undeclared and not-yet-created ones are not published
    assert h1["endpoints"][0]["ip"] == "10.213.0.3"
    assert h1["neigh"] == [{"ip": "10.213.0.2", "mac": "02:42:0a:d5:00:02"}]
    assert h1["fdb"] == [{"mac": "02:42:0a:d5:00:02", "dst": "198.18.1.2"}]
    assert h1["peers"] == ["198.18.1.2"]
    assert result["h1"]["allowlist"] == ["198.18.1.2"]
    assert result["h1"]["preserve_vteps"] == []
    assert plan_summary(compute_plan([NET], fleet))["hosts_skipped"] == 1


def test_unreachable_host_facts_mac_wins_and_missing_mac_is_derived():
    fleet = unreachable_h2(
        ep("b", mac="02:00:00:00:00:0b"), ep("c"), b=seen("10.213.0.9", "02:00:00:00:00:99"), c=seen("10.213.0.10")
    )
    h1 = network_of(compute_peer_tables([NET], fleet), "h1", "overlay_network")
    assert h1["neigh"] == [
        {"ip": "10.213.0.9", "mac": "02:00:00:00:00:99"},
        {"ip": "10.213.0.10", "mac": "02:42:0a:d5:00:0a"},
    ]


def test_unreachable_host_without_facts_is_preserved():
    fleet = {
        "h1": host("198.18.1.1", ep("a", "red")),
        "h2": host("198.18.1.2", ep("b", "blue")),
        "h3": host("198.18.1.3", ep("c", "red"), reachable=False),  # no current: no facts
    }
    result = compute_peer_tables([RED, BLUE], fleet)
    assert result["h3"]["skip"] is True
    assert result["h1"]["preserve_vteps"] == ["198.18.1.3"]
    assert result["h1"]["allowlist"] == ["198.18.1.3"]
    red = network_of(result, "h1", "red")
    assert red["neigh"] == [] and red["fdb"] == [] and red["peers"] == []
    assert result["h2"]["preserve_vteps"] == []  # h2 shares no network with h3
    assert result["h2"]["allowlist"] == []


def test_unreachable_host_with_empty_facts_has_nothing():
    fleet = {
        "h1": host("198.18.1.1", ep("a")),
        "h2": host("198.18.1.2", ep("b"), reachable=False, current={}),
    }
    result = compute_peer_tables([NET], fleet)
    assert result["h1"]["preserve_vteps"] == []
    assert network_of(result, "h1", "overlay_network")["neigh"] == []


def test_unreachable_host_without_vtep_is_an_error():
    message = error([NET], {"h1": host(None, ep("a"), reachable=False)})
    assert (
        message.startswith(
            "host h1 is not converged in this run (unreachable, failed or outside the play) and its VTEP"
        )
        and "'a'" in message
    )
    assert "set overlay_vtep for it, or enable a fact cache" in message


def test_unreachable_observed_address_colliding_with_explicit_is_an_error():
    fleet = {
        "h1": host("198.18.1.1", ep("a", address="10.213.0.2")),
        "h2": host("198.18.1.2", ep("b"), reachable=False, current={"b": seen("10.213.0.2", "02:42:0a:d5:00:02")}),
    }
    message = error([NET], fleet)
    assert "h1/a" in message and "h2/b" in message and "10.213.0.2" in message and "unreachable" in message


def test_unreachable_host_own_explicit_and_observed_addresses_do_not_collide():
    fleet = unreachable_h2(ep("b", address="10.213.0.7"), b=seen("10.213.0.2", "02:42:0a:d5:00:02"))
    result = compute_peer_tables([NET], fleet)
    # the facts are the truth until h2 is back; its wanted .7 stays reserved meanwhile
    assert network_of(result, "h1", "overlay_network")["neigh"] == [{"ip": "10.213.0.2", "mac": "02:42:0a:d5:00:02"}]
    assert endpoint_ips(result) == {("h1", "a"): "10.213.0.3"}


def test_unreachable_host_observed_address_is_not_taken_by_others():
    fleet = {
        "h1": host("198.18.1.1", ep("a"), ep("b")),
        "h2": host("198.18.1.2", ep("c"), reachable=False, current={"c": seen("10.213.0.3", "02:42:0a:d5:00:03")}),
    }
    assert endpoint_ips(compute_peer_tables([NET], fleet)) == {("h1", "a"): "10.213.0.2", ("h1", "b"): "10.213.0.4"}


def test_absent_host():
    fleet = {
        "h1": host("198.18.1.1", ep("a")),
        "h2": host("198.18.1.2", ep("b"), state="absent"),
        "h3": host("198.18.1.3", ep("c")),
    }
    result = compute_peer_tables([NET], fleet)
    assert result["h2"] == no_tables("198.18.1.2", state="absent")
    assert endpoint_ips(result) == {("h1", "a"): "10.213.0.2", ("h3", "c"): "10.213.0.3"}
    assert network_of(result, "h1", "overlay_network")["peers"] == ["198.18.1.3"]
    assert plan_summary(compute_plan([NET], fleet))["hosts_absent"] == 1


def test_absent_host_configuration_is_not_checked_and_its_vtep_may_be_reused():
    fleet = {
        "old": host("198.18.1.1", ep("bad name!", "no-such-network"), state="absent", current="junk"),
        "new": host("198.18.1.1", ep("a")),
        "gone": {"state": "absent", "reachable": False},
    }
    result = compute_peer_tables([NET], fleet)
    assert result["old"]["networks"] == []
    assert result["gone"]["skip"] is True and result["gone"]["vtep"] is None
    assert endpoint_ips(result) == {("new", "a"): "10.213.0.2"}


# --- validation: networks -----------------------------------------------------------------------------------


def test_networks_not_a_list():
    assert error("overlay_network", {}) == "overlay_networks must be a list of networks, got str"
    assert error({"name": "x"}, {}) == "overlay_networks must be a list of networks, got dict"
    assert error(None, {}) == "overlay_networks must be a list of networks, got null"


def test_duplicate_vni_message():
    networks = [{"name": "a", "vni": 256, "subnet": "10.0.0.0/24"}, {"name": "b", "vni": 256, "subnet": "10.1.0.0/24"}]
    assert error(networks, {}) == "networks 'a' and 'b' both use vni 256"


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("a string", ["overlay_networks[1] must be a dict", "str"]),
        ({"vni": 5, "subnet": "10.0.0.0/24"}, ["overlay_networks[1]: missing required key 'name'"]),
        ({"name": "", "vni": 5, "subnet": "10.0.0.0/24"}, ["overlay_networks[1] name ''"]),
        ({"name": 5, "vni": 5, "subnet": "10.0.0.0/24"}, ["overlay_networks[1] name 5"]),
        ({"name": "x", "vni": 5, "subnet": "10.0.0.0/24", "colour": "red"}, ["network 'x': unknown key 'colour'"]),
        ({"name": "x", "subnet": "10.0.0.0/24"}, ["network 'x': missing required key 'vni'"]),
        ({"name": "x", "vni": 5}, ["network 'x': missing required key 'subnet'"]),
        ({"name": "x", "vni": None, "subnet": "10.0.0.0/24"}, ["network 'x': missing required key 'vni'"]),
        (
            {"name": "x", "vni": 0, "subnet": "10.0.0.0/24"},
            ["network 'x' vni 0 is outside 1..16777215", "(24-bit VXLAN network identifier)"],
        ),
        ({"name": "x", "vni": 16777216, "subnet": "10.0.0.0/24"}, ["network 'x' vni 16777216 is outside"]),
        ({"name": "x", "vni": True, "subnet": "10.0.0.0/24"}, ["network 'x' vni True is not an integer (got bool)"]),
        ({"name": "x", "vni": 1.5, "subnet": "10.0.0.0/24"}, ["network 'x' vni 1.5 is not an integer (got float)"]),
        ({"name": "x", "vni": "five", "subnet": "10.0.0.0/24"}, ["network 'x' vni 'five' is not an integer"]),
        (
            {"name": "x", "vni": 5, "subnet": "10.0.0.1/24"},
            ["network 'x' subnet 10.0.0.1/24 has host bits", "10.0.0.0/24"],
        ),
        ({"name": "x", "vni": 5, "subnet": "10.0.0.0"}, ["network 'x' subnet '10.0.0.0' needs a prefix length"]),
        ({"name": "x", "vni": 5, "subnet": "bogus/8"}, ["network 'x' subnet 'bogus/8' is not an IPv4 or IPv6 network"]),
        ({"name": "x", "vni": 5, "subnet": 10}, ["network 'x' subnet 10 must be a CIDR string", "int"]),
        ({"name": "x", "vni": 5, "subnet": "10.0.0.0/31"}, ["network 'x' subnet 10.0.0.0/31 is too small", "/30"]),
        ({"name": "x", "vni": 5, "subnet": "fd00::/127"}, ["network 'x' subnet fd00::/127 is too small", "/126"]),
        (
            {"name": "x", "vni": 5, "subnet": "10.0.0.0/24", "port": 0},
            ["network 'x' port 0 is outside 1..65535", "(UDP port)"],
        ),
        ({"name": "x", "vni": 5, "subnet": "10.0.0.0/24", "port": 70000}, ["network 'x' port 70000 is outside"]),
        (
            {"name": "x", "vni": 5, "subnet": "10.0.0.0/24", "mtu": 67},
            ["network 'x' mtu 67 is outside 68..65535", "(link MTU)"],
        ),
        ({"name": "x", "vni": 5, "subnet": "10.0.0.0/24", "mtu": 65536}, ["network 'x' mtu 65536 is outside"]),
        ({"name": "x", "vni": 5, "subnet": "fd00::/64", "mtu": 1279}, ["network 'x' mtu 1279 is below 1280", "IPv6"]),
        ({"name": "a", "vni": 5, "subnet": "10.0.0.0/24"}, ["network name 'a' is used twice", "[0]", "[1]"]),
        ({"name": "x", "vni": 1, "subnet": "10.0.0.0/24"}, ["networks 'a' and 'x' both use vni 1"]),
    ],
)
def test_network_validation(network, expected):
    message = error([{"name": "a", "vni": 1, "subnet": "10.9.0.0/24"}, network], {})
    for text in expected:
        assert text in message


def test_network_edge_values_are_accepted():
    networks = [
        {"name": "a", "vni": 1, "subnet": "10.0.0.0/30", "port": 1, "mtu": 68},
        {"name": "b", "vni": "16777215", "subnet": "fd00::/126", "port": 65535, "mtu": 1280},
        {"name": "c", "vni": 3, "subnet": "10.1.0.0/16", "port": None, "mtu": None},
    ]
    fleet = {"h1": host("198.18.1.1", ep("x", "a"), ep("y", "b"), ep("z", "c"))}
    records = compute_peer_tables(networks, fleet)["h1"]["networks"]
    assert [(n["name"], n["vni"], n["port"], n["mtu"]) for n in records] == [
        ("a", 1, 1, 68),
        ("c", 3, 4789, 1450),
        ("b", 16777215, 65535, 1280),
    ]
    assert records[2]["family"] == 6 and records[2]["subnet"] == "fd00::/126"


# --- validation: fleet --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("junk", ["host h9: host record must be a dict", "str"]),
        ({"colour": 1}, ["host h9: unknown key 'colour'"]),
        ({"state": "gone"}, ["host h9: state 'gone' must be 'present' or 'absent'"]),
        ({"reachable": "yes"}, ["host h9: reachable 'yes' must be true or false, got str"]),
        ({"vtep": "198.18.1.300"}, ["host h9: vtep '198.18.1.300' is not an IPv4 or IPv6 address"]),
        ({"vtep": "198.18.1.9/16"}, ["host h9: vtep '198.18.1.9/16'"]),
        ({"vtep": 5}, ["host h9: vtep 5 must be an IP address string, got int"]),
        ({"vtep": "239.1.1.1"}, ["host h9: vtep 239.1.1.1 must be a unicast address"]),
        ({"vtep": "0.0.0.0"}, ["host h9: vtep 0.0.0.0 must be a unicast address"]),
        ({"vtep": "198.18.1.1"}, ["hosts h1 and h9 both use vtep 198.18.1.1"]),
        ({"vtep": "198.18.1.09"}, ["host h9: vtep '198.18.1.09'"]),
        ({"underlay_mtu": 40}, ["host h9: underlay_mtu 40 is outside 68..65535 (link MTU)"]),
        ({"underlay_mtu": "big"}, ["host h9: underlay_mtu 'big' is not an integer"]),
        ({"endpoints": "web"}, ["host h9: endpoints must be a list, got str"]),
        ({"endpoints": {"name": "a"}}, ["host h9: endpoints must be a list, got dict"]),
        ({"current": ["a"]}, ["host h9: current must be a dict", "got list"]),
        ({"endpoints": [ep("a")]}, ["host h9: vtep is required because the host has endpoints ('a')"]),
    ],
)
def test_host_validation(record, expected):
    message = error([NET], {"h1": host("198.18.1.1", ep("a")), "h9": record})
    for text in expected:
        assert text in message


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("web", ["host h9: endpoints[0] must be a dict", "str"]),
        ({"network": "overlay_network"}, ["host h9: endpoints[0]: missing required key 'name'"]),
        ({"name": "b"}, ["host h9: endpoint 'b': missing required key 'network'"]),
        ({"name": "b", "network": "nope"}, ["host h9: endpoint 'b' network 'nope' is not defined", "overlay_network"]),
        ({"name": "b", "network": ["x"]}, ["host h9: endpoint 'b' network ['x'] is not defined"]),
        (ep("b", ip="10.213.0.5"), ["host h9: endpoint 'b': unknown key 'ip'", "address"]),
        (
            ep("b", address="10.9.0.5"),
            ["host h9: endpoint 'b' address 10.9.0.5 is outside network 'overlay_network' subnet 10.213.0.0/24"],
        ),
        (
            ep("b", address="10.213.0.5/16"),
            ["host h9: endpoint 'b' address 10.213.0.5/16 has prefix length /16", "/24"],
        ),
        (ep("b", address="10.213.0.0"), ["host h9: endpoint 'b' address 10.213.0.0 is the network address"]),
        (ep("b", address="10.213.0.255"), ["host h9: endpoint 'b' address 10.213.0.255 is the broadcast address"]),
        (ep("b", address="10.213.0.1"), ["host h9: endpoint 'b' address 10.213.0.1 is the gateway address"]),
        (ep("b", address="fd00::5"), ["host h9: endpoint 'b' address fd00::5 is IPv6", "10.213.0.0/24 is IPv4"]),
        (ep("b", address="ten"), ["host h9: endpoint 'b' address 'ten' is not an IP address"]),
        (ep("b", address=5), ["host h9: endpoint 'b' address 5 must be an IP address string, got int"]),
        (ep("b", mac="02:42:0a:d5:00"), ["host h9: endpoint 'b' mac '02:42:0a:d5:00' is not a MAC address"]),
        (ep("b", mac="01:00:5e:00:00:01"), ["host h9: endpoint 'b' mac '01:00:5e:00:00:01' is a multicast"]),
        (ep("b", mac="ff:ff:ff:ff:ff:ff"), ["host h9: endpoint 'b' mac 'ff:ff:ff:ff:ff:ff' is a multicast"]),
        (ep("b", mac="00:00:00:00:00:00"), ["host h9: endpoint 'b' mac '00:00:00:00:00:00' is the all-zero MAC"]),
        (ep("b", mac=5), ["host h9: endpoint 'b' mac 5 must be a MAC address string, got int"]),
        (ep("b", mtu=50), ["host h9: endpoint 'b' mtu 50 is outside 68..65535 (link MTU)"]),
        (ep("b", mtu="x"), ["host h9: endpoint 'b' mtu 'x' is not an integer"]),
    ],
)
def test_endpoint_validation(endpoint, expected):
    message = error([NET], {"h1": host("198.18.1.1", ep("a")), "h9": host("198.18.1.9", endpoint)})
    for text in expected:
        assert text in message


def test_ipv6_endpoint_address_validation():
    fleet = {"h1": host("198.18.1.1", ep("a", "six", address="fd00:213::1"))}
    assert "is the gateway address of network 'six' subnet fd00:213::/64" in error([V6], fleet)
    fleet = {"h1": host("198.18.1.1", ep("a", "six", address="fd00:213::"))}
    assert "is the network address" in error([V6], fleet)
    fleet = {"h1": host("198.18.1.1", ep("a", "six", address="fd00:213::ffff:ffff:ffff:ffff"))}
    assert endpoint_ips(compute_peer_tables([V6], fleet)) == {("h1", "a"): "fd00:213::ffff:ffff:ffff:ffff"}
    fleet = {"h1": host("198.18.1.1", ep("a", "six", mtu=1279))}
    assert "host h1: endpoint 'a' mtu 1279 is below 1280" in error([V6], fleet)


def test_fleet_not_a_dict():
    assert error([NET], ["h1"]) == "fleet must be a dict of hostname -> host record, got list"


def test_fleet_host_name_must_be_a_string():
    assert "fleet host name 5 must be a non-empty string" in error([NET], {5: {}})


def test_record_defaults_and_null_values():
    fleet = {
        "h1": {"vtep": "198.18.1.1", "endpoints": [ep("a")], "state": None, "reachable": None, "current": None},
        "h2": None,
    }
    result = compute_peer_tables([NET], fleet)
    assert result["h1"]["state"] == "present" and result["h1"]["skip"] is False
    assert result["h2"]["networks"] == []


# --- fleets at scale ----------------------------------------------------------------------------------------


def test_large_fleet_produces_the_right_number_of_entries():
    """2000 hosts x 5 endpoints (10,000 endpoints, 1,001 networks).

    Hosts come in groups of 10 sharing 5 networks (one endpoint each); every 10th host also has an
    endpoint on one wide network (200 hosts).  A host-by-host-by-endpoint algorithm would do ~10^11
    steps here and never finish; this test checks the exact output, not the time.
    """
    groups = 200
    networks = [
        {"name": f"n{i}", "vni": 1000 + i, "subnet": f"10.{i // 256}.{i % 256}.0/24"} for i in range(groups * 5)
    ]
    networks.append({"name": "wide", "vni": 99, "subnet": "172.16.0.0/16"})
    fleet = {}
    for k in range(groups * 10):
        group = k // 10
        endpoints = [ep(f"e{j}", f"n{group * 5 + j}") for j in range(5)]
        if k % 10 == 0:
            endpoints[4] = ep("w", "wide")
        fleet[f"host{k:04d}"] = host(f"198.18.{k // 250}.{k % 250 + 1}", *endpoints)
    result = compute_peer_tables(networks, fleet)

    counts = plan_summary(compute_plan(networks, fleet))
    assert counts["hosts"] == 2000
    assert counts["endpoints"] == 10000
    assert counts["networks"] == 1001
    # per group network n(5g+j): 10 endpoints on 10 hosts, except j=4 which lost one to "wide"
    narrow = groups * (4 * 10 * 9 + 9 * 8)
    wide = 200 * 199
    assert counts["neigh"] == counts["fdb"] == narrow + wide

    sample = result["host0000"]
    assert [n["name"] for n in sample["networks"]] == ["wide", "n0", "n1", "n2", "n3"]
    assert len(sample["networks"][0]["neigh"]) == 199
    assert len(sample["allowlist"]) == 9 + 199
    last = result["host1999"]
    assert [n["name"] for n in last["networks"]] == [f"n{995 + j}" for j in range(5)]
    assert last["allowlist"] == sorted(
        (f"198.18.{k // 250}.{k % 250 + 1}" for k in range(1990, 1999)), key=ipaddress.ip_address
    )
    assert network_of(result, "host1999", "n999")["endpoints"][0]["ip"] == "10.3.231.10"  # 9th in (host, name)


# --- random fleets against brute force ----------------------------------------------------------------------


def _random_case(rng: random.Random):
    networks = [
        {"name": "n4a", "vni": 10, "subnet": "10.10.0.0/25"},
        {"name": "n4b", "vni": 11, "subnet": "10.10.1.0/25"},
        {"name": "n6", "vni": 12, "subnet": "fd00:12::/120", "port": 4790},
    ]
    fleet = {}
    used_explicit = set()
    for h in range(rng.randint(1, 7)):
        endpoints = []
        for e in range(rng.randint(0, 4)):
            network = rng.choice(networks)
            endpoint = ep(f"e{e}{rng.choice('xyz')}{h}", network["name"])
            if rng.random() < 0.25:
                base = ipaddress.ip_network(network["subnet"])
                address = base.network_address + rng.randint(2, 40)
                if (network["name"], address) not in used_explicit:
                    used_explicit.add((network["name"], address))
                    endpoint["address"] = str(address)
            endpoints.append(endpoint)
        endpoints = list({e["name"]: e for e in reversed(endpoints)}.values())  # unique names per host
        fleet[f"h{h}"] = host(f"198.18.1.{h + 1}", *endpoints, underlay_mtu=rng.choice([None, 1500, 9000]))
    return networks, fleet


def _brute_force_addresses(networks, fleet):
    """Expected addresses without facts: explicit ones, then lowest free in (host, name) order."""
    expected = {}
    for network in networks:
        subnet = ipaddress.ip_network(network["subnet"])
        members = sorted(
            (hostname, endpoint["name"], endpoint.get("address"))
            for hostname, record in fleet.items()
            for endpoint in record["endpoints"]
            if endpoint["network"] == network["name"]
        )
        taken = {ipaddress.ip_address(address) for _unused, _unused2, address in members if address}
        candidate = subnet.network_address + 2
        for hostname, name, address in members:
            if address:
                expected[(hostname, name)] = str(ipaddress.ip_address(address))
                continue
            while candidate in taken:
                candidate += 1
            expected[(hostname, name)] = str(candidate)
            taken.add(candidate)
    return expected


@pytest.mark.parametrize("seed", range(40))
def test_random_fleets_match_brute_force(seed):
    rng = random.Random(seed)
    networks, fleet = _random_case(rng)
    result = compute_peer_tables(networks, fleet)
    by_name = {network["name"]: network for network in networks}

    assert endpoint_ips(result) == _brute_force_addresses(networks, fleet)

    # everything every host owns, from the result itself
    owned = []  # (host, network, ip, mac)
    for hostname, record in result.items():
        for network in record["networks"]:
            for endpoint in network["endpoints"]:
                owned.append((hostname, network["name"], endpoint["ip"], endpoint["mac"]))
                address = ipaddress.ip_address(endpoint["ip"]).compressed
                assert endpoint["mac"] == derive_mac(address, salt=network["name"])
    for network in networks:
        on_network = [(ip, mac) for _unused, name, ip, mac in owned if name == network["name"]]
        assert len({ip for ip, _unused in on_network}) == len(on_network)
        assert len({mac for _unused, mac in on_network}) == len(on_network)

    vtep_of = {hostname: record["vtep"] for hostname, record in fleet.items()}
    for hostname, record in result.items():
        networks_here = {e["network"] for e in fleet[hostname]["endpoints"]}
        assert [n["name"] for n in record["networks"]] == sorted(networks_here, key=lambda n: by_name[n]["vni"])
        allowlist = set()
        for network in record["networks"]:
            remote = [(h, ip, mac) for h, name, ip, mac in owned if name == network["name"] and h != hostname]
            assert network["neigh"] == sorted(
                ({"ip": ip, "mac": mac} for _unused, ip, mac in remote), key=lambda e: ipaddress.ip_address(e["ip"])
            )
            assert network["fdb"] == sorted(
                ({"mac": mac, "dst": vtep_of[h]} for h, _unused, mac in remote), key=lambda e: e["mac"]
            )
            peers = {vtep_of[h] for h, _unused, _unused2 in remote}
            assert network["peers"] == sorted(peers, key=ipaddress.ip_address)
            allowlist |= peers
            underlay = fleet[hostname]["underlay_mtu"] or 1500
            assert network["mtu"] == underlay - 50
            assert network["port"] == by_name[network["name"]].get("port", 4789)
        assert record["allowlist"] == sorted(allowlist, key=ipaddress.ip_address)
        assert record["ports"] == sorted({n["port"] for n in record["networks"]})


@pytest.mark.parametrize("seed", range(20))
def test_random_changes_never_renumber_existing_endpoints(seed):
    rng = random.Random(1000 + seed)
    networks, fleet = _random_case(rng)
    for round_ in range(4):
        before = endpoint_ips(compute_peer_tables(networks, fleet, allow_purge=True))
        result = compute_peer_tables(networks, fleet, allow_purge=True)
        # feed the facts back, then remove some endpoints and add new ones
        for hostname, record in fleet.items():
            record["current"] = current_from(result, hostname)
            kept = [e for e in record["endpoints"] if rng.random() > 0.3]
            for i in range(rng.randint(0, 2)):
                kept.append(ep(f"new{round_}{i}", rng.choice(networks)["name"]))
            record["endpoints"] = kept
        after = endpoint_ips(compute_peer_tables(networks, fleet, allow_purge=True))  # removals are the point
        for key, ip in after.items():
            if key in before:
                assert ip == before[key], key


# --- the filter wrapper -------------------------------------------------------------------------------------


def test_filter_wrapper():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.netfleet.overlay.plugins.filter.peer_tables import FilterModule

    peer_tables = FilterModule().filters()["peer_tables"]
    assert peer_tables([NET], seed_fleet()) == compute_peer_tables([NET], seed_fleet())
    assert peer_tables([NET], fleet=seed_fleet()) == compute_peer_tables([NET], seed_fleet())
    with pytest.raises(AnsibleFilterError, match="got str"):
        peer_tables("overlay_network", {})
    with pytest.raises(AnsibleFilterError, match="missing required argument 'fleet'"):
        peer_tables([NET])
    with pytest.raises(AnsibleFilterError, match="unknown argument 'hosts'"):
        peer_tables([NET], hosts={})
    with pytest.raises(AnsibleFilterError, match="given twice"):
        peer_tables([NET], {}, fleet={})
