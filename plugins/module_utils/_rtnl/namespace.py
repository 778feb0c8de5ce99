# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the only place in the collection that talks to pyroute2.  Anything may change without notice.
"""The netlink handle the engine uses: :class:`Namespace`, plus the named namespaces themselves.

Every netlink call of the collection goes through :class:`Namespace`.  It

* opens a network namespace by name without ever creating it by accident,
* returns links, addresses and table entries as plain dicts and tuples that the planners compare,
* turns netlink errors into :class:`NetlinkOpError` messages that name the object and the namespace,
* treats EEXIST on add and ENOENT/ENODEV on delete as "already done".

Every read, and every neighbour/FDB write, goes over one raw NETLINK_ROUTE socket per namespace
(:meth:`Namespace.route_socket`, :mod:`.sock`): links, addresses and the default route through :mod:`.link`,
the tables through :mod:`.neigh`.  pyroute2 does the writes it is best at: links and addresses
(:attr:`Namespace.ipr`) and creating/removing named namespaces.  It is imported by the first such write only
(:func:`_pyroute2`), so a run that changes nothing never loads it.

This package (``_rtnl``, the collection's one netlink layer; its ``__init__.py`` stays empty, as ansible-test's
empty-init check wants) has, besides this file:

* ``link``: links, addresses and default routes read over the raw socket;
* ``neigh``: the neighbour and FDB tables in bulk over the raw socket (encode, decode, dump, write);
* ``sock``: the one raw NETLINK_ROUTE socket (opened inside a namespace), its dump loop and acknowledgements;
* ``wire``: the one reader of replies (message and attribute walkers);
* ``const``: every netlink number and header struct, once.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os

from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    NETNS_RUN_DIR,
    ZERO_MAC,
    broadcast_address,
    netns_path,
)
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import link, neigh, sock
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl.const import (
    AF_INET,
    AF_INET6,
    IFA_F_NODAD,
    RTM_DELROUTE,
    RTM_NEWROUTE,
)


def _find_pyroute2() -> bool:
    """Whether the Python running this has a pyroute2 package to import (found on sys.path, not imported)."""
    try:
        return importlib.util.find_spec("pyroute2") is not None
    except (ImportError, ValueError):
        return False


# HAS_PYROUTE2 means "installed": its package is found where this Python imports from (importing it would cost
# ~0.2 s that a run without link writes does not need).  A pyroute2 that is found but fails to import fails the
# first write with missing_required_lib's words and the error.
HAS_PYROUTE2 = _find_pyroute2()
PYROUTE2_IMPORT_ERROR = None if HAS_PYROUTE2 else "ModuleNotFoundError: No module named 'pyroute2'"
_PYROUTE2: dict = {}  # the loaded parts: IPRoute, netns, NetlinkError


def _pyroute2() -> dict:
    """pyroute2's IPRoute, netns and NetlinkError, imported on the first call (the first link or netns write).

    Raises :class:`NetlinkOpError` with Ansible's missing-library words when it cannot be imported.
    """
    if not _PYROUTE2:
        try:
            from pyroute2 import IPRoute, netns
            from pyroute2.netlink.exceptions import NetlinkError
        except ImportError as exc:
            try:
                from ansible.module_utils.basic import missing_required_lib

                words = missing_required_lib("pyroute2")
            except ImportError:  # pragma: no cover - outside Ansible
                words = "Failed to import the required Python library (pyroute2)"
            raise NetlinkOpError(f"{words} ({type(exc).__name__}: {exc})") from exc
        _PYROUTE2.update(IPRoute=IPRoute, netns=netns, NetlinkError=NetlinkError)
    return _PYROUTE2


# Bumped by every change to links (and by removing a namespace): Namespace caches its link dump until then.
_LINK_WRITES = [0]
# errno values that mean "the thing is already in the state you asked for"
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
    return os.path.exists(netns_path(name))


def netns_create(name: str) -> None:
    if netns_exists(name):
        return
    try:
        _pyroute2()["netns"].create(name)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise NetlinkOpError(f"cannot create netns {name}: {exc.strerror or exc}") from exc


def netns_remove(name: str) -> None:
    if not netns_exists(name):
        return
    _LINK_WRITES[0] += 1  # its links go, and with them the far ends of their veths in other namespaces
    try:
        _pyroute2()["netns"].remove(name)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise NetlinkOpError(f"cannot remove netns {name}: {exc.strerror or exc}") from exc


def _forwarding_path(ifname: str) -> str:
    return f"/proc/sys/net/ipv4/conf/{ifname}/forwarding"


# --- one namespace --------------------------------------------------------------------------------


class Namespace:
    """A netlink handle on one network namespace: ``None`` means the namespace the module runs in.

    Reads (links, addresses, the default route, table dumps) go over one raw NETLINK_ROUTE socket in the
    namespace (:meth:`route_socket`, parsed by :mod:`.link` and :mod:`.neigh`), and so do the table writes.
    pyroute2's ``IPRoute`` (:attr:`ipr`) is opened, and pyroute2 imported, by the first link or address write.
    """

    def __init__(self, name: str | None = None):
        self.name = name
        self.label = _ns_label(name)
        # Opening never creates the namespace; a missing one is an error now, as it was when IPRoute opened here.
        if name and not os.path.exists(netns_path(name)):
            raise self._missing()
        self._ipr = None
        self._route: sock.RouteSocket | None = None
        self._links: tuple | None = None  # (_LINK_WRITES when dumped, by name, by index)

    def _missing(self) -> NetlinkOpError:
        return NetlinkOpError(f"netns {self.name} does not exist; create it first (netfleet.overlay.netns)")

    @contextlib.contextmanager
    def _opening(self, what: str):
        """Open something in this namespace: a vanished namespace and any other OSError, each said by name."""
        try:
            yield
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise NetlinkOpError(f"cannot open {what}: {exc}") from exc

    @property
    def ipr(self):
        """pyroute2's ``IPRoute`` in this namespace, opened (and pyroute2 imported) on first use: the writes."""
        if self._ipr is None:
            IPRoute = _pyroute2()["IPRoute"]
            with self._opening(self.label):
                # flags=0: never create the namespace as a side effect of opening it.
                self._ipr = IPRoute(netns=self.name, flags=0) if self.name else IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._route is not None:
            self._route.close()
            self._route = None
        if getattr(self, "_ipr", None) is not None:
            self._ipr.close()
            self._ipr = None

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
        except Exception as exc:
            netlink_error = _PYROUTE2.get("NetlinkError")  # loaded with self.ipr, before any request
            if netlink_error is None or not isinstance(exc, netlink_error):
                raise
            code = getattr(exc, "code", None) or getattr(exc, "errno", None)
            if op and code in _ALREADY[op]:
                return None
            reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
            raise NetlinkOpError(f"{what} in {self.label}: {reason}") from exc

    def _read(self, what: str, request, *args):
        """One raw dump (``request(route socket, *args)``, from :mod:`.link`); errors name ``what`` here."""
        route = self.route_socket()
        try:
            return request(route, *args)
        except OSError as exc:
            raise NetlinkOpError(f"{what} in {self.label}: {exc.strerror or exc}") from exc

    # -- links ---------------------------------------------------------------------------------------

    def _dump(self) -> tuple[dict, dict]:
        """This namespace's links by name and by index, from one dump that is reused until any link changes.

        Every link write through any Namespace of this process bumps ``_LINK_WRITES`` (a veth's peer, for
        example, lands in another namespace), so a cached dump never outlives a change this run made.  The
        values are :func:`.link.parse_links` dicts, never handed out (see :meth:`_link_dict`).
        """
        if self._links is None or self._links[0] != _LINK_WRITES[0]:
            raw = self._read("listing links", link.links)
            self._links = (_LINK_WRITES[0], {r["ifname"]: r for r in raw}, {r["index"]: r for r in raw})
        return self._links[1], self._links[2]

    def _wrote(self) -> None:
        _LINK_WRITES[0] += 1

    def link_index(self, ifname: str) -> int | None:
        raw = self._dump()[0].get(ifname)
        return None if raw is None else raw["index"]

    def _link_name(self, index: int | None) -> str | None:
        raw = self._dump()[1].get(index) if index else None
        return None if raw is None else raw["ifname"]

    def link(self, ifname: str) -> dict | None:
        """The link called ``ifname`` as a plain dict, or None when it does not exist."""
        raw = self._dump()[0].get(ifname)
        return None if raw is None else self._link_dict(raw)

    def _link_dict(self, raw: dict) -> dict:
        """A fresh copy of a dumped link, with ``master``: the master's name."""
        copy = {
            "index": raw["index"],
            "ifname": raw["ifname"],
            "kind": raw["kind"],
            "mtu": raw["mtu"],
            "mac": raw["mac"],
            "up": raw["up"],
            "master_index": raw["master_index"],
            "master": self._link_name(raw["master_index"]),
            "link_index": raw["link_index"],
            "link_netnsid": raw["link_netnsid"],
            "alias": raw["alias"],
        }
        if "vxlan" in raw:
            copy["vxlan"] = dict(raw["vxlan"])
        return copy

    def links(self) -> list[dict]:
        return [self._link_dict(raw) for raw in self._dump()[1].values()]

    def link_add(self, ifname: str, kind: str, **attrs) -> None:
        """Create a link; one that already exists is done."""
        self._create(f"creating {kind} {ifname}", ifname, kind, op="add", **attrs)

    def _create(self, what: str, ifname: str, kind: str, op: str | None = None, **attrs) -> None:
        """Create link ``ifname`` of ``kind``; ``what`` names it in errors, ``op='add'``: EEXIST is done."""
        self._wrote()
        self.call(what, self.ipr.link, "add", ifname=ifname, kind=kind, op=op, **attrs)

    def link_set(self, label: str, index: int, **attrs) -> None:
        """Change attributes of link ``index``; ``label`` names it in errors (pass ``ifname=`` to rename)."""
        self._wrote()
        self.call(f"changing link {label}", self.ipr.link, "set", index=index, **attrs)

    def link_del(self, ifname: str, index: int) -> None:
        self._wrote()
        self.call(f"deleting link {ifname}", self.ipr.link, "del", index=index, op="del")

    def vxlan_add(self, ifname, *, vni, port, local, dev_index, learning, proxy, mtu) -> None:
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
        self._create(f"creating vxlan {ifname} (vni {vni}, port {port})", ifname, "vxlan", **attrs)

    def vxlan_set(self, ifname, index, **changes) -> None:
        """Change vxlan attributes in place: only learning (proxy, like vni and port, needs a new device)."""
        self._wrote()
        attrs = {f"vxlan_{k}": int(v) for k, v in changes.items()}
        self.call(f"changing vxlan {ifname}", self.ipr.link, "set", index=index, kind="vxlan", **attrs)

    def veth_add(self, ifname: str, peer_name: str, peer_netns: str | None) -> None:
        peer = {"ifname": peer_name}
        if peer_netns:
            peer["net_ns_fd"] = peer_netns
        self._create(f"creating veth {ifname} (peer {peer_name} in {_ns_label(peer_netns)})", ifname, "veth", peer=peer)

    # -- addresses -------------------------------------------------------------------------------------

    def addresses(self, index: int) -> list[dict]:
        """Global (non link-local) addresses of a link as ``{'address', 'prefixlen', 'family'}``, IPv4 first."""
        return self._read(f"reading addresses of link #{index}", link.addresses, index)

    def addr_add(self, ifname, index, address, prefixlen) -> None:
        extra = {"flags": IFA_F_NODAD} if ":" in address else {}
        broadcast = broadcast_address(address, int(prefixlen))
        if broadcast:  # as ip addr add ... brd +: the subnet's broadcast address is then one
            extra["broadcast"] = broadcast
        self._addr("add", f"adding address {address}/{prefixlen} to {ifname}", index, address, prefixlen, **extra)

    def addr_del(self, ifname, index, address, prefixlen) -> None:
        self._addr("del", f"removing address {address}/{prefixlen} from {ifname}", index, address, prefixlen)

    def _addr(self, command: str, what: str, index, address, prefixlen, **extra) -> None:
        self.call(what, self.ipr.addr, command, index=index, address=address, prefixlen=prefixlen, op=command, **extra)

    def default_route_dev(self, family: int = 4) -> int | None:
        """ifindex of the interface carrying the default route of that family (main table), if any."""
        fam = AF_INET6 if family == 6 else AF_INET
        route = self.route_socket()
        try:
            devs = link.default_route_devs(route, fam)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # no main table yet: nothing was ever routed there
                return None
            raise NetlinkOpError(f"reading routes in {self.label}: {exc.strerror or exc}") from exc
        return devs[0] if devs else None

    # -- routes and per-interface forwarding ------------------------------------------------------------------

    def routes(self, family: int = 4) -> list[dict]:
        """The main table's routes of a family as ``{'dst', 'dst_len', 'gateway', 'oif'}`` (:func:`.link.routes`)."""
        try:
            return link.routes(self.route_socket(), AF_INET6 if family == 6 else AF_INET)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # no main table yet: nothing was ever routed there
                return []
            raise NetlinkOpError(f"reading routes in {self.label}: {exc.strerror or exc}") from exc

    def route(self, command: str, dst: str | None, dst_len: int, gateway: str | None, oif: int) -> None:
        """Add or delete (``command``) the route ``dst/dst_len`` (None, 0: the default route) via ``gateway`` on
        link ``oif``, the gateway on that link whatever its addresses (``onlink``); over the raw socket.  Adding
        what is there, and deleting what is not, are done."""
        what = f"{'adding' if command == 'add' else 'deleting'} route {dst or 'default'}/{dst_len} via {gateway or '-'}"
        mtype = RTM_NEWROUTE if command == "add" else RTM_DELROUTE
        try:
            (code,) = self.route_socket().requests(
                1, lambda seq: [link.encode_route(seq, mtype, dst, dst_len, gateway=gateway, oif=oif)]
            )
        except OSError as exc:
            raise NetlinkOpError(f"{what} in {self.label}: {exc.strerror or exc}") from exc
        if code is None:
            raise NetlinkOpError(f"{what} in {self.label}: no acknowledgement from the kernel")
        if code and code not in _ALREADY[command]:
            raise NetlinkOpError(f"{what} in {self.label}: {os.strerror(code)}")

    def _in_netns(self, fn):
        """``fn()`` run in this namespace (:func:`.sock.in_netns` for a named one): what ``/proc/sys/net`` shows is
        the namespace of the thread that opens it."""
        return sock.in_netns(self.name, fn) if self.name else fn()

    def ipv4_forwarding(self, ifname: str) -> bool | None:
        """Whether link ``ifname`` forwards IPv4 (``net.ipv4.conf.<ifname>.forwarding``); None when it is gone."""

        def read():
            try:
                with open(_forwarding_path(ifname), encoding="ascii") as handle:
                    return handle.read().strip() == "1"
            except FileNotFoundError:
                return None

        try:
            return self._in_netns(read)
        except OSError as exc:
            raise NetlinkOpError(f"reading IPv4 forwarding of {ifname} in {self.label}: {exc}") from exc

    def set_ipv4_forwarding(self, ifname: str, on: bool) -> None:
        """Turn IPv4 forwarding of link ``ifname`` on or off, through ``/proc/sys`` as ``sysctl`` does (so the
        kernel also turns off LRO on a device that starts forwarding)."""

        def write():
            with open(_forwarding_path(ifname), "w", encoding="ascii") as handle:
                handle.write("1\n" if on else "0\n")

        try:
            self._in_netns(write)
        except OSError as exc:
            raise NetlinkOpError(
                f"turning IPv4 forwarding of {ifname} {'on' if on else 'off'} in {self.label}: {exc}"
            ) from exc

    # -- the raw socket, and the tables: neighbour and FDB entries --------------------------------------------

    def route_socket(self) -> sock.RouteSocket:
        """The raw NETLINK_ROUTE socket of this namespace for every read and table write, opened on first use.

        Created inside the namespace by a passing thread (:func:`.sock.netlink_socket`): a missing namespace is an
        error, never created.
        """
        if self._route is None:
            with self._opening(f"a netlink socket in {self.label}"):
                raw = sock.netlink_socket(self.name)
            try:
                self._route = sock.RouteSocket(raw)
            except OSError as exc:
                raw.close()
                raise NetlinkOpError(f"cannot set up a netlink socket in {self.label}: {exc}") from exc
        return self._route

    def table_dump(self, table: str, index: int, *, permanent_only: bool = False) -> list[tuple]:
        """The ``table`` entries of link ``index``, from one kernel-filtered dump (:func:`.neigh.dump`).

        As ``(key, member, permanent)`` tuples: ``(mac, dst, permanent)`` for ``fdb`` (the device's own entries
        with a destination), ``(ip, mac, permanent)`` for ``neigh``; with ``permanent_only``, the ``(key,
        member)`` pairs of the permanent rows.
        """
        what = f"reading FDB of link #{index}" if table == "fdb" else f"reading neighbours of link #{index}"
        route = self.route_socket()
        try:
            return neigh.dump(route, table, index, permanent_only=permanent_only)
        except OSError as exc:
            raise NetlinkOpError(f"{what} in {self.label}: {exc.strerror or exc}") from exc

    def table_write_many(self, table: str, index: int, ops: list[dict]) -> list[str]:
        """Send planner operations (``{'action', 'entry', 'command'}``) in batches, in order (:func:`.neigh.write`).

        Returns one message per failed op, in op order: its command, this namespace and the kernel's reason.  A
        delete of what is not there, and an append to the flood list of what is there, are done.
        """
        route = self.route_socket()
        try:
            codes = neigh.write(route, table, index, ops)
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
