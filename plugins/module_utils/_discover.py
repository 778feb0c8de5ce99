# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what this collection owns on a host, and the host's underlay.  May change without notice.
"""Read one host's overlay state: what this collection owns there, the kernel, the underlay.

What the collection owns is what its ownership record says (:mod:`._records`), looked for only where the
collection builds: a network's overlay netns, and an endpoint's netns, whose interface must be the far end of the
endpoint's veth in the overlay netns (:func:`is_pair`). Interface aliases are still written, for people reading
``ip link``, but never trusted: a workload with NET_ADMIN in an endpoint netns can write any alias there.

A host that release 0.1.0 converged has no record. :func:`adopt_legacy` then takes over what 0.1.0 made, from its
aliases, but only inside namespaces named ``ovl-<vni>``: a vxlan device of that VNI with the network alias, and
veths with the endpoint alias whose peer really is in the netns the alias names.
"""

from __future__ import annotations

import os
import platform
import re
import shutil

from ansible_collections.netfleet.overlay.plugins.module_utils import _records
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    BRIDGE,
    ENDPOINT_IFNAME,
    WIREGUARD_NETNS,
    overlay_netns_vni,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

ALIAS_PREFIX = "netfleet.overlay "
NETWORK_ALIAS = ALIAS_PREFIX + "network="
_ENDPOINT_ALIAS_RE = re.compile(r"^netfleet\.overlay endpoint=(\S+) netns=(\S+)$")


def network_alias(name: str) -> str:
    return f"{NETWORK_ALIAS}{name}"


def endpoint_alias(name: str, netns: str) -> str:
    return f"{ALIAS_PREFIX}endpoint={name} netns={netns}"


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


def wireguard_owned(record: dict) -> bool:
    """Whether the record says that the collection made the WireGuard namespace (``ovl-wg``) and its tunnel: only
    then is an existing ``ovl-wg`` the collection's to converge or to delete."""
    return bool(record.get("wireguard"))


def netns_names() -> list[str]:
    """Every named netns of the host whose name is a valid one (sorted): what the controller checks the plan's
    namespaces against."""
    names = []
    for name in nl.netns_list():
        try:
            v.netns_name(name, "netns")
        except v.InputError:
            continue
        if name.isprintable():
            names.append(name)
    return names


def is_pair(near: dict | None, far: dict | None) -> bool:
    """Whether ``near`` and ``far`` are the two ends of one veth in two namespaces: each one's IFLA_LINK is the
    other's index, and each has a link-netnsid (its peer is in another namespace)."""
    return bool(
        near
        and far
        and near["kind"] == "veth"
        and far["kind"] == "veth"
        and near["link_index"] == far["index"]
        and far["link_index"] == near["index"]
        and near["link_netnsid"] is not None
        and far["link_netnsid"] is not None
    )


def _label(value) -> str:
    return value if isinstance(value, str) and value.isprintable() else repr(value)


def _interface(value, field: str) -> str:
    """An interface name read from the kernel (bytes when it is not UTF-8) checked like input."""
    if not isinstance(value, str):
        raise v.InputError(f"{field}: {value!r} is not UTF-8")
    return v.interface(value, field)


def _links(handles, netns: str) -> dict | None:
    """``{ifname: link}`` of a netns, or None when it is gone or cannot be opened."""
    if not nl.netns_exists(netns):
        return None
    try:
        return {link["ifname"]: link for link in handles(netns).links()}
    except nl.NetlinkOpError:
        return None


def owned(handles, record: dict) -> dict:
    """The networks and endpoints of ``record`` whose namespaces exist, with their kernel state.

    Returns ``{'networks': {name: {...}}, 'endpoints': {name: {...}}}``. A recorded object whose devices were
    deleted by hand is still reported (it is the collection's, and the next run repairs it); one whose netns is
    gone is not.
    """
    networks: dict = {}
    endpoints: dict = {}
    links_of: dict = {}
    for name, rec in record["networks"].items():
        links = links_of[rec["netns"]] = _links(handles, rec["netns"])
        if links is None:
            continue
        vx = links.get(rec["vxlan"])
        vx = vx if vx and vx["kind"] == "vxlan" and vx.get("vxlan") else None
        bridge = links.get(rec["bridge"])
        bridge = bridge if bridge and bridge["kind"] == "bridge" else None
        x = vx["vxlan"] if vx else {}
        networks[name] = {
            "name": name,
            "netns": rec["netns"],
            "vxlan": rec["vxlan"] if vx else None,
            "vni": x.get("vni", rec["vni"]),
            "port": x.get("port"),
            "local": x.get("local"),
            "learning": x.get("learning"),
            "proxy": x.get("proxy"),
            "mtu": vx["mtu"] if vx else None,
            "bridge": bridge["ifname"] if bridge else None,
            "bridge_mtu": bridge["mtu"] if bridge else None,
        }
    for name, rec in record["endpoints"].items():
        if not nl.netns_exists(rec["netns"]):
            continue
        net = record["networks"].get(rec["network"])
        overlay_netns = net["netns"] if net else None
        near = (links_of.get(overlay_netns) or {}).get(rec["veth"])
        ep = endpoints[name] = {
            "name": name,
            "netns": rec["netns"],
            "veth": rec["veth"],
            "overlay_netns": overlay_netns,
            "network": rec["network"],
            "ip": None,
            "prefixlen": None,
            "mac": None,
            "mtu": near["mtu"] if near else None,
            "ifname": rec["ifname"],
            "netns_created": rec["netns_created"],
            "attached": not rec["netns_created"],  # joined a netns of the user's (netns:), which stays theirs
        }
        try:
            ns = handles(rec["netns"])
            far = ns.link(rec["ifname"])
            if is_pair(near, far):
                addrs = ns.addresses(far["index"])
                ep.update(
                    mac=far["mac"],
                    ip=addrs[0]["address"] if addrs else None,
                    prefixlen=addrs[0]["prefixlen"] if addrs else None,
                )
        except nl.NetlinkOpError:
            continue
    return {"networks": networks, "endpoints": endpoints}


def _alias(link: dict, netns: str, warnings: list) -> str | None:
    """A link's alias as text, or None; an alias that is not UTF-8 is named in a warning and ignored."""
    alias = link["alias"]
    if isinstance(alias, bytes):
        if alias.startswith(ALIAS_PREFIX.encode()):
            warnings.append(
                f"netns {netns}: link {_label(link['ifname'])} has an alias that is not UTF-8 ({alias!r});"
                " it is ignored"
            )
        return None
    return alias


def adopt_legacy(handles, warnings: list) -> dict:
    """A record of what release 0.1.0 made on this host, read from its aliases where the collection builds.

    Only namespaces named ``ovl-<vni>`` are read. There, a vxlan device of that VNI whose alias names a network is
    that network's, and a veth whose alias names an endpoint and a netns is that endpoint's when its peer is the
    endpoint's ``eth0`` in that very netns. An alias that is not adopted is named in ``warnings``.
    """
    record = _records.empty()
    for netns in nl.netns_list():
        vni = overlay_netns_vni(netns)
        if vni is None:
            continue
        try:
            links = handles(netns).links()
        except nl.NetlinkOpError:
            continue
        by_index = {link["index"]: link for link in links}
        network = None
        for link in links:
            alias = _alias(link, netns, warnings) if link["kind"] == "vxlan" else None
            if not alias or not alias.startswith(NETWORK_ALIAS):
                continue
            name = alias[len(NETWORK_ALIAS) :]
            try:
                _records.name(name, "network")
                _interface(link["ifname"], "vxlan")
            except v.InputError as exc:
                warnings.append(f"netns {netns}: vxlan {_label(link['ifname'])} alias {alias!r}: not adopted ({exc})")
                continue
            if (link.get("vxlan") or {}).get("vni") != vni or name in record["networks"]:
                warnings.append(
                    f"netns {netns}: vxlan {link['ifname']} alias {alias!r}: not adopted (vni"
                    f" {(link.get('vxlan') or {}).get('vni')}, or the network is in another netns as well)"
                )
                continue
            master = by_index.get(link["master_index"]) if link["master_index"] else None
            bridge = master["ifname"] if master and master["kind"] == "bridge" else BRIDGE
            record["networks"][name] = {"netns": netns, "vni": vni, "bridge": bridge, "vxlan": link["ifname"]}
            network = name
            break
        if network is None:
            continue
        for link in links:
            alias = _alias(link, netns, warnings) if link["kind"] == "veth" else None
            if not alias or not alias.startswith(ALIAS_PREFIX + "endpoint="):
                continue
            endpoint = _legacy_endpoint(handles, netns, network, link, alias)
            if isinstance(endpoint, str):
                warnings.append(f"netns {netns}: veth {_label(link['ifname'])} alias {alias!r}: {endpoint}")
                continue
            name, entry = endpoint
            record["endpoints"][name] = entry
    return record


def _legacy_endpoint(handles, netns: str, network: str, link: dict, alias: str):
    """``(name, record entry)`` of a 0.1.0 endpoint veth, or why it is not adopted."""
    match = _ENDPOINT_ALIAS_RE.match(alias)
    if not match:
        return "not adopted (not an alias that netfleet.overlay 0.1.0 wrote)"
    name, ep_netns = match.groups()
    try:
        _records.name(name, "endpoint")
        v.netns_name(ep_netns, "netns")
        _interface(link["ifname"], "veth")
    except v.InputError as exc:
        return f"not adopted ({exc})"
    if overlay_netns_vni(ep_netns) is not None or ep_netns == WIREGUARD_NETNS or not ep_netns.isprintable():
        return f"not adopted (netns {ep_netns!r} is not an endpoint's)"
    far = (_links(handles, ep_netns) or {}).get(ENDPOINT_IFNAME)
    if not is_pair(link, far):
        return f"not adopted: its peer is not {ENDPOINT_IFNAME} in netns {ep_netns}"
    entry = {
        "network": network,
        "netns": ep_netns,
        "veth": link["ifname"],
        "ifname": ENDPOINT_IFNAME,
        "netns_created": True,
    }
    return name, entry


def legacy_peers(handles, record: dict) -> dict:
    """``{network: {vtep: None}}``: the dst of every permanent FDB entry of each adopted network's vxlan device
    (a host converged by 0.1.0 has no record of which host a VTEP belongs to)."""
    peers = {}
    for name, rec in record["networks"].items():
        try:
            ns = handles(rec["netns"])
            index = ns.link_index(rec["vxlan"])
            pairs = ns.table_dump("fdb", index, permanent_only=True) if index else []
        except nl.NetlinkOpError:
            continue
        peers[name] = {dst: None for _mac, dst in sorted(pairs, key=lambda pair: pair[1]) if dst}
    return peers
