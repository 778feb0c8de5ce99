# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""The neighbour (ARP/ND) and FDB tables in bulk: a hundred thousand changes per second.

pyroute2 spends 90-180 us of Python per message encoding and parsing; these two tables only ever need two
fixed message shapes, so they are packed and parsed here with :mod:`struct`:

* :func:`encode_writes` packs planner operations as RTM_NEWNEIGH / RTM_DELNEIGH requests, byte for byte what
  pyroute2 sends for them (the attribute order included), each with its own sequence number and NLM_F_ACK;
  :func:`write` sends them with :meth:`.sock.RouteSocket.requests`, one errno per entry.
* :func:`encode_dump` asks the kernel for one device's entries only (NDA_IFINDEX with strict checking);
  :func:`parse_dump` turns the replies into ``(key, member, permanent)`` triples without building a dict per
  row (or, with ``permanent_only``, into the ``(key, member)`` pairs of the permanent ones).  The kernel writes
  most of a table's entries in the same few shapes, one after the other: such a run of entries is unpacked with
  one :meth:`struct.Struct.iter_unpack` and its columns turned into text with :func:`map`, so that Python does
  not walk a 20k-entry dump one message at a time.  :func:`dump` is the whole exchange.

The rows are what pyroute2's decoding gives, with the filters of the plain path (tests/support/pyroute2_reference.py
is the oracle).
"""

from __future__ import annotations

import functools
import itertools
import operator
import socket
import struct

from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    AF_BRIDGE,
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    NDA_DST,
    NDA_IFINDEX,
    NDA_LLADDR,
    NLATTR,
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSGHDR,
    NLMSGHDR3,
    NTF_SELF,
    NUD_NOARP,
    NUD_PERMANENT,
    RTM_DELNEIGH,
    RTM_GETNEIGH,
    RTM_NEWNEIGH,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.wire import attrs, walk

_REQ = NLM_F_REQUEST | NLM_F_ACK
FLAGS_REPLACE = _REQ | NLM_F_CREATE | NLM_F_REPLACE
FLAGS_APPEND = _REQ | NLM_F_CREATE | NLM_F_APPEND
FLAGS_DELETE = _REQ
FDB_STATE = NUD_PERMANENT | NUD_NOARP

# nlmsghdr (len, type, flags, seq, pid) + ndmsg (family, pad, pad, ifindex, state, flags, type) + NDA_IFINDEX
_DUMP = struct.Struct(NLMSGHDR.format + "BBHiHBB" + "HHI")
_NDMSG = struct.Struct("=BxxxiHBx")  # family, ifindex, state, flags
# a dump reply up to its first attribute's header: len, type, flags, (seq, pid) | family, ifindex, state, flags,
# (type) | attribute len, type
_PREFIX = struct.Struct("=IHH8xBxxxiHBxHH")
# what follows the first attribute's header in the usual layouts: FDB: the MAC, then the dst attribute's header;
# neighbour (by NDA_DST's length): the address, then NDA_LLADDR's header and the MAC
_FDB_REST = struct.Struct("=6s2xHH")
_NEIGH_REST = {8: struct.Struct("=4sHH6s"), 20: struct.Struct("=16sHH6s")}


def _ip_bytes(address: str) -> bytes:
    return socket.inet_pton(AF_INET6 if ":" in address else AF_INET, address)


# --- requests -------------------------------------------------------------------------------------------------
# A request is packed as (len, type, flags) | seq | 20 bytes that only depend on the device and the address family
# | the varying fields, with the constant parts prepared once per call.  FDB: family AF_BRIDGE, NTF_SELF, state
# PERMANENT|NOARP, NDA_LLADDR then NDA_DST; a unicast MAC is written with CREATE|REPLACE, the flood MAC with
# CREATE|APPEND (replace is refused there).  Neighbours: AF_INET/AF_INET6, state PERMANENT, CREATE|REPLACE, NDA_DST
# then NDA_LLADDR.
_FDB_ROW = {n: struct.Struct(f"=8sI20s6s6s{n}s") for n in (4, 16)}  # ... | MAC | pad, NDA_DST header | dst
_NEIGH_SET_ROW = {n: struct.Struct(f"=8sI20s{n}s4s6s2x") for n in (4, 16)}  # ... | ip | NDA_LLADDR hdr | MAC
_NEIGH_DEL_ROW = {n: struct.Struct(f"=8sI20s{n}s") for n in (4, 16)}  # ... | ip
_MID = struct.Struct("=IBBHiHBBHH")  # pid | ndmsg | the first attribute's header
_LLADDR_HDR = NLATTR.pack(10, NDA_LLADDR)


def encode_writes(table: str, ifindex: int, ops: list[dict], seq: int) -> list[bytes]:
    """The planner operations ``ops`` (``{'action': 'upsert' | 'delete', 'entry'}``) on device ``ifindex`` as
    netlink requests with sequence numbers ``seq``, ``seq + 1``, ...; each asks for an acknowledgement.

    What only depends on the kind of request (action, flood MAC or not, address size) is packed once, each FDB
    destination once.
    """
    out: list[bytes] = []
    append = out.append
    fromhex, pton = bytes.fromhex, socket.inet_pton
    kinds: dict = {}
    if table == "fdb":
        dsts: dict = {}
        mid = _MID.pack(0, AF_BRIDGE, 0, 0, ifindex, FDB_STATE, NTF_SELF, 0, 10, NDA_LLADDR)
        for seq_no, op in enumerate(ops, seq):
            entry = op["entry"]
            mac, dst = entry["mac"], entry["dst"]
            lladdr = fromhex(mac.replace(":", ""))
            raw = dsts.get(dst)
            if raw is None:
                raw = dsts[dst] = _ip_bytes(dst)
            action = op["action"]
            kind = kinds.get((action, mac == ZERO_MAC, len(raw)))
            if kind is None:
                n = len(raw)
                if action == "delete":
                    mtype, flags = RTM_DELNEIGH, FLAGS_DELETE
                else:
                    mtype, flags = RTM_NEWNEIGH, FLAGS_APPEND if mac == ZERO_MAC else FLAGS_REPLACE
                kind = (_FDB_ROW[n], NLMSGHDR3.pack(44 + n, mtype, flags), b"\0\0" + NLATTR.pack(4 + n, NDA_DST))
                kinds[action, mac == ZERO_MAC, n] = kind
            shape, head, tail = kind
            append(shape.pack(head, seq_no, mid, lladdr, tail, raw))
    elif table == "neigh":
        for seq_no, op in enumerate(ops, seq):
            entry = op["entry"]
            ip = entry["ip"]
            v6 = ":" in ip
            raw = pton(AF_INET6 if v6 else AF_INET, ip)
            action = op["action"]
            kind = kinds.get((action, v6))
            if kind is None:
                n = len(raw)
                family = AF_INET6 if n == 16 else AF_INET
                mid = _MID.pack(0, family, 0, 0, ifindex, NUD_PERMANENT, 0, 0, 4 + n, NDA_DST)
                if action == "delete":
                    kind = (_NEIGH_DEL_ROW[n], NLMSGHDR3.pack(32 + n, RTM_DELNEIGH, FLAGS_DELETE), mid)
                else:
                    kind = (_NEIGH_SET_ROW[n], NLMSGHDR3.pack(44 + n, RTM_NEWNEIGH, FLAGS_REPLACE), mid)
                kinds[action, v6] = kind
            shape, head, mid = kind
            if action == "delete":
                append(shape.pack(head, seq_no, mid, raw))
            else:
                append(shape.pack(head, seq_no, mid, raw, _LLADDR_HDR, fromhex(entry["mac"].replace(":", ""))))
    else:
        raise ValueError(f"unknown table {table}")
    return out


def encode_dump(table: str, ifindex: int, seq: int) -> bytes:
    """RTM_GETNEIGH dump of one device's entries; the kernel filters by NDA_IFINDEX (needs strict checking).

    ``neigh`` asks for both ARP and ND (AF_UNSPEC), ``fdb`` for the bridge family.
    """
    family = AF_BRIDGE if table == "fdb" else AF_UNSPEC
    return _DUMP.pack(_DUMP.size, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, 0, family, 0, 0, 0, 0, 0, 0,
                      8, NDA_IFINDEX, ifindex)  # fmt: skip


# --- replies ----------------------------------------------------------------------------------------------------


def _attrs_row(fdb: bool, buf, off: int, end: int, state: int):
    """The row of one entry in any attribute layout, walking the attributes (see :func:`parse_dump`)."""
    dst = lladdr = None
    for atype, pos, stop in attrs(buf, off + 28, end):
        if atype == NDA_DST:
            dst = buf[pos:stop]
        elif atype == NDA_LLADDR:
            lladdr = buf[pos:stop]
    mac = lladdr.hex(":") if lladdr else None
    ip = socket.inet_ntop(AF_INET6 if len(dst) == 16 else AF_INET, dst) if dst else None
    if fdb:
        return (mac, ip, state & NUD_PERMANENT != 0) if ip else None
    return (ip, mac, state & NUD_PERMANENT != 0)


# address bytes -> text, by size (inet_ntoa: the same text as inet_ntop for IPv4, and faster)
_NTOP = {4: socket.inet_ntoa, 16: functools.partial(socket.inet_ntop, AF_INET6)}
_RUN_SHAPES: dict = {}


def _run_shape(fdb: bool, length: int, size: int) -> struct.Struct:
    """How :func:`_run` unpacks entries of ``length`` bytes in the usual layout, with ``size``-byte addresses.

    The fields: bytes 0-24 (length, type, flags, sequence, port, family, padding, ifindex: the same in every
    entry of a run), ndm_state, then the MAC and the address with what lies between them, which is also the
    same in every entry of a run (ndm_flags, ndm_type, the attribute headers, the padding).
    """
    shape = _RUN_SHAPES.get((fdb, length, size))
    if shape is None:
        if fdb:  # NDA_LLADDR (MAC), NDA_DST (address)
            shape = struct.Struct(f"=24sH6s6s6s{size}s{length - 44 - size}x")
        else:  # NDA_DST (address), NDA_LLADDR (MAC)
            shape = struct.Struct(f"=24sH6s{size}s4s6s{length - 42 - size}x")
        _RUN_SHAPES[fdb, length, size] = shape
    return shape


def _run(
    fdb: bool, buf, off: int, nbytes: int, length: int, *, size: int, rows: list, permanent_only: bool, names
) -> int:
    """Parse the entries from ``off`` on that have the same shape as the one there (which the caller checked).

    Unpacks as many ``length``-byte messages as fit, keeps them up to the first whose constant parts differ
    from the first one's (another length, type, ifindex, flags, layout, or the end of the dump: the caller
    parses that one), and turns the columns into rows with C-level loops.  Returns the number of entries.
    ``names`` (FDB only), when given, maps address bytes to their text: a VTEP is the destination of many MACs.
    """
    count = (nbytes - off) // length
    columns = zip(*_run_shape(fdb, length, size).iter_unpack(memoryview(buf)[off : off + count * length]), strict=True)
    if fdb:
        heads, states, mids, macs, tails, addresses = columns
    else:
        heads, states, mids, addresses, tails, macs = columns
    head, mid, tail = heads[0], mids[0], tails[0]
    if heads.count(head) != count or mids.count(mid) != count or tails.count(tail) != count:
        count = next(i for i in range(1, count) if heads[i] != head or mids[i] != mid or tails[i] != tail)
        states, macs, addresses = states[:count], macs[:count], addresses[:count]
    permanent = list(map(operator.and_, states, itertools.repeat(NUD_PERMANENT)))
    if permanent_only and permanent.count(0):
        macs, addresses = list(itertools.compress(macs, permanent)), list(itertools.compress(addresses, permanent))
    macs = map(bytes.hex, macs, itertools.repeat(":"))
    if fdb and names is not None:
        for raw in set(addresses).difference(names):
            names[raw] = _NTOP[size](raw)
        addresses = map(names.__getitem__, addresses)
    else:
        addresses = map(_NTOP[size], addresses)
    keys, members = (macs, addresses) if fdb else (addresses, macs)
    if permanent_only:
        rows.extend(zip(keys, members, strict=True))
    else:
        rows.extend(zip(keys, members, map(operator.truth, permanent), strict=True))
    return count


def parse_dump(
    table: str, ifindex: int, buf, nbytes: int, rows: list, *, permanent_only: bool = False, names: dict | None = None
) -> int:
    """Parse ``nbytes`` of dump replies from ``buf``, appending ``(key, member, permanent)`` to ``rows``.

    ``fdb``: ``(mac, dst, permanent)`` of the device's own (NTF_SELF) entries that have a destination, never the
    bridge-side ones.  ``neigh``: ``(ip, mac, permanent)`` of the device's AF_INET/AF_INET6 entries, ``mac`` None
    without a link-layer address.  With ``permanent_only``, ``(key, member)`` of the permanent ones instead.
    ``names``: a dict that the calls for the chunks of one dump share, to convert each FDB destination address
    to text once.  Returns :func:`.wire.walk`'s status bits.
    """
    # The kernel writes NDA_LLADDR then NDA_DST for a vxlan FDB entry, NDA_DST then NDA_LLADDR for a neighbour:
    # an entry in that layout starts a run (see _run); anything else goes through _attrs_row.
    fdb = table == "fdb"
    prefix, fdb_rest = _PREFIX.unpack_from, _FDB_REST.unpack_from

    def handle(off: int, end: int):
        length = end - off
        if length < 28:
            return None
        if length >= 32:
            _length, _mtype, mflags, family, index, state, flags, alen, atype = prefix(buf, off)
        else:  # an entry without attributes
            mflags = NLMSGHDR3.unpack_from(buf, off)[2]
            family, index, state, flags = _NDMSG.unpack_from(buf, off + 16)
            alen = atype = 0
        if index != ifindex:
            return None
        size = 0  # > 0: the usual layout, with an address of that size
        if fdb:
            if flags & NTF_SELF and atype == NDA_LLADDR and alen == 10 and length >= 44:
                _lladdr, blen, btype = fdb_rest(buf, off + 32)
                if btype == NDA_DST and blen in (8, 20) and off + 40 + blen <= end:
                    size = blen - 4
        elif family in (AF_INET, AF_INET6) and atype == NDA_DST and alen in (8, 20):
            shape = _NEIGH_REST[alen]
            if off + 32 + shape.size <= end:
                _dst, blen, btype, _lladdr = shape.unpack_from(buf, off + 32)
                if btype == NDA_LLADDR and blen == 10:
                    size = alen - 4
        if size and not length & 3 and not mflags & NLM_F_DUMP_INTR:
            return off + length * _run(
                fdb, buf, off, nbytes, length, size=size, rows=rows, permanent_only=permanent_only, names=names
            )
        if (fdb and not flags & NTF_SELF) or (not fdb and family not in (AF_INET, AF_INET6)):
            return None
        row = _attrs_row(fdb, buf, off, end, state)
        if row is not None and (not permanent_only or row[2]):
            rows.append(row[:2] if permanent_only else row)
        return None

    return walk(buf, nbytes, RTM_NEWNEIGH, handle)


# --- one exchange each --------------------------------------------------------------------------------------------


def dump(route, table: str, ifindex: int, *, permanent_only: bool = False) -> list[tuple]:
    """Device ``ifindex``'s ``table`` rows (see :func:`parse_dump`) from one kernel-filtered dump on ``route``."""
    names: dict = {}
    return route.dump(
        lambda seq: encode_dump(table, ifindex, seq),
        lambda buf, nbytes, rows: parse_dump(
            table, ifindex, buf, nbytes, rows, permanent_only=permanent_only, names=names
        ),
        what=f"{table} table",
    )


def write(route, table: str, ifindex: int, ops: list[dict]) -> list[int | None]:
    """Send the planner operations in order; one result per op (see :meth:`.sock.RouteSocket.requests`)."""
    return route.requests(len(ops), lambda seq: encode_writes(table, ifindex, ops, seq))
