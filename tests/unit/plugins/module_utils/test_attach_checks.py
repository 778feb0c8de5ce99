# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's side of an attached endpoint (issue 14, ``netns:``) on plain data: the record never claims the
user's netns, the checks before any change (a missing netns, an interface that is already there, a netns the
collection made), and the veth that leaves the user's ``lo`` alone."""

from __future__ import annotations

import copy
import platform

import pytest
from support.fleet_data import H1_NET

from ansible_collections.netfleet.overlay.plugins.module_utils import _host_diff, _host_preflight, _records
from ansible_collections.netfleet.overlay.plugins.module_utils._host import HostConverger
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Veth
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError

HOST = platform.node()
APP1 = {
    "name": "app1",
    "netns": "app1",
    "attached": True,
    "ifname": "ovl0",
    "veth": "veth-app1",
    "address": "10.213.0.50/24",
    "mac": "02:42:0a:d5:00:32",
    "mtu": 1450,
}
BACKEND = {**H1_NET, "name": "backend", "vni": 300, "netns": "ovl-300", "endpoints": []}


def normalised(*networks) -> list[dict]:
    """Networks as check_input leaves them (every endpoint has ``attached`` and ``ifname``)."""
    params = {"vtep": "198.18.1.1", "state": "present", "networks": copy.deepcopy(list(networks))}
    _host_preflight.check_input(params)
    return params["networks"]


def with_app1(net: dict = H1_NET, **change) -> dict:
    return {**net, "endpoints": [*net["endpoints"], {**APP1, **change}]}


def record_of(wanted: list[dict], before: dict | None = None) -> dict:
    c = HostConverger({"vtep": "198.18.1.1", "preserve_vteps": []}, check_mode=False)
    c.record = copy.deepcopy(before or _records.empty())
    c._intend(wanted)
    return _records.check(c.record)  # what is written reads back


# -- the record ---------------------------------------------------------------------------------------------------


def test_an_attached_netns_is_never_recorded_as_made():
    wanted = normalised(
        with_app1(), {**BACKEND, "endpoints": [{**APP1, "name": "app1b", "veth": "veth-app1b", "ifname": "ovl1"}]}
    )
    record = record_of(wanted)
    endpoints = record["endpoints"]
    assert endpoints["hosta"]["netns_created"] is True
    assert endpoints["app1"] == {
        "network": "overlay_network",
        "netns": "app1",
        "veth": "veth-app1",
        "ifname": "ovl0",
        "netns_created": False,
    }
    assert endpoints["app1b"]["netns_created"] is False and endpoints["app1b"]["ifname"] == "ovl1"
    # a second run (the record read back) records the same
    assert record_of(wanted, record) == record


def test_a_purge_keeps_the_attached_netns_and_deletes_only_the_veth(monkeypatch):
    """Removing the network takes an attached endpoint's veth by name (never the netns); a made netns goes."""
    monkeypatch.setattr(nl, "netns_exists", lambda name: True)
    c = HostConverger({"vtep": "198.18.1.1", "preserve_vteps": []}, check_mode=False)
    done = []
    monkeypatch.setattr(c, "_object", lambda handles, cls, params: done.append((cls.__name__, params)))
    monkeypatch.setattr(c, "_remove_netns", lambda handles, name: done.append(("del", name)))
    owned = {
        "networks": {"overlay_network": {"name": "overlay_network", "netns": "ovl-256"}},
        "endpoints": {
            name: {
                "name": name,
                "network": "overlay_network",
                "overlay_netns": "ovl-256",
                "netns": netns,
                "veth": f"veth-{name}",
                "ifname": ifname,
                "netns_created": name == "hosta",
            }
            for name, netns, ifname in (("hosta", "hosta", "eth0"), ("app1", "app1", "ovl0"))
        },
    }
    c.to_remove = c.plan_purge(owned, [])
    c.purge(None, owned, [])
    assert [(kind, p["name"], p["peer_netns"], p["state"]) for kind, p in done if kind == "Veth"] == [
        ("Veth", "veth-app1", "app1", "absent")
    ]
    assert [name for kind, name in done if kind == "del"] == ["hosta", "ovl-256"]


def test_the_diff_says_the_attached_netns_stays():
    owned = {
        "networks": {},
        "endpoints": {
            "app1": {"network": "backend", "netns": "app1", "ifname": "ovl0", "attached": True},
            "web2": {"network": "backend", "netns": "web2", "ifname": "eth0", "attached": False},
        },
    }
    assert _host_diff.removed_text({"networks": [], "endpoints": ["app1", "web2"]}, owned) == (
        "remove endpoint app1 (network backend, interface ovl0 in netns app1, which stays)\n"
        "remove endpoint web2 (network backend, netns web2)\n"
    )


# -- the checks before any change --------------------------------------------------------------------------------


class FakeNamespace:
    def __init__(self, links):
        self._links = {link["ifname"]: link for link in links}

    def link(self, ifname):
        return self._links.get(ifname)


class FakeHandles:
    def __init__(self, by_ns):
        self.by_ns = by_ns

    def __call__(self, name):
        return FakeNamespace(self.by_ns.get(name, []))


def veth(ifname, index, peer_index):
    return {"ifname": ifname, "kind": "veth", "index": index, "link_index": peer_index,
            "link_netnsid": 0}  # fmt: skip


def test_an_attached_netns_of_the_user_passes_the_ownership_check(existing):
    existing("app1", "hosta", "ovl-256")
    record = record_of(normalised(H1_NET))
    _host_preflight.check_netns_owned(normalised(with_app1()), record)
    existing("app1")  # on a host where the run creates the rest
    _host_preflight.check_netns_owned(normalised(with_app1()), _records.empty())


def test_a_netns_the_collection_made_cannot_be_attached(existing):
    existing("hosta", "ovl-256")
    record = record_of(normalised(H1_NET))
    for netns, made in (("hosta", "endpoint 'hosta'"), ("ovl-256", "network 'overlay_network'")):
        with pytest.raises(InputError) as err:
            _host_preflight.check_netns_owned(normalised(with_app1(netns=netns)), record)
        assert str(err.value) == (
            f"host {HOST}: endpoint 'app1' netns: {netns} was created by netfleet.overlay for {made} and goes with"
            " it; netns: attaches a netns of your own. Nothing was changed"
        )


def test_a_netns_that_was_attached_is_not_ours_to_create_an_endpoint_in(existing):
    """The user's netns stays the user's after an endpoint joined it: an endpoint without netns: named like it is
    refused, as any netns the collection did not make."""
    existing("app1", "hosta", "ovl-256")
    record = record_of(normalised(with_app1()))
    plain = {key: value for key, value in APP1.items() if key not in ("attached", "ifname")}
    with pytest.raises(InputError, match=r"netns app1 exists but netfleet.overlay did not create it"):
        _host_preflight.check_netns_owned(normalised({**H1_NET, "endpoints": [plain]}), record)


def test_a_missing_attached_netns_is_named(existing):
    existing("hosta", "ovl-256")
    with pytest.raises(InputError) as err:
        _host_preflight.check_attached(FakeHandles({}), normalised(with_app1()), _records.empty())
    message = str(err.value)
    assert message.startswith(f"host {HOST}: endpoint 'app1' (network 'overlay_network') netns: app1 does not exist")
    assert "never creates it" in message and "nothing was changed" in message


def test_an_interface_that_is_already_there_is_named(existing):
    existing("app1", "ovl-256")
    links = {"app1": [{"ifname": "ovl0", "kind": "dummy", "index": 7, "link_index": None, "link_netnsid": None}]}
    with pytest.raises(InputError) as err:
        _host_preflight.check_attached(FakeHandles(links), normalised(with_app1()), _records.empty())
    assert str(err.value) == (
        f"host {HOST}: endpoint 'app1' (network 'overlay_network') interface: ovl0 already exists in netns app1 and"
        " is not netfleet.overlay's; the collection never takes over an interface it did not make. Give the endpoint"
        " another interface, or remove ovl0 from netns app1; nothing was changed"
    )
    # a veth whose peer is not ours is not ours either (here: another veth in the overlay netns)
    links = {"app1": [veth("ovl0", 7, 30)], "ovl-256": [veth("veth-app1", 31, 8), veth("other", 30, 9)]}
    with pytest.raises(InputError, match="interface: ovl0 already exists in netns app1"):
        _host_preflight.check_attached(FakeHandles(links), normalised(with_app1()), _records.empty())


def test_our_own_veth_end_is_not_a_conflict(existing):
    """The far end of the endpoint's veth (a second run), or of a recorded endpoint's that this run renames or moves
    to another network (the purge removes it first)."""
    existing("app1", "ovl-256", "ovl-300")
    wanted = normalised(with_app1())
    again = {"app1": [veth("ovl0", 7, 31)], "ovl-256": [veth("veth-app1", 31, 7)]}
    _host_preflight.check_attached(FakeHandles(again), wanted, record_of(wanted))
    # renamed: app1 is now app2, same netns and interface; the record names app1's veth
    renamed = normalised(with_app1(name="app2", veth="veth-app2"))
    _host_preflight.check_attached(FakeHandles(again), renamed, record_of(wanted))
    # moved to network backend: its old veth is in ovl-256, the record says so
    moved = normalised(H1_NET, {**BACKEND, "endpoints": [APP1]})
    _host_preflight.check_attached(FakeHandles(again), moved, record_of(wanted))
    # without the record, the same veth is someone else's
    with pytest.raises(InputError, match="interface: ovl0 already exists in netns app1"):
        _host_preflight.check_attached(FakeHandles(again), renamed, _records.empty())


# -- the veth: the user's lo is theirs ----------------------------------------------------------------------------


class VethNamespace:
    """Links by name with addresses by index (only what the veth planner reads)."""

    def __init__(self, name, links, addresses=None):
        self.label = f"netns {name}"
        self._links = links
        self._addresses = addresses or {}

    def link(self, ifname):
        return self._links.get(ifname)

    def link_index(self, ifname):
        link = self._links.get(ifname)
        return link["index"] if link else None

    def addresses(self, index):
        return self._addresses.get(index, [])


class VethHandles:
    def __init__(self, by_ns):
        self.by_ns = by_ns
        self.foreseen_links = set()

    def __call__(self, name):
        return self.by_ns[name]

    def foresee(self, netns, ifname=None):
        self.foreseen_links.add((netns, ifname))

    def foreseen(self, netns, ifname):
        return (netns, ifname) in self.foreseen_links


def user_netns(*extra_links):
    lo = {"index": 1, "kind": None, "mtu": 65536, "up": False, "mac": "00:00:00:00:00:00"}
    return VethNamespace("app1", {"lo": lo, **{link["ifname"]: link for link in extra_links}})


VETH_PARAMS = {
    "name": "veth-app1",
    "netns": "ovl-256",
    "master": "br0",
    "peer_name": "ovl0",
    "peer_netns": "app1",
    "address": "10.213.0.50/24",
    "mac": "02:42:0a:d5:00:32",
    "mtu": 1450,
    "alias": None,
    "state": "present",
}


@pytest.mark.parametrize(("peer_lo", "lo_up"), [(False, []), (True, ["ip -n app1 link set lo up"])])
def test_the_veth_brings_lo_up_only_in_a_netns_the_collection_made(existing, peer_lo, lo_up):
    existing("app1", "ovl-256")
    bridge = {"index": 2, "kind": "bridge", "mtu": 1450, "up": True}
    handles = VethHandles({"ovl-256": VethNamespace("ovl-256", {"br0": bridge}), "app1": user_netns()})
    result = Veth({**VETH_PARAMS, "peer_lo": peer_lo}, handles, check_mode=True).execute()
    assert result["commands"] == [
        "ip -n ovl-256 link add veth-app1 type veth peer name ovl0 netns app1",
        "ip -n app1 link set ovl0 address 02:42:0a:d5:00:32",
        "ip -n app1 link set ovl0 mtu 1450",
        "ip -n app1 addr add 10.213.0.50/24 dev ovl0",
        "ip -n app1 link set ovl0 up",
        *lo_up,
        "ip -n ovl-256 link set veth-app1 mtu 1450 master br0 up",
    ]


def test_an_attached_veth_in_place_is_unchanged_with_the_users_lo_down(existing):
    existing("app1", "ovl-256")
    near = {"index": 31, "kind": "veth", "link_index": 7, "mtu": 1450, "up": True, "master": "br0", "alias": None}
    far = {"ifname": "ovl0", "index": 7, "kind": "veth", "link_index": 31, "mtu": 1450, "up": True,
           "mac": "02:42:0a:d5:00:32"}  # fmt: skip
    app1 = user_netns(far)
    app1._addresses = {7: [{"address": "10.213.0.50", "prefixlen": 24}]}
    bridge = {"index": 2, "kind": "bridge", "mtu": 1450, "up": True}
    handles = VethHandles({"ovl-256": VethNamespace("ovl-256", {"veth-app1": near, "br0": bridge}), "app1": app1})
    result = Veth({**VETH_PARAMS, "peer_lo": False}, handles, check_mode=True).execute()
    assert result["changed"] is False and result["commands"] == []
    # the same pair in a netns the collection made: its lo is brought up
    result = Veth(VETH_PARAMS, handles, check_mode=True).execute()
    assert result["commands"] == ["ip -n app1 link set lo up"]
