# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet-wide peer table: IPAM, MACs, names, MTUs and every host's static ARP and FDB entries.

This is the engine behind the ``netfleet.overlay.peer_tables`` filter.  It is pure (plain data in,
plain data out, standard library only) so it can be unit-tested on plain data.

The work is linear in the number of endpoints: endpoints are indexed by network and then by host, and a
host's tables are filtered from its networks' pre-sorted lists.  The only super-linear part is the output
itself (every host on a network gets an entry for every remote endpoint on it).

Three things are called a plan in the collection; here it is always the *fleet plan*: what :func:`compute_plan`
returns, and :func:`pack_plan` packs into what ``overlay_plan`` returns as ``plan``.  The hosts' table planner
(``module_utils._table``) plans one table's operations, and :mod:`.reachability` makes the *ping plan*.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    BRIDGE,
    DEFAULT_MTU,
    DEFAULT_PORT,
    ENDPOINT_IFNAME,
    MIN_MTU,
    NAME_RULE,
    VXLAN,
    VXLAN_OVERHEAD,
    WIREGUARD_OVERHEAD,
    WIREGUARD_PORT,
    WIREGUARD_SUBNET,
    ZERO_MAC,
    check_bool,
    check_ifname,
    check_int,
    check_mac,
    check_mtu,
    check_port,
    check_vni,
    derive_mac,
    dns_name_problem,
    dns_names,
    egress_problem,
    encrypted_vxlan_mtu,
    gateway_address,
    gateway_mac,
    kind,
    no_scope_id,
    overlay_netns,
    overlay_netns_vni,
    proxy_problem,
    valid_name,
    veth_name,
    vxlan_mtu,
    wireguard_mtu,
)

# Largest prefix that still leaves one endpoint address beside the network address, the gateway
# (and the IPv4 broadcast address).
MAX_PREFIXLEN = {4: 30, 6: 126}

NETWORK_REQUIRED = ("name", "vni", "subnet")
NETWORK_KEYS = frozenset((*NETWORK_REQUIRED, "port", "mtu", "egress", "dns", "flood", "proxy", "encrypted"))
# current_networks, peers, netns and wireguard come from the host's facts (see fleet_records): what it holds today.
HOST_KEYS = frozenset(
    (
        "state",
        "reachable",
        "vtep",
        "underlay_mtu",
        "endpoints",
        "current",
        "current_networks",
        "peers",
        "netns",
        "wireguard",
    )
)
ENDPOINT_REQUIRED = ("name", "network")
ENDPOINT_KEYS = frozenset((*ENDPOINT_REQUIRED, "address", "mac", "mtu", "netns", "interface"))
# Every netns has a loopback, so no endpoint interface can take its name.
LOOPBACK = "lo"
# A run that removes more endpoints than this across the fleet (absent hosts aside) needs allow_purge.
DEFAULT_PURGE_LIMIT = 10


def _v4_int(text: str) -> int | None:
    """A dotted-quad IPv4 address as an int, or None for anything else (the caller then takes the slow path).

    ``ipaddress`` spends tens of microseconds per address; at thousands of hosts the fleet's addresses are most
    of the computation. ``inet_pton`` accepts exactly the dotted quads that ``ipaddress`` accepts.
    """
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, TypeError, ValueError):
        return None


def _v4_text(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))


class PeerTableError(ValueError):
    """Bad input for the peer table; the message names the field, the host (if any) and the value."""


# --- parsed input -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Network:
    name: str
    vni: int
    port: int
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    mtu: int | None  # None: underlay MTU minus VXLAN overhead, per host
    gateway: int  # reserved, Docker style: the first usable address (_model.gateway_address)
    first: int  # first address an endpoint may have
    last: int  # last address an endpoint may have
    egress: bool = False  # endpoints reach the outside through their own host (NAT), via the gateway
    dns: bool = False  # endpoints resolve each other's names, served on the gateway address
    flood: bool = False  # broadcast, unknown unicast and multicast go to every peer VTEP (head-end replication)
    proxy: bool = True  # the vxlan device answers ARP/ND from the static table (false: the peers answer, flooded)
    encrypted: bool = False  # its VXLAN rides inside WireGuard: local and every FDB dst are tunnel addresses

    @property
    def family(self) -> int:
        return self.subnet.version

    @property
    def has_gateway(self) -> bool:
        """Whether the gateway address lives on br0 of every host's overlay netns (egress or dns needs it)."""
        return self.egress or self.dns

    @property
    def usable(self) -> int:
        return self.last - self.first + 1


@dataclass(slots=True)
class _Endpoint:
    host: str
    name: str
    network: _Network
    explicit: int | None  # explicitly configured address (as an int)
    mac: str | None  # explicitly configured (or, for an unreachable host, observed) MAC
    mtu: int | None
    attached: str | None = None  # the existing netns it joins (``netns:``); None: the collection creates its own
    ifname: str = ENDPOINT_IFNAME  # its interface, inside its netns
    ip: int | None = None  # the address it ends up with
    ip_text: str = ""
    vtep: str = ""
    mac_from: str = "its mac key"  # where its MAC comes from, for messages (the facts, or derived from its address)

    @property
    def label(self) -> str:
        return f"{self.host}/{self.name}"

    @property
    def netns(self) -> str:
        """The netns its interface lives in: the attached one, or its own (named after the endpoint)."""
        return self.attached or self.name


@dataclass(slots=True)
class _Host:
    name: str
    present: bool
    reachable: bool
    vtep: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    underlay_mtu: int | None
    endpoints: list[_Endpoint]
    current: Mapping | None  # None: no facts
    vtep_text: str = ""  # vtep.compressed, computed once
    current_networks: Mapping | None = None  # network name -> its overlay netns, per the facts
    peers: Mapping | None = None  # network name -> {vtep: hostname or None}: the entries it holds, per the facts
    netns: frozenset | None = None  # every named netns of the host, per the facts (None: not known)
    wireguard: Mapping | None = None  # the facts' wireguard dict (public keys, tunnel address, peers), or None
    tunnel: int | None = None  # its tunnel address (encrypted networks), as an int
    tunnel_text: str = ""


@dataclass(slots=True)
class _NetworkState:
    """Everything one network collects while the fleet is indexed."""

    network: _Network
    declared: int = 0  # endpoints declared on it by present hosts (for the size check)
    explicit: list[_Endpoint] = field(default_factory=list)  # present hosts' explicit addresses
    observed: list[tuple[_Endpoint, int]] = field(default_factory=list)  # unreachable hosts' current addresses
    wanted: list[_Endpoint] = field(default_factory=list)  # reachable hosts' endpoints, (host, name) order
    published: list[_Endpoint] = field(default_factory=list)  # what remote hosts get entries for
    preserve: dict[str, _Host] = field(default_factory=dict)  # unreachable hosts without facts
    kept: dict[str, str | None] = field(default_factory=dict)  # VTEP -> hostname of vanished hosts whose entries stay
    claims: dict[int, _Endpoint] = field(default_factory=dict)  # address -> owner
    # name -> (host, address) of the endpoints that converged hosts hold on it, per their facts, and no longer declare
    # there: the sources of moves
    leaving: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    moves: list[tuple[str, _Endpoint]] = field(default_factory=list)  # (source host, endpoint) of this run's moves


# --- small helpers ----------------------------------------------------------------------------------------


def closest(name: str, known) -> str | None:
    """The known name closest to a misspelt one (difflib), or None when none is close: for "did you mean"."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _check_keys(record: Mapping, allowed: frozenset, where: str) -> None:
    unknown = sorted(str(key) for key in record if key not in allowed)
    if unknown:
        close = closest(unknown[0], allowed)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise PeerTableError(f"{where}: unknown key {unknown[0]!r}{hint}; the keys are {', '.join(sorted(allowed))}")


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple))


# --- parsing ----------------------------------------------------------------------------------------------


def _parse_cidr(raw, label: str, example: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network in CIDR form with no host bits set; the message names ``label`` and gives ``example``."""
    if not isinstance(raw, str):
        raise PeerTableError(f"{label} {raw!r} must be a CIDR string like {example}, got {kind(raw)}")
    text = raw.strip()
    no_scope_id(text, label, error=PeerTableError)
    if "/" not in text:
        raise PeerTableError(f"{label} {raw!r} needs a prefix length, like {example}")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise PeerTableError(f"{label} {raw!r} is not an IPv4 or IPv6 network in CIDR form") from None
        raise PeerTableError(f"{label} {raw} has host bits set; the network address is {loose}") from None


def _parse_subnet(raw, label: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    subnet = _parse_cidr(raw, f"{label} subnet", "10.213.0.0/24")
    if subnet.prefixlen > MAX_PREFIXLEN[subnet.version]:
        raise PeerTableError(
            f"{label} subnet {subnet} is too small: it leaves no endpoint address beside the network address"
            f" and the gateway (the longest usable IPv{subnet.version} prefix is /{MAX_PREFIXLEN[subnet.version]})"
        )
    return subnet


def _record_name(item, where: str, a_what: str, why: str = "") -> str:
    """The name of one network or endpoint record (``a_what``: "a network"), checked against the naming rule."""
    if not isinstance(item, Mapping):
        raise PeerTableError(f"{where} must be a dict describing {a_what}, got {kind(item)}: {item!r}")
    name = item.get("name")
    if name is None:
        raise PeerTableError(f"{where}: missing required key 'name'")
    if not valid_name(name):
        what = a_what.split(" ", 1)[1]
        raise PeerTableError(f"{where} name {name!r} is not a valid {what} name: {why}{_name_advice(name)}")
    return name


def _parse_networks(networks) -> dict[str, _Network]:
    if not _is_list(networks):
        raise PeerTableError(f"overlay_networks must be a list of networks, got {kind(networks)}")
    by_name: dict[str, tuple[int, _Network]] = {}
    by_vni: dict[int, _Network] = {}
    for index, item in enumerate(networks):
        where = f"overlay_networks[{index}]"
        name = _record_name(item, where, "a network")
        label = f"network {name!r}"
        _check_keys(item, NETWORK_KEYS, label)
        for key in NETWORK_REQUIRED:
            if item.get(key) is None:
                raise PeerTableError(f"{label}: missing required key {key!r}")
        vni = check_vni(item["vni"], f"{label} vni", error=PeerTableError)
        subnet = _parse_subnet(item["subnet"], label)
        port = (
            DEFAULT_PORT
            if item.get("port") is None
            else check_port(item["port"], f"{label} port", error=PeerTableError)
        )
        mtu = (
            None
            if item.get("mtu") is None
            else check_mtu(item["mtu"], f"{label} mtu", subnet.version, error=PeerTableError)
        )
        egress, dns, flood, proxy, encrypted = (
            default if item.get(key) is None else check_bool(item[key], f"{label} {key}", error=PeerTableError)
            for key, default in (
                ("egress", False),
                ("dns", False),
                ("flood", False),
                ("proxy", True),
                ("encrypted", False),
            )
        )
        problem = dns_name_problem(name) if dns else None
        if problem:
            raise PeerTableError(f"{label} dns true: the name {name!r} cannot be part of a DNS name: {problem}")
        problem = egress_problem(subnet.version) if egress else None
        if problem:
            raise PeerTableError(f"{label} egress true with subnet {subnet}: {problem}. Set egress: false on it")
        problem = proxy_problem(flood, proxy)
        if problem:
            raise PeerTableError(
                f"{label} proxy {item['proxy']!r} with flood {item.get('flood')!r}: {problem}; set flood: true on the"
                " network, or leave proxy out (it defaults to true)"
            )
        gateway = int(gateway_address(subnet))
        last = int(subnet.broadcast_address) - (1 if subnet.version == 4 else 0)
        network = _Network(
            name,
            vni,
            port,
            subnet,
            mtu,
            gateway=gateway,
            first=gateway + 1,
            last=last,
            egress=egress,
            dns=dns,
            flood=flood,
            proxy=proxy,
            encrypted=encrypted,
        )
        if name in by_name:
            raise PeerTableError(
                f"network name {name!r} is used twice: overlay_networks[{by_name[name][0]}] and {where}"
            )
        if vni in by_vni:
            raise PeerTableError(f"networks {by_vni[vni].name!r} and {name!r} both use vni {vni}")
        by_name[name] = (index, network)
        by_vni[vni] = network
    parsed = {name: network for name, (_unused, network) in by_name.items()}
    _check_overlaps(parsed.values())
    return parsed


def _name_advice(name) -> str:
    """The naming rule, with the name made to follow it when it is a string."""
    advice = f"use {NAME_RULE}"
    if isinstance(name, str):
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).lstrip(".-")[:64]
        if fixed and valid_name(fixed):
            advice += f", for example {fixed!r}"
    return advice


def _check_overlaps(networks) -> None:
    """No two subnets overlap (Docker refuses them too): an address would belong to two networks.

    Two CIDR blocks overlap only when one holds the other, so, sorted by start, each is compared with the one before.
    """
    previous: _Network | None = None
    for network in sorted(networks, key=lambda n: (n.family, int(n.subnet.network_address))):
        subnet = network.subnet
        if (
            previous is not None
            and previous.family == network.family
            and int(subnet.network_address) <= int(previous.subnet.broadcast_address)
        ):
            raise PeerTableError(
                f"networks {previous.name!r} (subnet {previous.subnet}) and {network.name!r} (subnet {subnet})"
                " overlap: an address would belong to both; give each network a subnet of its own"
            )
        previous = network


def _parse_vtep(raw, host: str):
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise PeerTableError(f"host {host}: vtep {raw!r} must be an IP address string, got {kind(raw)}")
    no_scope_id(raw.strip(), f"host {host}: vtep", error=PeerTableError)
    try:
        vtep = ipaddress.ip_address(raw.strip())
    except ValueError:
        raise PeerTableError(f"host {host}: vtep {raw!r} is not an IPv4 or IPv6 address (no prefix length)") from None
    if vtep.is_multicast or vtep.is_unspecified:
        raise PeerTableError(f"host {host}: vtep {vtep} must be a unicast address of the host")
    return vtep


def _text(address) -> str:
    return "" if address is None else address.compressed


def _parse_address(raw, network: _Network, label: str) -> int:
    """An endpoint's explicit address: bare IP or CIDR with the subnet's prefix, usable in the subnet."""
    if not isinstance(raw, str):
        raise PeerTableError(f"{label} address {raw!r} must be an IP address string, got {kind(raw)}")
    text = raw.strip()
    if network.family == 4:
        value = _v4_int(text)
        if value is not None and network.first <= value <= network.last and value != network.gateway:
            return value  # usable in the subnet; anything else takes the path below, which says what is wrong
    no_scope_id(text, f"{label} address", error=PeerTableError)
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise PeerTableError(f"{label} address {raw!r} is not an IP address (or address/prefix)") from None
    subnet = network.subnet
    where = f"network {network.name!r} subnet {subnet}"
    if iface.version != network.family:
        raise PeerTableError(f"{label} address {raw} is IPv{iface.version} but {where} is IPv{network.family}")
    address = iface.ip
    if address not in subnet:
        raise PeerTableError(f"{label} address {address} is outside {where}")
    if "/" in text and iface.network.prefixlen != subnet.prefixlen:
        raise PeerTableError(
            f"{label} address {raw} has prefix length /{iface.network.prefixlen} but {where} is /{subnet.prefixlen}"
        )
    value = int(address)
    if value == network.gateway:
        raise PeerTableError(f"{label} address {address} is the gateway address of {where} (reserved)")
    if value < network.first:
        raise PeerTableError(f"{label} address {address} is the network address of {where}")
    if value > network.last:
        raise PeerTableError(f"{label} address {address} is the broadcast address of {where}")
    return value


def _parse_endpoints(host: str, raw, networks: dict[str, _Network], netns_names: dict[str, _Network]):
    if raw is None:
        return []
    if not _is_list(raw):
        raise PeerTableError(f"host {host}: endpoints must be a list, got {kind(raw)}")
    endpoints: dict[str, tuple[int, _Endpoint]] = {}
    veths: dict[str, str] = {}
    for index, item in enumerate(raw):
        name = _record_name(item, f"host {host}: endpoints[{index}]", "an endpoint", "it names a netns, so ")
        label = f"host {host}: endpoint {name!r}"
        _check_keys(item, ENDPOINT_KEYS, label)
        if item.get("network") is None:
            raise PeerTableError(f"{label}: missing required key 'network'")
        network_name = item["network"]
        network = networks.get(network_name) if isinstance(network_name, str) else None
        if network is None:
            known = ", ".join(sorted(networks)[:10]) + (", ..." if len(networks) > 10 else "")
            raise PeerTableError(
                f"{label} network {network_name!r} is not defined in overlay_networks (known: {known or 'none'})"
            )
        if name in endpoints:
            raise PeerTableError(
                f"host {host}: endpoint name {name!r} is used twice (endpoints[{endpoints[name][0]}] and"
                f" endpoints[{index}]); it names the endpoint's netns, so it must be unique on the host"
            )
        attached = _attached_netns(item.get("netns"), label)
        if attached is None and name in netns_names:
            clash = netns_names[name]
            raise PeerTableError(
                f"{label}: the name clashes with the overlay netns of network {clash.name!r} (vni {clash.vni})"
            )
        ifname = _interface(item.get("interface"), label)
        veth = veth_name(name)
        if veth in veths:
            raise PeerTableError(f"host {host}: endpoints {veths[veth]!r} and {name!r} both get veth name {veth}")
        veths[veth] = name
        explicit = None if item.get("address") in (None, "") else _parse_address(item["address"], network, label)
        mac = (
            None
            if item.get("mac") in (None, "")
            else check_mac(item["mac"], f"{label} mac", unicast=True, error=PeerTableError)
        )
        if mac is not None and mac == gateway_mac(network.vni):
            raise PeerTableError(
                f"{label} mac {mac} is the gateway MAC of network {network_name!r} (reserved: every host's gateway"
                " of the network has it); give the endpoint another MAC, or none to have one derived"
            )
        mtu = (
            None
            if item.get("mtu") is None
            else check_mtu(item["mtu"], f"{label} mtu", network.family, error=PeerTableError)
        )
        endpoints[name] = (index, _Endpoint(host, name, network, explicit, mac, mtu, attached, ifname))
    parsed = [endpoint for _unused, (_unused2, endpoint) in sorted(endpoints.items())]
    _check_attached(host, parsed)
    return parsed


def _attached_netns(raw, label: str) -> str | None:
    """An endpoint's ``netns`` (the existing netns it joins), or None when it has none: its netns is created."""
    if raw is None or raw == "":
        return None
    if not valid_name(raw):
        raise PeerTableError(f"{label} netns {raw!r} is not a valid netns name here: {_name_advice(raw)}")
    vni = overlay_netns_vni(raw)
    if vni is not None:
        raise PeerTableError(
            f"{label} netns {raw!r} is the overlay netns of vni {vni}, which netfleet.overlay owns; an endpoint"
            " cannot join it"
        )
    return raw


def _interface(raw, label: str) -> str:
    """An endpoint's ``interface``: its name inside its netns, attached or created (default ``eth0``)."""
    if raw is None or raw == "":
        return ENDPOINT_IFNAME
    if not isinstance(raw, str):
        raise PeerTableError(f"{label} interface {raw!r} must be an interface name string, got {kind(raw)}")
    ifname = check_ifname(raw, f"{label} interface", error=PeerTableError)
    if ifname == LOOPBACK:
        raise PeerTableError(f"{label} interface {raw!r} is the loopback, which every netns has; use another name")
    return ifname


def _check_attached(host: str, endpoints: list[_Endpoint]) -> None:
    """The netns of one host's endpoints fit together.

    An attached netns is not a netns that another endpoint of the host gets created (the collection would delete
    it with that endpoint); two endpoints in one netns have different interfaces, are on different networks (one
    netns joins a network once) and at most one of them is on an egress network (the default route).
    """
    created = {endpoint.name for endpoint in endpoints if endpoint.attached is None}
    sharing: dict[str, list[_Endpoint]] = {}
    for endpoint in endpoints:
        if endpoint.attached is None:
            continue
        label = f"host {host}: endpoint {endpoint.name!r}"
        if endpoint.attached in created:
            raise PeerTableError(
                f"{label} netns {endpoint.attached!r} is the netns of endpoint {endpoint.attached!r} of the host,"
                " which netfleet.overlay creates (and removes with it); attach a netns of your own"
            )
        sharing.setdefault(endpoint.attached, []).append(endpoint)
    for netns, members in sharing.items():
        by_ifname: dict[str, _Endpoint] = {}
        by_network: dict[str, _Endpoint] = {}
        egress: _Endpoint | None = None
        for endpoint in members:
            other = by_ifname.setdefault(endpoint.ifname, endpoint)
            if other is not endpoint:
                raise _shared(host, netns, other, endpoint, f"with interface {endpoint.ifname!r}; give one another")
            other = by_network.setdefault(endpoint.network.name, endpoint)
            if other is not endpoint:
                raise _shared(host, netns, other, endpoint, f"on network {other.network.name!r}; a netns joins it once")
            if endpoint.network.egress:
                if egress is not None:
                    raise _shared(
                        host,
                        netns,
                        egress,
                        endpoint,
                        f"on egress networks {egress.network.name!r} and {endpoint.network.name!r}; each would be"
                        " its default route, so turn egress off on one",
                    )
                egress = endpoint


def _shared(host: str, netns: str, first: _Endpoint, second: _Endpoint, why: str) -> PeerTableError:
    return PeerTableError(
        f"host {host}: endpoints {first.name!r} and {second.name!r} are both in netns {netns!r} {why}"
    )


def _parse_host(host, record, networks, netns_names) -> _Host:
    if not isinstance(host, str) or not host:
        raise PeerTableError(f"fleet host name {host!r} must be a non-empty string, got {kind(host)}")
    if record is None:
        record = {}
    if not isinstance(record, Mapping):
        raise PeerTableError(f"host {host}: host record must be a dict, got {kind(record)}: {record!r}")
    _check_keys(record, HOST_KEYS, f"host {host}")
    state = record.get("state") or "present"
    if state not in ("present", "absent"):
        raise PeerTableError(f"host {host}: state {state!r} must be 'present' or 'absent'")
    reachable = record.get("reachable")
    if reachable is None:
        reachable = True
    if not isinstance(reachable, bool):
        raise PeerTableError(f"host {host}: reachable {reachable!r} must be true or false, got {kind(reachable)}")
    vtep = _parse_vtep(record.get("vtep"), host)
    underlay = record.get("underlay_mtu")
    underlay_mtu = None if underlay is None else check_mtu(underlay, f"host {host}: underlay_mtu", error=PeerTableError)
    present = state == "present"
    if not present:
        # An absent host only tears down: its endpoints are not looked at and its facts only name what goes, so
        # stale configuration can never block a teardown.
        current, current_networks = (
            value if isinstance(value, Mapping) else None
            for value in (record.get("current"), record.get("current_networks"))
        )
        return _Host(host, False, reachable, vtep, underlay_mtu, [], current, _text(vtep), current_networks)
    endpoints = _parse_endpoints(host, record.get("endpoints"), networks, netns_names)
    current = record.get("current")
    if current is not None and not isinstance(current, Mapping):
        raise PeerTableError(
            f"host {host}: current must be a dict of endpoint name -> {{network, ip, mac}}, got {kind(current)}"
        )
    current_networks = record.get("current_networks")
    if current_networks is not None and not isinstance(current_networks, Mapping):
        raise PeerTableError(
            f"host {host}: current_networks must be a dict of network name -> netns, got {kind(current_networks)}"
        )
    peers = record.get("peers")
    if peers is not None and not isinstance(peers, Mapping):
        raise PeerTableError(
            f"host {host}: peers must be a dict of network name -> {{vtep: hostname}}, got {kind(peers)}"
        )
    netns = record.get("netns")
    if netns is not None and not _is_list(netns):
        raise PeerTableError(f"host {host}: netns must be a list of the host's netns names, got {kind(netns)}")
    wireguard = record.get("wireguard")
    if wireguard is not None and not isinstance(wireguard, Mapping):
        raise PeerTableError(
            f"host {host}: wireguard must be the dict of the host's facts (public_key, address, peers, ...), got"
            f" {kind(wireguard)}"
        )
    if endpoints and vtep is None:
        names = ", ".join(repr(endpoint.name) for endpoint in endpoints[:5])
        if not reachable:
            raise PeerTableError(
                f"host {host} is not converged in this run (unreachable, failed or outside the play) and its VTEP"
                f" is unknown (no overlay_vtep and no cached facts), so the other hosts cannot tell which entries"
                f" to preserve for its endpoints ({names}); set overlay_vtep for it, or enable a fact cache"
            )
        raise PeerTableError(
            f"host {host}: vtep is required because the host has endpoints ({names}); set overlay_vtep"
        )
    return _Host(
        host,
        True,
        reachable,
        vtep,
        underlay_mtu,
        endpoints,
        current,
        _text(vtep),
        current_networks,
        peers,
        None if netns is None else frozenset(netns),
        wireguard,
    )


def _parse_fleet(fleet, networks: dict[str, _Network]) -> list[_Host]:
    if not isinstance(fleet, Mapping):
        raise PeerTableError(f"fleet must be a dict of hostname -> host record, got {kind(fleet)}")
    netns_names = {overlay_netns(network.vni): network for network in networks.values()}
    hosts = []
    vteps: dict = {}
    for name in sorted(fleet, key=str):
        host = _parse_host(name, fleet[name], networks, netns_names)
        if host.present and host.vtep is not None:
            if host.vtep in vteps:
                raise PeerTableError(f"hosts {vteps[host.vtep]} and {host.name} both use vtep {host.vtep}")
            vteps[host.vtep] = host.name
        hosts.append(host)
    return hosts


# --- facts ------------------------------------------------------------------------------------------------


def _observed(host: _Host, endpoint: _Endpoint):
    """The usable address (int) and MAC the host's facts show for a declared endpoint, or None.

    Facts that do not fit the declaration (another network, an address outside the subnet, the gateway,
    garbage) are stale and ignored: the endpoint is then treated as new.
    """
    if not host.current:
        return None
    entry = host.current.get(endpoint.name)
    if not isinstance(entry, Mapping) or entry.get("network") != endpoint.network.name:
        return None
    return _seen(entry, endpoint.network)


def _seen(entry: Mapping, network: _Network):
    """The usable address (int) and MAC (or None) of one endpoint of the facts on ``network``, or None when its
    address does not fit the network (stale facts, garbage)."""
    raw = entry.get("ip")
    if not isinstance(raw, str):
        return None
    value = _v4_int(raw.strip()) if network.family == 4 else None
    if value is None:
        if "%" in raw:
            return None
        try:
            address = ipaddress.ip_interface(raw.strip()).ip
        except ValueError:
            return None
        if address.version != network.family:
            return None
        value = int(address)
    if not network.first <= value <= network.last:
        return None
    try:
        mac = check_mac(entry.get("mac"), "mac", unicast=True, error=PeerTableError)
    except PeerTableError:
        mac = None
    if mac == gateway_mac(network.vni):
        mac = None  # reserved for the gateway: the endpoint gets its derived MAC
    return value, mac


# --- the computation --------------------------------------------------------------------------------------


def _index(hosts: list[_Host], networks: dict[str, _Network]) -> dict[str, _NetworkState]:
    """One pass over the fleet: file every endpoint under its network, in (host, name) order."""
    states = {name: _NetworkState(network) for name, network in networks.items()}
    for host in hosts:
        for endpoint in host.endpoints:
            state = states[endpoint.network.name]
            state.declared += 1
            if endpoint.explicit is not None:
                state.explicit.append(endpoint)
            if host.reachable:
                state.wanted.append(endpoint)
            elif host.current is None:
                state.preserve[host.name] = host
            else:
                seen = _observed(host, endpoint)
                if seen is not None:
                    address, mac = seen
                    if mac:
                        endpoint.mac, endpoint.mac_from = mac, "per the facts of its host, unreachable"
                    state.observed.append((endpoint, address))
        if host.reachable and host.current:
            _index_leaving(host, states)
    for state in states.values():
        network = state.network
        if state.declared > network.usable:
            raise PeerTableError(
                f"network {network.name!r} subnet {network.subnet} has room for {network.usable} endpoint"
                f" addresses but {state.declared} endpoints are declared on it"
            )
    return states


def _index_leaving(host: _Host, states: dict[str, _NetworkState]) -> None:
    """File the endpoints that a converged host's facts show and that it no longer declares on their network."""
    mine = {endpoint.name: endpoint.network.name for endpoint in host.endpoints}
    for name, entry in host.current.items():
        if not isinstance(entry, Mapping):
            continue
        network_name = entry.get("network")
        state = states.get(network_name) if isinstance(network_name, str) else None
        if state is None or mine.get(name) == network_name:
            continue
        seen = _seen(entry, state.network)
        if seen is not None:
            state.leaving.setdefault(name, []).append((host.name, seen[0]))


def _claim(state: _NetworkState, address: int, endpoint: _Endpoint, how: str) -> None:
    owner = state.claims.get(address)
    if owner is not None and owner is not endpoint:
        raise PeerTableError(
            f"endpoints {owner.label} and {endpoint.label} both have address {ipaddress.ip_address(address)}"
            f" on network {state.network.name!r}{how}"
        )
    state.claims[address] = endpoint


def _assign(endpoint: _Endpoint, address: int, state: _NetworkState) -> None:
    endpoint.ip = address
    state.claims[address] = endpoint
    state.published.append(endpoint)


def _allocate(state: _NetworkState, hosts: dict[str, _Host]) -> None:
    """IPAM for one network: explicit addresses, then the facts, then the lowest free address."""
    network = state.network
    for endpoint in state.explicit:
        _claim(state, endpoint.explicit, endpoint, "")
    for endpoint, address in state.observed:
        # An unreachable host's endpoint cannot be renumbered, so its address is as fixed as an explicit one.
        _claim(state, address, endpoint, f" ({endpoint.label} per the facts of unreachable host {endpoint.host})")
        endpoint.ip = address
        state.published.append(endpoint)
    pending = []
    arriving = []  # new on their host, with a namesake that leaves another host: perhaps moves
    leaving = state.leaving
    for endpoint in state.wanted:
        if endpoint.explicit is not None:
            endpoint.ip = endpoint.explicit
            state.published.append(endpoint)
            if endpoint.name in leaving and _observed(hosts[endpoint.host], endpoint) is None:
                arriving.append(endpoint)
            continue
        seen = _observed(hosts[endpoint.host], endpoint)
        if seen is not None and seen[0] not in state.claims:
            _assign(endpoint, seen[0], state)
        else:
            pending.append(endpoint)  # new, stale facts, or its old address now belongs to an explicit one
            if seen is None and endpoint.name in leaving:
                arriving.append(endpoint)
    for endpoint in arriving:  # one that moves keeps its address, when nothing else has it by now
        if endpoint.ip is None:
            free = next((address for _host, address in leaving[endpoint.name] if address not in state.claims), None)
            if free is not None:
                _assign(endpoint, free, state)
    cursor = network.first
    for endpoint in pending:  # already in (host, name) order
        if endpoint.ip is not None:
            continue  # moved here with its address
        while cursor in state.claims:
            cursor += 1
        if cursor > network.last:
            raise PeerTableError(
                f"network {network.name!r} subnet {network.subnet} has no free address left for endpoint"
                f" {endpoint.label} ({network.usable} usable addresses)"
            )
        _assign(endpoint, cursor, state)
        cursor += 1
    for endpoint in arriving:
        source = next((host for host, address in leaving[endpoint.name] if address == endpoint.ip), None)
        if source is not None:
            state.moves.append((source, endpoint))


def _finish(state: _NetworkState, hosts: dict[str, _Host]) -> None:
    """MACs, VTEPs and the uniqueness and family checks of one network's published endpoints."""
    network = state.network
    macs: dict[str, _Endpoint] = {}
    families: dict[int, _Host] = {}
    for endpoint in state.published:
        if network.family == 4:
            endpoint.ip_text = _v4_text(endpoint.ip)
        else:
            endpoint.ip_text = ipaddress.ip_address(endpoint.ip).compressed
        if endpoint.mac is None:
            endpoint.mac = derive_mac(endpoint.ip_text, salt=network.name)
            endpoint.mac_from = f"derived from its address {endpoint.ip_text}"
        other = macs.setdefault(endpoint.mac, endpoint)
        if other is not endpoint:
            raise PeerTableError(
                f"endpoints {other.label} and {endpoint.label} both have mac {endpoint.mac} on network {network.name!r}"
                f" ({other.label}: {other.mac_from}; {endpoint.label}: {endpoint.mac_from}); a MAC names one"
                " endpoint of a network, on every host: give one of them another mac, or leave its mac out to have"
                " one derived from its address"
            )
        host = hosts[endpoint.host]
        endpoint.vtep = host.tunnel_text if network.encrypted else host.vtep_text
        families.setdefault(host.vtep.version, host)
    for host in state.preserve.values():
        families.setdefault(host.vtep.version, host)
    if network.dns:
        _check_names(network, state.published)
    if len(families) > 1:
        four, six = families[4], families[6]
        raise PeerTableError(
            f"network {network.name!r} mixes IPv4 and IPv6 VTEPs: host {four.name} vtep {four.vtep} and host"
            f" {six.name} vtep {six.vtep}; hosts sharing a network must use one underlay family"
        )


def _check_names(network: _Network, published: list[_Endpoint]) -> None:
    """Every name of a dns network's endpoints is a DNS name, and names one endpoint (DNS ignores case)."""
    owners: dict[str, tuple[str, _Endpoint]] = {}
    for endpoint in published:
        for name in dns_names(endpoint.name, network.name):
            problem = dns_name_problem(name)
            if problem:
                raise PeerTableError(
                    f"host {endpoint.host}: endpoint {endpoint.name!r} of dns network {network.name!r}: its name"
                    f" {name!r} is not a DNS name: {problem}; rename the endpoint"
                )
            first = owners.setdefault(name.lower(), (name, endpoint))
            if first[1] is not endpoint:
                raise PeerTableError(
                    f"endpoints {first[1].label} and {endpoint.label} of dns network {network.name!r} would both"
                    f" answer to the name {name!r} (as {first[0]!r} and {name!r}; DNS ignores case); rename one"
                )


def _largest_mtu(network: _Network, host: _Host, tunnel_family: int) -> tuple[int, str]:
    """The largest MTU of the network's devices on the host, and the overheads it leaves out, in words.

    An encrypted network's VXLAN runs over the tunnel addresses, inside WireGuard: both overheads count.
    """
    family = host.vtep.version
    if network.encrypted:
        return encrypted_vxlan_mtu(host.underlay_mtu, family, tunnel_family), (
            f"{WIREGUARD_OVERHEAD[family]} of WireGuard over IPv{family} and {VXLAN_OVERHEAD[tunnel_family]} of"
            f" VXLAN over the IPv{tunnel_family} tunnel addresses"
        )
    return vxlan_mtu(host.underlay_mtu, family), f"{VXLAN_OVERHEAD[family]} of VXLAN over IPv{family}"


def _network_mtu(network: _Network, host: _Host, tunnel_family: int = 4) -> int:
    if network.mtu is not None:
        return network.mtu
    mtu, overheads = _largest_mtu(network, host, tunnel_family)
    if mtu < MIN_MTU[network.family]:
        underlay = host.underlay_mtu or DEFAULT_MTU
        raise PeerTableError(
            f"host {host.name}: network {network.name!r} mtu would default to {mtu} (underlay_mtu {underlay} minus"
            f" {overheads}), below the IPv{network.family} minimum {MIN_MTU[network.family]}"
        )
    return mtu


def _ip_key(text: str) -> tuple[int, int]:
    """Sort key of an address in text form: IPv4 before IPv6, then numerically."""
    value = _v4_int(text)
    return (4, value) if value is not None else (6, int(ipaddress.ip_address(text)))


def _vtep_order(host: _Host) -> tuple[int, int]:
    """Sort key of hosts by VTEP, as :func:`_ip_key` sorts addresses."""
    return (host.vtep.version, int(host.vtep))


# --- guards: what the run would remove, and what it must not touch -----------------------------------------


def _options(allow_purge, purge_limit, forget_hosts) -> tuple[bool, int, frozenset]:
    if not isinstance(allow_purge, bool):
        raise PeerTableError(f"overlay_allow_purge {allow_purge!r} must be true or false, got {kind(allow_purge)}")
    limit = check_int(purge_limit, "overlay_purge_limit", 0, 2**31 - 1, error=PeerTableError)
    if forget_hosts is None:
        forget_hosts = ()
    if not _is_list(forget_hosts) or not all(isinstance(name, str) for name in forget_hosts):
        raise PeerTableError(
            f"overlay_forget_hosts {forget_hosts!r} must be a list of hostnames (or VTEP addresses), got"
            f" {kind(forget_hosts)}"
        )
    return allow_purge, limit, frozenset(name.strip() for name in forget_hosts)


def _vtep_key(text) -> str | None:
    """A VTEP of the facts in the plan's text form, or None when it is not an address."""
    if not isinstance(text, str):
        return None
    if _v4_int(text) is not None:
        return text
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return None


def _keep_vanished(hosts: list[_Host], states: dict[str, _NetworkState], forget, allow_purge: bool) -> list[dict]:
    """Keep the entries that hosts of this run hold for hosts that are no longer in the fleet group.

    A host missing from the group is more often a sliced job or a partial inventory than a decommissioned host, so
    its entries stay (its VTEP is preserved on the network) unless ``forget`` names it (or its VTEP) or
    ``allow_purge`` is set. A VTEP's name is the one any host recorded for it. Returns one report per kept host:
    ``{host, vtep, networks, held_by}``.
    """
    # an encrypted network's entries point at tunnel addresses
    fleet_vteps = {text for host in hosts for text in (host.vtep_text, host.tunnel_text) if text}
    fleet_names = {host.name for host in hosts}
    held: list[tuple[str, str, str]] = []  # (holder, network, vtep) of VTEPs that are not the fleet's
    names: dict[str, str] = {}
    for host in hosts:
        if not (host.present and host.reachable and host.peers):
            continue
        mine = {endpoint.network.name for endpoint in host.endpoints}
        for network_name, entries in host.peers.items():
            if network_name not in mine or not isinstance(entries, Mapping):
                continue  # the host leaves that network: its entries go with it
            for raw in entries.keys() - fleet_vteps:  # a set difference: cheap even with thousands of peers
                vtep = _vtep_key(raw)
                if vtep is None or vtep in fleet_vteps:
                    continue
                held.append((host.name, network_name, vtep))
                if isinstance(entries[raw], str) and entries[raw]:
                    names.setdefault(vtep, entries[raw])
    if allow_purge:
        return []
    kept: dict[str, dict] = {}
    for holder, network_name, vtep in held:
        name = names.get(vtep)
        if name in fleet_names or vtep in forget or name in forget:
            continue  # a host of the fleet (whose VTEP changed), or one forgotten on purpose
        states[network_name].kept[vtep] = name
        report = kept.setdefault(vtep, {"host": name, "vtep": vtep, "networks": set(), "held_by": set()})
        report["networks"].add(network_name)
        report["held_by"].add(holder)
    return [
        {**report, "networks": sorted(report["networks"]), "held_by": sorted(report["held_by"])}
        for _unused, report in sorted(kept.items(), key=lambda item: _ip_key(item[0]))
    ]


def kept_warnings(kept: list[dict], group: str | None = None) -> list[str]:
    """One warning per kept host of :func:`compute_plan`'s ``kept``: who it is, who holds it, how to drop it."""
    where = "the fleet group" if group is None else f"the fleet group {group!r} (overlay_fleet_group)"
    warnings = []
    for report in kept:
        name, vtep = report["host"], report["vtep"]
        who = f"host {name} (VTEP {vtep})" if name else f"the host with VTEP {vtep} (its name is not recorded)"
        forget = name or vtep
        warnings.append(
            f"{who} is not in {where}, but {', '.join(report['held_by'])} hold its entries on network"
            f" {', '.join(report['networks'])}: they are kept. If this run covers only part of the fleet on purpose"
            f" (a sliced job, a partial inventory), nothing needs doing. If {forget} was decommissioned, remove them"
            f' with -e \'{{"overlay_forget_hosts": ["{forget}"]}}\' (or -e overlay_allow_purge=true).'
        )
    return warnings


def _removals(hosts: list[_Host]) -> dict[str, dict]:
    """What the run removes from the hosts it converges, per their facts: endpoints and networks, by name."""
    removed = {}
    for host in hosts:
        if not host.reachable or (host.current is None and host.current_networks is None):
            continue
        endpoints = {endpoint.name for endpoint in host.endpoints}
        networks = {endpoint.network.name for endpoint in host.endpoints}
        gone = {
            "state": "present" if host.present else "absent",
            "endpoints": sorted(str(name) for name in host.current or () if name not in endpoints),
            "networks": sorted(str(name) for name in host.current_networks or () if name not in networks),
        }
        if gone["endpoints"] or gone["networks"]:
            removed[host.name] = gone
    return removed


def _listing(removed: Mapping, hosts, limit: int = 20, *, named: bool = True) -> str:
    """``h2: endpoints a, b, networks x; h3: ...`` for at most ``limit`` hosts (``named=False``: one host, no name)."""
    parts = []
    for host in hosts[:limit]:
        gone = removed[host]
        words = ", ".join(f"{kind} {', '.join(gone[kind])}" for kind in ("endpoints", "networks") if gone[kind])
        parts.append(f"{host}: {words}" if named else words)
    more = f"; and {len(hosts) - limit} more hosts" if len(hosts) > limit else ""
    return "; ".join(parts) + more


def _check_purge(removed: Mapping, by_name: Mapping, limit: int, moved=frozenset()) -> None:
    """A run that empties a host, or removes more than ``limit`` endpoints, needs allow_purge (absent hosts aside).

    An endpoint that moves (``moved``: its old host and name) is not a removal: it lives on on its new host.
    """
    present = {}
    for host, gone in removed.items():
        endpoints = [name for name in gone["endpoints"] if (host, name) not in moved]
        if gone["state"] == "present" and (endpoints or gone["networks"]):
            present[host] = {**gone, "endpoints": endpoints}
    emptied = [host for host, gone in present.items() if gone["endpoints"] and not by_name[host].endpoints]
    if emptied:
        them = f"host {emptied[0]}" if len(emptied) == 1 else f"hosts {', '.join(emptied)}"
        raise PeerTableError(
            f"this run would remove the whole overlay of {them} ({_listing(present, emptied, named=len(emptied) > 1)}):"
            " the facts show"
            " endpoints there today, and overlay_endpoints is empty or not set. If that is a mistake, give"
            f" {them} its overlay_endpoints (is its host_vars file named after the host, like"
            f" host_vars/{emptied[0]}.yml?). To tear a host's overlay down, set overlay_state: absent for it; to"
            " remove them anyway, run with -e overlay_allow_purge=true"
        )
    count = sum(len(gone["endpoints"]) for gone in present.values())
    if count > limit:
        raise PeerTableError(
            f"this run would remove {count} endpoint{'' if count == 1 else 's'}, more than overlay_purge_limit"
            f" ({limit}): {_listing(present, list(present))}. If that is what you want, run with"
            " -e overlay_allow_purge=true or raise overlay_purge_limit; to tear hosts down, set overlay_state:"
            " absent for them (their removals do not count)"
        )


def _check_takeover(host: _Host, wanted_netns: list[tuple[str, str, str]]) -> None:
    """No netns that the run wants is one that exists on the host and that the collection did not create."""
    if host.netns is None:
        return  # facts of an older release: not known
    # an attached endpoint's netns is the user's, even while the collection has an endpoint in it
    owned = {
        entry.get("netns")
        for entry in (host.current or {}).values()
        if isinstance(entry, Mapping) and entry.get("attached") is not True
    }
    owned.update((host.current_networks or {}).values())
    for netns, what, rename in wanted_netns:
        if netns in host.netns and netns not in owned:
            raise PeerTableError(
                f"host {host.name}: {what} would take over netns {netns!r}, which exists on the host and was not"
                f" created by netfleet.overlay; it is left as it is. {rename}, or, if that namespace is unused,"
                f" remove it (ip netns del {netns}). To put an endpoint in an existing netns on purpose, give the"
                " endpoint netns: with that name"
            )


def _check_attached_exist(host: _Host) -> None:
    """Every netns that the host's endpoints attach to exists there and is not one the collection created, per its
    facts (not known: the host checks)."""
    made = {
        entry.get("netns"): name
        for name, entry in (host.current or {}).items()
        if isinstance(entry, Mapping) and entry.get("attached") is not True
    }
    for endpoint in host.endpoints:
        if endpoint.attached is None:
            continue
        label = f"host {host.name}: endpoint {endpoint.name!r} netns {endpoint.attached!r}"
        if endpoint.attached in made:
            raise PeerTableError(
                f"{label} was created by netfleet.overlay for endpoint {made[endpoint.attached]!r}, and goes with"
                " it: netns: joins a netns of your own. Leave netns: out to keep the endpoint in the netns the"
                " collection made"
            )
        if host.netns is not None and endpoint.attached not in host.netns:
            raise PeerTableError(
                f"{label} does not exist on the host: netns: attaches an existing netns (ip netns add, a podman or"
                " systemd one) and never creates it. Create it first, or leave netns: out to have the endpoint's own"
                " netns created"
            )


def _gateway(network: _Network) -> dict | None:
    """The gateway of a network with egress or dns: its address, prefix length and anycast MAC; else None."""
    if not network.has_gateway:
        return None
    return {
        "address": ipaddress.ip_address(network.gateway).compressed,
        "prefixlen": network.subnet.prefixlen,
        "mac": gateway_mac(network.vni),
    }


def _check_mtu(network: _Network, host: _Host, tunnel_family: int = 4) -> None:
    """A network's explicit MTU fits the host's underlay (the kernel would refuse it half-way through the run)."""
    if network.mtu is None or host.underlay_mtu is None:
        return
    largest, overheads = _largest_mtu(network, host, tunnel_family)
    if network.mtu > largest:
        raise PeerTableError(
            f"host {host.name}: network {network.name!r} mtu {network.mtu} does not fit the host's underlay:"
            f" underlay_mtu {host.underlay_mtu} minus {overheads} leaves at"
            f" most {largest}. Set the network's mtu to {largest} or less, or leave it out (it then defaults to"
            " each host's underlay MTU minus the overhead), or raise the underlay's MTU"
        )


# --- WireGuard: the tunnel addresses and public keys of the hosts of encrypted networks ------------------------

# A WireGuard public key: 32 bytes in base64 (44 characters, the last one "=").
_PUBLIC_KEY_RE = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")


@dataclass(frozen=True, slots=True)
class _WireguardOptions:
    """The fleet-wide WireGuard variables, checked: overlay_wireguard_port, _subnet and _rotate."""

    port: int
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    rotate: bool

    @property
    def family(self) -> int:
        return self.subnet.version

    @property
    def first(self) -> int:  # never the network address
        return int(self.subnet.network_address) + 1

    @property
    def last(self) -> int:  # never the (IPv4) broadcast address, nor IPv6's last one
        return int(self.subnet.broadcast_address) - 1

    @property
    def usable(self) -> int:
        return max(0, self.last - self.first + 1)


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the hosts' facts show of one WireGuard peer (``peers`` of the facts' ``wireguard``)."""

    vtep: str
    port: int | None
    address: int | None
    public_key: str | None


def _wireguard_options(port, subnet, rotate) -> _WireguardOptions:
    port = WIREGUARD_PORT if port is None else check_port(port, "overlay_wireguard_port", error=PeerTableError)
    rotate = False if rotate is None else check_bool(rotate, "overlay_wireguard_rotate", error=PeerTableError)
    label = "overlay_wireguard_subnet"
    raw = WIREGUARD_SUBNET if subnet is None or subnet == "" else subnet
    return _WireguardOptions(port, _parse_cidr(raw, label, WIREGUARD_SUBNET), rotate)


def _check_wireguard_port(options: _WireguardOptions, networks: dict[str, _Network]) -> None:
    """The WireGuard port is not the VXLAN port of an unencrypted network: both listen on the hosts' VTEPs."""
    for network in networks.values():
        if not network.encrypted and network.port == options.port:
            raise PeerTableError(
                f"overlay_wireguard_port {options.port} is also the port of unencrypted network {network.name!r};"
                " both listen on the hosts' VTEPs, so give one of them another port"
            )


def _public_key(value) -> str | None:
    """A public key of the facts, or None for anything that is not one (none yet, garbage)."""
    return value if isinstance(value, str) and _PUBLIC_KEY_RE.match(value) else None


def _tunnel_of(raw, options: _WireguardOptions) -> int | None:
    """A tunnel address of the facts (bare, or with a /32, /128 or the subnet's prefix) as an int, when it is
    usable in the subnet; else None (stale facts, garbage)."""
    if not isinstance(raw, str) or "%" in raw:
        return None
    try:
        interface = ipaddress.ip_interface(raw.strip())
    except ValueError:
        return None
    if interface.version != options.family:
        return None
    if "/" in raw and interface.network.prefixlen not in (options.subnet.prefixlen, interface.max_prefixlen):
        return None
    value = int(interface.ip)
    return value if options.first <= value <= options.last else None


def _split_endpoint(raw) -> tuple[str, int | None] | None:
    """``198.18.1.2:51820`` or ``[fd00::2]:51820`` of the facts as (VTEP text, port or None), or None."""
    if not isinstance(raw, str):
        return None
    address, colon, port = raw.strip().rpartition(":")
    if not colon:
        return None
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    elif ":" in address:
        return None
    vtep = _vtep_key(address)
    if vtep is None:
        return None
    return vtep, int(port) if port.isdigit() and 0 < int(port) < 65536 else None


def _seen_peers(hosts: list[_Host], options: _WireguardOptions) -> tuple[dict[str, _Seen], dict[int, _Seen]]:
    """What the hosts' facts show of their WireGuard peers, by VTEP and by tunnel address (the first host, by name,
    that shows one wins). Linear in the facts."""
    by_vtep: dict[str, _Seen] = {}
    by_address: dict[int, _Seen] = {}
    for host in hosts:
        peers = (host.wireguard or {}).get("peers")
        if not _is_list(peers):
            continue
        for peer in peers:
            if not isinstance(peer, Mapping):
                continue
            endpoint = _split_endpoint(peer.get("endpoint"))
            if endpoint is None:
                continue
            allowed = peer.get("allowed_ips")
            addresses = (_tunnel_of(ip, options) for ip in allowed) if _is_list(allowed) else ()
            address = next((value for value in addresses if value is not None), None)
            seen = _Seen(endpoint[0], endpoint[1], address, _public_key(peer.get("public_key")))
            by_vtep.setdefault(seen.vtep, seen)
            if address is not None:
                by_address.setdefault(address, seen)
    return by_vtep, by_address


def _tunnel_text(value: int, family: int) -> str:
    return _v4_text(value) if family == 4 else ipaddress.ip_address(value).compressed


def _allocate_tunnels(hosts: list[_Host], options: _WireguardOptions, by_vtep, by_address) -> list[_Host]:
    """Tunnel IPAM, stable across runs. Returns the hosts that need a tunnel address, each with it.

    A host needs one when it is present and has endpoints on an encrypted network. An unreachable host keeps the
    address its facts show, else the one its peers' facts show for its VTEP (it cannot be renumbered); a host of
    the run keeps the address its facts show (inside the subnet, not taken), else the one its peers' facts show
    for its VTEP; addresses that hosts hold for VTEPs outside the fleet are not given away; the rest get the
    lowest free address, hosts in name order. Never the subnet's first or last address.
    """
    needing = [host for host in hosts if host.present and any(e.network.encrypted for e in host.endpoints)]
    if not needing:
        return needing
    for host in hosts:
        if host.vtep is not None and host.vtep.version == options.family and host.vtep in options.subnet:
            raise PeerTableError(
                f"host {host.name}: vtep {host.vtep} is inside overlay_wireguard_subnet {options.subnet}, which"
                " holds the tunnel addresses of the encrypted networks; give overlay_wireguard_subnet a range that"
                " holds no host's VTEP"
            )
    if len(needing) > options.usable:
        names = ", ".join(host.name for host in needing[:10]) + (", ..." if len(needing) > 10 else "")
        raise PeerTableError(
            f"overlay_wireguard_subnet {options.subnet} is too small: it has room for {options.usable} tunnel"
            f" addresses but {len(needing)} hosts have endpoints on encrypted networks ({names}); give it a larger"
            " range"
        )
    claims: dict[int, str] = {}

    def claim(host: _Host, value: int | None) -> None:
        if host.tunnel is None and value is not None and value not in claims:
            claims[value] = host.name
            host.tunnel = value

    def own(host: _Host) -> int | None:
        return _tunnel_of((host.wireguard or {}).get("address"), options)

    def theirs(host: _Host) -> int | None:
        seen = by_vtep.get(host.vtep_text)
        return None if seen is None else seen.address

    for host in needing:
        if not host.reachable:
            claim(host, own(host))
            claim(host, theirs(host))
    for host in needing:
        if host.reachable:
            claim(host, own(host))
    for host in needing:
        if host.reachable:
            claim(host, theirs(host))
    fleet_vteps = {host.vtep_text for host in hosts if host.vtep_text}
    for value, seen in by_address.items():
        if seen.vtep not in fleet_vteps:
            claims.setdefault(value, seen.vtep)
    cursor = options.first
    for host in needing:
        if host.tunnel is not None:
            continue
        while cursor in claims:
            cursor += 1
        if cursor > options.last:
            raise PeerTableError(
                f"overlay_wireguard_subnet {options.subnet} has no free tunnel address left for host {host.name}:"
                f" its {options.usable} addresses are taken by the fleet's hosts and by hosts outside the fleet"
                " whose peers still hold them; give it a larger range"
            )
        claims[cursor] = host.name
        host.tunnel = cursor
    for host in needing:
        host.tunnel_text = _tunnel_text(host.tunnel, options.family)
    return needing


def _endpoint_text(vtep: str, port: int) -> str:
    return f"[{vtep}]:{port}" if ":" in vtep else f"{vtep}:{port}"


def _wireguard_hosts(
    needing: list[_Host], states: dict[str, _NetworkState], options: _WireguardOptions, by_vtep, by_address
) -> tuple[dict[str, dict], list[str]]:
    """The plan's ``wireguard.hosts`` and the warnings for hosts without a public key.

    ``hosts`` maps the name of every host with a tunnel address, and of every host outside the fleet whose
    entries are kept on an encrypted network (by name, or by tunnel address when its name is not recorded), to
    ``{address, public_key, vtep, port, endpoint, mtu, rotate}``. When rotating, a host of the run with a staged
    key gets ``rotate`` true and its peers get that key; an unreachable host keeps its key.
    """
    entries: dict[str, dict] = {}
    keyless: list[_Host] = []
    for host in needing:
        facts = host.wireguard or {}
        current, staged = _public_key(facts.get("public_key")), _public_key(facts.get("public_key_next"))
        port = options.port
        if host.reachable:
            rotate = options.rotate and staged is not None
            key = staged if rotate else current
        else:
            rotate = False
            seen = by_vtep.get(host.vtep_text)
            key = current or (None if seen is None else seen.public_key)
            own_port = facts.get("port")
            port = (
                own_port
                if isinstance(own_port, int) and not isinstance(own_port, bool)
                else (None if seen is None else seen.port)
            ) or options.port
        if key is None:
            keyless.append(host)
        entries[host.name] = {
            "address": host.tunnel_text,
            "public_key": key,
            "vtep": host.vtep_text,
            "port": port,
            "endpoint": _endpoint_text(host.vtep_text, port),
            "mtu": wireguard_mtu(host.underlay_mtu, host.vtep.version),
            "rotate": rotate,
        }
    for state in states.values():
        if not state.network.encrypted:
            continue
        for address, name in state.kept.items():
            seen = by_address.get(int(ipaddress.ip_address(address)))
            if seen is None or (name or address) in entries:
                continue
            port = seen.port or options.port
            entries[name or address] = {
                "address": address,
                "public_key": seen.public_key,
                "vtep": seen.vtep,
                "port": port,
                "endpoint": _endpoint_text(seen.vtep, port),
                "mtu": None,
                "rotate": False,
            }
    warnings = []
    for host in keyless:
        why = (
            "its facts show none; in check mode no key is made"
            if host.reachable
            else "it is not converged in this run and no facts show its key"
        )
        warnings.append(
            f"host {host.name} has endpoints on an encrypted network but no WireGuard public key is known for it"
            f" ({why}): the other hosts leave it out of their WireGuard peers in this run, so its encrypted"
            " networks do not reach it until a run gives it a key"
        )
    return entries, warnings


PLAN_VERSION = 1


def compute_plan(
    networks,
    fleet,
    *,
    allow_purge=False,
    purge_limit=DEFAULT_PURGE_LIMIT,
    forget_hosts=(),
    wireguard_port=WIREGUARD_PORT,
    wireguard_subnet=WIREGUARD_SUBNET,
    wireguard_rotate=False,
) -> dict:
    """The fleet plan: the fleet's overlay computed once, compactly: what every network holds and every host owns.

    ``networks`` is the fleet-wide ``overlay_networks`` list and ``fleet`` maps each hostname to
    ``{state, reachable, vtep, underlay_mtu, endpoints, current}`` and, from its facts, ``current_networks``,
    ``peers`` and ``netns``.  The plan's size is linear in the endpoints (each network lists its endpoints once,
    not once per host), so it is cheap to hand to every host; :func:`host_tables` expands one host's part into its
    tables.  Raises :class:`PeerTableError` naming the field, the host and the value on bad input, and when the
    run would empty a host or remove more than ``purge_limit`` endpoints (unless ``allow_purge``) or take over a
    netns that the collection did not create.  Entries that the hosts hold for hosts no longer in ``fleet`` are
    kept unless ``forget_hosts`` names them (or ``allow_purge``).

    Shape (plain JSON data): ``{version, networks: {name: {name, vni, port, subnet, prefixlen, family, netns,
    bridge, vxlan, egress, dns, flood, proxy, gateway: {address, prefixlen, mac} (null without egress and dns),
    names: [[endpoint, ip]] (by name; empty without dns), neigh: [[ip, mac, host]] (by IP), fdb: [[mac, vtep,
    host]] (by MAC), vteps, hosts (of the vteps), preserve, preserve_hosts (of preserve, null when unknown)}},
    hosts: {name: {state, skip, vtep, networks: [{name, mtu, endpoints: [{name, netns, attached, ifname, veth, ip,
    address, mac, mtu}] (by name)}] (by VNI)}}, moves: [{endpoint, network, ip, mac, from, to}] (by network, then
    endpoint), removed: {host: {state, endpoints, networks}}, kept: [{host, vtep, networks, held_by}]}``.
    ``removed`` and ``kept`` are reports for the controller, not packed.  Everything a network's hosts share (its
    gateway, its names) is in the network, once; a host's part holds only its own endpoints.  A flood network's
    flood lists are its ``vteps`` and ``preserve``, which :func:`host_tables` expands per host.

    A *move* is an endpoint that the facts of a host of this run show on a network and that another host of this
    run (which does not have it yet) now declares on that network, by the same name, with the same address: an
    endpoint without an explicit address keeps the one it had, when nothing else has it by now.  ``moves`` lets
    the role order the run make-before-break; ``removed`` still lists the endpoint on its old host.
    """
    allow_purge, purge_limit, forget = _options(allow_purge, purge_limit, forget_hosts)
    wg_options = _wireguard_options(wireguard_port, wireguard_subnet, wireguard_rotate)
    parsed_networks = _parse_networks(networks)
    encrypted = any(network.encrypted for network in parsed_networks.values())
    if encrypted:
        _check_wireguard_port(wg_options, parsed_networks)
    hosts = _parse_fleet(fleet, parsed_networks)
    by_name = {host.name: host for host in hosts}
    states = _index(hosts, parsed_networks)
    by_vtep, by_address = _seen_peers(hosts, wg_options) if encrypted else ({}, {})
    tunneled = _allocate_tunnels(hosts, wg_options, by_vtep, by_address) if encrypted else []
    for state in states.values():
        _allocate(state, by_name)
        _finish(state, by_name)
    kept = _keep_vanished(hosts, states, forget, allow_purge)
    wireguard, warnings = None, []
    if encrypted:
        wg_hosts, warnings = _wireguard_hosts(tunneled, states, wg_options, by_vtep, by_address)
        wireguard = {
            "port": wg_options.port,
            "subnet": str(wg_options.subnet),
            "prefixlen": wg_options.subnet.prefixlen,
            "family": wg_options.family,
            "hosts": wg_hosts,
        }

    # Per network, sort once; a host's tables are these lists without its own entries.
    plan_networks = {}
    for name, state in states.items():
        if not state.published and not state.preserve:
            continue
        network = state.network
        published = state.published
        if network.encrypted:  # its VXLAN runs between the hosts' tunnel addresses
            vtep_hosts = sorted({e.host: by_name[e.host] for e in published}.values(), key=lambda h: h.tunnel)
            vteps = [host.tunnel_text for host in vtep_hosts]
            preserve = {host.tunnel_text: host.name for host in state.preserve.values()}
        else:
            vtep_hosts = sorted({e.host: by_name[e.host] for e in published}.values(), key=_vtep_order)
            vteps = [host.vtep_text for host in vtep_hosts]
            preserve = {host.vtep_text: host.name for host in state.preserve.values()}
        preserve.update(state.kept)
        preserved = sorted(preserve, key=_ip_key)
        plan_networks[name] = {
            "name": network.name,
            "vni": network.vni,
            "port": network.port,
            "subnet": str(network.subnet),
            "prefixlen": network.subnet.prefixlen,
            "family": network.family,
            "netns": overlay_netns(network.vni),
            "bridge": BRIDGE,
            "vxlan": VXLAN,
            "egress": network.egress,
            "dns": network.dns,
            "flood": network.flood,
            "proxy": network.proxy,
            "gateway": _gateway(network),
            "names": [[e.name, e.ip_text] for e in sorted(published, key=lambda e: e.name)] if network.dns else [],
            "neigh": [[e.ip_text, e.mac, e.host] for e in sorted(published, key=lambda e: e.ip)],
            "fdb": [[e.mac, e.vtep, e.host] for e in sorted(published, key=lambda e: e.mac)],
            "vteps": vteps,
            "hosts": [host.name for host in vtep_hosts],
            "preserve": preserved,
            "preserve_hosts": [preserve[vtep] for vtep in preserved],
        }
        if network.encrypted:  # only then: an unencrypted fleet's plan is exactly what it was before
            plan_networks[name]["encrypted"] = True

    plan_hosts = {}
    for host in hosts:
        part = {
            "state": "present" if host.present else "absent",
            "skip": not host.reachable,
            "vtep": None if host.vtep is None else host.vtep.compressed,
            "networks": [],
        }
        plan_hosts[host.name] = part
        if not (host.present and host.reachable and host.endpoints):
            continue
        own: dict[str, list[_Endpoint]] = {}
        for endpoint in host.endpoints:
            own.setdefault(endpoint.network.name, []).append(endpoint)
        wanted_netns = [
            (endpoint.name, f"endpoint {endpoint.name!r}", "Rename the endpoint")
            for endpoint in host.endpoints
            if endpoint.attached is None
        ]
        for network_name in own:
            network = parsed_networks[network_name]
            wanted_netns.append(
                (
                    overlay_netns(network.vni),
                    f"network {network.name!r}",
                    f"Give the network another vni than {network.vni}",
                )
            )
        _check_takeover(host, wanted_netns)
        _check_attached_exist(host)
        for network_name in sorted(own, key=lambda n: parsed_networks[n].vni):
            network = parsed_networks[network_name]
            _check_mtu(network, host, wg_options.family)
            mtu = _network_mtu(network, host, wg_options.family)
            endpoints = []
            for endpoint in own[network_name]:  # sorted by name
                if endpoint.mtu is not None and endpoint.mtu > mtu:
                    raise PeerTableError(
                        f"host {host.name}: endpoint {endpoint.name!r} mtu {endpoint.mtu} exceeds network"
                        f" {network.name!r} mtu {mtu}"
                    )
                endpoints.append(
                    {
                        "name": endpoint.name,
                        "netns": endpoint.netns,
                        "attached": endpoint.attached is not None,
                        "ifname": endpoint.ifname,
                        "veth": veth_name(endpoint.name),
                        "ip": endpoint.ip_text,
                        "address": f"{endpoint.ip_text}/{network.subnet.prefixlen}",
                        "mac": endpoint.mac,
                        "mtu": mtu if endpoint.mtu is None else endpoint.mtu,
                    }
                )
            part["networks"].append({"name": network.name, "mtu": mtu, "endpoints": endpoints})
    removed = _removals(hosts)
    moves = [
        {"endpoint": e.name, "network": name, "ip": e.ip_text, "mac": e.mac, "from": source, "to": e.host}
        for name in sorted(states)
        for source, e in sorted(states[name].moves, key=lambda move: (move[1].name, move[1].host))
    ]
    if not allow_purge:
        _check_purge(removed, by_name, purge_limit, {(move["from"], move["endpoint"]) for move in moves})
    return {
        "version": PLAN_VERSION,
        "networks": plan_networks,
        "hosts": plan_hosts,
        "moves": moves,
        "removed": removed,
        "kept": kept,
        "wireguard": wireguard,
        "warnings": warnings,
    }


def pack_plan(fleet_plan: Mapping) -> dict:
    """The fleet plan with each network and each host as one JSON string: what ``overlay_plan`` returns as ``plan``.

    Ansible walks, copies and tags every value of a task result, once per value; a plan of a few thousand hosts
    has hundreds of thousands of them, but only a few thousand strings once packed. Each host unpacks only its
    own part and its networks (:func:`host_tables` takes both forms).
    """
    packed = {
        "version": fleet_plan["version"],
        "packed": True,
        "networks": {name: _dumps(net) for name, net in fleet_plan["networks"].items()},
        "hosts": {name: _dumps(part) for name, part in fleet_plan["hosts"].items()},
        "moves": fleet_plan["moves"],  # one small record per move, for the role's order of the run
    }
    wireguard = fleet_plan.get("wireguard")
    if wireguard is not None:  # a fleet without an encrypted network has none: its plan is as it always was
        packed["wireguard"] = {
            **wireguard,
            "hosts": {name: _dumps(entry) for name, entry in wireguard["hosts"].items()},
        }
    return packed


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _unpacked(value):
    return json.loads(value) if isinstance(value, str) else value


def _host_part(fleet_plan: Mapping, host: str) -> Mapping:
    """One host's part of a fleet plan (packed or not), checked to be one that this release computed."""
    if not isinstance(fleet_plan, Mapping) or fleet_plan.get("version") != PLAN_VERSION:
        version = fleet_plan.get("version") if isinstance(fleet_plan, Mapping) else None
        raise PeerTableError(
            f"the plan must be what netfleet.overlay.overlay_plan returns (version {PLAN_VERSION}), got"
            f" {kind(fleet_plan)}{'' if version is None else f' version {version!r}'}"
        )
    part = fleet_plan["hosts"].get(host)
    if part is None:
        raise PeerTableError(f"host {host} is not in the plan: it is not a host of the fleet group the plan covers")
    return _unpacked(part)


def _flood(net: Mapping, me: str, peers: list[str]) -> list[dict]:
    """A host's head-end replication list on a network: ``00:00:00:00:00:00`` to every peer VTEP (the other hosts'
    and the preserved ones, never its own), by address; empty unless the network floods.

    The flood entries are part of the host's ``fdb``: one kernel table, reconciled as a whole (``overridden``), in
    which the all-zero MAC is the one key that holds many destinations (see ``module_utils._table``).
    """
    if not net["flood"]:
        return []
    dsts = peers  # sorted by address, as the plan's vteps are
    if net["preserve"]:
        dsts = sorted((*peers, *(vtep for vtep in net["preserve"] if vtep != me)), key=_ip_key)
    return [{"mac": ZERO_MAC, "dst": vtep} for vtep in dsts]


def _wireguard_peers(wireguard: Mapping, host: str, names: dict) -> tuple[list[dict], list[str]]:
    """The WireGuard peers of a host and their VTEPs: the hosts of ``names`` (a dict used as an ordered set of the
    peers' names, or tunnel addresses of nameless hosts outside the fleet) whose public key is known, by tunnel
    address."""
    found = []
    for name in names:
        entry = wireguard["hosts"].get(name)
        if name == host or entry is None:
            continue
        entry = _unpacked(entry)
        if entry["public_key"] is None:
            continue  # no key known: left out (overlay_plan warns)
        found.append(entry | {"host": name})
    found.sort(key=lambda entry: _ip_key(entry["address"]))
    peers = [{key: entry[key] for key in ("host", "public_key", "endpoint", "address")} for entry in found]
    return peers, sorted({entry["vtep"] for entry in found}, key=_ip_key)


def host_tables(fleet_plan: Mapping, host: str) -> dict:
    """One host's record (see the ``peer_tables`` filter) from a fleet plan of :func:`compute_plan`, packed or not.

    Linear in the host's own tables: each of its networks' lists without the host's own entries, and on a flood
    network one flood entry per peer VTEP (:func:`_flood`). On an encrypted network the VTEPs are the hosts' tunnel
    addresses; the host's ``wireguard`` holds its tunnel and its WireGuard peers, the hosts it shares an encrypted
    network with (``wireguard_allow``: their VTEPs). The allowlist and ports are the unencrypted networks' only.
    """
    part = _host_part(fleet_plan, host)
    me = part["vtep"]
    wireguard = fleet_plan.get("wireguard")
    own = None
    if wireguard is not None and host in wireguard["hosts"]:
        own = _unpacked(wireguard["hosts"][host])
    networks = []
    allowlist, ports, preserved = set(), set(), set()
    wg_names: dict = {}  # the hosts it shares an encrypted network with (an ordered set)
    for mine in part["networks"]:
        net = _unpacked(fleet_plan["networks"][mine["name"]])
        encrypted = net.get("encrypted", False)
        local = me
        if encrypted:  # its VXLAN runs between the hosts' tunnel addresses
            local = None if own is None else own["address"]
        peers = [vtep for vtep in net["vteps"] if vtep != local]
        peer_hosts = {vtep: name for vtep, name in zip(net["vteps"], net["hosts"], strict=True) if vtep != local}
        peer_hosts.update(zip(net["preserve"], net["preserve_hosts"], strict=True))
        networks.append(
            {
                "name": net["name"],
                "vni": net["vni"],
                "port": net["port"],
                "subnet": net["subnet"],
                "prefixlen": net["prefixlen"],
                "family": net["family"],
                "mtu": mine["mtu"],
                "netns": net["netns"],
                "bridge": net["bridge"],
                "vxlan": net["vxlan"],
                "egress": net["egress"],
                "dns": net["dns"],
                "flood": net["flood"],
                "proxy": net["proxy"],
                "encrypted": encrypted,
                "gateway": net["gateway"],
                "names": {
                    name: address for endpoint, address in net["names"] for name in dns_names(endpoint, net["name"])
                },
                "endpoints": mine["endpoints"],
                "neigh": [{"ip": ip, "mac": mac} for ip, mac, owner in net["neigh"] if owner != host],
                "fdb": [
                    *_flood(net, local, peers),
                    *({"mac": mac, "dst": dst} for mac, dst, owner in net["fdb"] if owner != host),
                ],
                "peers": peers,
                "peer_hosts": peer_hosts,
            }
        )
        if encrypted:
            wg_names.update(dict.fromkeys(net["hosts"]))
            for address, name in zip(net["preserve"], net["preserve_hosts"], strict=True):
                wg_names[name or address] = None
                # preserve_vteps holds VTEPs: overlay_host keeps the entries of an encrypted network that point at
                # the tunnel addresses of its WireGuard peers at those VTEPs
                entry = wireguard["hosts"].get(name or address) if wireguard is not None else None
                if entry is not None:
                    preserved.add(_unpacked(entry)["vtep"])
            continue
        preserved.update(net["preserve"])
        allowlist.update(peers)
        allowlist.update(net["preserve"])
        ports.add(net["port"])
    record = {
        "state": part["state"],
        "skip": part["skip"],
        "vtep": me,
        "networks": networks,
        "allowlist": sorted(allowlist, key=_ip_key),
        "ports": sorted(ports),
        "preserve_vteps": sorted(preserved, key=_ip_key),
        "wireguard": None,
        "wireguard_allow": [],
    }
    if wg_names and own is not None:
        wg_peers, record["wireguard_allow"] = _wireguard_peers(wireguard, host, wg_names)
        record["wireguard"] = {
            "address": own["address"],
            "prefixlen": wireguard["prefixlen"],
            "port": own["port"],
            "mtu": own["mtu"],
            "rotate": own["rotate"],
            "switch_at": own.get("switch_at") if own["rotate"] else None,
            "peers": wg_peers,
        }
    return record


def compute_peer_tables(networks, fleet, **options) -> dict:
    """Compute every host's part of the overlay: names, addresses, MTUs and static ARP/FDB tables.

    ``networks`` is the fleet-wide ``overlay_networks`` list and ``fleet`` maps each hostname to
    ``{state, reachable, vtep, underlay_mtu, endpoints, current}``.  Returns hostname -> record; see the
    ``netfleet.overlay.peer_tables`` filter documentation for the exact shape.  Raises
    :class:`PeerTableError` naming the field, the host and the value on bad input.  This is
    :func:`compute_plan` expanded for every host (``options`` are its keyword arguments).
    """
    fleet_plan = compute_plan(networks, fleet, **options)
    return {host: host_tables(fleet_plan, host) for host in fleet_plan["hosts"]}


def plan_summary(fleet_plan: Mapping) -> dict:
    """Counts for display: hosts (and how many are present/absent/skipped), networks, endpoints, the entries of
    every host's neighbour and FDB tables (``flood``: how many of the FDB entries are flood entries) and the
    endpoints that move between hosts, without expanding the tables (linear in the plan, packed or not)."""
    counts = dict.fromkeys(
        (
            "hosts",
            "hosts_present",
            "hosts_absent",
            "hosts_skipped",
            "networks",
            "endpoints",
            "neigh",
            "fdb",
            "flood",
            "moves",
        ),
        0,
    )
    networks_by_name = {name: _unpacked(net) for name, net in fleet_plan["networks"].items()}
    owners = {name: {} for name in networks_by_name}
    for name, net in networks_by_name.items():
        for entry in net["neigh"]:
            owners[name][entry[2]] = owners[name].get(entry[2], 0) + 1
    networks = set()
    for host, packed in fleet_plan["hosts"].items():
        part = _unpacked(packed)
        counts["hosts"] += 1
        counts["hosts_skipped"] += bool(part["skip"])
        counts["hosts_present" if part["state"] == "present" else "hosts_absent"] += 1
        for mine in part["networks"]:
            networks.add(mine["name"])
            net = networks_by_name[mine["name"]]
            counts["endpoints"] += len(mine["endpoints"])
            remote = len(net["neigh"]) - owners[mine["name"]].get(host, 0)
            # a host with endpoints on a network is one of its vteps; the preserved ones are never its own
            flood = len(net["vteps"]) - 1 + len(net["preserve"]) if net["flood"] else 0
            counts["neigh"] += remote
            counts["fdb"] += remote + flood
            counts["flood"] += flood
    counts["networks"] = len(networks)
    counts["moves"] = len(fleet_plan["moves"])
    return counts
