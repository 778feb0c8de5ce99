# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what overlay_host checks before it changes anything.  May change without notice.
"""Checks of ``overlay_host``'s input and of the host, run before the first change.

``networks`` normally comes from the peer_tables filter, which has validated it; :func:`check_input` catches
hand-written input, so a missing key or a bad value fails by name instead of half-way through the run.
:func:`check_foreign_vxlan` catches what no filter can see: a vxlan device that this collection did not make and
that already uses a network's UDP port on the VTEP.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.netfleet.overlay.plugins.module_utils import _discover, _table
from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v

NETWORK_KEYS = ("name", "vni", "port", "mtu", "netns", "bridge", "vxlan", "endpoints", "neigh", "fdb")
ENDPOINT_KEYS = ("name", "netns", "veth", "address", "mac", "mtu")
# The vxlan planner creates a device under this name in the host namespace before moving it (see _links.Vxlan);
# one left behind by an interrupted run is ours and is removed on the next create.
TEMP_VXLAN_PREFIX = "nfvx-"


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


def check_input(params: dict) -> None:
    """Validate and normalise ``vtep`` and ``networks`` (in place); raise :class:`InputError` naming the field."""
    if params["state"] != "present":
        return  # absent only tears down: the networks are not looked at
    vtep = params["vtep"] = v.ip(params["vtep"], "vtep")
    seen: dict[tuple, str] = {}
    for i, net in enumerate(params["networks"]):
        where = f"networks[{i}]"
        if not isinstance(net, dict):
            raise v.InputError(f"{where}: expected a network as the peer_tables filter returns it, got {_kind(net)}")
        missing = [key for key in NETWORK_KEYS if key not in net]
        if missing:
            raise v.InputError(f"{where} ({net.get('name', '?')}): missing key(s) {', '.join(missing)}")
        where = f"{where} ({net['name']})"
        net["vni"] = v.vni(net["vni"], f"{where}.vni")
        net["port"] = v.port(net["port"], f"{where}.port")
        net["mtu"] = v.mtu(net["mtu"], f"{where}.mtu")
        v.netns_name(net["netns"], f"{where}.netns")
        v.interface(net["bridge"], f"{where}.bridge")
        v.interface(net["vxlan"], f"{where}.vxlan")
        for key, value in (("name", net["name"]), ("vni", net["vni"]), ("netns", net["netns"])):
            if (key, value) in seen:
                raise v.InputError(f"{where}.{key}: {value} is also the {key} of {seen[key, value]}")
            seen[key, value] = where
        for field in ("endpoints", "neigh", "fdb"):
            if not isinstance(net[field], list):
                raise v.InputError(f"{where}.{field}: expected a list, got {_kind(net[field])}")
        for j, ep in enumerate(net["endpoints"]):
            at = f"{where}.endpoints[{j}]"
            if not isinstance(ep, dict):
                raise v.InputError(f"{at}: expected a dict, got {_kind(ep)}")
            missing = [key for key in ENDPOINT_KEYS if key not in ep]
            if missing:
                raise v.InputError(f"{at} ({ep.get('name', '?')}): missing key(s) {', '.join(missing)}")
            v.netns_name(ep["netns"], f"{at}.netns")
            v.interface(ep["veth"], f"{at}.veth")
            v.interface_address(ep["address"], f"{at}.address")
            ep["mac"] = v.mac(ep["mac"], f"{at}.mac", unicast=True)
            ep["mtu"] = v.mtu(ep["mtu"], f"{at}.mtu")
        for spec in (_table.NEIGH, _table.FDB):
            try:
                _table.normalize_entries(
                    spec, net[spec.name], state="overridden", local=vtep if spec is _table.FDB else None
                )
            except v.InputError as exc:
                raise v.InputError(f"{where}.{spec.name}: {exc}") from None


def vxlan_devices(handles) -> list[dict]:
    """Every vxlan device of the host: in its own namespace and in every named netns."""
    found = []
    for netns in [None, *nl.netns_list()]:
        try:
            links = handles(netns).links()
        except nl.NetlinkOpError:
            continue  # vanished meanwhile, or not a namespace we can open
        for link in links:
            if link["kind"] == "vxlan" and link.get("vxlan"):
                found.append({"netns": netns, "ifname": link["ifname"], "alias": link["alias"], **link["vxlan"]})
    return found


def check_foreign_vxlan(handles, wanted: list[dict], vtep: str) -> None:
    """Fail when a vxlan device that is not ours already uses a wanted network's port on the VTEP.

    The kernel gives every vxlan device on one UDP port of a namespace the same socket, so our device would
    share it with the foreign one: the foreign VNI would then be reachable through this overlay's port (and its
    allowlist). A device without a local address listens on every address, so it counts as well.
    """
    if not wanted:
        return
    ours = {(net["netns"], net["vxlan"]) for net in wanted}
    ports: dict[int, str] = {}
    for net in wanted:
        ports.setdefault(int(net["port"]), net["name"])
    me = ipaddress.ip_address(vtep)
    for dev in vxlan_devices(handles):
        if "network" in _discover.parse_alias(dev["alias"]) or (dev["netns"], dev["ifname"]) in ours:
            continue
        if dev["netns"] is None and dev["ifname"].startswith(TEMP_VXLAN_PREFIX):
            continue
        local = ipaddress.ip_address(dev["local"]) if dev["local"] else None
        if dev["port"] not in ports or local not in (me, None):
            continue
        where = f"netns {dev['netns']}" if dev["netns"] else "the host namespace"
        bound = f"local {local}" if local else "no local address, so every address of the host"
        name = ports[dev["port"]]
        raise v.InputError(
            f"port: network {name!r} needs UDP port {dev['port']} on {vtep}, but vxlan device {dev['ifname']}"
            f" (vni {dev['vni']}, port {dev['port']}, {bound}) in {where} already uses it and is not managed by"
            f" netfleet.overlay. Both would share one socket, so vni {dev['vni']} would be reachable through this"
            f" overlay's port. Remove {dev['ifname']}, or give network {name!r} another port; nothing was changed"
        )
