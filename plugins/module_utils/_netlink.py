# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the only place in the collection that talks to pyroute2.  Anything may change without notice.
"""A small adapter over pyroute2.

Every netlink call of the collection goes through :class:`Namespace`.  It

* opens a network namespace by name without ever creating it by accident (``flags=0``),
* returns links, addresses and table entries as plain dicts that the planners compare,
* turns netlink errors into :class:`NetlinkOpError` messages that name the object and the namespace,
* treats EEXIST on add and ENOENT/ENODEV on delete as "already done".

Bulk table reads and writes (:meth:`Namespace.table_dump`, :meth:`Namespace.table_write_many`) go through
:mod:`._nlbulk` on a second, raw netlink socket that pyroute2 opens in the same namespace.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import socket
import sys
import threading
import traceback

from ansible_collections.netfleet.overlay.plugins.module_utils import _nlbulk


def _lean_pyroute2() -> None:
    """Let ``import pyroute2.<part>`` load only that part.

    ``pyroute2/__init__.py`` imports every subsystem (NDB, IPDB, conntrack, nl80211, wireguard, ...): about
    0.2 s, most of a module run's own time, while the modules need only the RTNL parts (about half of that).
    So, when nothing has imported pyroute2 yet, the package is registered without running its ``__init__``;
    its submodules import as usual. Anything unexpected falls back to the plain import.
    """
    if "pyroute2" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or not spec.submodule_search_locations:
            return
        sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)
    except Exception:
        sys.modules.pop("pyroute2", None)


def _plain_pyroute2() -> None:
    """Forget a lean import that failed half way, so that the next import runs the package's ``__init__``."""
    for name in [name for name in sys.modules if name == "pyroute2" or name.startswith("pyroute2.")]:
        del sys.modules[name]


try:
    _lean_pyroute2()
    try:
        from pyroute2.iproute.linux import IPRoute
    except Exception:
        _plain_pyroute2()
        from pyroute2 import IPRoute
    from pyroute2 import netns as _netns
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD
    from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT

    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()
    NetlinkError = OSError
    NTF_SELF, NUD_NOARP, NUD_PERMANENT, IFA_F_NODAD = 0x02, 0x40, 0x80, 0x02

NETNS_RUN_DIR = "/run/netns"
AF_INET, AF_INET6, AF_BRIDGE = 2, 10, 7
IFF_UP = 0x1
ZERO_MAC = "00:00:00:00:00:00"
# errno values that mean "the thing is already in the state you asked for"
# Bumped by every change to links (and by removing a namespace): Namespace caches its link dump until then.
_LINK_WRITES = [0]
_ALREADY = {"add": {errno.EEXIST}, "del": {errno.ENOENT, errno.ENODEV, errno.ESRCH}}


class NetlinkOpError(Exception):
    """A netlink request failed; the message names the object, the namespace and what to do."""


def _ns_label(name: str | None) -> str:
    return f"netns {name}" if name else "the host namespace"


def require_pyroute2(module) -> None:
    """Fail the module with Ansible's standard message when pyroute2 is missing."""
    if not HAS_PYROUTE2:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=PYROUTE2_IMPORT_ERROR)


# --- named network namespaces -------------------------------------------------------------------


def netns_list() -> list[str]:
    """Names of the network namespaces in /run/netns (empty when the directory is absent)."""
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if not n.startswith("."))
    except FileNotFoundError:
        return []


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


def netns_create(name: str) -> None:
    if netns_exists(name):
        return
    try:
        _netns.create(name)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise NetlinkOpError(f"cannot create netns {name}: {exc.strerror or exc}") from exc


def netns_remove(name: str) -> None:
    if not netns_exists(name):
        return
    _LINK_WRITES[0] += 1  # its links go, and with them the far ends of their veths in other namespaces
    try:
        _netns.remove(name)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise NetlinkOpError(f"cannot remove netns {name}: {exc.strerror or exc}") from exc


# --- one namespace --------------------------------------------------------------------------------


def _attrs(msg, name, default=None):
    value = msg.get_attr(name) if hasattr(msg, "get_attr") else None
    return default if value is None else value


class Namespace:
    """A netlink handle on one network namespace: ``None`` means the namespace the module runs in."""

    def __init__(self, name: str | None = None):
        self.name = name
        self.label = _ns_label(name)
        try:
            if name:
                # flags=0: never create the namespace as a side effect of opening it.
                self.ipr = IPRoute(netns=name, flags=0)
            else:
                self.ipr = IPRoute()
        except FileNotFoundError as exc:
            raise NetlinkOpError(f"netns {name} does not exist; create it first (netfleet.overlay.netns)") from exc
        except OSError as exc:
            raise NetlinkOpError(f"cannot open {self.label}: {exc}") from exc
        self._route: _nlbulk.RouteSocket | None = None
        self._links: tuple | None = None  # (_LINK_WRITES when dumped, by name, by index)

    def close(self) -> None:
        if self._route is not None:
            self._route.close()
            self._route = None
        self.ipr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- error mapping -----------------------------------------------------------------------------

    def call(self, what: str, fn, *args, op: str | None = None, **kwargs):
        """Run one pyroute2 request; map errors to a message naming ``what`` in this namespace.

        ``op='add'`` treats EEXIST as done, ``op='del'`` treats ENOENT/ENODEV as done (returns None).
        """
        try:
            return fn(*args, **kwargs)
        except NetlinkError as exc:
            code = getattr(exc, "code", None) or getattr(exc, "errno", None)
            if op and code in _ALREADY[op]:
                return None
            reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
            raise NetlinkOpError(f"{what} in {self.label}: {reason}") from exc

    # -- links ---------------------------------------------------------------------------------------

    def _dump(self) -> tuple[dict, dict]:
        """This namespace's links by name and by index, from one dump that is reused until any link changes.

        Every link write through any Namespace of this process bumps ``_LINK_WRITES`` (a veth's peer, for
        example, lands in another namespace), so a cached dump never outlives a change this run made.
        """
        if self._links is None or self._links[0] != _LINK_WRITES[0]:
            msgs = self.call("listing links", self.ipr.get_links)
            by_name = {msg.get_attr("IFLA_IFNAME"): msg for msg in msgs}
            self._links = (_LINK_WRITES[0], by_name, {msg["index"]: msg for msg in msgs})
        return self._links[1], self._links[2]

    def _wrote(self) -> None:
        _LINK_WRITES[0] += 1

    def link_index(self, ifname: str) -> int | None:
        msg = self._dump()[0].get(ifname)
        return None if msg is None else msg["index"]

    def _link_name(self, index: int | None) -> str | None:
        msg = self._dump()[1].get(index) if index else None
        return None if msg is None else msg.get_attr("IFLA_IFNAME")

    def link(self, ifname: str) -> dict | None:
        """The link called ``ifname`` as a plain dict, or None when it does not exist."""
        msg = self._dump()[0].get(ifname)
        return None if msg is None else self._link_dict(msg)

    def _link_dict(self, msg) -> dict:
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        master = msg.get_attr("IFLA_MASTER")
        link = {
            "index": msg["index"],
            "ifname": msg.get_attr("IFLA_IFNAME"),
            "kind": kind,
            "mtu": msg.get_attr("IFLA_MTU"),
            "mac": (msg.get_attr("IFLA_ADDRESS") or "").lower() or None,
            "up": bool(msg["flags"] & IFF_UP),
            "master_index": master,
            "master": self._link_name(master),
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

    def links(self) -> list[dict]:
        return [self._link_dict(msg) for msg in self._dump()[1].values()]

    def link_add(self, ifname: str, kind: str, **attrs) -> None:
        self._wrote()
        self.call(f"creating {kind} {ifname}", self.ipr.link, "add", ifname=ifname, kind=kind, op="add", **attrs)

    def link_set(self, label: str, index: int, **attrs) -> None:
        """Change attributes of link ``index``; ``label`` names it in errors (pass ``ifname=`` to rename)."""
        self._wrote()
        self.call(f"changing link {label}", self.ipr.link, "set", index=index, **attrs)

    def link_del(self, ifname: str, index: int) -> None:
        self._wrote()
        self.call(f"deleting link {ifname}", self.ipr.link, "del", index=index, op="del")

    def vxlan_add(self, ifname, *, vni, port, local, dev_index, learning, proxy, mtu) -> None:
        self._wrote()
        attrs = {
            "vxlan_id": vni,
            "vxlan_port": port,
            "vxlan_learning": int(learning),
            "vxlan_proxy": int(proxy),
        }
        if local:
            attrs["vxlan_local6" if ":" in local else "vxlan_local"] = local
        if dev_index:
            attrs["vxlan_link"] = dev_index
        if mtu:
            attrs["mtu"] = mtu
        self.call(
            f"creating vxlan {ifname} (vni {vni}, port {port})",
            self.ipr.link,
            "add",
            ifname=ifname,
            kind="vxlan",
            **attrs,
        )

    def vxlan_set(self, ifname, index, **changes) -> None:
        """Change the mutable vxlan attributes (learning, proxy) in place."""
        self._wrote()
        attrs = {f"vxlan_{k}": int(v) for k, v in changes.items()}
        self.call(f"changing vxlan {ifname}", self.ipr.link, "set", index=index, kind="vxlan", **attrs)

    def veth_add(self, ifname: str, peer_name: str, peer_netns: str | None) -> None:
        self._wrote()
        peer = {"ifname": peer_name}
        if peer_netns:
            peer["net_ns_fd"] = peer_netns
        self.call(
            f"creating veth {ifname} (peer {peer_name} in {_ns_label(peer_netns)})",
            self.ipr.link,
            "add",
            ifname=ifname,
            kind="veth",
            peer=peer,
        )

    # -- addresses -------------------------------------------------------------------------------------

    def addresses(self, index: int) -> list[dict]:
        """Global (non link-local) addresses of a link as ``{'address', 'prefixlen', 'family'}``."""
        out = []
        for msg in self.call(f"reading addresses of link #{index}", self.ipr.get_addr, index=index):
            if msg["scope"] == 253:  # RT_SCOPE_LINK: kernel-made, not ours
                continue
            out.append(
                {
                    "address": msg.get_attr("IFA_ADDRESS"),
                    "prefixlen": msg["prefixlen"],
                    "family": 6 if msg["family"] == AF_INET6 else 4,
                }
            )
        return out

    def addr_add(self, ifname, index, address, prefixlen) -> None:
        extra = {"flags": IFA_F_NODAD} if ":" in address else {}
        self.call(
            f"adding address {address}/{prefixlen} to {ifname}",
            self.ipr.addr,
            "add",
            index=index,
            address=address,
            prefixlen=prefixlen,
            op="add",
            **extra,
        )

    def addr_del(self, ifname, index, address, prefixlen) -> None:
        self.call(
            f"removing address {address}/{prefixlen} from {ifname}",
            self.ipr.addr,
            "del",
            index=index,
            address=address,
            prefixlen=prefixlen,
            op="del",
        )

    def default_route_dev(self, family: int = 4) -> int | None:
        """ifindex of the interface carrying the default route of that family, if any."""
        fam = AF_INET6 if family == 6 else AF_INET
        for msg in self.call("reading routes", self.ipr.get_routes, family=fam, table=254):
            if msg["dst_len"] == 0 and msg.get_attr("RTA_OIF"):
                return msg.get_attr("RTA_OIF")
        return None

    # -- tables: neighbour and FDB entries --------------------------------------------------------------
    #
    # neigh_dump / fdb_dump / table_write: one pyroute2 request per entry (the plain path).
    # table_dump / table_write_many: the same results in bulk, over a raw socket (see _nlbulk).

    def route_socket(self) -> _nlbulk.RouteSocket:
        """The raw NETLINK_ROUTE socket of this namespace for bulk table work, opened on first use.

        A short-lived thread enters the namespace with pyroute2's ``setns`` (flags=0: a missing namespace is an
        error, never created) and opens the socket there.  A network namespace belongs to a thread, so the rest
        of this process never changes namespace; and no child process is forked (pyroute2's ``create_socket``
        forks one, ~7 ms).
        """
        if self._route is None:
            try:
                sock = self._netlink_socket()
            except FileNotFoundError as exc:
                raise NetlinkOpError(
                    f"netns {self.name} does not exist; create it first (netfleet.overlay.netns)"
                ) from exc
            except OSError as exc:
                raise NetlinkOpError(f"cannot open a netlink socket in {self.label}: {exc}") from exc
            try:
                self._route = _nlbulk.RouteSocket(sock)
            except OSError as exc:
                sock.close()
                raise NetlinkOpError(f"cannot set up a netlink socket in {self.label}: {exc}") from exc
        return self._route

    def _netlink_socket(self) -> socket.socket:
        """A NETLINK_ROUTE socket created inside this namespace, by a thread that ends right after."""
        if not self.name:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _nlbulk.NETLINK_ROUTE)
        made: dict = {}
        # this process's libc, as pyroute2 would find it but without ctypes.util.find_library (~8 ms: ldconfig)
        libc = ctypes.CDLL(None, use_errno=True)

        def enter_and_open():
            try:
                _netns.setns(self.name, flags=0, libc=libc, fork=False)  # this thread only
                made["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _nlbulk.NETLINK_ROUTE)
            except BaseException as exc:  # handed to the caller's thread
                made["error"] = exc

        worker = threading.Thread(target=enter_and_open, name=f"netns-{self.name}", daemon=True)
        worker.start()
        worker.join()
        if "error" in made:
            raise made["error"]
        return made["sock"]

    def table_dump(self, table: str, index: int) -> list[tuple]:
        """The rows of :meth:`fdb_dump` / :meth:`neigh_dump` of link ``index``, from one kernel-filtered dump.

        As ``(key, member, permanent)`` tuples: ``(mac, dst, permanent)`` for ``fdb``, ``(ip, mac, permanent)``
        for ``neigh``.
        """
        what = f"reading FDB of link #{index}" if table == "fdb" else f"reading neighbours of link #{index}"
        route = self.route_socket()
        try:
            return route.dump(table, index)
        except OSError as exc:
            raise NetlinkOpError(f"{what} in {self.label}: {exc.strerror or exc}") from exc

    def table_write_many(self, table: str, index: int, ops: list[dict]) -> list[str]:
        """Send many table changes in batches, in order; returns one message per failed op, in op order.

        The same requests, "already done" rules and error words as :meth:`table_write` once per op.
        """
        route = self.route_socket()
        try:
            codes = route.write(table, index, ops)
        except OSError as exc:
            raise NetlinkOpError(
                f"writing {len(ops)} {table} changes to link #{index} in {self.label}: {exc.strerror or exc}"
            ) from exc
        errors = []
        for op, code in zip(ops, codes, strict=True):
            if code == 0:
                continue
            if code is None:
                errors.append(f"{op['command']} in {self.label}: no acknowledgement from the kernel")
                continue
            if op["action"] == "delete":
                done = code in _ALREADY["del"]
            else:  # the flood list is appended to, like an add
                done = table == "fdb" and op["entry"]["mac"] == ZERO_MAC and code in _ALREADY["add"]
            if not done:
                errors.append(f"{op['command']} in {self.label}: {os.strerror(code)}")
        return errors

    def neigh_dump(self, index: int) -> list[dict]:
        """ARP/ND entries on one device: ``{'ip', 'mac', 'permanent'}``."""
        out = []
        for msg in self.call(f"reading neighbours of link #{index}", self.ipr.neigh, "dump", ifindex=index):
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

    def fdb_dump(self, index: int) -> list[dict]:
        """Device-side (NTF_SELF) FDB entries with a remote dst on one device: ``{'mac', 'dst', 'permanent'}``.

        Bridge-side entries (learned by br0, or br0's own ``master ... permanent`` entry for the port) carry no
        NTF_SELF and no dst; they are not the device's table and are never returned.
        """
        out = []
        for msg in self.call(f"reading FDB of link #{index}", self.ipr.fdb, "dump", ifindex=index):
            if msg["ifindex"] != index or not msg["flags"] & NTF_SELF:
                continue
            dst = msg.get_attr("NDA_DST")
            if not dst:
                continue
            out.append(
                {"mac": msg.get_attr("NDA_LLADDR").lower(), "dst": dst, "permanent": bool(msg["state"] & NUD_PERMANENT)}
            )
        return out

    def table_write(self, table: str, index: int, op: dict) -> None:
        """Send one table change.  ``op`` is a planner operation: ``{'action', 'entry'}``."""
        action, entry = op["action"], op["entry"]
        what = f"{op['command']}"
        if table == "fdb":
            mac, dst = entry["mac"], entry["dst"]
            if action == "delete":
                self.call(what, self.ipr.fdb, "del", ifindex=index, lladdr=mac, dst=dst, flags=NTF_SELF, op="del")
            elif mac == ZERO_MAC:
                # the head-end flood list takes append, never replace (EOPNOTSUPP)
                self.call(
                    what,
                    self.ipr.fdb,
                    "append",
                    ifindex=index,
                    lladdr=mac,
                    dst=dst,
                    flags=NTF_SELF,
                    state=NUD_PERMANENT | NUD_NOARP,
                    op="add",
                )
            else:
                # flags/state must be explicit: a bare replace writes a local bridge entry that blackholes the MAC
                self.call(
                    what,
                    self.ipr.fdb,
                    "replace",
                    ifindex=index,
                    lladdr=mac,
                    dst=dst,
                    flags=NTF_SELF,
                    state=NUD_PERMANENT | NUD_NOARP,
                )
        elif table == "neigh":
            family = AF_INET6 if ":" in entry["ip"] else AF_INET
            if action == "delete":
                self.call(what, self.ipr.neigh, "del", ifindex=index, dst=entry["ip"], family=family, op="del")
            else:
                self.call(
                    what,
                    self.ipr.neigh,
                    "replace",
                    ifindex=index,
                    dst=entry["ip"],
                    lladdr=entry["mac"],
                    family=family,
                    state=NUD_PERMANENT,
                )
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown table {table}")
