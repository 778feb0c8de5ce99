# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: raw rtnetlink reads of links, addresses and default routes.  Anything may change without notice.
"""The read side of :class:`._netlink.Namespace` without pyroute2.

A run that changes nothing only reads: every link, a few links' addresses, the default route.  Importing
pyroute2 for that costs more than the rest of a module run (about 0.15 s of CPU), and its generic parser spends
tens of microseconds per attribute of a link dump.  These three dumps need a handful of attributes each, so
they are packed and parsed here with :mod:`struct`, on the same raw NETLINK_ROUTE socket that the bulk table
path (:class:`._nlbulk.RouteSocket`) opens in the namespace, with its receive buffer:

* :func:`encode_getlink` / :func:`parse_links`: every link as the dict that ``Namespace._link_dict`` made of
  pyroute2's message (less ``master``, the master's name, which needs the whole dump).
* :func:`encode_getaddr` / :func:`parse_addrs`: one link's addresses (``ifa_index`` filtered by the kernel under
  strict checking, and here again for a kernel without it) as ``Namespace.addresses`` returns them.
* :func:`encode_getroute` / :func:`parse_default_routes`: the output interfaces of a family's default routes in
  one table, in the kernel's order (the table filtered by the kernel, and here again).
* :func:`dump` sends one dump request and parses the replies; a dump that the kernel flags as interrupted (the
  table changed meanwhile) is taken again.

Values have exactly pyroute2's forms: MAC as lowercase ``aa:bb:..`` of the attribute's first six bytes,
addresses as :func:`socket.inet_ntop` text, the VXLAN port in host order, strings stripped of NUL bytes and
decoded as UTF-8 (kept as bytes when they are not UTF-8).

:func:`enter_netns` moves the calling thread into a named namespace without pyroute2 (libc ``setns``), never
creating it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

from ansible_collections.netfleet.overlay.plugins.module_utils._model import NETNS_RUN_DIR
from ansible_collections.netfleet.overlay.plugins.module_utils._nlbulk import (  # the nlmsghdr/nlattr structs too
    _ATTR,
    _ERR,
    _HDR3,
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    DUMP_DONE,
    DUMP_INTERRUPTED,
    NLA_TYPE_MASK,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
)

CLONE_NEWNET = 0x40000000

# linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 18, 20, 29, 37
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING = 1, 3, 4, 7
IFLA_VXLAN_PROXY, IFLA_VXLAN_PORT, IFLA_VXLAN_LOCAL6 = 11, 15, 17
RTEXT_FILTER_SKIP_STATS = 1 << 3  # the link dump leaves out the counters (less to copy; nothing read here)
IFA_ADDRESS = 1
RTA_OIF, RTA_TABLE = 4, 15
RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
IFF_UP = 0x1

_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE16 = struct.Struct(">H")
_GETLINK = struct.Struct("=IHHII" + "BxHiII" + "HHI")  # nlmsghdr | ifinfomsg | IFLA_EXT_MASK
_GETADDR = struct.Struct("=IHHII" + "BBBBI")  # nlmsghdr | ifaddrmsg
_GETROUTE = struct.Struct("=IHHII" + "BBBBBBBBI")  # nlmsghdr | rtmsg
_IFINFO = struct.Struct("=iI")  # ifi_index, ifi_flags (after family, pad, type)
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NLMSG_HDRLEN = 16
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


# --- replies ------------------------------------------------------------------------------------------------


def _walk(buf, nbytes: int, mtype: int, handle) -> int:
    """Call ``handle(off, end)`` for each ``mtype`` message in ``buf[:nbytes]``; :func:`._nlbulk.parse_dump`'s status.

    NLMSG_DONE ends the dump (:data:`DUMP_DONE`), NLM_F_DUMP_INTR on any message adds :data:`DUMP_INTERRUPTED`,
    an NLMSG_ERROR with an error code raises OSError.
    """
    status = 0
    off = 0
    while off + NLMSG_HDRLEN <= nbytes:
        length, msg_type, flags = _HDR3.unpack_from(buf, off)
        end = off + length
        if length < NLMSG_HDRLEN or end > nbytes:
            raise OSError(errno.EBADMSG, "truncated netlink message")
        if flags & NLM_F_DUMP_INTR:
            status |= DUMP_INTERRUPTED
        if msg_type == mtype:
            handle(off, end)
        elif msg_type == NLMSG_DONE:
            return status | DUMP_DONE
        elif msg_type == NLMSG_ERROR:
            code = -_ERR.unpack_from(buf, off + NLMSG_HDRLEN)[0] if end >= off + 20 else errno.EBADMSG
            if code:
                raise OSError(code, os.strerror(code))
        off += (length + 3) & ~3
    return status


def _attrs(buf, pos: int, end: int):
    """``(type, payload start, payload end)`` of the attributes in ``buf[pos:end]``, NLA flags masked off."""
    unpack = _ATTR.unpack_from
    while pos + 4 <= end:
        alen, atype = unpack(buf, pos)
        if alen < 4 or pos + alen > end:
            return
        yield atype & NLA_TYPE_MASK, pos + 4, pos + alen
        pos += (alen + 3) & ~3


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
    """IFLA_INFO_DATA of a vxlan link as ``Namespace._link_dict``'s ``vxlan`` entry."""
    seen: dict = {}
    for atype, pos, stop in _attrs(buf, start, end):
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
    for atype, pos, stop in _attrs(buf, off + NLMSG_HDRLEN + 16, end):
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
            for itype, ipos, istop in _attrs(buf, pos, stop):
                if itype == IFLA_INFO_KIND and link["kind"] is None:
                    link["kind"] = _text(bytes(buf[ipos:istop]))
                elif itype == IFLA_INFO_DATA and data is None:
                    data = (ipos, istop)
    if link["kind"] == "vxlan" and data is not None:
        link["vxlan"] = _vxlan(buf, *data)
    return link


def parse_links(buf, nbytes: int, out: list) -> int:
    """Append every RTM_NEWLINK of ``buf[:nbytes]`` to ``out`` as a dict; returns the :func:`_walk` status.

    The keys: ``index``, ``ifname``, ``kind`` (IFLA_INFO_KIND), ``mtu``, ``mac`` (None without IFLA_ADDRESS),
    ``up`` (IFF_UP), ``master_index``, ``link_index`` (IFLA_LINK), ``link_netnsid``, ``alias`` (None when empty),
    and for a vxlan with IFLA_INFO_DATA ``vxlan``: ``vni``, ``port``, ``local``, ``dev_index``, ``learning``,
    ``proxy``.  Absent attributes are None.
    """
    return _walk(buf, nbytes, RTM_NEWLINK, lambda off, end: out.append(_link(buf, off, end)))


def parse_addrs(buf, nbytes: int, index: int, out: list) -> int:
    """Append link ``index``'s addresses but link-scope ones as ``{'address', 'prefixlen', 'family'}``."""

    def handle(off, end):
        family, prefixlen, _flags, scope, ifindex = _IFADDR.unpack_from(buf, off + NLMSG_HDRLEN)
        if ifindex != index or scope == RT_SCOPE_LINK:
            return
        address = None
        for atype, pos, stop in _attrs(buf, off + NLMSG_HDRLEN + 8, end):
            if atype == IFA_ADDRESS:
                address = _ntop(bytes(buf[pos:stop]))
                break
        out.append({"address": address, "prefixlen": prefixlen, "family": 6 if family == AF_INET6 else 4})

    return _walk(buf, nbytes, RTM_NEWADDR, handle)


def parse_default_routes(buf, nbytes: int, table: int, out: list) -> int:
    """Append the RTA_OIF of every route in ``table`` with ``dst_len`` 0 and an RTA_OIF (not 0), in order."""

    def handle(off, end):
        msg = _RTMSG.unpack_from(buf, off + NLMSG_HDRLEN)
        dst_len, rtm_table = msg[1], msg[4]
        if dst_len:
            return
        oif = None
        for atype, pos, _stop in _attrs(buf, off + NLMSG_HDRLEN + 12, end):
            if atype == RTA_TABLE:
                rtm_table = _U32.unpack_from(buf, pos)[0]
            elif atype == RTA_OIF and oif is None:
                oif = _U32.unpack_from(buf, pos)[0]
        if rtm_table == table and oif:
            out.append(oif)

    return _walk(buf, nbytes, RTM_NEWROUTE, handle)


# --- one dump on a RouteSocket ---------------------------------------------------------------------------


def dump(route, encode, parse, *, attempts: int = 5) -> list:
    """Send ``encode(seq)`` on ``route`` (a :class:`._nlbulk.RouteSocket`) and ``parse(buf, nbytes, out)`` the replies.

    Returns ``out``.  A dump flagged as interrupted is taken again, up to ``attempts`` times.
    """
    buf, recv_into = route.buf, route.sock.recv_into
    for _attempt in range(attempts):
        route._drain()
        route.sock.send(encode(route._seqs(1)))
        out: list = []
        status = 0
        while not status & DUMP_DONE:
            status |= parse(buf, recv_into(buf), out)
        if not status & DUMP_INTERRUPTED:
            return out
    raise OSError(errno.EINTR, f"the dump kept changing during {attempts} attempts")


def links(route) -> list[dict]:
    """Every link of the socket's namespace (see :func:`parse_links`), in the kernel's order."""
    return dump(route, encode_getlink, parse_links)


def addresses(route, index: int) -> list[dict]:
    """Link ``index``'s IPv4 then IPv6 addresses (see :func:`parse_addrs`)."""
    return dump(route, lambda seq: encode_getaddr(seq, index), lambda b, n, out: parse_addrs(b, n, index, out))


def default_route_devs(route, family: int, table: int = RT_TABLE_MAIN) -> list[int]:
    """Output interfaces of ``family``'s default routes in ``table`` (see :func:`parse_default_routes`)."""
    return dump(
        route,
        lambda seq: encode_getroute(seq, family, table),
        lambda b, n, out: parse_default_routes(b, n, table, out),
    )


# --- entering a namespace -----------------------------------------------------------------------------------


def enter_netns(name: str, libc=None) -> None:
    """Move the calling thread into the named network namespace (``/run/netns/<name>``, or a path).

    Never creates it: a missing one raises FileNotFoundError, as pyroute2's ``setns(name, flags=0)`` does.
    """
    path = name if os.path.dirname(name) else os.path.join(NETNS_RUN_DIR, name)
    libc = libc or ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"failed to open netns: {os.strerror(code)}", name)
    finally:
        os.close(fd)
