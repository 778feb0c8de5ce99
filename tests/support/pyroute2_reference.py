# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pyroute2 reference path: the test oracles of the raw netlink layer (plugins/module_utils/_rtnl).

What the pyroute2-based ``Namespace`` did before the raw reads and the bulk tables, kept here as functions:

* links, addresses, default routes: what it made of pyroute2's messages (:func:`reference_link_dict`, ...);
  ``_rtnl.link`` must give exactly this (tests/unit/.../_rtnl/test_rtnl_link.py on built messages,
  tests/kernel/test_rtnl_link_kernel.py on live namespaces);
* the tables: one pyroute2 request per entry (:func:`fdb_dump`, :func:`neigh_dump`, :func:`table_write`; the
  plain path of tests/support/tables.py) and pyroute2's encoding of each request (:func:`encode_write`);
  ``_rtnl.neigh`` must give the same rows, bytes, errors and kernel state (tests/unit/.../_rtnl/test_rtnl_neigh.py,
  tests/kernel/test_bulk.py).

The table functions take a ``Namespace`` and go through its pyroute2 handle (``ns.ipr``) and error mapping
(``ns.call``).  (tests/conftest.py puts tests/ on sys.path.)
"""

from __future__ import annotations

import socket

from ansible_collections.netfleet.overlay.plugins.module_utils._model import ZERO_MAC
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    AF_BRIDGE,
    AF_INET,
    AF_INET6,
    IFF_UP,
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NTF_SELF,
    NUD_NOARP,
    NUD_PERMANENT,
    RTM_DELNEIGH,
    RTM_NEWNEIGH,
)

# --- links, addresses, default routes ---------------------------------------------------------------------------


def reference_link_dict(msg, by_index: dict) -> dict:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    data = info.get_attr("IFLA_INFO_DATA") if info else None
    master = msg.get_attr("IFLA_MASTER")
    master_msg = by_index.get(master) if master else None
    link = {
        "index": msg["index"],
        "ifname": msg.get_attr("IFLA_IFNAME"),
        "kind": kind,
        "mtu": msg.get_attr("IFLA_MTU"),
        "mac": (msg.get_attr("IFLA_ADDRESS") or "").lower() or None,
        "up": bool(msg["flags"] & IFF_UP),
        "master_index": master,
        "master": None if master_msg is None else master_msg.get_attr("IFLA_IFNAME"),
        "link_index": msg.get_attr("IFLA_LINK"),
        "link_netnsid": msg.get_attr("IFLA_LINK_NETNSID"),
        "alias": msg.get_attr("IFLA_IFALIAS") or None,
    }
    if kind == "vxlan" and data is not None:
        local = data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6")
        link["vxlan"] = {
            "vni": data.get_attr("IFLA_VXLAN_ID"),
            "port": data.get_attr("IFLA_VXLAN_PORT"),
            "local": local,
            "dev_index": data.get_attr("IFLA_VXLAN_LINK") or None,
            "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING")),
            "proxy": bool(data.get_attr("IFLA_VXLAN_PROXY")),
        }
    return link


def reference_addresses(msgs, index: int) -> list[dict]:
    return [
        {
            "address": m.get_attr("IFA_ADDRESS"),
            "prefixlen": m["prefixlen"],
            "family": 6 if m["family"] == socket.AF_INET6 else 4,
        }
        for m in msgs
        if m["index"] == index and m["scope"] != 253
    ]


def reference_default_devs(msgs, table: int = 254) -> list[int]:
    return [
        m.get_attr("RTA_OIF") for m in msgs if m.get("table") == table and m["dst_len"] == 0 and m.get_attr("RTA_OIF")
    ]


# --- the tables, one pyroute2 request per entry -------------------------------------------------------------------


def neigh_dump(ns, index: int) -> list[dict]:
    """ARP/ND entries on one device: ``{'ip', 'mac', 'permanent'}``."""
    out = []
    for msg in ns.call(f"reading neighbours of link #{index}", ns.ipr.neigh, "dump", ifindex=index):
        if msg["ifindex"] != index or msg["family"] not in (AF_INET, AF_INET6):
            continue
        mac = msg.get_attr("NDA_LLADDR")
        out.append(
            {
                "ip": msg.get_attr("NDA_DST"),
                "mac": mac.lower() if mac else None,
                "permanent": bool(msg["state"] & NUD_PERMANENT),
            }
        )
    return out


def fdb_dump(ns, index: int) -> list[dict]:
    """Device-side (NTF_SELF) FDB entries with a remote dst on one device: ``{'mac', 'dst', 'permanent'}``.

    Bridge-side entries (learned by br0, or br0's own ``master ... permanent`` entry for the port) carry no
    NTF_SELF and no dst; they are not the device's table and are never returned.
    """
    out = []
    for msg in ns.call(f"reading FDB of link #{index}", ns.ipr.fdb, "dump", ifindex=index):
        if msg["ifindex"] != index or not msg["flags"] & NTF_SELF:
            continue
        dst = msg.get_attr("NDA_DST")
        if not dst:
            continue
        out.append(
            {"mac": msg.get_attr("NDA_LLADDR").lower(), "dst": dst, "permanent": bool(msg["state"] & NUD_PERMANENT)}
        )
    return out


def table_write(ns, table: str, index: int, op: dict) -> None:
    """Send one table change.  ``op`` is a planner operation: ``{'action', 'entry', 'command'}``."""
    action, entry, what = op["action"], op["entry"], op["command"]
    if table == "fdb":
        mac, dst = entry["mac"], entry["dst"]
        if action == "delete":
            ns.call(what, ns.ipr.fdb, "del", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF, op="del")
        elif mac == ZERO_MAC:
            # the head-end flood list takes append, never replace (EOPNOTSUPP)
            ns.call(what, ns.ipr.fdb, "append", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF,
                    state=NUD_PERMANENT | NUD_NOARP, op="add")  # fmt: skip
        else:
            # flags/state must be explicit: a bare replace writes a local bridge entry that blackholes the MAC
            ns.call(what, ns.ipr.fdb, "replace", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF,
                    state=NUD_PERMANENT | NUD_NOARP)  # fmt: skip
    elif table == "neigh":
        family = AF_INET6 if ":" in entry["ip"] else AF_INET
        if action == "delete":
            ns.call(what, ns.ipr.neigh, "del", ifindex=index, dst=entry["ip"], family=family, op="del")
        else:
            ns.call(what, ns.ipr.neigh, "replace", ifindex=index, dst=entry["ip"], lladdr=entry["mac"],
                    family=family, state=NUD_PERMANENT)  # fmt: skip
    else:
        raise ValueError(f"unknown table {table}")


_REQ = NLM_F_REQUEST | NLM_F_ACK


def encode_write(table: str, action: str, ifindex: int, entry: dict, seq: int) -> bytes:
    """pyroute2's encoding of the request :func:`table_write` sends for one op, with sequence number ``seq``.

    FDB: family AF_BRIDGE, NTF_SELF, state PERMANENT|NOARP, NDA_LLADDR then NDA_DST; CREATE|REPLACE for a unicast
    MAC, CREATE|APPEND for the flood MAC.  Neighbours: AF_INET/AF_INET6, state PERMANENT, NDA_DST then NDA_LLADDR
    (a delete: NDA_DST only), CREATE|REPLACE.  Every request asks for an acknowledgement.
    """
    from pyroute2.netlink.rtnl.ndmsg import ndmsg

    upsert = action != "delete"
    if table == "fdb":
        flags = _REQ | (NLM_F_CREATE | (NLM_F_APPEND if entry["mac"] == ZERO_MAC else NLM_F_REPLACE) if upsert else 0)
        family, state, ndm_flags = AF_BRIDGE, NUD_PERMANENT | NUD_NOARP, NTF_SELF
        attrs = [("NDA_LLADDR", entry["mac"]), ("NDA_DST", entry["dst"])]
    elif table == "neigh":
        flags = _REQ | (NLM_F_CREATE | NLM_F_REPLACE if upsert else 0)
        family, state, ndm_flags = AF_INET6 if ":" in entry["ip"] else AF_INET, NUD_PERMANENT, 0
        attrs = [("NDA_DST", entry["ip"])] + ([("NDA_LLADDR", entry["mac"])] if upsert else [])
    else:
        raise ValueError(f"unknown table {table}")
    msg = ndmsg()
    msg["header"]["type"] = RTM_NEWNEIGH if upsert else RTM_DELNEIGH
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["family"], msg["ifindex"], msg["state"], msg["flags"] = family, ifindex, state, ndm_flags
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)
