# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the overlay's domain rules, shared by the modules and the controller.  May change without notice.
"""One home for the domain: names, limits, MTU arithmetic and the MAC rule.

The controller (``plugins/plugin_utils``) computes what the hosts' modules then build, so both sides must agree
on every name and number; they import them from here.  Standard library only, no kernel access.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
from collections.abc import Mapping

# --- limits ---------------------------------------------------------------------------------------------------

IFNAMSIZ = 15  # usable characters of a Linux interface name
NAME_MAX = 255  # longest file name, and so the longest netns name (a file under NETNS_RUN_DIR)
MAX_VNI = 16777215  # 24-bit VXLAN network identifier
MAX_PORT = 65535
DEFAULT_PORT = 4789  # IANA's VXLAN port
NETNS_RUN_DIR = "/run/netns"  # where iproute2 (and pyroute2) bind named network namespaces

_DECIMAL_RE = re.compile(r"^[+-]?[0-9]+$")


def check_int(value, label: str, low: int, high: int, what: str = "", *, error=ValueError) -> int:
    """An int, or its decimal text (as INI inventories give), within ``low..high``; else ``error`` (``label`` first).

    ``what`` names the range in the message ("UDP port").  A bool or a float is not an integer.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise error(f"{label} {value!r} is not an integer (got {kind(value)})")
    if isinstance(value, str):
        if not _DECIMAL_RE.match(value.strip()):
            raise error(f"{label} {value!r} is not an integer")
        value = int(value.strip())
    number = int(value)
    if not low <= number <= high:
        raise error(f"{label} {number} is outside {low}..{high}{f' ({what})' if what else ''}")
    return number


def check_vni(value, label: str, *, error=ValueError) -> int:
    """A VXLAN network identifier, 1..:data:`MAX_VNI`."""
    return check_int(value, label, 1, MAX_VNI, "24-bit VXLAN network identifier", error=error)


def check_port(value, label: str, *, error=ValueError) -> int:
    """A UDP port, 1..:data:`MAX_PORT`."""
    return check_int(value, label, 1, MAX_PORT, "UDP port", error=error)


# What Ansible's ``bool`` type reads as true and as false, besides True and False themselves (INI inventories and
# ``-e key=value`` give text).
_TRUE = frozenset(("true", "yes", "on", "y", "t", "1"))
_FALSE = frozenset(("false", "no", "off", "n", "f", "0"))


def check_bool(value, label: str, *, error=ValueError) -> bool:
    """True or False, or the text or 0/1 that Ansible's ``bool`` type reads as one; else ``error`` (``label``
    first)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    raise error(f"{label} {value!r} is not a boolean (true or false; got {kind(value)})")


# --- names ----------------------------------------------------------------------------------------------------

BRIDGE = "br0"  # the bridge in every overlay netns
VXLAN = "vxlan0"  # the vxlan device in every overlay netns
ENDPOINT_IFNAME = "eth0"  # an endpoint's interface, inside the endpoint's netns
# The vxlan planner creates a device under this prefix in the host namespace before moving it into its netns;
# one left behind by an interrupted run is ours and is removed on the next create.
TEMP_VXLAN_PREFIX = "nfvx-"

# The one naming rule of networks and endpoints: an endpoint's name is its netns (a file name) and a network's name
# is written into the kernel, so no spaces, quotes, '=' or '/'.
NAME_RULE = "1 to 64 characters of A-Z a-z 0-9 _ . - not starting with '.' or '-'"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def valid_name(name) -> bool:
    """Whether ``name`` follows :data:`NAME_RULE` (a network's or an endpoint's name, and an attached netns)."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def check_ifname(value, label: str, *, error=ValueError) -> str:
    """A Linux interface name: 1..:data:`IFNAMSIZ` characters, no '/', ':' or whitespace, not '.' or '..' (the
    kernel's ``dev_valid_name``, and ':' that iproute2 reads as an alias); else ``error`` (``label`` first)."""
    text = str(value)
    if not text or len(text) > IFNAMSIZ:
        raise error(f"{label} {value!r} must be 1 to {IFNAMSIZ} characters long (Linux IFNAMSIZ)")
    if "/" in text or any(c.isspace() for c in text) or ":" in text or text in (".", ".."):
        raise error(f"{label} {value!r} is not a valid interface name (no '/', ':' or whitespace)")
    return text


def netns_path(name: str) -> str:
    """The file of the named netns ``name`` under :data:`NETNS_RUN_DIR`; a path (it has a '/') is taken as it is."""
    return name if os.path.dirname(name) else os.path.join(NETNS_RUN_DIR, name)


def overlay_netns(vni: int) -> str:
    """Name of the overlay netns that holds a network's bridge and vxlan device."""
    return f"ovl-{vni}"


def overlay_netns_vni(name: str) -> int | None:
    """The VNI whose overlay netns is called ``name`` (the inverse of :func:`overlay_netns`), or None."""
    prefix, _sep, digits = name.partition("-")
    if prefix != "ovl" or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    vni = int(digits)
    return vni if vni <= MAX_VNI else None


# --- WireGuard (encrypted networks) ------------------------------------------------------------------------------

# One WireGuard interface per host, in its own namespace: its UDP socket stays in the host's namespace (where the
# interface is made), the tunnel addresses and the encrypted networks' VXLAN sockets live only in WIREGUARD_NETNS.
WIREGUARD_NETNS = "ovl-wg"
WIREGUARD_IFNAME = "wg-overlay"
WIREGUARD_PORT = 51820
# Tunnel addresses, one per host; they exist only inside WIREGUARD_NETNS, so they never meet the host's routes.
WIREGUARD_SUBNET = "10.255.0.0/16"
# Every peer keeps its session warm, and a peer or key that changes gets its handshake at once (not on the next
# packet, not 5 s after a failed one): what makes a rotation nearly lossless.
WIREGUARD_KEEPALIVE = 25


def veth_name(endpoint: str) -> str:
    """Host-side veth name: ``veth-<endpoint>`` if it fits IFNAMSIZ, else ``veth-`` + 10 hex of sha1."""
    name = f"veth-{endpoint}"
    if len(name) <= IFNAMSIZ:
        return name
    return "veth-" + hashlib.sha1(endpoint.encode("utf-8")).hexdigest()[:10]


def temp_vxlan_name(vni: int) -> str:
    """The name a vxlan device has between its creation in the host namespace and its move into its netns."""
    return f"{TEMP_VXLAN_PREFIX}{vni:06x}"


# --- MTU ------------------------------------------------------------------------------------------------------

# The kernel's MTU of a new Ethernet-like link (ETH_DATA_LEN), and so of an underlay whose MTU is not known.
DEFAULT_MTU = 1500
# Outer Ethernet + IP + UDP + VXLAN headers; the kernel uses the same numbers (VXLAN_HEADROOM, VXLAN6_HEADROOM).
VXLAN_OVERHEAD = {4: 50, 6: 70}
MIN_MTU = {4: 68, 6: 1280}  # IPv4 minimum (RFC 791), IPv6 minimum link MTU (RFC 8200)
MAX_MTU = 65535


def vxlan_mtu(underlay_mtu: int | None, vtep_family: int) -> int:
    """The largest MTU of a vxlan over an underlay link of ``underlay_mtu`` (None: :data:`DEFAULT_MTU`)."""
    return (DEFAULT_MTU if underlay_mtu is None else underlay_mtu) - VXLAN_OVERHEAD[vtep_family]


# WireGuard's outer IP + UDP + its own header and tag, by the family of the underlay it is sent over (issue 16).
WIREGUARD_OVERHEAD = {4: 60, 6: 80}


def wireguard_mtu(underlay_mtu: int | None, vtep_family: int) -> int:
    """The MTU of ``wg-overlay`` over an underlay link of ``underlay_mtu`` (None: :data:`DEFAULT_MTU`)."""
    return (DEFAULT_MTU if underlay_mtu is None else underlay_mtu) - WIREGUARD_OVERHEAD[vtep_family]


def encrypted_vxlan_mtu(underlay_mtu: int | None, vtep_family: int, tunnel_family: int) -> int:
    """The largest MTU of an encrypted network's vxlan: VXLAN over the tunnel addresses, inside WireGuard."""
    return wireguard_mtu(underlay_mtu, vtep_family) - VXLAN_OVERHEAD[tunnel_family]


def check_mtu(value, label: str, family: int = 4, *, error=ValueError) -> int:
    """A link MTU (:func:`check_int` within :data:`MAX_MTU`) that carries IPv``family`` (at least its minimum)."""
    mtu = check_int(value, label, MIN_MTU[4], MAX_MTU, "link MTU", error=error)
    if mtu < MIN_MTU[family]:
        raise error(f"{label} {mtu} is below {MIN_MTU[family]}, the minimum MTU for an IPv{family} subnet")
    return mtu


def family(address: str) -> int:
    """4 or 6, for the text of an address that is already known to be valid."""
    return 6 if ":" in address else 4


# --- addresses ------------------------------------------------------------------------------------------------


def no_scope_id(value, label: str, *, error=ValueError) -> str:
    """The stripped text of an address, refused (``error``, message starting with ``label``) with an IPv6 scope ID.

    Python's ``ipaddress`` accepts ``fe80::2%<any text>`` (3.9+), and that text would reach nft scripts and the
    returned command lines.  A VTEP, a subnet, a peer or an endpoint is a global address: a zone never belongs in
    one, on the controller or on a host.
    """
    text = str(value).strip()
    if "%" in text:
        raise error(f"{label} {value!r} has an IPv6 scope ID ('%...'), which is not allowed here")
    return text


def broadcast_address(address: str, prefixlen: int) -> str | None:
    """The broadcast address an interface address gets, as ``ip addr add ... brd +`` gives it: the last address of
    an IPv4 subnet of /30 or wider; None for IPv6, /31 and /32.  Without it the kernel routes the subnet's broadcast
    address as a unicast one (an ARP for it, never answered), so a broadcast never leaves or arrives."""
    if ":" in address or prefixlen > 30:
        return None
    return str(ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False).broadcast_address)


# --- MAC ------------------------------------------------------------------------------------------------------

ZERO_MAC = "00:00:00:00:00:00"  # the vxlan head-end flood entry of an FDB
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def check_mac(value, label: str, *, unicast: bool = False, allow_zero: bool = False, error=ValueError) -> str:
    """Normalise a MAC to lower-case colon form, or raise ``error`` with a message that starts with ``label``.

    ``unicast`` rejects multicast/broadcast addresses (low bit of the first octet); ``allow_zero`` admits
    :data:`ZERO_MAC`.  Each side passes its own label (the module a field, the controller a host and a field).
    """
    if not isinstance(value, str):
        raise error(f"{label} {value!r} must be a MAC address string, got {kind(value)}")
    text = value.strip().lower().replace("-", ":")
    if not _MAC_RE.match(text):
        raise error(f"{label} {value!r} is not a MAC address (expected six hex octets like 02:42:0a:d5:00:02)")
    if text == ZERO_MAC:
        if allow_zero:
            return text
        raise error(f"{label} {value!r} is the all-zero MAC, which is not allowed here")
    if unicast and int(text[:2], 16) & 1:
        raise error(f"{label} {value!r} is a multicast/broadcast MAC; a unicast MAC is needed here")
    return text


def derive_mac(address: str, salt: str = "") -> str:
    """The MAC an endpoint gets when none is given.

    IPv4: ``02:42:`` followed by the four address bytes, as Docker does (10.213.0.2 -> 02:42:0a:d5:00:02).
    IPv6: a stable locally administered unicast MAC, ``02:`` + five bytes of sha256(salt + '/' + packed address);
    the controller salts with the network's name.
    """
    try:  # a dotted quad, without ipaddress's parser (the peer table derives thousands of these)
        return "02:42:" + socket.inet_pton(socket.AF_INET, address).hex(":")
    except (OSError, TypeError, ValueError):
        pass
    addr = ipaddress.ip_address(address)
    if addr.version == 4:
        return "02:42:" + addr.packed.hex(":")
    digest = hashlib.sha256(salt.encode() + b"/" + addr.packed).digest()[:5]
    return "02:" + digest.hex(":")


# --- the gateway and the names of a network ------------------------------------------------------------------
#
# A network with egress or dns has a gateway: its subnet's first host address (.1, ::1), which IPAM never gives an
# endpoint, on br0 of every host's ovl-<vni>.  Every host answers for it with the same MAC, an anycast gateway as
# EVPN does it, so it is never in an ARP or FDB table: each endpoint reaches the gateway of its own host.

# The first octet of a gateway MAC: locally administered (0x02) and unicast, like the endpoints' 0x02, but with bit
# 0x04 set, which no derived endpoint MAC has (:func:`derive_mac` always starts with 02), so the two never meet.
GATEWAY_MAC_OCTET = 0x06


def gateway_mac(vni: int) -> str:
    """The anycast MAC of a network's gateway, the same on every host: ``06:00:`` + the 24-bit VNI + ``:01``."""
    return f"{GATEWAY_MAC_OCTET:02x}:00:" + (vni.to_bytes(3, "big") + b"\x01").hex(":")


def gateway_address(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network):
    """The gateway of a subnet: its first host address (``.1`` of IPv4, ``::1`` of IPv6), which IPAM reserves."""
    return subnet.network_address + 1


def egress_problem(version: int) -> str | None:
    """Why a network of IP ``version`` cannot have egress, or None: egress is IPv4 only."""
    if version == 4:
        return None
    return (
        "egress is IPv4 only. Linux forwards IPv6 only with one switch for a whole namespace"
        " (net.ipv6.conf.all.forwarding), and turning it on in the host's namespace makes every interface stop"
        " accepting router advertisements, which can take away the host's own IPv6 default route; the collection"
        " does not do that to a host"
    )


def dns_names(endpoint: str, network: str) -> tuple[str, str]:
    """The names an endpoint has in its network's DNS: ``<endpoint>`` and ``<endpoint>.<network>``."""
    return endpoint, f"{endpoint}.{network}"


DNS_LABEL_MAX = 63  # RFC 1035: a label
DNS_NAME_MAX = 253  # RFC 1035: a name in text form, without the trailing dot


def dns_name_problem(name: str) -> str | None:
    """What keeps ``name`` (a valid :data:`NAME_RULE` name, or two joined by '.') from being a DNS name, or None."""
    if len(name) > DNS_NAME_MAX:
        return f"it is longer than {DNS_NAME_MAX} characters"
    for label in name.split("."):
        if not label:
            return "it has an empty label (two dots in a row, or a trailing dot)"
        if len(label) > DNS_LABEL_MAX:
            return f"its label {label!r} is longer than {DNS_LABEL_MAX} characters"
    return None


# --- flooding -------------------------------------------------------------------------------------------------
#
# A network with ``flood`` gives every host a head-end replication list: one ZERO_MAC entry per peer VTEP in the
# vxlan device's FDB, so broadcast, unknown unicast and multicast reach every host of the network. ``proxy`` (on by
# default) lets the vxlan device answer ARP and neighbour solicitations from the static table.


def proxy_problem(flood: bool, proxy: bool) -> str | None:
    """Why a network's ``flood`` and ``proxy`` cannot go together, or None when they can."""
    if proxy or flood:
        return None
    return (
        "proxy false needs flood true: without the proxy the peers answer ARP and neighbour solicitations"
        " themselves, which only reach them flooded, so no address would ever resolve"
    )


# --- messages -------------------------------------------------------------------------------------------------


def kind(value) -> str:
    """Builtin type name of a value for messages (templating engines hand over subclasses of the builtins)."""
    if value is None:
        return "null"
    for cls in (bool, int, float, str, bytes, Mapping, list, tuple, set):
        if isinstance(value, cls):
            return "dict" if cls is Mapping else cls.__name__
    return type(value).__name__
