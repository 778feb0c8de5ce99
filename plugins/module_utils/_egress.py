# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: egress, an overlay network's way out through its own host.  May change without notice.
"""Egress for the networks with ``egress: true`` (docs/egress.md): endpoints reach the outside through their own
host, masqueraded to its underlay address, like docker_gwbridge.

Per egress network, on every host that has it::

    endpoint netns            ovl-<vni>                         the host's namespace
    eth0 --default via gw-->  br0 (gateway .1, anycast MAC)
                              egress0 169.254.0.1/32 <-- veth --> ovg-<vni> 169.254.0.2/32
                              default via 169.254.0.2 onlink      <subnet> via 169.254.0.1 dev ovg-<vni> onlink
                                                                  uplink (the VTEP's device): masquerade

The transit addresses are the same for every network (each pair is a link of its own, and the routes name the
device), taken from 169.254.0.0/24, which RFC 3927 keeps out of link-local autoconfiguration. IPv4 forwarding is
turned on per interface, only where egress needs it: br0 and egress0 in ovl-<vni> (the collection's own devices,
whose forwarding goes with them), ovg-<vni>, and the uplink. The uplink's forwarding is the host's: the record
(:mod:`._records`, ``forwarding``) names it when the collection turned it on, and it is turned off again when the
host's last egress network goes, never when someone else had turned it on. The nftables part is
:func:`._firewall.egress`.

An endpoint gets a default route via the gateway. In a netns the user attached (``attached``) a default route of
theirs is left alone and the run warns; in one the collection made, any other default route is replaced. Turning
egress off removes the transit (and with it both routes through it), the endpoints' default routes via the gateway,
and the forwarding switches.
"""

from __future__ import annotations

import ipaddress
import platform

from ansible_collections.netfleet.overlay.plugins.module_utils import _cmdline, _discover, _firewall, _model
from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Veth, address_steps
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import ObjectError, Unmade
from ansible_collections.netfleet.overlay.plugins.module_utils._rtnl import namespace as nl

TRANSIT_PREFIX = "ovg-"  # the host side of a network's transit: ovg-<vni> (at most 12 characters)
TRANSIT_OVL = "egress0"  # its ovl-<vni> side
TRANSIT_OVL_ADDRESS = "169.254.0.1"  # on egress0: where the host sends a network's subnet
TRANSIT_HOST_ADDRESS = "169.254.0.2"  # on every ovg-<vni>: ovl-<vni>'s default gateway
_HOST = 32


def transit_name(vni: int) -> str:
    return f"{TRANSIT_PREFIX}{vni}"


def endpoint_gateway(address: str) -> str:
    """The gateway of an endpoint's subnet (``10.214.0.5/24`` -> ``10.214.0.1``), whatever the plan says now: a
    default route via it on the endpoint's interface is the collection's."""
    return str(_model.gateway_address(ipaddress.ip_interface(address).network))


def sysctl_cmd(netns: str | None, ifname: str, on: bool) -> str:
    """The ``sysctl`` line a person would run for a forwarding switch (in ``netns``)."""
    words = ["sysctl", "-w", f"net.ipv4.conf.{ifname}.forwarding={int(on)}"]
    return _cmdline.line("ip", "netns", "exec", netns, *words) if netns else _cmdline.line(*words)


def _route_cmd(netns, command, dst, gateway, dev) -> str:
    via = ["via", gateway] if gateway else []
    return _cmdline.ip(netns, "route", command, dst, *via, "dev", dev, *(["onlink"] if command == "add" else []))


class Egress:
    """The egress side of one ``overlay_host`` run: each network's transit, routes and forwarding switches, and the
    firewall's egress part.  ``record`` is the run's ownership record (``forwarding`` is kept there); ``report``
    takes each change as it is done (``{'changed', 'commands'}``), so a run that fails part-way names what it did."""

    def __init__(self, check_mode: bool, record: dict, warnings: list, report):
        self.check_mode = check_mode
        self.record = record
        self.warnings = warnings
        self.report = report
        self.changed: dict = {"on": [], "off": []}  # the networks whose egress this run built or removed, in part
        self.touched = False  # whether the current network changed

    def summary(self) -> str:
        """The run's egress changes for the summary line: ``egress on (backend)`` for the networks whose egress it
        built or repaired, ``egress off (backend)`` for those whose egress it removed."""
        return ", ".join(f"egress {side} ({', '.join(names)})" for side, names in self.changed.items() if names)

    # -- checks and the firewall part --------------------------------------------------------------------------

    @staticmethod
    def check(wanted: list[dict], under: dict) -> None:
        """Egress is IPv4 and leaves through the VTEP's device: fail before any change when it cannot be built."""
        for net in wanted:
            if not net.get("egress"):
                continue
            problem = _model.egress_problem(ipaddress.ip_address(net["gateway"]["address"]).version)
            if problem:
                raise v.InputError(f"network {net['name']!r} egress true: {problem}. Set egress: false on it")
            if not under["vtep_dev"]:
                raise v.InputError(f"network {net['name']!r}: egress needs the VTEP's device, and none was found")

    def uplink_owned(self, handles, wanted: list[dict], under: dict) -> bool:
        """Whether the uplink forwards because of the collection, after this run: recorded, or about to be."""
        uplink = under["vtep_dev"]
        if uplink in self.record.get("forwarding", []):
            return True
        if not any(net.get("egress") for net in wanted) or not uplink:
            return False
        return handles(None).ipv4_forwarding(uplink) is False

    def table_part(self, handles, wanted: list[dict], under: dict, keep_owned: bool) -> dict | None:
        """The firewall's egress part for ``wanted`` (None: no egress network).  With ``keep_owned`` it stays while
        the uplink still forwards because of the collection: it goes only after the switch is off again."""
        egress_nets = [net for net in wanted if net.get("egress")]
        owned = self.uplink_owned(handles, wanted, under)
        if not egress_nets and not (keep_owned and owned):
            return None
        uplink = under["vtep_dev"] or next(iter(self.record.get("forwarding", [])), None)
        ports = {net["port"] for net in wanted} or {_model.DEFAULT_PORT}
        return _firewall.egress(uplink, ports, owned)

    # -- one network ---------------------------------------------------------------------------------------------

    def network(self, handles, net: dict, under: dict) -> None:
        """Converge one network's egress: built when ``egress`` is on, removed when it is off."""
        self.touched = False
        if net.get("egress"):
            self._build(handles, net, under)
        else:
            self._remove(handles, net)
        if self.touched:
            self.changed["on" if net.get("egress") else "off"].append(net["name"])

    def _step(self, command: str, run) -> None:
        if not self.check_mode:
            run()
        self.touched = True
        self.report({"changed": True, "commands": [command]})

    def _forwarding(self, ns, netns: str | None, ifname: str, on: bool) -> None:
        current = ns.ipv4_forwarding(ifname) if hasattr(ns, "ipv4_forwarding") else None
        if current is not on and not (current is None and not on):
            self._step(sysctl_cmd(netns, ifname, on), lambda: ns.set_ipv4_forwarding(ifname, on))

    def _build(self, handles, net: dict, under: dict) -> None:
        netns, host = net["netns"], handles(None)
        transit = transit_name(net["vni"])
        subnet = ipaddress.ip_interface(f"{net['gateway']['address']}/{net['gateway']['prefixlen']}").network
        veth = Veth(
            {
                "name": transit,
                "netns": None,
                "master": None,
                "peer_name": TRANSIT_OVL,
                "peer_netns": netns,
                "address": f"{TRANSIT_OVL_ADDRESS}/{_HOST}",
                "mac": None,
                "mtu": net["mtu"],
                "state": "present",
                "alias": f"{_discover.ALIAS_PREFIX}egress={net['name']}",
                "peer_lo": False,  # ovl-<vni>'s loopback stays as the network left it
            },
            handles,
            self.check_mode,
        )
        try:
            result = veth.execute()
        except ObjectError as exc:
            self.report({"changed": bool(exc.done), "commands": exc.done})
            raise
        self.touched |= result["changed"]
        self.report(result)
        index = host.link_index(transit)
        current = None
        if index is not None:
            current = [f"{a['address']}/{a['prefixlen']}" for a in host.addresses(index)]
        for step in address_steps(lambda: host, None, transit, current, f"{TRANSIT_HOST_ADDRESS}/{_HOST}"):
            self._step(step.command, step.run)
        ovl = handles(netns)
        # the routes, in ovl-<vni> (ours: any other default route there goes) and in the host's namespace
        ovl_index = ovl.link_index(TRANSIT_OVL)
        routes = ovl.routes(4) if not isinstance(ovl, Unmade) else []
        for route in routes:
            if not route["dst_len"] and (route["gateway"], route["oif"]) != (TRANSIT_HOST_ADDRESS, ovl_index):
                self._del_default(ovl, netns, route)
        if not any(not r["dst_len"] and r["gateway"] == TRANSIT_HOST_ADDRESS and r["oif"] == ovl_index for r in routes):
            self._step(
                _route_cmd(netns, "add", "default", TRANSIT_HOST_ADDRESS, TRANSIT_OVL),
                lambda: ovl.route("add", None, 0, TRANSIT_HOST_ADDRESS, ovl.link_index(TRANSIT_OVL)),
            )
        dst, plen = str(subnet.network_address), subnet.prefixlen
        mine = False
        for route in host.routes(4):
            if (route["dst"], route["dst_len"]) != (dst, plen):
                continue
            if (route["gateway"], route["oif"]) == (TRANSIT_OVL_ADDRESS, index):
                mine = True
            else:
                raise v.InputError(
                    f"network {net['name']!r}: egress needs the route {subnet} via {transit} on host "
                    f"{platform.node()}, which already routes {subnet} (via {route['gateway']}, link "
                    f"#{route['oif']}); remove that route or set egress: false"
                )
        if not mine:
            self._step(
                _route_cmd(None, "add", str(subnet), TRANSIT_OVL_ADDRESS, transit),
                lambda: host.route("add", dst, plen, TRANSIT_OVL_ADDRESS, host.link_index(transit)),
            )
        # forwarding: into ovl-<vni>'s gateway and out of it, through the transit, out of the uplink
        for ifname in (net["bridge"], TRANSIT_OVL):
            self._forwarding(ovl, netns, ifname, True)
        self._forwarding(host, None, transit, True)
        uplink = under["vtep_dev"]
        if host.ipv4_forwarding(uplink) is False:
            self._step(sysctl_cmd(None, uplink, True), lambda: host.set_ipv4_forwarding(uplink, True))
            self.record["forwarding"] = sorted({*self.record.get("forwarding", []), uplink})
        for ep in net["endpoints"]:
            self._endpoint_route(handles, net, ep, net["gateway"]["address"])

    def _del_default(self, ns, netns: str, route: dict) -> None:
        """Delete a default route of a namespace that is the collection's (``ovl-<vni>``, a netns it made)."""
        dev = ns._link_name(route["oif"]) or f"#{route['oif']}"
        self._step(
            _route_cmd(netns, "del", "default", route["gateway"], dev),
            lambda: ns.route("del", None, 0, route["gateway"], route["oif"]),
        )

    def _endpoint_route(self, handles, net: dict, ep: dict, gateway: str | None) -> None:
        """The endpoint's default route via the gateway (``gateway`` None: removed).  In a netns the user attached,
        a default route that is not ours is never replaced: the run warns instead.  In one the collection made,
        any other default route goes."""
        # check mode: an endpoint's netns that its veth would make is not there yet, and reads as empty
        missing = self.check_mode and not nl.netns_exists(ep["netns"])
        ns = Unmade(ep["netns"]) if missing else handles(ep["netns"])
        ours = endpoint_gateway(ep["address"])
        index = ns.link_index(ep["ifname"])
        defaults = [r for r in ns.routes(4) if not r["dst_len"]] if not isinstance(ns, Unmade) else []
        mine = [r for r in defaults if r["gateway"] == ours and r["oif"] == index and index is not None]
        if gateway is None:
            for route in mine:
                self._del_default(ns, ep["netns"], route)
            return
        if mine:
            return
        if defaults and not ep.get("attached"):
            for route in defaults:
                self._del_default(ns, ep["netns"], route)
        elif defaults:
            route = defaults[0]
            dev = ns._link_name(route["oif"])
            self.warnings.append(
                f"host {platform.node()}: endpoint {ep['name']!r} (network {net['name']!r}) gets no default route "
                f"via the gateway {gateway}: netns {ep['netns']} already has one (default via {route['gateway']} "
                f"dev {dev}), which the collection leaves alone; its egress goes that way"
            )
            return
        self._step(
            _cmdline.ip(ep["netns"], "route", "add", "default", "via", gateway, "dev", ep["ifname"], "onlink"),
            lambda: ns.route("add", None, 0, gateway, ns.link_index(ep["ifname"])),
        )

    def _remove(self, handles, net: dict) -> None:
        """Egress off: the endpoints' default routes via the gateway go, br0 stops forwarding, and last the transit
        goes (with both routes through it).  Only where the transit is there: a network that never had egress
        costs no reads, and a run interrupted here finds the transit and finishes the job."""
        host = handles(None)
        transit = transit_name(net["vni"])
        link = host.link(transit)
        if link is None or link["kind"] != "veth":
            return
        for ep in net["endpoints"]:
            self._endpoint_route(handles, net, ep, None)
        self._forwarding(handles(net["netns"]), net["netns"], net["bridge"], False)
        self._step(_cmdline.ip(None, "link", "del", transit), lambda: host.link_del(transit, host.link_index(transit)))

    # -- the whole host --------------------------------------------------------------------------------------------

    def finish(self, handles, wanted: list[dict]) -> None:
        """After every network: the uplink forwarding that the collection turned on is turned off again when no
        egress network is left."""
        if any(net.get("egress") for net in wanted):
            return
        host = handles(None)
        for ifname in self.record.get("forwarding", []):
            if host.ipv4_forwarding(ifname):
                self._step(sysctl_cmd(None, ifname, False), lambda i=ifname: host.set_ipv4_forwarding(i, False))
        self.record.pop("forwarding", None)
