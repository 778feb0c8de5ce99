# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain-data fixtures shared by the unit and lab tests: networks as the controller takes them, and h1's
overlay_network of the seed topology (hosta on h1, hostb on h2) as the controller hands it to overlay_host.
"""

from __future__ import annotations

# --- the controller's input: overlay_networks and overlay_endpoints ------------------------------------------
NET = {"name": "overlay_network", "vni": 256, "subnet": "10.213.0.0/24"}
RED = {"name": "red", "vni": 300, "subnet": "10.1.0.0/24"}
BLUE = {"name": "blue", "vni": 200, "subnet": "10.2.0.0/24", "port": 4790}


def ep(name: str, network: str = "overlay_network", **extra) -> dict:
    """One entry of a host's overlay_endpoints."""
    return {"name": name, "network": network, **extra}


# --- what overlay_host receives for h1 -------------------------------------------------------------------------
H1_ENDPOINT = {
    "name": "hosta",
    "netns": "hosta",
    "veth": "veth-hosta",
    "address": "10.213.0.2/24",
    "mac": "02:42:0a:d5:00:02",
    "mtu": 1450,
}
H1_NET = {
    "name": "overlay_network",
    "vni": 256,
    "port": 4789,
    "mtu": 1450,
    "netns": "ovl-256",
    "bridge": "br0",
    "vxlan": "vxlan0",
    "endpoints": [H1_ENDPOINT],
    "neigh": [{"ip": "10.213.0.3", "mac": "02:42:0a:d5:00:03"}],
    "fdb": [{"mac": "02:42:0a:d5:00:03", "dst": "198.18.1.2"}],
}

# --- issue 14: a network with egress and names, and an endpoint that joins an existing netns ------------------
BACKEND = {"name": "backend", "vni": 300, "subnet": "10.214.0.0/24"}
BACKEND_ON = {**BACKEND, "egress": True, "dns": True}
V6_ON = {"name": "six", "vni": 600, "subnet": "fd00:214::/64", "dns": True}  # egress is IPv4 only
