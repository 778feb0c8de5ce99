# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""overlay_host's tables of a flood network on plain data: a preserved VTEP keeps its unicast entries (and their
ARP entries), never its flood entry, and the vxlan device gets the network's proxy."""

from __future__ import annotations

import copy

import pytest
from support.fleet_data import H1_NET

from ansible_collections.netfleet.overlay.plugins.module_utils import _host, _table
from ansible_collections.netfleet.overlay.plugins.module_utils._host import HostConverger
from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC

PRESERVED = "198.18.1.3"
CURRENT = {
    "fdb": [
        (ZERO_MAC, "198.18.1.2"),
        (ZERO_MAC, PRESERVED),
        ("02:42:0a:d5:00:03", "198.18.1.2"),
        ("02:42:0a:d5:00:04", PRESERVED),
    ],
    "neigh": [("10.213.0.3", "02:42:0a:d5:00:03"), ("10.213.0.4", "02:42:0a:d5:00:04")],
}


class FakeNs:
    def link_index(self, name):
        return 7


@pytest.fixture
def read_current(monkeypatch):
    monkeypatch.setattr(_table, "read", lambda ns, spec, index: list(CURRENT[spec.name]))


def test_a_preserved_vtep_keeps_its_unicast_entries_but_not_its_flood_entry(read_current):
    """The flood list is the plan's: a network that stops flooding loses every flood entry, a preserved one too."""
    net = copy.deepcopy(H1_NET)  # flood off: the plan's fdb has no flood entry
    out = HostConverger({"vtep": "198.18.1.1", "preserve_vteps": [PRESERVED]}, check_mode=True).tables(
        lambda netns: FakeNs(), net
    )
    assert sorted((e["mac"], e["dst"]) for e in out["fdb"]["after"]) == [
        ("02:42:0a:d5:00:03", "198.18.1.2"),
        ("02:42:0a:d5:00:04", PRESERVED),
    ]
    assert sorted((e["ip"], e["mac"]) for e in out["neigh"]["after"]) == sorted(CURRENT["neigh"])


def test_the_vxlan_device_gets_the_networks_proxy(monkeypatch):
    seen = []

    def fake_object(self, handles, cls, params):
        seen.append((cls.__name__, params))
        return {"changed": False, "commands": []}

    monkeypatch.setattr(HostConverger, "_object", fake_object)
    monkeypatch.setattr(HostConverger, "tables", lambda self, handles, net: {})
    monkeypatch.setattr(_host._host_diff, "network_views", lambda net, objects, out: {})
    net = {**copy.deepcopy(H1_NET), "flood": True, "proxy": False, "endpoints": []}
    converger = HostConverger({"vtep": "198.18.1.1", "preserve_vteps": []}, check_mode=True)
    converger.network(None, net, {"vtep_dev": "eth0"})
    assert [p["proxy"] for name, p in seen if name == "Vxlan"] == [False]
