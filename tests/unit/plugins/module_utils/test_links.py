# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link planners' shared parts on fake namespaces: refusing a device of another kind, and deleting a link."""

from __future__ import annotations

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils import _links
from ansible_collections.netfleet.overlay.plugins.module_utils._validate import InputError


class FakeNamespace:
    """Links by name (only the fields the planners read); records deletions."""

    def __init__(self, name, links):
        self.label = f"netns {name}" if name else "the host namespace"
        self.links = links
        self.deleted = []

    def link(self, ifname):
        return self.links.get(ifname)

    def link_index(self, ifname):
        link = self.links.get(ifname)
        return link["index"] if link else None

    def link_del(self, ifname, index):
        self.deleted.append((ifname, index))
        del self.links[ifname]


class FakeHandles:
    def __init__(self, by_ns):
        self.open = {name: FakeNamespace(name, links) for name, links in by_ns.items()}

    def __call__(self, name):
        if name not in self.open:
            self.open[name] = FakeNamespace(name, {})
        return self.open[name]


def link(index, kind, **extra):
    return {"index": index, "kind": kind, "mtu": 1450, "up": True, "master": None, "alias": None, **extra}


VXLAN = {"vni": 256, "port": 4789, "local": "198.18.1.1", "dev_index": None, "learning": False, "proxy": True}

BRIDGE = {"name": "br0", "netns": "ovl-256", "mtu": None, "state": "absent"}
VX = {"name": "vxlan0", "netns": "ovl-256", "state": "absent"}
VETH = {"name": "veth-a", "netns": "ovl-256", "peer_name": "eth0", "peer_netns": None, "state": "absent"}


@pytest.mark.parametrize(
    ("cls", "params", "kind", "message"),
    [
        (_links.Bridge, BRIDGE, "dummy", "name: br0 in netns ovl-256 is a dummy device, not a bridge; "),
        (_links.Bridge, BRIDGE, None, "name: br0 in netns ovl-256 is a None device, not a bridge; "),
        (_links.Vxlan, VX, "bridge", "name: vxlan0 in netns ovl-256 is a bridge device, not vxlan; "),
        (_links.Vxlan, VX, None, "name: vxlan0 in netns ovl-256 is a plain device, not vxlan; "),
        (_links.Veth, VETH, "vxlan", "name: veth-a in netns ovl-256 is a vxlan device, not a veth; "),
        (_links.Veth, VETH, None, "name: veth-a in netns ovl-256 is a plain device, not a veth; "),
    ],
)
def test_a_device_of_another_kind_is_refused(cls, params, kind, message):
    handles = FakeHandles({"ovl-256": {params["name"]: link(7, kind)}})
    with pytest.raises(InputError) as err:
        cls(params, handles).read()
    assert str(err.value) == message + "remove it or choose another name"


@pytest.mark.parametrize("cls", [_links.Bridge, _links.Vxlan, _links.Veth])
def test_an_absent_link_reads_as_none(cls):
    params = {_links.Bridge: BRIDGE, _links.Vxlan: VX, _links.Veth: VETH}[cls]
    assert cls(params, FakeHandles({"ovl-256": {}})).read() is None


@pytest.mark.parametrize(
    ("cls", "params", "existing", "netns"),
    [
        (_links.Bridge, BRIDGE, link(7, "bridge"), "ovl-256"),
        (_links.Bridge, {**BRIDGE, "netns": None}, link(7, "bridge"), None),
        (_links.Vxlan, VX, link(7, "vxlan", vxlan=VXLAN), "ovl-256"),
        (_links.Veth, VETH, link(7, "veth", link_index=3), "ovl-256"),
    ],
)
@pytest.mark.parametrize("check_mode", [True, False])
def test_state_absent_deletes_the_link(cls, params, existing, netns, check_mode):
    handles = FakeHandles({netns: {params["name"]: existing}})
    result = cls(dict(params, netns=netns), handles, check_mode).execute()
    ip = f"ip -n {netns}" if netns else "ip"
    assert result["commands"] == [f"{ip} link del {params['name']}"]
    assert result["changed"] is True
    assert result["after"] == {}
    assert handles(netns).deleted == ([] if check_mode else [(params["name"], 7)])


def test_a_vxlan_with_another_vni_is_deleted_and_recreated():
    handles = FakeHandles({"ovl-256": {"vxlan0": link(7, "vxlan", vxlan=VXLAN)}})
    params = dict(VX, state="present", vni=257, port=4789, local=None, dev=None, learning=False, proxy=True)
    obj = _links.Vxlan(dict(params, master=None, mtu=1450), handles, check_mode=True)
    obj._underlay_checks = lambda: setattr(obj, "dev_index", None)
    result = obj.execute()
    assert result["commands"][0] == "ip -n ovl-256 link del vxlan0"
    assert result["recreated"] is True
    assert result["recreate_reason"] == "vni 256 -> 257, local 198.18.1.1 -> None"
    assert handles("ovl-256").deleted == []
