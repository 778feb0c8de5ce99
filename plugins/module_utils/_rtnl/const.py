# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: anything may change without notice.
"""Every rtnetlink number the collection uses, once: message types, flags, attribute ids, header structs.

From linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h, linux/if_link.h, linux/if_addr.h and sched.h.
"""

from __future__ import annotations

import socket
import struct

# --- sockets ----------------------------------------------------------------------------------------------------
NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK = 270, 10, 12
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
CLONE_NEWNET = 0x40000000  # setns() into a network namespace
AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6 = 0, 2, 7, 10

# --- messages -----------------------------------------------------------------------------------------------------
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP_INTR = 0x01, 0x04, 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLA_TYPE_MASK = 0x3FFF  # an attribute's type without NLA_F_NESTED / NLA_F_NET_BYTEORDER
NLMSG_HDRLEN = 16

# --- links, addresses, routes -------------------------------------------------------------------------------------
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 18, 20, 29, 37
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING = 1, 3, 4, 7
IFLA_VXLAN_PROXY, IFLA_VXLAN_PORT, IFLA_VXLAN_LOCAL6 = 11, 15, 17
RTEXT_FILTER_SKIP_STATS = 1 << 3  # the link dump leaves out the counters (less to copy; nothing read here)
IFF_UP = 0x1
IFA_ADDRESS = 1
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTNH_F_ONLINK = 4  # a route's gateway is on the link, whatever the link's addresses
RTPROT_STATIC, RTN_UNICAST = 4, 1  # a route added by an administrator; a plain route to a gateway
RT_TABLE_MAIN = 254
RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 253, 255

# --- neighbours and FDB entries -----------------------------------------------------------------------------------
NDA_DST, NDA_LLADDR, NDA_IFINDEX = 1, 2, 8
NTF_SELF = 0x02
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80

# --- header structs -----------------------------------------------------------------------------------------------
NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSGHDR3 = struct.Struct("=IHH")  # len, type, flags: what a reader of replies needs
NLMSGERR = struct.Struct("=i")  # the error code after an NLMSG_ERROR's header (0: an acknowledgement)
NLATTR = struct.Struct("=HH")  # len, type
