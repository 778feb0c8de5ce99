# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What egress (issue 14) asks of the netlink layer, in-kernel: onlink routes added and deleted over the raw socket
(each twice: the second is done), read back as ``ip -j route`` shows them, and IPv4 forwarding of one interface
read and switched inside a named namespace, and nowhere else."""

from __future__ import annotations

import json

import pytest

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

pytestmark = pytest.mark.kernel


def forwarding(nf, ns: str, ifname: str) -> str:
    return nf.nsexec(ns, "cat", f"/proc/sys/net/ipv4/conf/{ifname}/forwarding").stdout.strip()


def test_onlink_routes_and_forwarding(lab, nf):
    ovl = lab.netns("o")
    nf.ip(ovl, "link", "add", "egress0", "type", "veth", "peer", "name", "ovg-1")
    nf.ip(ovl, "addr", "add", "10.214.0.1/24", "dev", "ovg-1")  # the main table exists once it holds a route
    for dev in ("egress0", "ovg-1"):
        nf.ip(ovl, "link", "set", dev, "up")
    with nl.Namespace(ovl) as ns:
        index = ns.link_index("egress0")
        for _attempt in range(2):
            ns.route("add", None, 0, "169.254.0.2", index)
            ns.route("add", "10.215.0.0", 24, "169.254.0.1", index)
        shown = json.loads(nf.ip(ovl, "-j", "route", "show").stdout)
        assert {(r["dst"], r.get("gateway"), r["dev"], "onlink" in r.get("flags", [])) for r in shown} == {
            ("default", "169.254.0.2", "egress0", True),
            ("10.215.0.0/24", "169.254.0.1", "egress0", True),
            ("10.214.0.0/24", None, "ovg-1", False),
        }
        read = [r for r in ns.routes(4) if r["oif"] == index]
        assert read == [
            {"dst": None, "dst_len": 0, "gateway": "169.254.0.2", "oif": index},
            {"dst": "10.215.0.0", "dst_len": 24, "gateway": "169.254.0.1", "oif": index},
        ]
        for _attempt in range(2):
            ns.route("del", None, 0, "169.254.0.2", index)
        assert [r["dst"] for r in ns.routes(4) if r["oif"] == index] == ["10.215.0.0"]
        # default routes that someone else added, without onlink or without a gateway, are deleted all the same
        other = ns.link_index("ovg-1")
        nf.ip(ovl, "route", "add", "default", "via", "10.214.0.254", "dev", "ovg-1")
        ns.route("del", None, 0, "10.214.0.254", other)
        nf.ip(ovl, "route", "add", "default", "dev", "ovg-1")
        ns.route("del", None, 0, None, other)
        assert not [r for r in ns.routes(4) if not r["dst_len"]]

        assert ns.ipv4_forwarding("egress0") is False
        ns.set_ipv4_forwarding("egress0", True)
        assert ns.ipv4_forwarding("egress0") is True
        assert (forwarding(nf, ovl, "egress0"), forwarding(nf, ovl, "ovg-1")) == ("1", "0")
        assert ns.ipv4_forwarding("nothing-here") is None
        ns.set_ipv4_forwarding("egress0", False)
        assert forwarding(nf, ovl, "egress0") == "0"
