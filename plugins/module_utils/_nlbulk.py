# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: batched raw rtnetlink for the neighbour and FDB tables.  Anything may change without notice.
"""The bulk transport behind :mod:`._table`: a hundred thousand neighbour / FDB changes per second.

pyroute2 spends 90-180 us of Python per message encoding and parsing; these two tables only ever need two
fixed message shapes, so they are packed and parsed here with :mod:`struct`:

* :func:`encode_write` packs one planner operation as an RTM_NEWNEIGH / RTM_DELNEIGH request, byte for byte
  what pyroute2 sends for it (the attribute order included), with its own sequence number and NLM_F_ACK.
* :meth:`RouteSocket.write` sends them ``batch`` per ``send()`` and reads every acknowledgement back by sequence
  number, so each entry gets its own errno.  rtnetlink handles a request in the sender's context, so when
  ``send()`` returns every acknowledgement is already queued; the batch is sized so that they fit the socket's
  receive buffer.
* :meth:`RouteSocket.dump` asks the kernel for one device's entries only (NDA_IFINDEX with strict checking)
  and parses the replies into ``(key, member, permanent)`` triples: the rows of
  :meth:`._netlink.Namespace.fdb_dump` / ``neigh_dump``, without building a dict per row (or, with
  ``permanent_only``, into the ``(key, member)`` pairs of the permanent ones).  The kernel writes most of a
  table's entries in the same few shapes, one after the other: :func:`parse_dump` unpacks such a run of
  entries with one :meth:`struct.Struct.iter_unpack` and turns its columns into text with :func:`map`, so
  that Python does not walk a 20k-entry dump one message at a time.

No pyroute2 here: :class:`RouteSocket` wraps a plain :func:`socket.socket` that :mod:`._netlink` opened in the
target namespace (from a thread moved there by :func:`._nlread.enter_netns`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import operator
import os
import select
import socket
import struct

from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC

# rtnetlink message types and flags (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP_INTR = 0x01, 0x04, 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x400, 0x800
NDA_DST, NDA_LLADDR, NDA_IFINDEX = 1, 2, 8
NLA_TYPE_MASK = 0x3FFF
NTF_SELF = 0x02
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6 = 0, 2, 7, 10
NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK = 270, 10, 12
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

_REQ = NLM_F_REQUEST | NLM_F_ACK
FLAGS_REPLACE = _REQ | NLM_F_CREATE | NLM_F_REPLACE
FLAGS_APPEND = _REQ | NLM_F_CREATE | NLM_F_APPEND
FLAGS_DELETE = _REQ
FDB_STATE = NUD_PERMANENT | NUD_NOARP

# nlmsghdr (len, type, flags, seq, pid) + ndmsg (family, pad, pad, ifindex, state, flags, type), then attributes
_HDR = struct.Struct("=IHHII")
_HEAD = "=IHHII" + "BBHiHBB"
_LLADDR = "HH6s2x"  # 10 bytes, padded to 12


# Each request is one Struct, by address size (4 or 16).  pyroute2 puts NDA_LLADDR first in FDB requests and
# NDA_DST first in neighbour requests; so do we, so that the bytes are the same.
_FDB_REQ = {n: struct.Struct(f"{_HEAD}{_LLADDR}HH{n}s") for n in (4, 16)}
_NEIGH_SET = {n: struct.Struct(f"{_HEAD}HH{n}s{_LLADDR}") for n in (4, 16)}
_NEIGH_DEL = {n: struct.Struct(f"{_HEAD}HH{n}s") for n in (4, 16)}
_DUMP = struct.Struct(_HEAD + "HHI")
_ERR = struct.Struct("=i")
_HDR3 = struct.Struct("=IHH")  # len, type, flags of nlmsghdr
_NDMSG = struct.Struct("=BxxxiHBx")  # family, ifindex, state, flags
_ATTR = struct.Struct("=HH")
# a dump reply up to its first attribute's header: len, type, flags, (seq, pid) | family, ifindex, state, flags,
# (type) | attribute len, type
_PREFIX = struct.Struct("=IHH8xBxxxiHBxHH")
# what follows the first attribute's header in the usual layouts: FDB: the MAC, then the dst attribute's header;
# neighbour (by NDA_DST's length): the address, then NDA_LLADDR's header and the MAC
_FDB_REST = struct.Struct("=6s2xHH")
_NEIGH_REST = {8: struct.Struct("=4sHH6s"), 20: struct.Struct("=16sHH6s")}
# one acknowledgement: nlmsghdr (len, type, flags, seq, pid) + the error code
_ACK = struct.Struct("=IHHIIi")
ACK_BYTES = 36  # with NETLINK_CAP_ACK: the acknowledgement, then the request's nlmsghdr only

# Upper bound of the receive-buffer charge of one acknowledgement (its skb's truesize: a 64 KiB buffer held 77,
# ~850 bytes each, on 6.18); a batch never queues more acknowledgements than the buffer holds.
ACK_TRUESIZE = 1280
# Requests per send().  More is not faster: on 6.18 the kernel's own time per vxlan FDB insert grows with the
# burst (20k inserts from empty: ~60 ms of system time in batches of 16-256, 120 ms in 1000s, 160 ms in 2000s;
# neighbour inserts do not care), while 20k requests need only ~300 sends of 64.
BATCH_MAX = 64
RCVBUF = 4 << 20
SNDBUF = 1 << 20
RECV_BYTES = 256 << 10  # one dump reply is at most 32 KiB; acknowledgements are 36 bytes
ACK_WAIT = 2.0  # seconds to wait for an acknowledgement that is not queued yet (never seen in practice)


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _ip_bytes(address: str) -> bytes:
    return socket.inet_pton(AF_INET6 if ":" in address else AF_INET, address)


def encode_write(table: str, action: str, ifindex: int, entry: dict, seq: int) -> bytes:
    """One planner operation (``action`` 'upsert' or 'delete' of ``entry``) as a netlink request.

    FDB: family AF_BRIDGE, NTF_SELF, state PERMANENT|NOARP; a unicast MAC is written with CREATE|REPLACE, the
    flood MAC 00:00:00:00:00:00 with CREATE|APPEND (replace is refused there).  Neighbours: AF_INET/AF_INET6,
    state PERMANENT, CREATE|REPLACE.  Every request asks for an acknowledgement.
    """
    if table == "fdb":
        mac, dst = _mac_bytes(entry["mac"]), _ip_bytes(entry["dst"])
        shape = _FDB_REQ[len(dst)]
        if action == "delete":
            mtype, flags = RTM_DELNEIGH, FLAGS_DELETE
        else:
            mtype = RTM_NEWNEIGH
            flags = FLAGS_APPEND if entry["mac"] == ZERO_MAC else FLAGS_REPLACE
        return shape.pack(
            shape.size, mtype, flags, seq, 0, AF_BRIDGE, 0, 0, ifindex, FDB_STATE, NTF_SELF, 0,
            10, NDA_LLADDR, mac, 4 + len(dst), NDA_DST, dst,
        )  # fmt: skip
    if table == "neigh":
        dst = _ip_bytes(entry["ip"])
        family = AF_INET6 if len(dst) == 16 else AF_INET
        if action == "delete":
            shape = _NEIGH_DEL[len(dst)]
            return shape.pack(
                shape.size, RTM_DELNEIGH, FLAGS_DELETE, seq, 0, family, 0, 0, ifindex, NUD_PERMANENT, 0, 0,
                4 + len(dst), NDA_DST, dst,
            )  # fmt: skip
        shape = _NEIGH_SET[len(dst)]
        return shape.pack(
            shape.size, RTM_NEWNEIGH, FLAGS_REPLACE, seq, 0, family, 0, 0, ifindex, NUD_PERMANENT, 0, 0,
            4 + len(dst), NDA_DST, dst, 10, NDA_LLADDR, _mac_bytes(entry["mac"]),
        )  # fmt: skip
    raise ValueError(f"unknown table {table}")


# encode_writes packs a request as (len, type, flags) | seq | 20 bytes that only depend on the device and the
# address family | the varying fields, with the constant parts prepared once per call
_FDB_ROW = {n: struct.Struct(f"=8sI20s6s6s{n}s") for n in (4, 16)}  # ... | MAC | pad, NDA_DST header | dst
_NEIGH_SET_ROW = {n: struct.Struct(f"=8sI20s{n}s4s6s2x") for n in (4, 16)}  # ... | ip | NDA_LLADDR hdr | MAC
_NEIGH_DEL_ROW = {n: struct.Struct(f"=8sI20s{n}s") for n in (4, 16)}  # ... | ip
_HEAD3 = struct.Struct("=IHH")
_FDB_MID = struct.Struct("=IBBHiHBBHH")  # pid | ndmsg | NDA_LLADDR header
_NEIGH_MID = struct.Struct("=IBBHiHBBHH")  # pid | ndmsg | NDA_DST header
_LLADDR_HDR = _ATTR.pack(10, NDA_LLADDR)


def encode_writes(table: str, ifindex: int, ops: list[dict], seq: int) -> list[bytes]:
    """``[encode_write(table, op["action"], ifindex, op["entry"], seq + i) for i, op in enumerate(ops)]``.

    The same bytes, without a function call and a format lookup per request: what only depends on the kind of
    request (action, flood MAC or not, address size) is packed once, each FDB destination once.
    """
    out: list[bytes] = []
    append = out.append
    fromhex, pton = bytes.fromhex, socket.inet_pton
    kinds: dict = {}
    if table == "fdb":
        dsts: dict = {}
        mid = _FDB_MID.pack(0, AF_BRIDGE, 0, 0, ifindex, FDB_STATE, NTF_SELF, 0, 10, NDA_LLADDR)
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
                kind = (_FDB_ROW[n], _HEAD3.pack(44 + n, mtype, flags), b"\0\0" + _ATTR.pack(4 + n, NDA_DST))
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
                mid = _NEIGH_MID.pack(0, family, 0, 0, ifindex, NUD_PERMANENT, 0, 0, 4 + n, NDA_DST)
                if action == "delete":
                    kind = (_NEIGH_DEL_ROW[n], _HEAD3.pack(32 + n, RTM_DELNEIGH, FLAGS_DELETE), mid)
                else:
                    kind = (_NEIGH_SET_ROW[n], _HEAD3.pack(44 + n, RTM_NEWNEIGH, FLAGS_REPLACE), mid)
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


DUMP_DONE, DUMP_INTERRUPTED = 1, 2


def _attrs_row(fdb: bool, buf, off: int, end: int, state: int):
    """The row of one entry in any attribute layout, walking the attributes (see :func:`parse_dump`)."""
    dst = lladdr = None
    pos = off + 28
    while pos + 4 <= end:
        alen, atype = _ATTR.unpack_from(buf, pos)
        if alen < 4 or pos + alen > end:
            break
        atype &= NLA_TYPE_MASK
        if atype == NDA_DST:
            dst = buf[pos + 4 : pos + alen]
        elif atype == NDA_LLADDR:
            lladdr = buf[pos + 4 : pos + alen]
        pos += (alen + 3) & ~3
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
    without a link-layer address.  The same filters and text forms as ``Namespace.fdb_dump`` / ``neigh_dump``.
    With ``permanent_only``, ``(key, member)`` of the permanent ones instead.  ``names``: a dict that the calls
    for the chunks of one dump share, to convert each FDB destination address to text once.

    Returns a bit mask: :data:`DUMP_DONE` once NLMSG_DONE is seen, :data:`DUMP_INTERRUPTED` when the kernel
    flagged the dump as inconsistent (the table changed meanwhile).  An NLMSG_ERROR raises OSError.
    """
    # The kernel writes NDA_LLADDR then NDA_DST for a vxlan FDB entry, NDA_DST then NDA_LLADDR for a neighbour:
    # an entry in that layout starts a run (see _run); anything else goes through _attrs_row.
    prefix, hdr = _PREFIX.unpack_from, _HDR3.unpack_from
    fdb = table == "fdb"
    fdb_rest = _FDB_REST.unpack_from
    status = 0
    off = 0
    while off + 16 <= nbytes:
        if off + 32 <= nbytes:
            length, mtype, mflags, family, index, state, flags, alen, atype = prefix(buf, off)
        else:  # a short message at the end of the buffer (NLMSG_DONE, or an entry without attributes)
            length, mtype, mflags = hdr(buf, off)
            family, index, state, flags = _NDMSG.unpack_from(buf, off + 16) if off + 28 <= nbytes else (0, None, 0, 0)
            alen = atype = 0
        end = off + length
        if length < 16 or end > nbytes:
            raise OSError(errno.EBADMSG, "truncated netlink message")
        if mflags & NLM_F_DUMP_INTR:
            status |= DUMP_INTERRUPTED
        if mtype == RTM_NEWNEIGH and index == ifindex and length >= 28:
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
                off += length * _run(
                    fdb, buf, off, nbytes, length, size=size, rows=rows, permanent_only=permanent_only, names=names
                )
                continue
            if (fdb and not flags & NTF_SELF) or (not fdb and family not in (AF_INET, AF_INET6)):
                row = None
            else:
                row = _attrs_row(fdb, buf, off, end, state)
            if row is not None and (not permanent_only or row[2]):
                rows.append(row[:2] if permanent_only else row)
        elif mtype == NLMSG_DONE:
            return status | DUMP_DONE
        elif mtype == NLMSG_ERROR:
            code = -_ERR.unpack_from(buf, off + 16)[0]
            if code:
                raise OSError(code, os.strerror(code))
        off += (length + 3) & ~3
    return status


class RouteSocket:
    """A raw NETLINK_ROUTE socket for batched table writes and filtered dumps.

    ``sock`` is an AF_NETLINK socket already created in the right namespace; it is owned (closed) here.
    """

    def __init__(self, sock: socket.socket, *, batch: int | None = None):
        self.sock = sock
        sock.setblocking(True)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
        try:  # root may exceed net.core.rmem_max; anyone else gets what rmem_max allows
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        # acknowledgements without a copy of the request (36 bytes each)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        # dump requests checked strictly, so that the FDB dump honours NDA_IFINDEX (kernel 4.20+; an older one
        # sends every device's entries and parse_dump drops the others)
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        sock.bind((0, 0))
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.batch = max(1, min(batch or BATCH_MAX, rcvbuf // ACK_TRUESIZE))
        self.buf = bytearray(RECV_BYTES)  # every recv_into() reuses it
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _seqs(self, count: int) -> int:
        """Reserve ``count`` sequence numbers; returns the first."""
        if self.seq + count >= 0xFFFFFFFF:
            self.seq = 0
        first = self.seq + 1
        self.seq += count
        return first

    def _drain(self) -> None:
        """Drop anything left queued by an earlier, interrupted exchange."""
        while True:
            try:
                self.sock.recv_into(self.buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return

    # -- writes ------------------------------------------------------------------------------------------------

    def write(self, table: str, ifindex: int, ops: list[dict]) -> list[int | None]:
        """Send the planner operations in order, ``self.batch`` per send; one result per op.

        A result is 0 (done), a positive errno (refused), or None (no acknowledgement came back).
        """
        codes: list[int | None] = [None] * len(ops)
        if not ops:
            return codes
        self._drain()
        first = self._seqs(len(ops))
        requests = encode_writes(table, ifindex, ops, first)
        for start in range(0, len(ops), self.batch):
            chunk = requests[start : start + self.batch]
            self.sock.send(b"".join(chunk))
            self._acks(first + start, len(chunk), codes, start)
        return codes

    def _acks(self, seq0: int, count: int, codes: list, offset: int) -> None:
        """Read the acknowledgements of requests ``seq0 .. seq0+count-1`` into ``codes[offset:]``."""
        buf, hdr, err, ack = self.buf, _HDR.unpack_from, _ERR.unpack_from, _ACK.unpack_from
        recv_into, dontwait = self.sock.recv_into, socket.MSG_DONTWAIT
        pending = count
        overrun = False
        while pending:
            try:
                nbytes = recv_into(buf, 0, dontwait)
            except BlockingIOError:
                # rtnetlink answers inside send(); wait briefly in case a future kernel does not
                if overrun or not select.select([self.sock], [], [], ACK_WAIT)[0]:
                    return
                continue
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                overrun = True  # some acknowledgements were dropped: those entries stay None
                continue
            if nbytes == ACK_BYTES:  # one acknowledgement per datagram: the usual case, one unpack
                length, mtype, _flags, seq, _pid, code = ack(buf, 0)
                idx = seq - seq0
                if length == ACK_BYTES and mtype == NLMSG_ERROR and 0 <= idx < count:
                    if codes[offset + idx] is None:
                        codes[offset + idx] = -code
                        pending -= 1
                    continue
            off = 0
            while off + 16 <= nbytes:
                length, mtype, _flags, seq, _pid = hdr(buf, off)
                if length < 16:
                    break
                idx = seq - seq0
                if mtype == NLMSG_ERROR and 0 <= idx < count and codes[offset + idx] is None:
                    codes[offset + idx] = -err(buf, off + 16)[0]
                    pending -= 1
                off += (length + 3) & ~3

    # -- dumps -------------------------------------------------------------------------------------------------

    def dump(self, table: str, ifindex: int, *, permanent_only: bool = False, attempts: int = 5) -> list[tuple]:
        """One device's entries (see :func:`parse_dump`), dumped again when the table changed meanwhile."""
        buf, recv_into = self.buf, self.sock.recv_into
        for _attempt in range(attempts):
            self._drain()
            seq = self._seqs(1)
            self.sock.send(encode_dump(table, ifindex, seq))
            rows: list[tuple] = []
            names: dict = {}
            status = 0
            while not status & DUMP_DONE:
                nbytes = recv_into(buf)
                status |= parse_dump(table, ifindex, buf, nbytes, rows, permanent_only=permanent_only, names=names)
            if not status & DUMP_INTERRUPTED:
                return rows
        raise OSError(errno.EINTR, f"the {table} table kept changing during {attempts} dumps")
