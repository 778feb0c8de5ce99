# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two hosts, one overlay, built only with the modules: endpoints ping each other across VXLAN.

h1 and h2 are host namespaces joined by a veth underlay.  In each, Ansible runs the modules (so the vxlan socket
lives in h1/h2) to build an overlay namespace (br0 + vxlan0, VNI 256) and one endpoint, then programs the peer's
ARP and FDB entries.  Deleting hostb's FDB entry on h1 breaks the path; merging it back repairs it.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kernel

NET = "198.18.41"
HOSTS = {
    1: {"vtep": f"{NET}.1", "ip": "10.213.0.2", "mac": "02:42:0a:d5:00:02", "ep": "a"},
    2: {"vtep": f"{NET}.2", "ip": "10.213.0.3", "mac": "02:42:0a:d5:00:03", "ep": "b"},
}


def host_tasks(nf, lab, me: int) -> list:
    """What site.yml would run on host ``me``: overlay namespace, bridge, vxlan, endpoint, peer tables."""
    h, peer = HOSTS[me], HOSTS[3 - me]
    ovl = lab.name(f"o{me}")
    return [
        nf.Call("netns", {"name": ovl}),
        nf.Call("bridge", {"name": "br0", "netns": ovl, "mtu": 1450}),
        nf.Call(
            "vxlan",
            {
                "name": "vxlan0",
                "netns": ovl,
                "vni": 256,
                "port": 4789,
                "local": h["vtep"],
                "dev": "ul0",
                "master": "br0",
                "mtu": 1450,
            },
        ),
        # the MAC is derived from the address: 10.213.0.2 -> 02:42:0a:d5:00:02
        nf.Call(
            "veth",
            {
                "name": f"veth-{h['ep']}",
                "netns": ovl,
                "master": "br0",
                "peer_netns": lab.name(h["ep"]),
                "address": f"{h['ip']}/24",
                "mtu": 1450,
            },
        ),
        nf.Call(
            "neigh",
            {"netns": ovl, "dev": "vxlan0", "state": "overridden", "entries": [{"ip": peer["ip"], "mac": peer["mac"]}]},
        ),
        nf.Call(
            "fdb",
            {
                "netns": ovl,
                "dev": "vxlan0",
                "state": "overridden",
                "entries": [{"mac": peer["mac"], "dst": peer["vtep"]}],
            },
        ),
    ]


def ping(ns: str, target: str, *extra: str) -> str:
    return f"ip netns exec {ns} ping -n -q {' '.join(extra)} {target}"


def test_two_hosts_ping_over_vxlan(lab, nf):
    h1, h2 = lab.netns("h1"), lab.netns("h2")
    lab.underlay(h1, h2, addr_a=f"{NET}.1/24", addr_b=f"{NET}.2/24")
    hosta, hostb = lab.name("a"), lab.name("b")
    ovl1 = lab.name("o1")

    for r in nf.run_tasks(h1, host_tasks(nf, lab, 1)):
        nf.assert_ok(r)
        assert r["changed"] is True
    results = nf.run_tasks(
        h2,
        [
            *host_tasks(nf, lab, 2),
            nf.Cmd(ping(hosta, HOSTS[2]["ip"], "-c 2", "-W 1")),
            nf.Cmd(ping(hostb, HOSTS[1]["ip"], "-c 2", "-W 1")),
            # 1422 bytes of ICMP payload + 28 bytes of headers = the overlay MTU 1450, not fragmented
            nf.Cmd(ping(hosta, HOSTS[2]["ip"], "-c 1", "-W 1", "-M do", "-s 1422")),
        ],
    )
    *built, ab, ba, big = results
    for r in built:
        nf.assert_ok(r)
    assert ab["rc"] == 0, ab
    assert ba["rc"] == 0, ba
    assert big["rc"] == 0, big

    # the sockets are on the underlay of each host, the devices in the overlay namespaces
    for me, hns in ((1, h1), (2, h2)):
        vx = nf.Kernel.link(lab.name(f"o{me}"), "vxlan0")
        data = vx["linkinfo"]["info_data"]
        assert (data["id"], data["port"], data["local"]) == (256, 4789, HOSTS[me]["vtep"])
        assert (data["learning"], data["proxy"]) == (False, True)
        assert vx["mtu"] == 1450 and vx["master"] == "br0"
        assert "0.0.0.0:4789" in nf.nsexec(hns, "ss", "-H", "-uln").stdout
    # ARP for hostb was answered by vxlan0's proxy from the static entry: hosta knows hostb's derived MAC
    arp = nf.Kernel.neigh(hosta, "eth0")
    assert any(n["dst"] == HOSTS[2]["ip"] and n.get("lladdr") == HOSTS[2]["mac"] for n in arp), arp
    for ns in (hosta, hostb, lab.name("o1"), lab.name("o2")):
        for dev, link in nf.Kernel.links(ns).items():
            if dev != "lo":
                assert link["mtu"] == 1450, (ns, dev, link["mtu"])

    hostb_fdb = {"netns": ovl1, "dev": "vxlan0", "entries": [{"mac": HOSTS[2]["mac"], "dst": HOSTS[2]["vtep"]}]}
    deleted, broken, merged, repaired = nf.run_tasks(
        h1,
        [
            nf.Call("fdb", {**hostb_fdb, "state": "deleted"}),
            nf.Cmd(ping(hosta, HOSTS[2]["ip"], "-c 1", "-W 1")),
            nf.Call("fdb", {**hostb_fdb, "state": "merged"}),
            nf.Cmd(ping(hosta, HOSTS[2]["ip"], "-c 2", "-W 1")),
        ],
    )
    nf.assert_ok(deleted)
    assert deleted["changed"] is True
    assert deleted["counts"]["after"] == 0 and deleted["changes"]["deleted"] == hostb_fdb["entries"]
    assert broken["rc"] != 0, "with hostb's FDB entry gone, hosta must not reach hostb"
    nf.assert_ok(merged)
    assert merged["changed"] is True
    assert repaired["rc"] == 0, repaired
    assert nf.Kernel.permanent_fdb(ovl1, "vxlan0") == [{"mac": HOSTS[2]["mac"], "dst": HOSTS[2]["vtep"]}]
