# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what this collection owns on a host, and the host's underlay.  May change without notice.
"""Read one host's overlay state.

Ownership is written into the kernel itself, as interface aliases (``ip link show`` prints them):
``vxlan0`` of a network carries ``netfleet.overlay network=<name>`` and the bridge-side end of an endpoint's veth
carries ``netfleet.overlay endpoint=<name> netns=<endpoint netns>``.  Nothing else is ever purged.
"""

from __future__ import annotations

import os
import platform
import shutil

from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl

ALIAS_PREFIX = "netfleet.overlay "


def network_alias(name: str) -> str:
    return f"{ALIAS_PREFIX}network={name}"


def endpoint_alias(name: str, netns: str) -> str:
    return f"{ALIAS_PREFIX}endpoint={name} netns={netns}"


def parse_alias(alias: str | None) -> dict:
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return {}
    return dict(word.split("=", 1) for word in alias[len(ALIAS_PREFIX) :].split() if "=" in word)


def kernel_info() -> dict:
    release = platform.release()
    parts = [int(x) for x in release.split("-")[0].split(".")[:2] if x.isdigit()]
    mods = f"/lib/modules/{release}"
    vxlan = os.path.isdir("/sys/module/vxlan") or any(
        name.startswith("vxlan.ko")
        for _root, _dirs, files in os.walk(os.path.join(mods, "kernel/drivers/net"))
        for name in files
    )
    return {"release": release, "version": parts, "vxlan": vxlan}


def nft_binary() -> str | None:
    """Path of ``nft`` (the VTEP allowlist needs it), also looked for in the sbin directories."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which("nft", path=path)


def underlay(ns: nl.Namespace, vtep: str | None) -> dict:
    """The VTEP (given, or the first address of the default-route interface) and its interface's MTU."""
    links = {link["index"]: link for link in ns.links()}
    if vtep:
        for index, link in links.items():
            if any(a["address"] == vtep for a in ns.addresses(index)):
                return {"vtep": vtep, "vtep_dev": link["ifname"], "underlay_mtu": link["mtu"], "vtep_is_local": True}
        return {"vtep": vtep, "vtep_dev": None, "underlay_mtu": None, "vtep_is_local": False}
    for family in (4, 6):
        index = ns.default_route_dev(family)
        if index and index in links:
            addrs = [a["address"] for a in ns.addresses(index) if a["family"] == family]
            if addrs:
                link = links[index]
                return {
                    "vtep": addrs[0],
                    "vtep_dev": link["ifname"],
                    "underlay_mtu": link["mtu"],
                    "vtep_is_local": True,
                }
    return {"vtep": None, "vtep_dev": None, "underlay_mtu": None, "vtep_is_local": False}


def owned(handles) -> dict:
    """Networks and endpoints that carry this collection's alias, with their kernel state.

    Returns ``{'networks': {name: {...}}, 'endpoints': {name: {...}}}``.
    """
    networks: dict = {}
    endpoints: dict = {}
    for netns in nl.netns_list():
        try:
            ns = handles(netns)
            links = ns.links()
        except nl.NetlinkOpError:
            continue  # vanished meanwhile, or not a namespace we can open
        by_index = {link["index"]: link for link in links}
        for link in links:
            tag = parse_alias(link["alias"])
            if link["kind"] == "vxlan" and "network" in tag:
                bridge = by_index.get(link["master_index"]) if link["master_index"] else None
                x = link["vxlan"]
                networks[tag["network"]] = {
                    "name": tag["network"],
                    "netns": netns,
                    "vxlan": link["ifname"],
                    "vni": x["vni"],
                    "port": x["port"],
                    "local": x["local"],
                    "learning": x["learning"],
                    "proxy": x["proxy"],
                    "mtu": link["mtu"],
                    "bridge": bridge["ifname"] if bridge else None,
                    "bridge_mtu": bridge["mtu"] if bridge else None,
                }
        for link in links:
            tag = parse_alias(link["alias"])
            if link["kind"] == "veth" and "endpoint" in tag:
                network = next((n for n in networks.values() if n["netns"] == netns), None)
                endpoints[tag["endpoint"]] = {
                    "name": tag["endpoint"],
                    "netns": tag.get("netns"),
                    "veth": link["ifname"],
                    "overlay_netns": netns,
                    "network": network["name"] if network else None,
                    "ip": None,
                    "prefixlen": None,
                    "mac": None,
                    "mtu": link["mtu"],
                }
    for ep in endpoints.values():
        if not ep["netns"] or not nl.netns_exists(ep["netns"]):
            continue
        try:
            ns = handles(ep["netns"])
            eth = ns.link("eth0")
        except nl.NetlinkOpError:
            continue
        if eth:
            addrs = ns.addresses(eth["index"])
            ep.update(
                mac=eth["mac"],
                ip=addrs[0]["address"] if addrs else None,
                prefixlen=addrs[0]["prefixlen"] if addrs else None,
                ifname="eth0",
            )
    return {"networks": networks, "endpoints": endpoints}
