# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: what overlay_host checks before it changes anything.  May change without notice.
"""Checks of ``overlay_host``'s input and of the host, run before the first change.

``networks`` normally comes from the fleet plan (overlay_plan, expanded by the host_tables filter), which has
validated it; :func:`check_input` catches hand-written input, so a missing key or a bad value fails by name instead
of half-way through the run, and normalises it once for the rest of the run.
:func:`check_foreign_vxlan`, :func:`check_netns_owned` and :func:`check_attached` catch what no filter can see: a
vxlan device that this collection did not make and that already uses a network's UDP port on the VTEP, a namespace
that the plan wants but that someone else made (the collection never adopts or deletes it), and an attached
endpoint's netns that is missing or already has the endpoint's interface.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import platform

from ansible_collections.netfleet.overlay.plugins.module_utils import _discover, _model, _records, _table
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    ENDPOINT_IFNAME,
    TEMP_VXLAN_PREFIX,
    WIREGUARD_NETNS,
    kind,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

NETWORK_KEYS = ("name", "vni", "port", "mtu", "netns", "bridge", "vxlan", "endpoints", "neigh", "fdb")
ENDPOINT_KEYS = ("name", "netns", "veth", "address", "mac", "mtu")


def check_input(params: dict) -> None:
    """Validate and normalise ``vtep``, ``preserve_vteps`` and ``networks`` (in place, the host side's one
    normalisation: the converge uses them as they are); raise :class:`InputError` naming the field."""
    if params["state"] != "present":
        return  # absent only tears down: the networks are not looked at
    vtep = params["vtep"] = v.ip(params["vtep"], "vtep")
    params["preserve_vteps"] = [v.ip(x, "preserve_vteps") for x in params.get("preserve_vteps") or []]
    wg = params["wireguard"] = check_wireguard(params.get("wireguard"), vtep)
    if params.get("wireguard_allow") is not None:
        if wg is None:
            raise v.InputError("wireguard_allow: given without wireguard; it lists the VTEPs of the tunnel's peers")
        params["wireguard_allow"] = [
            v.ip(x, f"wireguard_allow[{i}]", family=_model.family(vtep))
            for i, x in enumerate(params["wireguard_allow"])
        ]
    seen: dict[tuple, str] = {}
    for i, net in enumerate(params["networks"]):
        where = f"networks[{i}]"
        _check_shape(net, NETWORK_KEYS, where, "a network as the host_tables filter returns it")
        where = f"{where} ({net['name']})"
        net["peer_hosts"] = _peer_hosts(net.get("peer_hosts"), f"{where}.peer_hosts")
        net["vni"] = v.vni(net["vni"], f"{where}.vni")
        net["port"] = v.port(net["port"], f"{where}.port")
        net["mtu"] = v.mtu(net["mtu"], f"{where}.mtu")
        v.netns_name(net["netns"], f"{where}.netns")
        net["encrypted"] = _model.check_bool(net.get("encrypted", False), f"{where}.encrypted:", error=v.InputError)
        if net["encrypted"] and wg is None:
            raise v.InputError(
                f"{where}.encrypted: true needs the host's wireguard (its tunnel address and peers), got null"
            )
        local = wg["address"] if net["encrypted"] else vtep  # the vxlan device's own address
        v.interface(net["bridge"], f"{where}.bridge")
        v.interface(net["vxlan"], f"{where}.vxlan")
        if net["netns"] == WIREGUARD_NETNS:
            raise v.InputError(f"{where}.netns: {WIREGUARD_NETNS} is the WireGuard namespace, not a network's")
        for key, value in (("name", net["name"]), ("vni", net["vni"]), ("netns", net["netns"])):
            if (key, value) in seen:
                raise v.InputError(f"{where}.{key}: {value} is also the {key} of {seen[key, value]}")
            seen[key, value] = where
        for field in ("endpoints", "neigh", "fdb"):
            if not isinstance(net[field], list):
                raise v.InputError(f"{where}.{field}: expected a list, got {kind(net[field])}")
        for j, ep in enumerate(net["endpoints"]):
            at = f"{where}.endpoints[{j}]"
            _check_shape(ep, ENDPOINT_KEYS, at, "a dict")
            v.netns_name(ep["netns"], f"{at}.netns")
            if ep["netns"] == WIREGUARD_NETNS:
                raise v.InputError(f"{at}.netns: {WIREGUARD_NETNS} is the WireGuard namespace of netfleet.overlay")
            ep["ifname"] = v.interface(ep.get("ifname") or ENDPOINT_IFNAME, f"{at}.ifname")
            v.interface(ep["veth"], f"{at}.veth")
            v.interface_address(ep["address"], f"{at}.address")
            ep["mac"] = v.mac(ep["mac"], f"{at}.mac", unicast=True)
            ep["mtu"] = v.mtu(ep["mtu"], f"{at}.mtu")
            ep["attached"] = _model.check_bool(ep.get("attached", False), f"{at}.attached:", error=v.InputError)
        _check_workload_keys(net, where)
        for spec in (_table.NEIGH, _table.FDB):
            try:
                net[spec.name] = _table.normalize_entries(
                    spec, net[spec.name], state="overridden", local=local if spec is _table.FDB else None
                )
            except v.InputError as exc:
                raise v.InputError(f"{where}.{spec.name}: {exc}") from None
        _check_flood(net, where)


WIREGUARD_KEYS = ("address", "prefixlen", "port", "mtu", "peers")
WIREGUARD_PEER_KEYS = ("host", "public_key", "endpoint", "address")


def public_key(value, field: str) -> str:
    """A WireGuard public key: 32 bytes in standard base64 (44 characters, ``=`` last)."""
    if isinstance(value, str) and len(value) == 44 and value.endswith("="):
        try:
            if len(base64.b64decode(value, validate=True)) == 32:
                return value
        except (binascii.Error, ValueError):
            pass
    shown = repr(value) if isinstance(value, str) and len(value) <= 60 else kind(value)
    raise v.InputError(f"{field}: {shown} is not a WireGuard public key (32 bytes in base64, 44 characters)")


def endpoint(value, field: str, family: int) -> tuple[str, int]:
    """``ip:port`` (``[ip]:port`` for IPv6), of the underlay's ``family``; returns ``(ip, port)``."""
    text = value if isinstance(value, str) else ""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs its brackets
    if not sep or not host or not port_text.isdigit():
        raise v.InputError(
            f"{field}: {value!r} is not an endpoint address:port (like 198.18.1.2:51820 or [2001:db8::2]:51820)"
        )
    try:
        address = v.ip(host, field, family=family)
    except v.InputError:
        raise v.InputError(
            f"{field}: {value!r} is not an endpoint of the underlay: {host!r} is not an IPv{family} address (the"
            " VTEP's family)"
        ) from None
    return address, v.port(int(port_text), field)


def endpoint_ip(text: str) -> str:
    """The address of a normalised endpoint (``198.18.1.2:51820``, ``[2001:db8::2]:51820``)."""
    return text.rpartition(":")[0].strip("[]")


def _switch_at(value) -> float | None:
    """The rotation instant (epoch seconds, as overlay_plan sets it), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise v.InputError(f"wireguard.switch_at: expected epoch seconds (a positive number) or null, got {value!r}")
    return float(value)


def check_wireguard(value, vtep: str) -> dict | None:
    """Normalise ``wireguard`` (None: the host has no encrypted network); raise :class:`InputError` naming the
    field and the value.  The tunnel address, its peers' and their endpoints are checked against each other and the
    VTEP: the peers' endpoints are VTEPs of the underlay's family, their addresses tunnel addresses in this host's
    tunnel subnet, none of them twice."""
    if value is None:
        return None
    expected = "a dict (address, prefixlen, port, mtu, peers) or null"
    _check_shape(value, WIREGUARD_KEYS, "wireguard", expected, named=False)
    unknown = sorted(str(key) for key in value if key not in (*WIREGUARD_KEYS, "rotate", "switch_at"))
    if unknown:
        raise v.InputError(f"wireguard: unknown key(s) {', '.join(unknown)}")
    address, prefixlen = v.interface_address(f"{value['address']}/{value['prefixlen']}", "wireguard.address/prefixlen")
    subnet = ipaddress.ip_interface(f"{address}/{prefixlen}").network
    if ipaddress.ip_address(vtep) in subnet:
        raise v.InputError(
            f"wireguard.address: the tunnel subnet {subnet} holds the VTEP {vtep}; tunnel addresses must be apart from"
            " the underlay (overlay_wireguard_subnet)"
        )
    if ipaddress.ip_address(address) in (subnet.network_address, getattr(subnet, "broadcast_address", None)) and (
        subnet.prefixlen < subnet.max_prefixlen - 1
    ):
        raise v.InputError(f"wireguard.address: {address} is the network or broadcast address of {subnet}")
    out = {
        "address": address,
        "prefixlen": prefixlen,
        "port": v.port(value["port"], "wireguard.port"),
        "mtu": v.mtu(value["mtu"], "wireguard.mtu"),
        "rotate": _model.check_bool(value.get("rotate", False), "wireguard.rotate:", error=v.InputError),
        "switch_at": _switch_at(value.get("switch_at")),
        "peers": [],
    }
    peers = value["peers"]
    if not isinstance(peers, list):
        raise v.InputError(f"wireguard.peers: expected a list, got {kind(peers)}")
    seen: dict[tuple, str] = {("address", address): "wireguard.address, this host's own"}
    for i, peer in enumerate(peers):
        at = f"wireguard.peers[{i}]"
        _check_shape(peer, WIREGUARD_PEER_KEYS, at, "a dict (host, public_key, endpoint, address)", named=False)
        at = f"{at} ({peer['host']})" if isinstance(peer["host"], str) else at
        host = _records.name(peer["host"], f"{at}.host")
        key = public_key(peer["public_key"], f"{at}.public_key")
        ip_, port = endpoint(peer["endpoint"], f"{at}.endpoint", _model.family(vtep))
        if ip_ == vtep:
            raise v.InputError(f"{at}.endpoint: {peer['endpoint']} is this host's own VTEP {vtep}")
        tunnel = v.ip(peer["address"], f"{at}.address")
        if ipaddress.ip_address(tunnel) not in subnet:
            raise v.InputError(f"{at}.address: {tunnel} is not in the tunnel subnet {subnet} of wireguard.address")
        for what, item in (("host", host), ("public_key", key), ("address", tunnel), ("endpoint", ip_)):
            if (what, item) in seen:
                raise v.InputError(f"{at}.{what}: {item} is also {seen[what, item]}")
            seen[what, item] = f"the {what} of wireguard.peers[{i}]"
        endpoint_text = f"[{ip_}]:{port}" if ":" in ip_ else f"{ip_}:{port}"
        out["peers"].append({"host": host, "public_key": key, "endpoint": endpoint_text, "address": tunnel})
    return out


def _check_flood(net: dict, where: str) -> None:
    """Normalise a network's ``flood`` (default false) and ``proxy`` (default true), refuse the pair that cannot
    work (:func:`._model.proxy_problem`), and refuse flood entries (``00:00:00:00:00:00``) in the ``fdb`` of a
    network that does not flood."""
    net["flood"] = _model.check_bool(net.get("flood", False), f"{where}.flood:", error=v.InputError)
    net["proxy"] = _model.check_bool(net.get("proxy", True), f"{where}.proxy:", error=v.InputError)
    problem = _model.proxy_problem(net["flood"], net["proxy"])
    if problem:
        raise v.InputError(f"{where}.proxy: {problem}")
    if not net["flood"] and any(entry["mac"] == _model.ZERO_MAC for entry in net["fdb"]):
        raise v.InputError(
            f"{where}.fdb: a {_model.ZERO_MAC} (flood) entry on a network without flood; set flood: true on the"
            " network, or leave the flood entries out"
        )


def _check_workload_keys(net: dict, where: str) -> None:
    """Normalise a network's ``egress``, ``dns``, ``gateway`` and ``names`` (all optional: a plan of 0.2.x has none).

    ``gateway`` is ``{address, prefixlen, mac}``, required when ``egress`` or ``dns`` is on; ``names`` maps each DNS
    name of the network's endpoints (see :func:`._model.dns_names`) to its address.
    """
    for key in ("egress", "dns"):
        net[key] = _model.check_bool(net.get(key, False), f"{where}.{key}:", error=v.InputError)
    gateway = net["gateway"] = net.get("gateway")
    if gateway is None:
        if net["egress"] or net["dns"]:
            raise v.InputError(f"{where}.gateway: egress and dns need the network's gateway, got null")
    else:
        _check_shape(gateway, ("address", "prefixlen", "mac"), f"{where}.gateway", "a dict", named=False)
        address, prefixlen = v.interface_address(
            f"{gateway['address']}/{gateway['prefixlen']}", f"{where}.gateway.address/prefixlen"
        )
        net["gateway"] = {
            "address": address,
            "prefixlen": prefixlen,
            "mac": v.mac(gateway["mac"], f"{where}.gateway.mac", unicast=True),
        }
    names = net.get("names") or {}
    if not isinstance(names, dict):
        raise v.InputError(f"{where}.names: expected a dict of DNS name -> address, got {kind(names)}")
    net["names"] = {str(name): v.ip(address, f"{where}.names[{name!r}]") for name, address in names.items()}


def _check_shape(value, keys: tuple, where: str, expected: str, *, named: bool = True) -> None:
    """``value`` is a dict with every key of ``keys`` (and, if ``named``, a valid ``name``); raise
    :class:`InputError` naming it."""
    if not isinstance(value, dict):
        raise v.InputError(f"{where}: expected {expected}, got {kind(value)}")
    missing = [key for key in keys if key not in value]
    if missing:
        label = f"{where} ({value.get('name', '?')})" if named else where
        raise v.InputError(f"{label}: missing key(s) {', '.join(missing)}")
    if named:
        _records.name(value["name"], f"{where}.name")


def _peer_hosts(value, field: str) -> dict:
    """``{vtep: hostname or None}``: which host each remote VTEP of a network belongs to (recorded as ``peers``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise v.InputError(f"{field}: expected a dict of VTEP -> hostname, got {kind(value)}")
    return {
        v.ip(vtep, f"{field}[{vtep!r}]"): None if host is None else _records.name(host, f"{field}[{vtep!r}]")
        for vtep, host in value.items()
    }


def check_netns_owned(wanted: list[dict], record: dict) -> None:
    """Fail when a namespace that the plan wants exists but the ownership record does not say the collection made
    it: it is someone else's, and converging would take it over (and a later purge would delete it).

    An attached endpoint's netns (``netns:``) is the user's on purpose and is never made or deleted; but it must not
    be one that the collection made, which goes with the endpoint or network it was made for.
    """
    made = {rec["netns"]: f"network {name!r}" for name, rec in record["networks"].items()}
    made.update(
        (rec["netns"], f"endpoint {name!r}") for name, rec in record["endpoints"].items() if rec["netns_created"]
    )
    ours = set(made)
    for net in wanted:
        for ep in net["endpoints"]:
            if ep["attached"] and ep["netns"] in made:
                raise v.InputError(
                    f"host {platform.node()}: endpoint {ep['name']!r} netns: {ep['netns']} was created by"
                    f" netfleet.overlay for {made[ep['netns']]} and goes with it; netns: attaches a netns of your own."
                    " Nothing was changed"
                )
        uses = [(net["netns"], f"the overlay netns of network {net['name']!r} (vni {net['vni']})", "network")]
        uses += [(ep["netns"], f"the netns of endpoint {ep['name']!r} (network {net['name']!r})", "endpoint")
                 for ep in net["endpoints"] if not ep["attached"]]  # fmt: skip
        for netns, role, what in uses:
            if netns in ours or not nl.netns_exists(netns):
                continue
            fix = (
                "rename the endpoint (its name is its netns)"
                if what == "endpoint"
                else f"give network {net['name']!r} another vni"
            )
            raise v.InputError(
                f"host {platform.node()}: netns {netns} exists but netfleet.overlay did not create it (it is not in"
                f" {_records.path()}), and it would become {role}. The collection never takes over or deletes a"
                f" namespace it did not make; nothing was changed. To go on, {fix}, or, if nothing uses netns"
                f" {netns}, remove it (ip netns del {netns})"
            )


def check_wireguard_netns(params: dict, record: dict) -> None:
    """Fail when the host is to have its tunnel but a netns ``ovl-wg`` exists that the record does not name: it is
    someone else's, and the collection never takes over or deletes a namespace it did not make."""
    if params.get("wireguard") is None or _discover.wireguard_owned(record) or not nl.netns_exists(WIREGUARD_NETNS):
        return
    raise v.InputError(
        f"host {platform.node()}: netns {WIREGUARD_NETNS} exists but netfleet.overlay did not create it (it is not in"
        f" {_records.path()}), and it would become the WireGuard namespace of the encrypted networks. The collection"
        f" never takes over or deletes a namespace it did not make; nothing was changed. If nothing uses netns"
        f" {WIREGUARD_NETNS}, remove it (ip netns del {WIREGUARD_NETNS})"
    )


def check_attached(handles, wanted: list[dict], record: dict) -> None:
    """Fail when an attached endpoint's netns is missing, or already holds its ``ifname`` (other than the far end of
    the endpoint's own veth, or of a recorded endpoint's veth that this run moves or renames).

    ``netns:`` joins an existing netns and never creates it, and the collection never takes over an interface it
    did not make; both are caught here, before any change (check mode too).
    """
    host = platform.node()
    for net in wanted:
        for ep in net["endpoints"]:
            if not ep["attached"]:
                continue
            label = f"host {host}: endpoint {ep['name']!r} (network {net['name']!r})"
            if not nl.netns_exists(ep["netns"]):
                raise v.InputError(
                    f"{label} netns: {ep['netns']} does not exist: netns: attaches an existing netns (ip netns add,"
                    " a podman or systemd one) and never creates it. Create it first, or leave netns: out to have"
                    " the endpoint's own netns created; nothing was changed"
                )
            far = handles(ep["netns"]).link(ep["ifname"])
            if far is None:
                continue
            veths = [(net["netns"], ep["veth"])]
            for rec in record["endpoints"].values():
                recorded = record["networks"].get(rec["network"])
                if recorded and (rec["netns"], rec["ifname"]) == (ep["netns"], ep["ifname"]):
                    veths.append((recorded["netns"], rec["veth"]))
            if not any(_is_far_end(handles, netns, veth, far) for netns, veth in veths):
                raise v.InputError(
                    f"{label} interface: {ep['ifname']} already exists in netns {ep['netns']} and is not"
                    " netfleet.overlay's; the collection never takes over an interface it did not make. Give the"
                    f" endpoint another interface, or remove {ep['ifname']} from netns {ep['netns']}; nothing was"
                    " changed"
                )


def _is_far_end(handles, netns: str, veth: str, far: dict) -> bool:
    """Whether ``far`` is the other end of the veth ``veth`` in the overlay netns ``netns``."""
    if not nl.netns_exists(netns):
        return False
    try:
        return _discover.is_pair(handles(netns).link(veth), far)
    except nl.NetlinkOpError:
        return False


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


def check_foreign_vxlan(handles, wanted: list[dict], vtep: str, record: dict) -> None:
    """Fail when a vxlan device that is not ours already uses a wanted network's port on the VTEP.

    The kernel gives every vxlan device on one UDP port of a namespace the same socket, so our device would
    share it with the foreign one: the foreign VNI would then be reachable through this overlay's port (and its
    allowlist). A device without a local address listens on every address, so it counts as well.
    """
    if not wanted:
        return
    ours = {(net["netns"], net["vxlan"]) for net in wanted}
    ours.update((rec["netns"], rec["vxlan"]) for rec in record["networks"].values())
    ports: dict[int, str] = {}
    for net in wanted:
        if not net.get("encrypted"):  # an encrypted network's socket is in ovl-wg, on the tunnel address
            ports.setdefault(int(net["port"]), net["name"])
    me = ipaddress.ip_address(vtep)
    for dev in vxlan_devices(handles):
        if (dev["netns"], dev["ifname"]) in ours:
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
