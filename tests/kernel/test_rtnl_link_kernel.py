# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The raw reads of Namespace (_rtnl.link) against pyroute2 and ``ip -j``, in-kernel; and a no-change read without
pyroute2.

Namespaces with a bridge, vxlan devices (IPv4 and IPv6 local, learning on and off, proxy, bound to a device),
veths with their peer in another namespace, aliases, masters, IPv4/IPv6 addresses and default routes: every
link, every link's addresses and both default routes as ``Namespace`` reads them must equal what the
pyroute2-based ``Namespace`` made of pyroute2's messages (kept in tests/support/pyroute2_reference.py as
functions of pyroute2 messages), and agree with ``ip -j -d link show`` / ``ip -j addr show``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.pyroute2_reference import reference_addresses, reference_default_devs, reference_link_dict

from ansible_collections.netfleet.overlay.plugins.module_utils import _discover
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import AF_INET, AF_INET6

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".venv" / "collections"  # tests/conftest.py links the checkout there


IPRoute = pytest.importorskip("pyroute2").IPRoute


# --- what the pyroute2-based Namespace made of pyroute2's messages (as it was before the raw reads) ---------------


def reference(name: str) -> dict:
    """links, addresses per index and default route devices, the way the pyroute2-based Namespace read them."""
    with IPRoute(netns=name, flags=0) as ipr:
        msgs = list(ipr.get_links())
        by_index = {m["index"]: m for m in msgs}
        links = [reference_link_dict(m, by_index) for m in msgs]
        addrs = {link["index"]: reference_addresses(ipr.get_addr(index=link["index"]), link["index"]) for link in links}
        routes = {
            family: next(iter(reference_default_devs(ipr.get_routes(family=fam, table=254))), None)
            for family, fam in ((4, AF_INET), (6, AF_INET6))
        }
    return {"links": links, "addrs": addrs, "routes": routes}


def raw(name: str) -> dict:
    with nl.Namespace(name) as ns:
        links = ns.links()
        return {
            "links": links,
            "addrs": {link["index"]: ns.addresses(link["index"]) for link in links},
            "routes": {family: ns.default_route_dev(family) for family in (4, 6)},
        }


# --- the namespaces -------------------------------------------------------------------------------------------


@pytest.fixture
def fleet(lab, nf):
    """host (underlay ul0 to peer, bridges, vxlans, veth endpoints), peer, ep (the endpoint's far end)."""
    host, peer, ep = lab.netns("host"), lab.netns("peer"), lab.netns("ep")
    lab.underlay(host, peer, addr_a="198.18.77.1/24", addr_b="198.18.77.2/24")
    ip = nf.ip
    ip(host, "addr", "add", "2001:db8:77::1/64", "dev", "ul0", "nodad")
    ip(peer, "addr", "add", "2001:db8:77::2/64", "dev", "ul0", "nodad")
    ip(host, "addr", "add", "198.18.78.1/32", "dev", "lo")
    ip(host, "route", "add", "default", "via", "198.18.77.2", "dev", "ul0")
    ip(host, "-6", "route", "add", "default", "via", "2001:db8:77::2", "dev", "ul0")
    ip(host, "route", "add", "198.18.90.0/24", "via", "198.18.77.2", "table", "100")
    ip(host, "link", "add", "br0", "address", "02:ee:77:00:00:10", "mtu", "1450", "type", "bridge")
    ip(host, "link", "add", "br1", "type", "bridge")
    ip(host, "link", "add", "vxlan0", "type", "vxlan", "id", "256", "dstport", "4789", "local", "198.18.77.1",
       "dev", "ul0", "nolearning", "proxy")  # fmt: skip
    ip(host, "link", "add", "vxlan6", "type", "vxlan", "id", "16777215", "dstport", "8472", "local",
       "2001:db8:77::1", "learning")  # fmt: skip
    ip(host, "link", "add", "vxlan9", "type", "vxlan", "id", "9", "dstport", "1", "group", "239.1.1.9",
       "dev", "ul0", "noproxy")  # fmt: skip
    ip(host, "link", "set", "vxlan0", "master", "br0", "alias", "netfleet.overlay network=n0")
    ip(host, "link", "set", "vxlan6", "master", "br1", "alias", "netfleet.overlay network=n6")
    ip(host, "link", "add", "veth-a", "mtu", "1450", "type", "veth", "peer", "name", "eth0", "netns", ep)
    ip(host, "link", "set", "veth-a", "master", "br0", "alias", f"netfleet.overlay endpoint=a netns={ep}", "up")
    ip(host, "link", "add", "veth-l", "type", "veth", "peer", "name", "veth-r")  # both ends here
    for dev in ("br0", "vxlan0", "vxlan6"):
        ip(host, "link", "set", dev, "up")
    ip(ep, "link", "set", "eth0", "address", "02:42:0a:d5:00:02", "up")
    ip(ep, "addr", "add", "10.213.0.2/24", "dev", "eth0")
    ip(ep, "addr", "add", "fd00:213::2/64", "dev", "eth0", "nodad")
    ip(ep, "addr", "add", "fe80::99/64", "dev", "eth0", "nodad")
    return host, peer, ep


def test_raw_reads_equal_pyroute2(fleet):
    for name in fleet:
        got, want = raw(name), reference(name)
        assert got == want, name
        for a, b in zip(got["links"], want["links"], strict=True):  # the same types as well (int vs bool)
            assert {k: type(v) for k, v in a.items()} == {k: type(v) for k, v in b.items()}
    host, _peer, ep = fleet
    got = raw(host)
    by_name = {link["ifname"]: link for link in got["links"]}
    assert got["routes"] == {4: by_name["ul0"]["index"], 6: by_name["ul0"]["index"]}
    assert by_name["vxlan0"]["vxlan"] == {
        "vni": 256, "port": 4789, "local": "198.18.77.1",
        "dev_index": by_name["ul0"]["index"], "learning": False, "proxy": True,
    }  # fmt: skip
    assert by_name["vxlan6"]["vxlan"] == {
        "vni": 16777215, "port": 8472, "local": "2001:db8:77::1",
        "dev_index": None, "learning": True, "proxy": False,
    }  # fmt: skip
    assert by_name["vxlan0"]["master"] == "br0" and by_name["veth-a"]["link_netnsid"] is not None
    assert raw(ep)["routes"] == {4: None, 6: None}


def test_raw_reads_agree_with_ip_json(fleet, nf):
    for name in fleet:
        got = raw(name)
        shown = json.loads(nf.ip(name, "-j", "-d", "link", "show").stdout)
        addrs = {a["ifindex"]: a for a in json.loads(nf.ip(name, "-j", "addr", "show").stdout)}
        assert [link["ifname"] for link in got["links"]] == [s["ifname"] for s in shown]
        for link, s in zip(got["links"], shown, strict=True):
            assert (link["index"], link["mtu"], link["mac"]) == (s["ifindex"], s["mtu"], s.get("address"))
            assert link["master"] == s.get("master") and link["alias"] == s.get("ifalias")
            assert link["up"] == ("UP" in s["flags"])
            assert link["link_netnsid"] == s.get("link_netnsid")
            info = s.get("linkinfo", {})
            assert link["kind"] == info.get("info_kind")
            if link["kind"] == "vxlan":
                data = info["info_data"]
                x = link["vxlan"]
                assert (x["vni"], x["port"], x["learning"], x["proxy"]) == (
                    data["id"], data["port"], data["learning"], data.get("proxy", False))  # fmt: skip
                assert x["local"] == (data.get("local") or data.get("local6"))
            want = [
                {"address": a["local"], "prefixlen": a["prefixlen"], "family": 6 if a["family"] == "inet6" else 4}
                for a in addrs[link["index"]]["addr_info"]
                if a.get("scope") != "link"
            ]
            assert sorted(got["addrs"][link["index"]], key=str) == sorted(want, key=str)


def test_missing_netns_and_lazy_ipr(fleet, lab):
    host = fleet[0]
    with pytest.raises(nl.NetlinkOpError, match=r"does not exist; create it first \(netfleet.overlay.netns\)"):
        nl.Namespace(lab.name("missing"))
    assert not os.path.exists(f"/run/netns/{lab.name('missing')}")
    with nl.Namespace(host) as ns:
        ns.links()
        assert ns._ipr is None  # reads never open pyroute2's IPRoute
        ns.link_set("br1", ns.link_index("br1"), state="up")  # the first write opens it
        assert ns._ipr is not None
        assert ns.link("br1")["up"] is True  # the cached dump was dropped by the write


NO_PYROUTE2 = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.netfleet.overlay.plugins.module_utils import _discover
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import Handles
host, ep = sys.argv[2], sys.argv[3]
# the ownership record that overlay_host would have written for the fixture's objects
record = {
    "version": 1,
    "networks": {
        "n0": {"netns": host, "vni": 256, "bridge": "br0", "vxlan": "vxlan0"},
        "n6": {"netns": host, "vni": 16777215, "bridge": "br1", "vxlan": "vxlan6"},
    },
    "endpoints": {"a": {"network": "n0", "netns": ep, "veth": "veth-a", "ifname": "eth0", "netns_created": True}},
    "peers": {},
}
with Handles() as handles:
    under = _discover.underlay(handles(host), None)
    owned = _discover.owned(handles, record)
print(json.dumps({"underlay": under, "owned": owned, "has": nl.HAS_PYROUTE2,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")}))
"""


def test_no_change_reads_never_import_pyroute2(fleet):
    host, _peer, ep = fleet
    proc = subprocess.run(
        [sys.executable, "-c", NO_PYROUTE2, str(COLLECTIONS), host, ep], capture_output=True, text=True, check=True
    )
    out = json.loads(proc.stdout)
    assert out["loaded"] == [] and out["has"] is True
    assert out["underlay"] == {"vtep": "198.18.77.1", "vtep_dev": "ul0", "underlay_mtu": 1500, "vtep_is_local": True}
    nets, eps = out["owned"]["networks"], out["owned"]["endpoints"]
    assert nets["n0"] == {
        "name": "n0", "netns": host, "vxlan": "vxlan0", "vni": 256, "port": 4789,
        "local": "198.18.77.1", "learning": False, "proxy": True, "mtu": 1450, "bridge": "br0",
        "bridge_mtu": 1450,
    }  # fmt: skip
    assert nets["n6"]["local"] == "2001:db8:77::1" and nets["n6"]["bridge"] == "br1"
    assert eps["a"] == {
        "name": "a", "netns": ep, "veth": "veth-a", "overlay_netns": host, "network": "n0",
        "ip": "10.213.0.2", "prefixlen": 24, "mac": "02:42:0a:d5:00:02", "mtu": 1450, "ifname": "eth0",
        "netns_created": True, "attached": False,
    }  # fmt: skip
    with nl.Namespace(host) as ns:  # the same through this process (pyroute2 may be loaded here: no matter)
        assert _discover.underlay(ns, None) == out["underlay"]
