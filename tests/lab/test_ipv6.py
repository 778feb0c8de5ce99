# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv6 on the lab: an IPv6 overlay over the IPv4 underlay, and an overlay whose VTEPs are IPv6 addresses.

The lab's underlay is IPv4 (198.18.0.0/16).  For the IPv6 underlay each host's eth0 also gets a ULA address
(fd00:198:18::K/64) inside the lab hosts' own namespaces; nothing leaves the lab switch.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from devenv import ansible_env
from lab_helpers import REPO, build_lab, needs_root, run_ansible

pytestmark = [pytest.mark.lab, needs_root]

HOSTS = ("h1", "h2")
V4_VTEP = {"h1": "198.18.1.1", "h2": "198.18.1.2"}
V6_VTEP = {"h1": "fd00:198:18::1", "h2": "fd00:198:18::2"}
NETWORKS = """
overlay_networks:
  - {name: v6over4, vni: 600, subnet: "fd00:600::/64"}
  - {name: v6over6, vni: 601, subnet: "fd00:601::/64"}
"""
# v6over6 runs between the hosts' IPv6 VTEPs; a host has one VTEP, so the two overlays live on two fleets
# (two inventories over the same lab hosts) converged one after the other.
FLEET_V4 = {"h1": [("web6", "v6over4")], "h2": [("db6", "v6over4")]}
FLEET_V6 = {"h1": [("app6", "v6over6")], "h2": [("cache6", "v6over6")]}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from build_lab(tmp_path_factory.mktemp("nfl-v6") / "lab", len(HOSTS))


def write_inventory(path, lab, fleet, vteps, networks):
    """An inventory over the lab's hosts with its own endpoints and VTEPs (the connection vars come along)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "host_vars").mkdir(exist_ok=True)
    (path / "group_vars").mkdir(exist_ok=True)
    (path / "group_vars" / "all.yml").write_text(networks, encoding="utf-8")
    # an inventory source of its own (the hosts come from the lab's), so its vars directories are read
    (path / "lab.yml").write_text("all:\n  children:\n    lab:\n", encoding="utf-8")
    for host, endpoints in fleet.items():
        eps = "".join(f"  - {{name: {name}, network: {net}}}\n" for name, net in endpoints)
        (path / "host_vars" / f"{host}.yml").write_text(
            f"overlay_vtep: '{vteps[host]}'\noverlay_endpoints:\n{eps}", encoding="utf-8"
        )
    return ["-i", str(lab.inventory), "-i", str(path)]


def play(env, inventories, playbook, *args):
    res = run_ansible(env, *inventories, str(REPO / "playbooks" / playbook), *args, tool="ansible-playbook")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr
    return res.stdout


def vxlan_json(lab, host, netns):
    res = lab.exec(host, "ip", "-j", "-d", "-n", netns, "link", "show", "vxlan0")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)[0]


def tables(lab, host, netns):
    fdb = json.loads(lab.exec(host, "bridge", "-j", "-n", netns, "fdb", "show", "dev", "vxlan0").stdout)
    neigh = json.loads(lab.exec(host, "ip", "-j", "-n", netns, "neigh", "show", "dev", "vxlan0").stdout)
    own = {(e["mac"], e["dst"]) for e in fdb if "self" in e.get("flags", []) and "dst" in e}
    return own, {(e["dst"], e["lladdr"], tuple(e["state"])) for e in neigh}


def endpoint_address(lab, host, endpoint):
    out = json.loads(lab.exec(host, "ip", "-j", "-n", endpoint, "addr", "show", "dev", "eth0").stdout)
    (addr,) = [a for a in out[0]["addr_info"] if a["family"] == "inet6" and a["scope"] == "global"]
    return addr["local"], out[0]["address"]


@pytest.mark.parametrize(
    ("fleet", "vteps", "vni"),
    [(FLEET_V4, V4_VTEP, 600), (FLEET_V6, V6_VTEP, 601)],
    ids=["ipv6-overlay-ipv4-underlay", "ipv6-overlay-ipv6-underlay"],
)
def test_ipv6_overlay(lab, tmp_path, fleet, vteps, vni):
    for host in HOSTS:  # the IPv6 underlay: a ULA on each host's eth0 (nodad: usable at once)
        res = lab.exec(host, "ip", "addr", "replace", f"{V6_VTEP[host]}/64", "dev", "eth0", "nodad")
        assert res.returncode == 0, res.stderr
    env = ansible_env(tmp_path)
    inventories = write_inventory(tmp_path / "inv", lab, fleet, vteps, NETWORKS)
    play(env, inventories, "site.yml")
    second = play(env, inventories, "site.yml")
    assert "changed=1" not in second and "changed: [" not in second, second[-3000:]
    out = play(env, inventories, "verify.yml")
    assert "all as expected" in out, out[-3000:]

    netns = f"ovl-{vni}"
    addresses = {host: endpoint_address(lab, host, name) for host, ((name, _net),) in fleet.items()}
    for host in HOSTS:
        vx = vxlan_json(lab, host, netns)["linkinfo"]["info_data"]
        assert vx["id"] == vni and vx["port"] == 4789 and not vx["learning"] and vx["proxy"]
        assert ipaddress.ip_address(vx.get("local6") or vx.get("local")) == ipaddress.ip_address(vteps[host])
        # IPv6 VXLAN costs 70 bytes of headroom, IPv4 50: the MTU follows the underlay's family
        mtu = vxlan_json(lab, host, netns)["mtu"]
        assert mtu == (1430 if ":" in vteps[host] else 1450)
        (other,) = [h for h in HOSTS if h != host]
        ip, mac = addresses[other]
        fdb, neigh = tables(lab, host, netns)
        assert fdb == {(mac, vteps[other])}
        assert neigh == {(ip, mac, ("PERMANENT",))}
    # cross-host ping of the IPv6 endpoints, as in the seed's test
    (src,) = fleet["h1"]
    dst_ip = addresses["h2"][0]
    res = lab.exec("h1", "ip", "netns", "exec", src[0], "ping", "-6", "-c", "2", "-W", "2", dst_ip)
    assert res.returncode == 0, res.stdout + res.stderr
    play(env, inventories, "teardown.yml")
    leftover = lab.exec("h1", "ip", "netns", "list").stdout
    assert netns not in leftover and src[0] not in leftover
