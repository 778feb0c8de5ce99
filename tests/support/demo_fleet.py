# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo fleet of ``inventories/lab`` as the tests expect to find it on a lab that ``tools/netfleet-lab``
built: each host's VTEP, each network's VNI, and the network, address and MAC of every endpoint.

Everything is read from the inventory, so the tests follow it when it changes. The addresses it does not give
are computed by the IPAM rule of docs/guide.md (explicit addresses first, then the lowest free address from the
subnet's ``.2``, endpoints in (host, name) order), written here as an independent oracle rather than the
collection's IPAM called back. The VTEPs are the addresses netfleet-lab gives its hosts.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from devenv import REPO
from netfleet_lab.lab import host_addr

LAB_VARS = REPO / "inventories" / "lab"


def _vars(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


_NETWORKS = {net["name"]: net for net in _vars(LAB_VARS / "group_vars" / "all.yml")["overlay_networks"]}
_ENDPOINTS = {
    path.stem: _vars(path).get("overlay_endpoints", [])
    for path in sorted(LAB_VARS.glob("host_vars/*.yml"), key=lambda p: int(p.stem[1:]))
}

VNI = {name: net["vni"] for name, net in _NETWORKS.items()}
# host -> its VTEP (the address of its eth0 in the lab)
VTEP = {host: host_addr(int(host[1:])) for host in _ENDPOINTS}


def mac_of(ip: str) -> str:
    """Docker's MAC of an IPv4 endpoint: 02:42 and the four bytes of its address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ip).packed)


def _ipam() -> dict[tuple[str, str], tuple[str, str]]:
    wanted = sorted((host, ep["name"], ep) for host, eps in _ENDPOINTS.items() for ep in eps)
    taken = {str(ep["address"]) for _host, _name, ep in wanted if "address" in ep}
    demo = {}
    for host, name, ep in wanted:
        address = ep.get("address")
        if address is None:
            subnet = ipaddress.ip_network(_NETWORKS[ep["network"]]["subnet"])
            address = next(str(a) for a in subnet.hosts() if a > subnet[1] and str(a) not in taken)
            taken.add(address)
        demo[(host, name)] = (ep["network"], str(address))
    return demo


# (host, endpoint) -> (network, ip) of every endpoint of the demo fleet
DEMO = _ipam()
