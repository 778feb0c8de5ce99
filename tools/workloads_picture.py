# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write docs/images/workloads-topology.dot, README's picture of workloads on the overlay: the topology drawing
(``plugins/plugin_utils/topology.py``, what ``playbooks/topology.yml`` draws) of a two-host example fleet with one
network that has egress and dns (its gateway, DNS server and egress path on each host, an endpoint attached to a
podman netns) and one that has neither.

``make architecture`` runs it and renders the .svg; a unit test checks that both are what the code draws today.
"""

from __future__ import annotations

import sys
from pathlib import Path

import devenv

DOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "workloads-topology.dot"
TITLE = "workloads: egress, names, an attached netns"
NETWORKS = [
    {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"},
    {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24", "egress": True, "dns": True},
]
_VNI = {net["name"]: net["vni"] for net in NETWORKS}


def _endpoint(name: str, network: str, ip: str, netns: str | None = None) -> dict:
    mac = "02:42:" + ":".join(f"{int(byte):02x}" for byte in ip.split("."))
    return {
        "name": name,
        "netns": netns or name,
        "network": network,
        "ip": ip,
        "prefixlen": 24,
        "mac": mac,
        "attached": netns is not None,
    }


def _host(vtep: str, *endpoints: dict) -> dict:
    return {
        "vtep": vtep,
        "vtep_dev": "eth0",
        "pyroute2": True,
        "networks": {e["network"]: {"name": e["network"], "vni": _VNI[e["network"]]} for e in endpoints},
        "endpoints": {e["name"]: e for e in endpoints},
    }


# The facts that overlay_facts would give on each host of the example.
FACTS = {
    "h1": _host(
        "198.18.1.1",
        _endpoint("hosta", "overlay_network", "10.213.0.2"),
        _endpoint("web1", "backend", "10.214.0.2"),
        _endpoint("app1", "backend", "10.214.0.4", netns="podman-app1"),
    ),
    "h2": _host(
        "198.18.1.2",
        _endpoint("hostb", "overlay_network", "10.213.0.3"),
        _endpoint("web2", "backend", "10.214.0.3"),
    ),
}


def dot_text() -> str:
    """The picture's DOT text, as the topology drawing gives it for the example fleet."""
    devenv.import_collection()
    from ansible_collections.netfleet.overlay.plugins.plugin_utils.topology import topology_dot

    return topology_dot(FACTS, NETWORKS, title=TITLE)


def main() -> int:
    DOT.write_text(dot_text(), encoding="utf-8")
    print(DOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
