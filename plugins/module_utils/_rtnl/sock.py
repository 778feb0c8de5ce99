# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""The one raw NETLINK_ROUTE socket: opened inside a network namespace, one dump loop, one acknowledgement reader.

(Called ``sock`` rather than ``socket`` so that it never stands in for the standard library's module.)

* :func:`netlink_socket` creates the socket in a named namespace from a short-lived thread that enters it with
  libc's ``setns`` (:func:`enter_netns`; a missing namespace is an error, never created).  A network namespace
  belongs to a thread, so the rest of the process never changes namespace; and no child process is forked
  (pyroute2's ``create_socket`` forks one, ~7 ms).
* :meth:`RouteSocket.dump` sends one dump request and hands every reply to a parser (the handlers of
  :func:`.wire.walk`); a dump that the kernel flags as interrupted is taken again.
* :meth:`RouteSocket.requests` sends many requests ``batch`` per ``send()`` and reads every acknowledgement back
  by sequence number, so each request gets its own errno.  rtnetlink handles a request in the sender's context,
  so when ``send()`` returns every acknowledgement is already queued; the batch is sized so that they fit the
  socket's receive buffer.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import socket
import struct
import threading

from ansible_collections.netfleet.overlay.plugins.module_utils._model import netns_path
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    CLONE_NEWNET,
    NETLINK_CAP_ACK,
    NETLINK_GET_STRICT_CHK,
    NETLINK_ROUTE,
    NLMSG_ERROR,
    NLMSGERR,
    NLMSGHDR,
    SO_RCVBUFFORCE,
    SOL_NETLINK,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.wire import DUMP_DONE, DUMP_INTERRUPTED

# one acknowledgement: nlmsghdr (len, type, flags, seq, pid) + the error code
_ACK = struct.Struct(NLMSGHDR.format + "i")  # nlmsghdr | nlmsgerr.error
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


def enter_netns(name: str, libc=None) -> None:
    """Move the calling thread into the named network namespace (``/run/netns/<name>``, or a path).

    Never creates it: a missing one raises FileNotFoundError, as pyroute2's ``setns(name, flags=0)`` does.
    """
    path = netns_path(name)
    libc = libc or ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"failed to open netns: {os.strerror(code)}", name)
    finally:
        os.close(fd)


def in_netns(netns: str, fn):
    """``fn()``'s result, run inside ``netns`` by a thread that ends right after (the caller's thread stays where it
    is); what it raises is raised here."""
    done: dict = {}
    # this process's libc, as pyroute2 would find it but without ctypes.util.find_library (~8 ms: ldconfig)
    libc = ctypes.CDLL(None, use_errno=True)

    def run():
        try:
            enter_netns(netns, libc)  # this thread only; never creates it
            done["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            done["error"] = exc

    worker = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    worker.start()
    worker.join()
    if "error" in done:
        raise done["error"]
    return done["value"]


def netlink_socket(netns: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket created inside ``netns`` (None: this thread's), by a thread that ends right after."""
    if not netns:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    return in_netns(netns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))


class RouteSocket:
    """A raw NETLINK_ROUTE socket for dumps and batched, acknowledged requests.

    ``sock`` is an AF_NETLINK socket already created in the right namespace (:func:`netlink_socket`); it is owned
    (closed) here.  ``buf`` is the one receive buffer that every ``recv_into()`` reuses.
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
        # dump requests checked strictly, so that the kernel honours the filters of a dump request (kernel 4.20+;
        # an older one sends everything and the parsers drop what was not asked for)
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        sock.bind((0, 0))
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.batch = max(1, min(batch or BATCH_MAX, rcvbuf // ACK_TRUESIZE))
        self.buf = bytearray(RECV_BYTES)
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

    # -- dumps -------------------------------------------------------------------------------------------------

    def dump(self, encode, parse, *, what: str = "dump", attempts: int = 5) -> list:
        """Send ``encode(seq)`` and ``parse(buf, nbytes, out)`` every reply until the dump is done; returns ``out``.

        ``parse`` returns :func:`.wire.walk`'s status bits.  A dump flagged as interrupted is taken again, up to
        ``attempts`` times; ``what`` names it in the error after that.
        """
        buf, recv_into = self.buf, self.sock.recv_into
        for _attempt in range(attempts):
            self._drain()
            self.sock.send(encode(self._seqs(1)))
            out: list = []
            status = 0
            while not status & DUMP_DONE:
                status |= parse(buf, recv_into(buf), out)
            if not status & DUMP_INTERRUPTED:
                return out
        raise OSError(errno.EINTR, f"the {what} kept changing during {attempts} dumps")

    # -- acknowledged requests -------------------------------------------------------------------------------------

    def requests(self, count: int, encode) -> list[int | None]:
        """Send the ``count`` requests ``encode(first_seq)`` returns (sequence numbers from ``first_seq`` on, each
        asking for an acknowledgement), in order, ``self.batch`` per send; one result per request.

        A result is 0 (done), a positive errno (refused), or None (no acknowledgement came back).
        """
        codes: list[int | None] = [None] * count
        if not count:
            return codes
        self._drain()
        first = self._seqs(count)
        requests = encode(first)
        for start in range(0, count, self.batch):
            chunk = requests[start : start + self.batch]
            self.sock.send(b"".join(chunk))
            self._acks(first + start, len(chunk), codes, start)
        return codes

    def _acks(self, seq0: int, count: int, codes: list, offset: int) -> None:
        """Read the acknowledgements of requests ``seq0 .. seq0+count-1`` into ``codes[offset:]``."""
        buf, hdr, err = self.buf, NLMSGHDR.unpack_from, NLMSGERR.unpack_from
        ack = _ACK.unpack_from
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
