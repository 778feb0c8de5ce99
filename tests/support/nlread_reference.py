# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the pyroute2-based Namespace made of pyroute2's messages before the raw reads (_nlread).

The raw parsers must give exactly this: tests/unit/plugins/module_utils/test_nlread.py checks them on built messages,
tests/kernel/test_nlread_kernel.py on live namespaces. (tests/conftest.py puts this directory on sys.path.)
"""

from __future__ import annotations

import socket

IFF_UP = 0x1


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
