# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The raw read parsers (_rtnl.link) against pyroute2's decoding of the same bytes, without a kernel.

Link, address and route dump replies are built here with :mod:`struct` (random values, unknown attributes in
between, NLA flags, odd strings); pyroute2's marshal decodes the same bytes, and what the pyroute2-based
``Namespace`` made of its messages (``_link_dict``, ``addresses``, ``default_route_dev``, copied below as they
were) must equal what the parsers return.  Plus: the requests' bytes, the dump loop (interrupted dumps, errors,
replies in pieces) and ``Namespace`` on a scripted socket.
"""

from __future__ import annotations

import errno
import random
import socket
import struct

import pytest
from support.pyroute2_reference import reference_addresses, reference_default_devs, reference_link_dict

from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import const as c
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import link as r
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import sock
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.wire import DUMP_DONE, DUMP_INTERRUPTED

marshal_mod = pytest.importorskip("pyroute2.netlink.rtnl.marshal")

NLM_F_MULTI = 2
NLA_F_NESTED = 0x8000


# --- building replies -----------------------------------------------------------------------------------------


def nla(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nlmsg(mtype: int, body: bytes, *, flags: int = NLM_F_MULTI, seq: int = 1) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 0) + body


def done(seq: int = 1, flags: int = NLM_F_MULTI) -> bytes:
    return nlmsg(c.NLMSG_DONE, struct.pack("=i", 0), flags=flags, seq=seq)


def error(code: int, seq: int = 1) -> bytes:
    return nlmsg(c.NLMSG_ERROR, struct.pack("=i", -code) + struct.pack("=IHHII", 32, 18, 0x301, seq, 0), flags=0)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def text(value: str | bytes) -> bytes:
    return (value.encode() if isinstance(value, str) else value) + b"\0"


def random_mac(rnd: random.Random) -> bytes:
    return bytes(rnd.randrange(256) for _i in range(6))


def link_msg(rnd: random.Random, index: int, names: list) -> bytes:
    """One RTM_NEWLINK with random values, in a random attribute order, with unknown attributes in between."""
    kind = rnd.choice([None, "veth", "bridge", "vxlan", "vxlan", "vxlan"])
    name = f"dev{index}"
    names.append(name)
    attrs = [nla(c.IFLA_IFNAME, text(name)), nla(c.IFLA_MTU, u32(rnd.choice([1500, 1450, 65536, 9000])))]
    if rnd.random() < 0.9:
        # a MAC; or a tunnel's 4 or 16 bytes, of which pyroute2 reads 6 from the payload's start all the same
        size = rnd.choice([6, 6, 6, 6, 4, 16])
        attrs.append(nla(c.IFLA_ADDRESS, bytes(rnd.randrange(256) for _i in range(size))))
    attrs.append(nla(13, u32(1000)))  # IFLA_TXQLEN
    if rnd.random() < 0.5:
        attrs.append(nla(c.IFLA_MASTER, u32(rnd.randrange(1, 40))))
    if rnd.random() < 0.5:
        attrs.append(nla(c.IFLA_LINK, u32(rnd.randrange(1, 40))))
    if rnd.random() < 0.4:
        attrs.append(nla(c.IFLA_LINK_NETNSID, struct.pack("=i", rnd.choice([0, 1, 7, -1]))))
    if rnd.random() < 0.5:
        alias = rnd.choice(["netfleet.overlay network=n1", "netfleet.overlay endpoint=a netns=ha", "héllo ☃", "x"])
        attrs.append(nla(c.IFLA_IFALIAS, text(alias)))
    if kind:
        info = [nla(c.IFLA_INFO_KIND, text(kind))]
        if kind == "vxlan" and rnd.random() < 0.95:
            data = [nla(c.IFLA_VXLAN_ID, u32(rnd.randrange(1, 1 << 24)))]
            if rnd.random() < 0.8:
                data.append(nla(2, socket.inet_aton("239.1.1.1")))  # IFLA_VXLAN_GROUP
            if rnd.random() < 0.5:
                data.append(nla(c.IFLA_VXLAN_LINK, u32(rnd.randrange(0, 5))))
            local = rnd.random()
            if local < 0.4:
                data.append(
                    nla(c.IFLA_VXLAN_LOCAL, socket.inet_aton(f"198.18.{rnd.randrange(256)}.{rnd.randrange(256)}"))
                )
            elif local < 0.8:
                data.append(
                    nla(c.IFLA_VXLAN_LOCAL6, socket.inet_pton(socket.AF_INET6, f"2001:db8::{rnd.randrange(1, 999)}"))
                )
            data.append(nla(5, bytes([64])))  # TTL
            if rnd.random() < 0.9:
                data.append(nla(c.IFLA_VXLAN_LEARNING, bytes([rnd.randrange(2)])))
            if rnd.random() < 0.9:
                data.append(nla(c.IFLA_VXLAN_PROXY, bytes([rnd.randrange(2)])))
            if rnd.random() < 0.9:
                data.append(nla(c.IFLA_VXLAN_PORT, struct.pack(">H", rnd.choice([4789, 8472, 4790, 1]))))
            rnd.shuffle(data)
            info.append(nla(c.IFLA_INFO_DATA | (NLA_F_NESTED if rnd.random() < 0.5 else 0), b"".join(data)))
        attrs.append(nla(c.IFLA_LINKINFO, b"".join(info)))
    attrs.append(nla(26 | NLA_F_NESTED, nla(2, nla(1, u32(5)))))  # IFLA_AF_SPEC, nested junk
    rnd.shuffle(attrs)
    flags = rnd.choice([0, 1, 0x1003, 0x11043])
    return nlmsg(c.RTM_NEWLINK, struct.pack("=BxHiII", 0, 1, index, flags, 0) + b"".join(attrs))


def addr_msg(rnd: random.Random, index: int) -> bytes:
    v6 = rnd.random() < 0.5
    family = socket.AF_INET6 if v6 else socket.AF_INET
    raw = socket.inet_pton(
        family,
        f"2001:db8:{rnd.randrange(99)}::{rnd.randrange(1, 99)}"
        if v6
        else f"10.{rnd.randrange(256)}.0.{rnd.randrange(1, 255)}",
    )
    attrs = [nla(1, raw)]  # IFA_ADDRESS
    if not v6:
        attrs.insert(0, nla(2, raw))  # IFA_LOCAL first, as the kernel writes it
        attrs.append(nla(3, text(f"dev{index}")))  # IFA_LABEL
    attrs.append(nla(6, struct.pack("=IIII", 1, 2, 3, 4)))  # IFA_CACHEINFO
    scope = rnd.choice([0, 0, 253, 254, 200])
    body = struct.pack("=BBBBI", family, rnd.choice([8, 24, 32, 64, 128]), rnd.randrange(256), scope, index)
    return nlmsg(c.RTM_NEWADDR, body + b"".join(attrs))


def route_msg(rnd: random.Random, family: int) -> bytes:
    table = rnd.choice([254, 254, 255, 100, 1000])
    dst_len = rnd.choice([0, 0, 24, 32])
    attrs = []
    if table >= 256 or rnd.random() < 0.7:
        attrs.append(nla(c.RTA_TABLE, u32(table)))
    if dst_len:
        size = 4 if family == socket.AF_INET else 16
        attrs.append(nla(1, bytes(size)))  # RTA_DST
    attrs.append(nla(6, u32(rnd.randrange(1024))))  # RTA_PRIORITY
    if rnd.random() < 0.8:
        attrs.append(nla(c.RTA_OIF, u32(rnd.choice([0, 1, 2, 3, 7]))))
    rnd.shuffle(attrs)
    body = struct.pack("=BBBBBBBBI", family, dst_len, 0, 0, min(table, 252) if table >= 256 else table, 3, 0, 1, 0)
    return nlmsg(c.RTM_NEWROUTE, body + b"".join(attrs))


def pyroute2_msgs(data: bytes, mtype: int) -> list:
    return [m for m in marshal_mod.MarshalRtnl().parse(data) if m["header"]["type"] == mtype]


# --- what the pyroute2-based Namespace made of pyroute2's messages (as it was) ---------------------------------


def with_master_names(raw: list[dict]) -> list[dict]:
    """What Namespace.links() makes of parse_links' dicts (the master's name added)."""
    ns = object.__new__(nl.Namespace)
    by_index = {link["index"]: link for link in raw}
    ns._dump = lambda: ({link["ifname"]: link for link in raw}, by_index)
    return [ns._link_dict(link) for link in raw]


# --- the parsers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_parse_links_matches_pyroute2(seed):
    rnd = random.Random(f"links{seed}")
    names: list = []
    data = b"".join(link_msg(rnd, index, names) for index in range(1, 40))
    msgs = pyroute2_msgs(data, c.RTM_NEWLINK)
    by_index = {m["index"]: m for m in msgs}
    expected = [reference_link_dict(m, by_index) for m in msgs]
    assert sum("vxlan" in link for link in expected) > 3

    whole = data + done()
    out: list = []
    assert r.parse_links(whole, len(whole), out) == DUMP_DONE
    assert with_master_names(out) == expected
    for got, want in zip(with_master_names(out), expected, strict=True):  # the same types too (bool vs int)
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_link_values_and_forms():
    body = struct.pack("=BxHiII", 0, 1, 7, 0x1043, 0)
    info = nla(c.IFLA_INFO_KIND, text("vxlan")) + nla(
        c.IFLA_INFO_DATA | NLA_F_NESTED,
        nla(c.IFLA_VXLAN_ID, u32(4096))
        + nla(c.IFLA_VXLAN_PORT, struct.pack(">H", 4789))
        + nla(c.IFLA_VXLAN_LOCAL6, socket.inet_pton(socket.AF_INET6, "2001:db8:0:0::1"))
        + nla(c.IFLA_VXLAN_LEARNING, b"\1")
        + nla(c.IFLA_VXLAN_LINK, u32(0)),
    )
    msg = nlmsg(
        c.RTM_NEWLINK,
        body
        + nla(c.IFLA_IFNAME, text("vxlan0"))
        + nla(c.IFLA_ADDRESS, bytes.fromhex("02AB0000FF01"))
        + nla(c.IFLA_IFALIAS, b"netfleet.overlay network=n1\0\0")
        + nla(c.IFLA_LINKINFO, info),
    )
    out: list = []
    r.parse_links(msg, len(msg), out)
    assert out == [
        {
            "index": 7, "ifname": "vxlan0", "kind": "vxlan", "mtu": None, "mac": "02:ab:00:00:ff:01", "up": True,
            "master_index": None, "link_index": None, "link_netnsid": None, "alias": "netfleet.overlay network=n1",
            "vxlan": {"vni": 4096, "port": 4789, "local": "2001:db8::1", "dev_index": None, "learning": True,
                      "proxy": False},
        }
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_parse_addrs_matches_pyroute2(seed):
    rnd = random.Random(f"addrs{seed}")
    data = b"".join(addr_msg(rnd, rnd.randrange(1, 5)) for _i in range(80))
    msgs = pyroute2_msgs(data, c.RTM_NEWADDR)
    whole = data + done()
    for index in range(1, 5):
        out: list = []
        assert r.parse_addrs(whole, len(whole), index, out) == DUMP_DONE
        assert out == reference_addresses(msgs, index)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
@pytest.mark.parametrize("seed", range(4))
def test_parse_default_routes_matches_pyroute2(family, seed):
    rnd = random.Random(f"routes{family}{seed}")
    data = b"".join(route_msg(rnd, family) for _i in range(60))
    msgs = pyroute2_msgs(data, c.RTM_NEWROUTE)
    whole = data + done()
    for table in (254, 100, 1000):
        out: list = []
        assert r.parse_default_routes(whole, len(whole), table, out) == DUMP_DONE
        assert out == reference_default_devs(msgs, table)


def test_walk_status_errors_and_truncation():
    rnd = random.Random("walk")
    one = link_msg(rnd, 1, [])
    out: list = []
    assert r.parse_links(one, len(one), out) == 0 and len(out) == 1  # no NLMSG_DONE yet
    intr = nlmsg(c.RTM_NEWLINK, one[16:], flags=NLM_F_MULTI | c.NLM_F_DUMP_INTR) + done()
    assert r.parse_links(intr, len(intr), []) == DUMP_DONE | DUMP_INTERRUPTED
    with pytest.raises(OSError) as exc:
        r.parse_links(error(errno.EINVAL), 36, [])
    assert exc.value.errno == errno.EINVAL
    ack = error(0) + done()
    assert r.parse_links(ack, len(ack), []) == DUMP_DONE
    with pytest.raises(OSError) as exc:
        r.parse_links(one, len(one) - 4, [])
    assert exc.value.errno == errno.EBADMSG


def test_odd_strings_as_pyroute2_decodes_them():
    body = struct.pack("=BxHiII", 0, 1, 3, 0, 0)
    msg = nlmsg(c.RTM_NEWLINK, body + nla(c.IFLA_IFNAME, b"\0ab\0") + nla(c.IFLA_IFALIAS, b"\xff\xfe\0"))
    out: list = []
    r.parse_links(msg, len(msg), out)
    (want,) = pyroute2_msgs(msg, c.RTM_NEWLINK)
    assert out[0]["ifname"] == want.get_attr("IFLA_IFNAME") == "ab"
    assert out[0]["alias"] == want.get_attr("IFLA_IFALIAS") == b"\xff\xfe"


# --- requests -------------------------------------------------------------------------------------------------


def test_requests():
    link = r.encode_getlink(5)
    assert struct.unpack("=IHHII", link[:16]) == (len(link), c.RTM_GETLINK, 0x301, 5, 0)
    assert link[16:32] == bytes(16)  # ifinfomsg all zero: strict checking refuses anything else in a dump
    assert struct.unpack("=HHI", link[32:]) == (8, c.IFLA_EXT_MASK, c.RTEXT_FILTER_SKIP_STATS)
    addr = r.encode_getaddr(6, 9)
    assert struct.unpack("=IHHII", addr[:16]) == (24, c.RTM_GETADDR, 0x301, 6, 0)
    assert struct.unpack("=BBBBI", addr[16:]) == (0, 0, 0, 0, 9)
    route = r.encode_getroute(7, socket.AF_INET6)
    assert struct.unpack("=IHHII", route[:16]) == (28, c.RTM_GETROUTE, 0x301, 7, 0)
    assert struct.unpack("=BBBBBBBBI", route[16:]) == (socket.AF_INET6, 0, 0, 0, 254, 0, 0, 0, 0)


# --- the dump loop and Namespace on a scripted socket -----------------------------------------------------------


class ScriptedSocket:
    """Answers each send() with the next list of datagrams."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent: list = []
        self.queue: list = []

    def send(self, data):
        self.sent.append(bytes(data))
        self.queue = list(self.replies.pop(0))
        return len(data)

    def recv_into(self, buf, nbytes=0, flags=0):
        if not self.queue:
            raise BlockingIOError
        data = self.queue.pop(0)
        buf[: len(data)] = data
        return len(data)

    def close(self):
        pass


def scripted_route(replies):
    route = object.__new__(sock.RouteSocket)
    route.sock, route.buf, route.seq, route.batch = ScriptedSocket(replies), bytearray(1 << 16), 0, 1
    return route


def test_dump_in_pieces_and_again_when_interrupted():
    rnd = random.Random("dump")
    msgs = [link_msg(rnd, index, []) for index in range(1, 6)]
    first = [nlmsg(c.RTM_NEWLINK, msgs[0][16:], flags=NLM_F_MULTI | c.NLM_F_DUMP_INTR), done()]
    second = [b"".join(msgs[:2]), b"".join(msgs[2:]), done()]
    route = scripted_route([first, second])
    links = r.links(route)
    assert [link["index"] for link in links] == [1, 2, 3, 4, 5]
    assert [struct.unpack_from("=I", s, 8)[0] for s in route.sock.sent] == [1, 2]  # a new sequence number each

    route = scripted_route([[error(errno.EPERM)]])
    with pytest.raises(OSError):
        r.links(route)


def namespace_on(replies, name="ovl-1"):
    ns = object.__new__(nl.Namespace)
    ns.name, ns.label, ns._ipr, ns._links = name, f"netns {name}", None, None
    ns._route = scripted_route(replies)
    return ns


def test_namespace_reads_without_pyroute2_objects():
    rnd = random.Random("ns")
    names: list = []
    links = b"".join(link_msg(rnd, index, names) for index in range(1, 8))
    addrs = nlmsg(c.RTM_NEWADDR, struct.pack("=BBBBI", 2, 24, 0, 0, 3) + nla(1, socket.inet_aton("198.18.0.1")))
    route4 = nlmsg(c.RTM_NEWROUTE, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 3, 0, 1, 0) + nla(c.RTA_OIF, u32(3)))
    ns = namespace_on([[links + done()], [addrs + done()], [route4 + done()], [done()], [error(errno.ENOENT)]])
    assert [link["ifname"] for link in ns.links()] == names
    assert ns.link_index("dev4") == 4 and ns.link("nope") is None  # one dump, cached
    assert ns.addresses(3) == [{"address": "198.18.0.1", "prefixlen": 24, "family": 4}]
    assert ns.default_route_dev(4) == 3
    assert ns.default_route_dev(6) is None
    assert ns.default_route_dev(6) is None  # ENOENT: no such table
    assert ns._ipr is None
    nl._LINK_WRITES[0] += 1  # a write elsewhere: dumped again
    ns._route.sock.replies.append([error(errno.EBUSY)])
    with pytest.raises(nl.NetlinkOpError, match="listing links in netns ovl-1: Device or resource busy"):
        ns.links()


def test_opening_a_missing_netns_fails_and_never_creates_it():
    with pytest.raises(nl.NetlinkOpError, match=r"netns nfl-none-x1 does not exist; create it first \(netfleet"):
        nl.Namespace("nfl-none-x1")
    with pytest.raises(FileNotFoundError):
        sock.enter_netns("nfl-none-x1")
