# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""The one reader of netlink replies: a message walker and an attribute walker.

:func:`walk` goes through the messages of one ``recv()`` and hands each one of the wanted type to a handler;
:func:`attrs` goes through a message's attributes.  The parsers of :mod:`.link` and :mod:`.neigh` are handlers.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    NLA_TYPE_MASK,
    NLATTR,
    NLM_F_DUMP_INTR,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_HDRLEN,
    NLMSGERR,
    NLMSGHDR3,
)

# What walk() returns, as a bit mask: the dump ended (NLMSG_DONE seen), the kernel flagged the dump as inconsistent
# (the table changed meanwhile: take it again).
DUMP_DONE, DUMP_INTERRUPTED = 1, 2


def walk(buf, nbytes: int, mtype: int, handle) -> int:
    """Call ``handle(off, end)`` for each ``mtype`` message in ``buf[:nbytes]``; returns the dump status bits.

    A handler may return an offset to go on from (past more messages it parsed itself in one go; every one of
    them of type ``mtype`` and without NLM_F_DUMP_INTR), or None for the next message.  NLMSG_DONE ends the dump
    (:data:`DUMP_DONE`), NLM_F_DUMP_INTR on any message adds :data:`DUMP_INTERRUPTED`, an NLMSG_ERROR with an
    error code raises OSError, a message longer than what is left raises OSError(EBADMSG).
    """
    header = NLMSGHDR3.unpack_from
    status = 0
    off = 0
    while off + NLMSG_HDRLEN <= nbytes:
        length, msg_type, flags = header(buf, off)
        end = off + length
        if length < NLMSG_HDRLEN or end > nbytes:
            raise OSError(errno.EBADMSG, "truncated netlink message")
        if flags & NLM_F_DUMP_INTR:
            status |= DUMP_INTERRUPTED
        if msg_type == mtype:
            resume = handle(off, end)
            if resume is not None:
                off = resume
                continue
        elif msg_type == NLMSG_DONE:
            return status | DUMP_DONE
        elif msg_type == NLMSG_ERROR:
            code = -NLMSGERR.unpack_from(buf, off + NLMSG_HDRLEN)[0] if end >= off + 20 else errno.EBADMSG
            if code:
                raise OSError(code, os.strerror(code))
        off += (length + 3) & ~3
    return status


def attrs(buf, pos: int, end: int):
    """``(type, payload start, payload end)`` of the attributes in ``buf[pos:end]``, NLA flags masked off."""
    unpack = NLATTR.unpack_from
    while pos + 4 <= end:
        alen, atype = unpack(buf, pos)
        if alen < 4 or pos + alen > end:
            return
        yield atype & NLA_TYPE_MASK, pos + 4, pos + alen
        pos += (alen + 3) & ~3
