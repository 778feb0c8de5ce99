# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""Reads of links, addresses and default routes, packed and parsed with :mod:`struct`.

A run that changes nothing only reads: every link, a few links' addresses, the default route.  Importing
pyroute2 for that costs more than the rest of a module run (about 0.15 s of CPU), and its generic parser spends
tens of microseconds per attribute of a link dump.  These three dumps need a handful of attributes each:

* :func:`encode_getlink` / :func:`parse_links`: every link as a dict (:meth:`.namespace.Namespace.links` adds
  ``master``, the master's name, which needs the whole dump).
* :func:`encode_getaddr` / :func:`parse_addrs`: one link's addresses (``ifa_index`` filtered by the kernel under
  strict checking, and here again for a kernel without it).
* :func:`encode_getroute` / :func:`parse_default_routes`: the output interfaces of a family's default routes in
  one table, in the kernel's order (the table filtered by the kernel, and here again).
* :func:`links`, :func:`addresses`, :func:`default_route_devs`: one dump each on a :class:`.sock.RouteSocket`.

Values have exactly pyroute2's forms (tests/support/pyroute2_reference.py is the oracle): MAC as lowercase
``aa:bb:..`` of the attribute's first six bytes, addresses as :func:`socket.inet_ntop` text, the VXLAN port in
host order, strings stripped of NUL bytes and decoded as UTF-8 (kept as bytes when they are not UTF-8).
"""

from __future__ import annotations

import socket
import struct

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    IFA_ADDRESS,
    IFF_UP,
    IFLA_ADDRESS,
    IFLA_EXT_MASK,
    IFLA_IFALIAS,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINK,
    IFLA_LINK_NETNSID,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_VXLAN_ID,
    IFLA_VXLAN_LEARNING,
    IFLA_VXLAN_LINK,
    IFLA_VXLAN_LOCAL,
    IFLA_VXLAN_LOCAL6,
    IFLA_VXLAN_PORT,
    IFLA_VXLAN_PROXY,
    NLATTR,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_HDRLEN,
    NLMSGHDR,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_TABLE,
    RTEXT_FILTER_SKIP_STATS,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTN_UNICAST,
    RTNH_F_ONLINK,
    RTPROT_STATIC,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.wire import attrs, walk

_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE16 = struct.Struct(">H")
_GETLINK = struct.Struct(NLMSGHDR.format + "BxHiII" + "HHI")  # nlmsghdr | ifinfomsg | IFLA_EXT_MASK
_GETADDR = struct.Struct(NLMSGHDR.format + "BBBBI")  # nlmsghdr | ifaddrmsg
_GETROUTE = struct.Struct(NLMSGHDR.format + "BBBBBBBBI")  # nlmsghdr | rtmsg
_IFINFO = struct.Struct("=iI")  # ifi_index, ifi_flags (after family, pad, type)
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_DUMP = NLM_F_REQUEST | NLM_F_DUMP


# --- requests -----------------------------------------------------------------------------------------------


def encode_getlink(seq: int) -> bytes:
    """RTM_GETLINK dump of every link, without the statistics (IFLA_EXT_MASK)."""
    return _GETLINK.pack(_GETLINK.size, RTM_GETLINK, _DUMP, seq, 0, AF_UNSPEC, 0, 0, 0, 0,
                         8, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)  # fmt: skip


def encode_getaddr(seq: int, index: int) -> bytes:
    """RTM_GETADDR dump of IPv4 and IPv6 addresses; strict checking makes the kernel send link ``index``'s only."""
    return _GETADDR.pack(_GETADDR.size, RTM_GETADDR, _DUMP, seq, 0, AF_UNSPEC, 0, 0, 0, index)


def encode_getroute(seq: int, family: int, table: int = RT_TABLE_MAIN) -> bytes:
    """RTM_GETROUTE dump of one family; strict checking makes the kernel send ``table``'s routes only."""
    return _GETROUTE.pack(_GETROUTE.size, RTM_GETROUTE, _DUMP, seq, 0, family, 0, 0, 0, table, 0, 0, 0, 0)


def encode_route(seq: int, command: int, dst: str | None, dst_len: int, *, gateway: str | None, oif: int) -> bytes:
    """RTM_NEWROUTE (create, never replace) or RTM_DELROUTE of ``dst/dst_len`` via ``gateway`` (None: none, a
    device route) on link ``oif`` in the main table, asking for an acknowledgement.  A route added via a gateway has
    it on that link whatever the link's addresses (``onlink``)."""
    family = AF_INET6 if ":" in (gateway or dst or "") else AF_INET
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if command == RTM_NEWROUTE else 0)
    body = b""
    for atype, payload in (
        (RTA_DST, socket.inet_pton(family, dst) if dst_len else b""),
        (RTA_GATEWAY, socket.inet_pton(family, gateway) if gateway else b""),
        (RTA_OIF, _U32.pack(oif)),
    ):
        if payload:
            body += NLATTR.pack(4 + len(payload), atype) + payload + b"\0" * (-len(payload) % 4)
    if command == RTM_NEWROUTE:
        protocol, scope, onlink = RTPROT_STATIC, 0, RTNH_F_ONLINK if gateway else 0  # scope 0: universe
    else:  # as ``ip route del``: whoever added it, whatever its scope and flags
        protocol, scope, onlink = 0, RT_SCOPE_NOWHERE, 0
    head = _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, protocol, scope, RTN_UNICAST, onlink)
    return NLMSGHDR.pack(NLMSG_HDRLEN + len(head) + len(body), command, flags, seq, 0) + head + body


# --- replies ------------------------------------------------------------------------------------------------


def _text(raw: bytes):
    """An NLA string as pyroute2's ``asciiz`` decodes it: NULs stripped, UTF-8, or the bytes when not UTF-8."""
    raw = raw.strip(b"\0")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _mac(buf, start: int) -> str:
    """IFLA_ADDRESS as pyroute2's ``l2addr``: the six bytes from the payload's start, whatever the length."""
    return bytes(buf[start : start + 6]).hex(":")


def _ntop(raw: bytes):
    if len(raw) == 4:
        return socket.inet_ntop(AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(AF_INET6, raw)
    return None


def _vxlan(buf, start: int, end: int) -> dict:
    """IFLA_INFO_DATA of a vxlan link as the ``vxlan`` entry of :func:`parse_links`' dict."""
    seen: dict = {}
    for atype, pos, stop in attrs(buf, start, end):
        seen.setdefault(atype, (pos, stop))

    def u32(atype):
        at = seen.get(atype)
        return _U32.unpack_from(buf, at[0])[0] if at else None

    def u8(atype):
        at = seen.get(atype)
        return _U8.unpack_from(buf, at[0])[0] if at else None

    local = None
    for atype, size, family in ((IFLA_VXLAN_LOCAL, 4, AF_INET), (IFLA_VXLAN_LOCAL6, 16, AF_INET6)):
        at = seen.get(atype)
        if at:
            local = socket.inet_ntop(family, bytes(buf[at[0] : at[0] + size]))
            if local:
                break
    port = seen.get(IFLA_VXLAN_PORT)
    return {
        "vni": u32(IFLA_VXLAN_ID),
        "port": _BE16.unpack_from(buf, port[0])[0] if port else None,
        "local": local,
        "dev_index": u32(IFLA_VXLAN_LINK) or None,
        "learning": bool(u8(IFLA_VXLAN_LEARNING)),
        "proxy": bool(u8(IFLA_VXLAN_PROXY)),
    }


def _link(buf, off: int, end: int) -> dict:
    """One RTM_NEWLINK as a dict (see :func:`parse_links`)."""
    index, flags = _IFINFO.unpack_from(buf, off + NLMSG_HDRLEN + 4)
    link: dict = {
        "index": index,
        "ifname": None,
        "kind": None,
        "mtu": None,
        "mac": None,
        "up": bool(flags & IFF_UP),
        "master_index": None,
        "link_index": None,
        "link_netnsid": None,
        "alias": None,
    }
    data = None
    seen = set()
    for atype, pos, stop in attrs(buf, off + NLMSG_HDRLEN + 16, end):
        if atype in seen:  # pyroute2's get_attr(): the first one
            continue
        seen.add(atype)
        if atype == IFLA_IFNAME:
            link["ifname"] = _text(bytes(buf[pos:stop]))
        elif atype == IFLA_MTU:
            link["mtu"] = _U32.unpack_from(buf, pos)[0]
        elif atype == IFLA_ADDRESS:
            link["mac"] = _mac(buf, pos)
        elif atype == IFLA_MASTER:
            link["master_index"] = _U32.unpack_from(buf, pos)[0]
        elif atype == IFLA_LINK:
            link["link_index"] = _U32.unpack_from(buf, pos)[0]
        elif atype == IFLA_LINK_NETNSID:
            link["link_netnsid"] = _I32.unpack_from(buf, pos)[0]
        elif atype == IFLA_IFALIAS:
            link["alias"] = _text(bytes(buf[pos:stop])) or None
        elif atype == IFLA_LINKINFO:
            for itype, ipos, istop in attrs(buf, pos, stop):
                if itype == IFLA_INFO_KIND and link["kind"] is None:
                    link["kind"] = _text(bytes(buf[ipos:istop]))
                elif itype == IFLA_INFO_DATA and data is None:
                    data = (ipos, istop)
    if link["kind"] == "vxlan" and data is not None:
        link["vxlan"] = _vxlan(buf, *data)
    return link


def parse_links(buf, nbytes: int, out: list) -> int:
    """Append every RTM_NEWLINK of ``buf[:nbytes]`` to ``out`` as a dict; returns the :func:`.wire.walk` status.

    The keys: ``index``, ``ifname``, ``kind`` (IFLA_INFO_KIND), ``mtu``, ``mac`` (None without IFLA_ADDRESS),
    ``up`` (IFF_UP), ``master_index``, ``link_index`` (IFLA_LINK), ``link_netnsid``, ``alias`` (None when empty),
    and for a vxlan with IFLA_INFO_DATA ``vxlan``: ``vni``, ``port``, ``local``, ``dev_index``, ``learning``,
    ``proxy``.  Absent attributes are None.
    """
    return walk(buf, nbytes, RTM_NEWLINK, lambda off, end: out.append(_link(buf, off, end)))


def parse_addrs(buf, nbytes: int, index: int, out: list) -> int:
    """Append link ``index``'s addresses but link-scope ones as ``{'address', 'prefixlen', 'family'}``."""

    def handle(off, end):
        family, prefixlen, _flags, scope, ifindex = _IFADDR.unpack_from(buf, off + NLMSG_HDRLEN)
        if ifindex != index or scope == RT_SCOPE_LINK:
            return
        address = None
        for atype, pos, stop in attrs(buf, off + NLMSG_HDRLEN + 8, end):
            if atype == IFA_ADDRESS:
                address = _ntop(bytes(buf[pos:stop]))
                break
        out.append({"address": address, "prefixlen": prefixlen, "family": 6 if family == AF_INET6 else 4})

    return walk(buf, nbytes, RTM_NEWADDR, handle)


def parse_routes(buf, nbytes: int, table: int, out: list) -> int:
    """Append every route of ``table`` as ``{'dst', 'dst_len', 'gateway', 'oif'}`` (the first RTA_DST, RTA_GATEWAY
    and RTA_OIF as pyroute2 reads them; None when absent), in order."""

    def handle(off, end):
        msg = _RTMSG.unpack_from(buf, off + NLMSG_HDRLEN)
        rtm_table = msg[4]
        found: dict = {}
        for atype, pos, stop in attrs(buf, off + NLMSG_HDRLEN + 12, end):
            if atype == RTA_TABLE:
                rtm_table = _U32.unpack_from(buf, pos)[0]
            elif atype == RTA_OIF:
                found.setdefault("oif", _U32.unpack_from(buf, pos)[0])
            elif atype in (RTA_DST, RTA_GATEWAY):
                found.setdefault(atype, _ntop(bytes(buf[pos:stop])))
        if rtm_table == table:
            route = {"dst": found.get(RTA_DST), "dst_len": msg[1], "gateway": found.get(RTA_GATEWAY)}
            out.append({**route, "oif": found.get("oif")})

    return walk(buf, nbytes, RTM_NEWROUTE, handle)


def parse_default_routes(buf, nbytes: int, table: int, out: list) -> int:
    """Append the RTA_OIF of every route in ``table`` with ``dst_len`` 0 and an RTA_OIF (not 0), in order."""
    routes: list = []
    status = parse_routes(buf, nbytes, table, routes)
    out.extend(r["oif"] for r in routes if not r["dst_len"] and r["oif"])
    return status


# --- one dump each ------------------------------------------------------------------------------------------------


def links(route) -> list[dict]:
    """Every link of the socket's namespace (see :func:`parse_links`), in the kernel's order."""
    return route.dump(encode_getlink, parse_links, what="link list")


def addresses(route, index: int) -> list[dict]:
    """Link ``index``'s IPv4 then IPv6 addresses (see :func:`parse_addrs`)."""
    return route.dump(
        lambda seq: encode_getaddr(seq, index),
        lambda buf, nbytes, out: parse_addrs(buf, nbytes, index, out),
        what="address list",
    )


def routes(route, family: int, table: int = RT_TABLE_MAIN) -> list[dict]:
    """``family``'s routes in ``table`` (see :func:`parse_routes`)."""
    return route.dump(
        lambda seq: encode_getroute(seq, family, table),
        lambda buf, nbytes, out: parse_routes(buf, nbytes, table, out),
        what="route table",
    )


def default_route_devs(route, family: int, table: int = RT_TABLE_MAIN) -> list[int]:
    """Output interfaces of ``family``'s default routes in ``table`` (see :func:`parse_default_routes`)."""
    return route.dump(
        lambda seq: encode_getroute(seq, family, table),
        lambda buf, nbytes, out: parse_default_routes(buf, nbytes, table, out),
        what="route table",
    )
