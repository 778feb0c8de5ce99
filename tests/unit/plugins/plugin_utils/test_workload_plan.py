# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 14 on the controller: a network's egress and dns, its gateway, its names, and endpoints that join an
existing netns (``netns:``, ``interface:``); every rule and message of them, on plain data."""

from __future__ import annotations

import json

import pytest
from support.fleet_data import BACKEND, BACKEND_ON, NET, V6_ON, ep

from ansible_collections.netfleet.overlay.plugins.module_utils._model import derive_mac, gateway_mac
from ansible_collections.netfleet.overlay.plugins.plugin_utils import peer_tables as pt


def host(vtep, *endpoints, **extra):
    return {"vtep": vtep, "endpoints": list(endpoints), **extra}


def error(networks, fleet) -> str:
    with pytest.raises(pt.PeerTableError) as exc:
        pt.compute_plan(networks, fleet)
    return str(exc.value)


def one_host(*endpoints, networks=(BACKEND_ON,), **extra) -> str:
    return error(list(networks), {"h1": host("198.18.1.1", *endpoints, **extra)})


def demo(networks=(NET, BACKEND_ON)):
    """Three hosts on two networks: hosta..c on overlay_network, web1, web2, db on backend (app1 attached)."""
    return list(networks), {
        "h1": host("198.18.1.1", ep("hosta"), ep("web1", "backend"), ep("app1", "backend", netns="app1")),
        "h2": host("198.18.1.2", ep("hostb"), ep("web2", "backend", interface="ovl0")),
        "h3": host("198.18.1.3", ep("hostc"), ep("db", "backend")),
    }


def networks_of(tables, name):
    return {hostname: n for hostname, record in tables.items() for n in record["networks"] if n["name"] == name}


# --- defaults keep today's behaviour ---------------------------------------------------------------------------


def test_without_the_new_keys_a_network_has_no_gateway_and_no_names_and_endpoints_get_their_own_netns():
    plan = pt.compute_plan(*demo((NET, BACKEND)))
    for net in plan["networks"].values():
        assert (net["egress"], net["dns"], net["gateway"], net["names"]) == (False, False, None, [])
    endpoints = [e for part in plan["hosts"].values() for n in part["networks"] for e in n["endpoints"]]
    app1 = next(e for e in endpoints if e["name"] == "app1")
    assert (app1["netns"], app1["attached"], app1["ifname"]) == ("app1", True, "eth0")
    for endpoint in endpoints:
        if endpoint["name"] != "app1":
            assert endpoint["netns"] == endpoint["name"]
            assert endpoint["attached"] is False
            assert endpoint["ifname"] == ("ovl0" if endpoint["name"] == "web2" else "eth0")


def test_false_is_the_same_as_leaving_the_keys_out():
    off = {**BACKEND, "egress": False, "dns": "no"}
    assert pt.compute_peer_tables(*demo((NET, off))) == pt.compute_peer_tables(*demo((NET, BACKEND)))


# --- the gateway -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("egress", "dns"), [(True, False), (False, True), (True, True), ("yes", "off")])
def test_egress_or_dns_gives_the_network_its_gateway_on_the_first_host_address(egress, dns):
    net = pt.compute_plan(*demo((NET, {**BACKEND, "egress": egress, "dns": dns})))["networks"]["backend"]
    assert net["gateway"] == {"address": "10.214.0.1", "prefixlen": 24, "mac": "06:00:00:01:2c:01"}
    assert net["gateway"]["mac"] == gateway_mac(300)


def test_an_ipv6_gateway_is_colon_colon_one():
    plan = pt.compute_plan(
        [V6_ON], {"h1": host("198.18.1.1", ep("a", "six")), "h2": host("198.18.1.2", ep("b", "six"))}
    )
    assert plan["networks"]["six"]["gateway"] == {"address": "fd00:214::1", "prefixlen": 64, "mac": gateway_mac(600)}
    assert [ip for _name, ip in plan["networks"]["six"]["names"]] == ["fd00:214::2", "fd00:214::3"]


def test_ipam_never_gives_the_gateway_address_to_an_endpoint():
    assert "is the gateway address of network 'backend' subnet 10.214.0.0/24 (reserved)" in one_host(
        ep("a", "backend", address="10.214.0.1")
    )
    v6 = error([V6_ON], {"h1": host("198.18.1.1", ep("a", "six", address="fd00:214::1"))})
    assert "is the gateway address of network 'six'" in v6
    # facts that show an endpoint on the gateway address are stale: the endpoint gets a free one
    fleet = {
        "h1": host("198.18.1.1", ep("a", "backend")),
        "h2": host(
            "198.18.1.2",
            ep("b", "backend"),
            reachable=False,
            current={"b": {"network": "backend", "ip": "10.214.0.1", "mac": "02:42:0a:d6:00:01"}},
        ),
    }
    tables = pt.compute_peer_tables([BACKEND_ON], fleet)
    assert [e["ip"] for e in tables["h1"]["networks"][0]["endpoints"]] == ["10.214.0.2"]


def test_the_gateway_is_in_no_host_s_arp_or_fdb_table():
    networks, fleet = demo((NET, BACKEND_ON))
    for index in range(4, 30):  # a fuller fleet: more hosts and endpoints on both families
        fleet[f"h{index}"] = host(
            f"198.18.1.{index}", ep(f"w{index}", "backend"), ep(f"s{index}", "six"), ep(f"o{index}", mac=None)
        )
    plan = pt.compute_plan([*networks, V6_ON], fleet)
    gateways = {name: net["gateway"] for name, net in plan["networks"].items() if net["gateway"]}
    assert set(gateways) == {"backend", "six"}
    for hostname in fleet:
        for net in pt.host_tables(pt.pack_plan(plan), hostname)["networks"]:
            gateway = gateways.get(net["name"])
            if gateway is None:
                continue
            assert gateway["address"] not in {entry["ip"] for entry in net["neigh"]}
            assert gateway["mac"] not in {entry["mac"] for entry in net["neigh"]}
            assert gateway["mac"] not in {entry["mac"] for entry in net["fdb"]}
            assert gateway["mac"] not in {endpoint["mac"] for endpoint in net["endpoints"]}
            assert gateway["address"] not in {endpoint["ip"] for endpoint in net["endpoints"]}


def test_an_endpoint_may_not_have_the_gateway_mac():
    message = one_host(ep("a", "backend", mac="06:00:00:01:2C:01"))
    assert message.startswith(
        "host h1: endpoint 'a' mac 06:00:00:01:2c:01 is the gateway MAC of network 'backend' (reserved"
    )
    # reserved whether or not the network has its gateway yet: turning egress on later never meets a clash
    assert "is the gateway MAC" in one_host(ep("a", "backend", mac=gateway_mac(300)), networks=[BACKEND])
    # another network's gateway MAC is an ordinary MAC here
    assert pt.compute_plan([BACKEND_ON], {"h1": host("198.18.1.1", ep("a", "backend", mac=gateway_mac(301)))})


def test_facts_that_show_the_gateway_mac_on_an_endpoint_are_not_kept():
    fleet = {
        "h1": host("198.18.1.1", ep("a", "backend")),
        "h2": host(
            "198.18.1.2",
            ep("b", "backend"),
            reachable=False,
            current={"b": {"network": "backend", "ip": "10.214.0.9", "mac": gateway_mac(300)}},
        ),
    }
    neigh = pt.compute_peer_tables([BACKEND_ON], fleet)["h1"]["networks"][0]["neigh"]
    assert neigh == [{"ip": "10.214.0.9", "mac": derive_mac("10.214.0.9")}]


@pytest.mark.parametrize("key", ["egress", "dns"])
@pytest.mark.parametrize("value", ["maybe", 2, [True], {"on": True}])
def test_egress_and_dns_are_booleans(key, value):
    message = one_host(networks=[{**BACKEND, key: value}])
    assert message.startswith(f"network 'backend' {key} {value!r} is not a boolean (true or false; got ")


# --- names -----------------------------------------------------------------------------------------------------


def test_a_dns_network_carries_its_names_once_and_each_host_gets_both_names_of_every_endpoint():
    plan = pt.compute_plan(*demo())
    assert plan["networks"]["backend"]["names"] == [
        ["app1", "10.214.0.2"],
        ["db", "10.214.0.5"],
        ["web1", "10.214.0.3"],
        ["web2", "10.214.0.4"],
    ]
    assert plan["networks"]["overlay_network"]["names"] == []  # not a dns network
    backend = networks_of(pt.compute_peer_tables(*demo()), "backend")
    expected = {
        "app1": "10.214.0.2",
        "app1.backend": "10.214.0.2",
        "db": "10.214.0.5",
        "db.backend": "10.214.0.5",
        "web1": "10.214.0.3",
        "web1.backend": "10.214.0.3",
        "web2": "10.214.0.4",
        "web2.backend": "10.214.0.4",
    }
    assert {hostname: net["names"] for hostname, net in backend.items()} == dict.fromkeys(("h1", "h2", "h3"), expected)
    for net in networks_of(pt.compute_peer_tables(*demo()), "overlay_network").values():
        assert net["names"] == {}  # only a dns network's own names: hosta is not in backend's, nor anywhere


def test_the_names_follow_an_endpoint_that_moves():
    networks, fleet = demo()
    fleet["h3"]["endpoints"].remove(ep("db", "backend"))
    fleet["h2"]["endpoints"].append(ep("db", "backend"))
    names = networks_of(pt.compute_peer_tables(networks, fleet), "backend")["h1"]["names"]
    assert names["db"] == names["db.backend"]
    assert "db" in {
        e["name"] for e in networks_of(pt.compute_peer_tables(networks, fleet), "backend")["h2"]["endpoints"]
    }


def test_two_endpoints_of_a_dns_network_cannot_share_a_name():
    fleet = {"h1": host("198.18.1.1", ep("web", "backend")), "h2": host("198.18.1.2", ep("WEB", "backend"))}
    message = error([BACKEND_ON], fleet)
    assert message.startswith(
        "endpoints h1/web and h2/WEB of dns network 'backend' would both answer to the name 'WEB' (as 'web' and"
        " 'WEB'; DNS ignores case); rename one"
    )
    # without dns the same names are fine: each is a netns on its own host
    assert pt.compute_plan([BACKEND], fleet)
    # <endpoint>.<network> of one is <endpoint> of another
    fleet = {"h1": host("198.18.1.1", ep("web", "backend")), "h2": host("198.18.1.2", ep("web.backend", "backend"))}
    assert "endpoints h1/web and h2/web.backend of dns network 'backend' would both answer to the name" in error(
        [BACKEND_ON], fleet
    )


def test_names_in_a_dns_network_must_be_dns_names():
    long = "a" * 64  # a valid endpoint name, one character too long for a DNS label
    assert pt.compute_plan([BACKEND], {"h1": host("198.18.1.1", ep(long, "backend"))})
    assert one_host(ep(long, "backend")).startswith(
        f"host h1: endpoint '{long}' of dns network 'backend': its name '{long}' is not a DNS name: its label"
    )
    assert "its name 'a..b' is not a DNS name: it has an empty label" in one_host(ep("a..b", "backend"))
    message = one_host(networks=[{**BACKEND_ON, "name": "b" * 64}])
    assert message.startswith(f"network '{'b' * 64}' dns true: the name '{'b' * 64}' cannot be part of a DNS name")
    assert pt.compute_plan([{**BACKEND, "name": "b" * 64}], {})


# --- endpoints that join an existing netns ---------------------------------------------------------------------


def test_an_attached_netns_that_exists_on_the_host_is_joined_not_taken_over():
    fleet = {"h1": host("198.18.1.1", ep("app1", "backend", netns="podman-1", interface="ovl0"), netns=["podman-1"])}
    endpoint = pt.compute_plan([BACKEND_ON], fleet)["hosts"]["h1"]["networks"][0]["endpoints"][0]
    assert {key: endpoint[key] for key in ("name", "netns", "attached", "ifname", "veth")} == {
        "name": "app1",
        "netns": "podman-1",
        "attached": True,
        "ifname": "ovl0",
        "veth": "veth-app1",
    }


def test_an_attached_netns_must_exist_when_the_facts_know_the_host_s_netns():
    message = one_host(ep("app1", "backend", netns="gone"), netns=["other"])
    assert message.startswith("host h1: endpoint 'app1' netns 'gone' does not exist on the host: netns: attaches an")
    assert pt.compute_plan([BACKEND_ON], {"h1": host("198.18.1.1", ep("app1", "backend", netns="gone"))})  # not known


def test_a_netns_that_the_collection_made_cannot_be_attached():
    """It goes with the endpoint it was made for (or would be taken for the user's, and kept on removal)."""
    current = {"web1": {"network": "backend", "ip": "10.214.0.2", "mac": None, "netns": "web1"}}
    message = one_host(ep("web1", "backend", netns="web1"), netns=["web1"], current=current)
    assert message.startswith(
        "host h1: endpoint 'web1' netns 'web1' was created by netfleet.overlay for endpoint 'web1', and goes with it"
    )
    assert "was created by netfleet.overlay for endpoint 'web1'" in one_host(
        ep("app1", "backend", netns="web1"), netns=["web1"], current=current
    )
    current["web1"]["attached"] = True  # the facts say web1 joined it: the user's netns, which may be joined
    assert pt.compute_plan(
        [BACKEND_ON], {"h1": host("198.18.1.1", ep("web1", "backend", netns="web1"), netns=["web1"], current=current)}
    )


def test_a_created_endpoint_still_never_takes_over_a_netns_of_the_user():
    message = one_host(ep("app1", "backend"), netns=["app1"])
    assert "endpoint 'app1' would take over netns 'app1'" in message
    assert "give the endpoint netns: with that name" in message


def test_an_attached_endpoint_in_the_facts_does_not_make_its_netns_ours():
    """The user's netns stays the user's: a created endpoint of that name would take it over."""
    current = {"x": {"network": "backend", "ip": "10.214.0.2", "mac": None, "netns": "shared", "attached": True}}
    message = one_host(ep("shared", "backend"), netns=["shared"], current=current)
    assert "endpoint 'shared' would take over netns 'shared'" in message
    current["x"]["attached"] = False  # a netns the collection made: its own, as before
    assert pt.compute_plan(
        [BACKEND_ON], {"h1": host("198.18.1.1", ep("shared", "backend"), netns=["shared"], current=current)}
    )


@pytest.mark.parametrize(
    ("netns", "words"),
    [
        ("has space", "netns 'has space' is not a valid netns name here: use 1 to 64 characters"),
        ("a/b", "netns 'a/b' is not a valid netns name here"),
        (5, "netns 5 is not a valid netns name here"),
        ("ovl-300", "netns 'ovl-300' is the overlay netns of vni 300, which netfleet.overlay owns"),
        ("ovl-77", "netns 'ovl-77' is the overlay netns of vni 77"),  # any network's, defined or not
    ],
)
def test_an_attached_netns_is_a_valid_name_and_not_an_overlay_netns(netns, words):
    assert one_host(ep("app1", "backend", netns=netns)).startswith(f"host h1: endpoint 'app1' {words}")


def test_an_attached_netns_is_not_another_endpoint_s_own():
    message = one_host(ep("web1", "backend"), ep("app1", "backend", netns="web1"))
    assert message.startswith(
        "host h1: endpoint 'app1' netns 'web1' is the netns of endpoint 'web1' of the host, which netfleet.overlay"
        " creates (and removes with it)"
    )


def test_endpoints_that_share_a_netns():
    both = (NET, BACKEND_ON)
    ok = one_host_plan(ep("a", netns="pod", interface="eth0"), ep("b", "backend", netns="pod", interface="eth1"))
    assert sorted((e["name"], e["netns"], e["ifname"]) for e in ok) == [("a", "pod", "eth0"), ("b", "pod", "eth1")]
    assert one_host(ep("a", netns="pod"), ep("b", "backend", netns="pod"), networks=both) == (
        "host h1: endpoints 'a' and 'b' are both in netns 'pod' with interface 'eth0'; give one another"
    )
    assert one_host(
        ep("a", "backend", netns="pod"), ep("b", "backend", netns="pod", interface="eth1"), networks=both
    ) == ("host h1: endpoints 'a' and 'b' are both in netns 'pod' on network 'backend'; a netns joins it once")
    egress = {**NET, "egress": True}
    assert one_host(
        ep("a", netns="pod"), ep("b", "backend", netns="pod", interface="eth1"), networks=(egress, BACKEND_ON)
    ) == (
        "host h1: endpoints 'a' and 'b' are both in netns 'pod' on egress networks 'overlay_network' and 'backend';"
        " each would be its default route, so turn egress off on one"
    )
    # the same names in different netns, or on different hosts, are fine
    assert one_host_plan(ep("a", netns="p1"), ep("b", "backend", netns="p2"))


def one_host_plan(*endpoints):
    plan = pt.compute_plan([NET, BACKEND_ON], {"h1": host("198.18.1.1", *endpoints)})
    return [e for n in plan["hosts"]["h1"]["networks"] for e in n["endpoints"]]


@pytest.mark.parametrize(
    ("interface", "words"),
    [
        ("a-very-long-name0", "interface 'a-very-long-name0' must be 1 to 15 characters long (Linux IFNAMSIZ)"),
        ("eth0:1", "interface 'eth0:1' is not a valid interface name (no '/', ':' or whitespace)"),
        ("lo", "interface 'lo' is the loopback, which every netns has; use another name"),
        (7, "interface 7 must be an interface name string, got int"),
    ],
)
@pytest.mark.parametrize("netns", [None, "pod"])
def test_an_interface_name_follows_the_kernel_s_rule_with_or_without_netns(interface, words, netns):
    message = one_host(ep("app1", "backend", interface=interface, **({"netns": netns} if netns else {})))
    assert message.startswith(f"host h1: endpoint 'app1' {words}")


def test_the_new_keys_are_known_with_a_did_you_mean():
    assert "unknown key 'netsn' (did you mean 'netns'?)" in one_host(ep("a", "backend", netsn="x"))
    assert "unknown key 'interfase' (did you mean 'interface'?)" in one_host(ep("a", "backend", interfase="x"))
    assert "unknown key 'egres' (did you mean 'egress'?)" in one_host(networks=[{**BACKEND, "egres": True}])


# --- the plan stays packed and linear; the summary stays right -------------------------------------------------


def test_a_host_s_part_holds_no_fleet_wide_data():
    plan = pt.pack_plan(pt.compute_plan(*demo()))
    for packed in plan["hosts"].values():
        part = json.loads(packed)
        for net in part["networks"]:
            assert set(net) == {"name", "mtu", "endpoints"}
    backend = json.loads(plan["networks"]["backend"])
    assert backend["gateway"]["mac"] == gateway_mac(300)
    assert len(backend["names"]) == 4


def test_a_host_s_part_does_not_grow_with_the_names_of_the_others():
    def h1_part(others):
        fleet = {"h1": host("198.18.1.1", ep("a", "backend"))}
        for index in range(others):
            fleet[f"h{index + 2}"] = host(f"198.18.2.{index + 2}", ep(f"e{index}", "backend"))
        return pt.pack_plan(pt.compute_plan([BACKEND_ON], fleet))

    small, large = h1_part(2), h1_part(200)
    assert len(small["hosts"]["h1"]) == len(large["hosts"]["h1"])
    assert len(json.loads(large["networks"]["backend"])["names"]) == 201


def test_the_summary_counts_no_gateway_and_no_name():
    assert pt.plan_summary(pt.compute_plan(*demo())) == pt.plan_summary(pt.compute_plan(*demo((NET, BACKEND))))
    assert pt.plan_summary(pt.pack_plan(pt.compute_plan(*demo()))) == {
        "hosts": 3,
        "hosts_present": 3,
        "hosts_absent": 0,
        "hosts_skipped": 0,
        "networks": 2,
        "endpoints": 7,
        "neigh": 14,
        "fdb": 14,
        "flood": 0,
        "moves": 0,
    }


def test_egress_on_an_ipv6_network_is_refused_with_the_reason():
    message = error([{**V6_ON, "egress": True}], {"h1": host("198.18.1.1", ep("a", "six"))})
    assert "network 'six' egress true with subnet fd00:214::/64: egress is IPv4 only" in message
    assert "net.ipv6.conf.all.forwarding" in message and message.endswith("Set egress: false on it")
