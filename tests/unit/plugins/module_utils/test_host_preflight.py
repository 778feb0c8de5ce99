# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's checks before any change, and its diff views, on plain data."""

from __future__ import annotations

import copy

import pytest
from support.fleet_data import H1_NET as NET

from ansible_collections.netfleet.overlay.plugins.module_utils import _host_diff, _host_preflight, _records
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Bridge, Netns, Veth
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError


def params(*networks, vtep="198.18.1.1", state="present"):
    return {"vtep": vtep, "state": state, "networks": [copy.deepcopy(n) for n in networks]}


def test_valid_input_is_normalised_in_place():
    fdb = [{"mac": "02:42:0A:D5:00:03", "dst": "198.18.1.2"}]
    p = params({**NET, "vni": "256", "port": "4789", "fdb": fdb}, {**NET, "name": "b", "vni": 300, "netns": "ovl-300"})
    p["preserve_vteps"] = ["2001:DB8:0::9"]
    _host_preflight.check_input(p)
    assert p["networks"][0]["vni"] == 256 and p["networks"][0]["port"] == 4789
    assert p["networks"][0]["fdb"] == [{"mac": "02:42:0a:d5:00:03", "dst": "198.18.1.2"}]
    assert p["preserve_vteps"] == ["2001:db8::9"]


def test_workload_keys_default_to_off_and_are_normalised():
    p = params(NET)
    _host_preflight.check_input(p)
    net = p["networks"][0]
    assert (net["egress"], net["dns"], net["gateway"], net["names"]) == (False, False, None, {})
    assert net["endpoints"][0]["attached"] is False
    gateway = {"address": "10.213.0.1", "prefixlen": "24", "mac": "06:00:00:01:00:01"}
    p = params({**NET, "egress": "yes", "dns": 0, "gateway": gateway, "names": {"web1": "10.213.0.002"}})
    with pytest.raises(InputError, match=r"names\['web1'\]"):  # a leading zero is not an address
        _host_preflight.check_input(p)
    p = params({**NET, "egress": "yes", "dns": 0, "gateway": gateway, "names": {"web1": "10.213.0.2"}})
    _host_preflight.check_input(p)
    net = p["networks"][0]
    assert (net["egress"], net["dns"]) == (True, False)
    assert net["gateway"] == {"address": "10.213.0.1", "prefixlen": 24, "mac": "06:00:00:01:00:01"}


def test_flood_and_proxy_default_and_are_normalised():
    p = params(NET)
    _host_preflight.check_input(p)
    assert (p["networks"][0]["flood"], p["networks"][0]["proxy"]) == (False, True)
    flood = [{"mac": "00:00:00:00:00:00", "dst": "198.18.1.2"}, {"mac": "00:00:00:00:00:00", "dst": "198.18.1.3"}]
    p = params({**NET, "flood": "yes", "proxy": "false", "fdb": flood})
    _host_preflight.check_input(p)
    net = p["networks"][0]
    assert (net["flood"], net["proxy"], net["fdb"]) == (True, False, flood)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flood": "often"}, "networks[0] (overlay_network).flood: 'often' is not a boolean"),
        ({"flood": True, "proxy": 2}, "networks[0] (overlay_network).proxy: 2 is not a boolean"),
        ({"proxy": False}, "networks[0] (overlay_network).proxy: proxy false needs flood true"),
        (
            {"fdb": [{"mac": "00:00:00:00:00:00", "dst": "198.18.1.2"}]},
            "networks[0] (overlay_network).fdb: a 00:00:00:00:00:00 (flood) entry on a network without flood",
        ),
    ],
)
def test_bad_flood_and_proxy_are_refused(change, message):
    with pytest.raises(InputError) as err:
        _host_preflight.check_input(params({**NET, **change}))
    assert message in str(err.value)


def test_absent_ignores_the_networks():
    _host_preflight.check_input(params({"garbage": True}, vtep=None, state="absent"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vni": "abc"}, "networks[0] (overlay_network).vni: 'abc' is not an integer"),
        ({"port": 0}, "networks[0] (overlay_network).port: 0 is outside 1..65535"),
        ({"mtu": 10}, "networks[0] (overlay_network).mtu: 10 is outside 68..65535"),
        ({"vxlan": "vxlan/0"}, "networks[0] (overlay_network).vxlan: 'vxlan/0' is not a valid interface name"),
        ({"endpoints": "hosta"}, "networks[0] (overlay_network).endpoints: expected a list, got str"),
        ({"fdb": [{"mac": "zz", "dst": "198.18.1.2"}]}, "networks[0] (overlay_network).fdb: entries[0].mac: 'zz'"),
        ({"fdb": [{"mac": "02:42:0a:d5:00:03", "dst": "2001:db8::2"}]}, "fdb: entries[0].dst: 2001:db8::2 is IPv6"),
        ({"neigh": [{"ip": "10.213.0.300", "mac": "02:42:0a:d5:00:03"}]}, "neigh: entries[0].ip: '10.213.0.300'"),
        (
            {"endpoints": [{**NET["endpoints"][0], "address": "10.213.0.2"}]},
            "networks[0] (overlay_network).endpoints[0].address: '10.213.0.2' needs a prefix length",
        ),
        (
            {"endpoints": [{**NET["endpoints"][0], "mac": "01:00:5e:00:00:01"}]},
            "endpoints[0].mac: '01:00:5e:00:00:01' is a multicast/broadcast MAC",
        ),
        ({"endpoints": [{"name": "hosta"}]}, "endpoints[0] (hosta): missing key(s) netns, veth, address, mac, mtu"),
        ({"egress": "maybe"}, "networks[0] (overlay_network).egress: 'maybe' is not a boolean"),
        ({"dns": True}, "networks[0] (overlay_network).gateway: egress and dns need the network's gateway, got null"),
        ({"gateway": {"address": "10.213.0.1"}}, "gateway: missing key(s) prefixlen, mac"),
        (
            {"gateway": {"address": "10.213.0.1", "prefixlen": 40, "mac": "06:00:00:01:00:01"}},
            "gateway.address/prefixlen: '10.213.0.1/40'",
        ),
        ({"names": ["web1"]}, "networks[0] (overlay_network).names: expected a dict of DNS name -> address, got list"),
        ({"names": {"web1": "nope"}}, "networks[0] (overlay_network).names['web1']: 'nope'"),
        (
            {"endpoints": [{**NET["endpoints"][0], "attached": "sometimes"}]},
            "endpoints[0].attached: 'sometimes' is not a boolean",
        ),
    ],
)
def test_bad_network_fields_are_named(change, message):
    with pytest.raises(InputError) as err:
        _host_preflight.check_input(params({**NET, **change}))
    assert message in str(err.value)


def test_missing_keys_duplicates_and_vtep():
    with pytest.raises(InputError, match=r"networks\[0\] \(x\): missing key\(s\) port, mtu, netns"):
        _host_preflight.check_input(params({"name": "x", "vni": 1}))
    with pytest.raises(InputError, match=r"networks\[1\] \(b\)\.vni: 256 is also the vni of networks\[0\]"):
        _host_preflight.check_input(params(NET, {**NET, "name": "b", "netns": "ovl-999"}))
    with pytest.raises(InputError, match=r"networks\[0\]: expected a network .* got str"):
        _host_preflight.check_input(params("overlay_network"))
    with pytest.raises(InputError, match=r"vtep: '198\.18\.1' is not an IP address"):
        _host_preflight.check_input(params(NET, vtep="198.18.1"))


class FakeNamespace:
    def __init__(self, links):
        self._links = links

    def links(self):
        return self._links


class FakeHandles:
    """Namespace name -> links, as the netlink adapter returns them (only the fields the check reads)."""

    def __init__(self, by_ns):
        self.by_ns = by_ns

    def __call__(self, name):
        return FakeNamespace(self.by_ns.get(name, []))


RECORD = {
    **_records.empty(),
    "networks": {"old": {"netns": "ovl-300", "vni": 300, "bridge": "br0", "vxlan": "vxlan0"}},
}


def vxlan(ifname, vni, port=4789, local="198.18.1.1", alias=None):
    return {
        "ifname": ifname,
        "kind": "vxlan",
        "alias": alias,
        "vxlan": {"vni": vni, "port": port, "local": local, "dev_index": 2, "learning": False, "proxy": True},
    }


@pytest.fixture
def netns(monkeypatch):
    def use(*names):
        monkeypatch.setattr(nl, "netns_list", lambda: list(names))

    return use


def test_a_foreign_vxlan_on_the_port_and_address_is_refused(netns):
    netns("ovl-256")
    handles = FakeHandles(
        {
            None: [vxlan("vxfor", 4242)],
            "ovl-256": [vxlan("vxlan0", 256, alias="netfleet.overlay network=overlay_network")],
        }
    )
    with pytest.raises(InputError) as err:
        _host_preflight.check_foreign_vxlan(handles, [NET], "198.18.1.1", RECORD)
    message = str(err.value)
    assert message.startswith("port: network 'overlay_network' needs UDP port 4789 on 198.18.1.1")
    assert "vxlan device vxfor (vni 4242, port 4789, local 198.18.1.1) in the host namespace" in message


@pytest.mark.parametrize(
    "links",
    [
        [vxlan("vxfor", 4242, port=4790)],  # another port
        [vxlan("vxfor", 4242, local="198.18.1.7")],  # bound to another address
        [vxlan("nfvx-000100", 256)],  # our own, left under its temporary name by an interrupted run
        [],  # only the recorded network's device, in its recorded netns (ours, to be purged)
    ],
)
def test_what_is_not_a_conflict(netns, links):
    netns("ovl-256", "ovl-300")
    handles = FakeHandles(
        {
            None: links,
            "ovl-256": [vxlan("vxlan0", 999)],  # at our place: ours, to be recreated
            "ovl-300": [vxlan("vxlan0", 300)],  # recorded: ours
        }
    )
    _host_preflight.check_foreign_vxlan(handles, [NET], "198.18.1.1", RECORD)


def test_a_wildcard_foreign_vxlan_is_refused(netns):
    netns("elsewhere")
    handles = FakeHandles({"elsewhere": [vxlan("vxany", 77, local=None)]})
    with pytest.raises(InputError, match=r"vxany \(vni 77, port 4789, no local address.*\) in netns elsewhere"):
        _host_preflight.check_foreign_vxlan(handles, [NET], "198.18.1.1", RECORD)


def test_check_mode_plans_a_netns_that_does_not_exist_yet_as_empty(monkeypatch):
    """One check-mode path: the planners predict against the netns to be made, which reads as empty, so the
    commands and the diff are those of a real run (test_role's check mode from scratch runs it end to end)."""
    monkeypatch.setattr(nl, "netns_exists", lambda name: False)
    ep = NET["endpoints"][0]
    steps = (
        (Netns, {"name": "ovl-256", "state": "present"}),
        (Bridge, {"name": "br0", "netns": "ovl-256", "mtu": 1450, "state": "present"}),
        (
            Veth,
            {"name": ep["veth"], "netns": "ovl-256", "master": "br0", "peer_name": "eth0", "peer_netns": ep["netns"],
             "address": ep["address"], "mac": ep["mac"], "mtu": ep["mtu"], "state": "present"},
        ),
    )  # fmt: skip
    with Handles() as handles:
        results = [cls(params, handles, check_mode=True).execute() for cls, params in steps]
    assert all(r["changed"] and r["before"] == {} for r in results)
    assert [c for r in results for c in r["commands"]] == [
        "ip netns add ovl-256",
        "ip -n ovl-256 link add br0 type bridge",
        "ip -n ovl-256 link set br0 mtu 1450",
        "ip -n ovl-256 link set br0 up",
        "ip netns add hosta",
        "ip -n ovl-256 link add veth-hosta type veth peer name eth0 netns hosta",
        "ip -n hosta link set eth0 address 02:42:0a:d5:00:02",
        "ip -n hosta link set eth0 mtu 1450",
        "ip -n hosta addr add 10.213.0.2/24 dev eth0",
        "ip -n hosta link set eth0 up",
        "ip -n hosta link set lo up",
        "ip -n ovl-256 link set veth-hosta mtu 1450 master br0 up",
    ]
    assert _host_diff.object_view("bridge", results[1]["after"]) == {"mtu": 1450, "up": True}
    assert _host_diff.object_view("veth", results[2]["after"]) == {
        "netns": "ovl-256",
        "master": "br0",
        "mtu": ep["mtu"],
        "up": True,
        "peer_netns": ep["netns"],
        "address": ep["address"],
        "mac": ep["mac"],
        "peer_mtu": ep["mtu"],
        "peer_up": True,
    }
    assert _host_diff.predicted_owned([NET]) == {"networks": ["overlay_network"], "endpoints": ["hosta"]}


def test_an_alias_proves_nothing_to_the_foreign_vxlan_check(netns):
    netns("hosta")
    forged = vxlan("vxlan0", 77, alias="netfleet.overlay network=overlay_network")  # made in an endpoint netns
    with pytest.raises(InputError, match=r"vxlan device vxlan0 \(vni 77, .*\) in netns hosta already uses it"):
        _host_preflight.check_foreign_vxlan(FakeHandles({"hosta": [forged]}), [NET], "198.18.1.1", RECORD)


def checked(*networks) -> list[dict]:
    """The networks as check_input leaves them, which is what the host checks read."""
    p = params(*networks)
    _host_preflight.check_input(p)
    return p["networks"]


def test_a_netns_the_collection_did_not_make_is_refused(existing):
    existing("hosta")  # `ip netns add hosta` by the user; nothing recorded
    with pytest.raises(InputError) as err:
        _host_preflight.check_netns_owned(checked(NET), _records.empty())
    message = str(err.value)
    assert message.startswith("host ")
    assert "netns hosta exists but netfleet.overlay did not create it" in message
    assert "the netns of endpoint 'hosta' (network 'overlay_network')" in message
    assert "nothing was changed" in message and "rename the endpoint" in message


def test_an_overlay_netns_the_collection_did_not_make_is_refused(existing):
    existing("ovl-256")
    with pytest.raises(InputError, match=r"netns ovl-256 exists .* overlay netns of network 'overlay_network' \(vni"):
        _host_preflight.check_netns_owned(checked(NET), _records.empty())


def test_recorded_or_missing_namespaces_pass(existing):
    existing("hosta", "ovl-256")
    record = _records.empty()
    record["networks"]["overlay_network"] = {"netns": "ovl-256", "vni": 256, "bridge": "br0", "vxlan": "vxlan0"}
    record["endpoints"]["hosta"] = {
        "network": "overlay_network",
        "netns": "hosta",
        "veth": "veth-hosta",
        "ifname": "eth0",
        "netns_created": True,
    }
    _host_preflight.check_netns_owned(checked(NET), record)
    existing()  # nothing exists yet: the run creates it
    _host_preflight.check_netns_owned(checked(NET), _records.empty())


def test_peer_hosts_names_and_ifname_are_checked():
    p = params({**NET, "peer_hosts": {"198.18.1.2": "h2", "2001:DB8::3": None}})
    _host_preflight.check_input(p)
    assert p["networks"][0]["peer_hosts"] == {"198.18.1.2": "h2", "2001:db8::3": None}
    assert p["networks"][0]["endpoints"][0]["ifname"] == "eth0"
    for change, message in (
        ({"peer_hosts": ["h2"]}, r"\.peer_hosts: expected a dict of VTEP -> hostname, got list"),
        ({"peer_hosts": {"h2": "h2"}}, r"\.peer_hosts\['h2'\]: 'h2' is not an IP address"),
        ({"peer_hosts": {"198.18.1.2": ""}}, r"peer_hosts\['198.18.1.2'\]: '' is not a valid name"),
        ({"name": "a\nb"}, r"networks\[0\]\.name: 'a\\nb' is not a valid name"),
    ):
        with pytest.raises(InputError, match=message):
            _host_preflight.check_input(params({**NET, **change}))


def test_removed_networks_and_endpoints_are_listed_by_name():
    owned = {
        "networks": {"backend": {"vni": 300, "netns": "ovl-300"}},
        "endpoints": {"web2": {"network": "backend", "netns": "web2"}},
    }
    text = _host_diff.removed_text({"networks": ["backend"], "endpoints": ["web2"]}, owned)
    assert text == (
        "remove endpoint web2 (network backend, netns web2)\nremove network backend (vni 300, netns ovl-300)\n"
    )
