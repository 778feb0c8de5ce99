# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay of a fleet as a Graphviz DOT graph: hosts with their VTEPs, networks, endpoints.

This is the engine behind the ``netfleet.overlay.topology_dot`` filter that ``playbooks/topology.yml`` uses.
It is pure (plain data in, a string out, standard library only), so it is unit-tested on plain data.

The picture is drawn from the facts that ``netfleet.overlay.overlay_facts`` gathers, so it shows what the
kernels hold, not what the inventory asks for: one cluster per host (hostname, VTEP), one node per endpoint
in it (name, IP/prefix, MAC; the netns of an attached one), one node per network below them (name, VNI, subnet),
and an edge from every endpoint to its network, in its network's colour.  The declared ``overlay_networks`` add
the subnets, and say which networks have ``egress`` and ``dns``: on every host whose facts show such a network,
its gateway (the anycast address and MAC on ``br0`` in ``ovl-<vni>``, with the DNS server when the network has
``dns``), and for ``egress`` the path out: ``ovl-<vni>`` -> the host's namespace -> NAT to its VTEP -> the underlay.

Every text that comes from the input goes into an HTML-like label through :func:`html_text`, and node IDs
are made up here (``host0``, ``host0_ep1``, ``net0``), so no hostname or endpoint name can break the DOT
syntax.  The same input always gives the same text: hosts, endpoints and networks are sorted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ansible_collections.netfleet.overlay.plugins.module_utils._model import (
    BRIDGE,
    MAX_VNI,
    check_bool,
    gateway_address,
    gateway_mac,
    kind,
    overlay_netns,
)

# Okabe-Ito colours (told apart also with colour-blindness): (line, fill) per network, in VNI order.
PALETTE = (
    ("#0072B2", "#D6E9F5"),
    ("#E69F00", "#FBEBCC"),
    ("#009E73", "#CCEDE3"),
    ("#CC79A7", "#F5E4EE"),
    ("#D55E00", "#F7DCCB"),
    ("#56B4E9", "#DDF0FB"),
)
NO_NETWORK = ("#777777", "#EEEEEE")
FONT = "Helvetica,Arial,sans-serif"
MONO = "Courier,monospace"
# C0 controls and DEL are not allowed in XML text (Graphviz parses HTML-like labels as XML, and the SVG is XML)
_CONTROL = dict.fromkeys((*range(0x20), 0x7F), "\ufffd")
_DIGITS = re.compile(r"(\d+)")


class TopologyError(ValueError):
    """Bad input for the topology; the message names the host and the value."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    network: str | None
    ip: str | None
    prefixlen: int | None
    mac: str | None
    netns: str | None = None
    attached: bool = False  # joined a netns of the user's (netns:)

    @property
    def address(self) -> str:
        if not self.ip:
            return "no address"
        return self.ip if self.prefixlen is None else f"{self.ip}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    vtep: str | None
    vtep_dev: str | None
    reachable: bool
    # None when the facts cannot show the endpoints (no facts, or facts gathered without pyroute2)
    endpoints: tuple[Endpoint, ...] | None
    why_unknown: str | None = None
    vtep_from_inventory: bool = False  # the facts had none: overlay_vtep
    networks: frozenset[str] = frozenset()  # the networks whose overlay netns the facts show


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    vnis: tuple[int, ...]
    subnets: tuple[str, ...]
    egress: bool = False
    dns: bool = False
    gateway: str | None = None  # address/prefixlen, for a network with egress or dns and a declared subnet
    gateway_mac: str | None = None  # the anycast MAC, when the network has one VNI


@dataclass(frozen=True, slots=True)
class Topology:
    hosts: tuple[Host, ...]
    networks: tuple[Network, ...]

    @property
    def endpoint_count(self) -> int:
        return sum(len(host.endpoints or ()) for host in self.hosts)


def html_text(value) -> str:
    """``value`` as text for an HTML-like Graphviz label: markup characters escaped, controls replaced."""
    text = str(value).translate(_CONTROL)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def natural_key(text: str) -> tuple:
    """Sort key that puts h2 before h10."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


def _number(where: str, value) -> int | None:
    """An int, or None for a missing value; ``where`` names the value in the message."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TopologyError(f"{where} must be a number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TopologyError(f"{where} must be a number, got {value!r}") from None


def _text_or_none(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _endpoint(host: str, name, entry) -> Endpoint:
    if not isinstance(entry, Mapping):
        raise TopologyError(f"host {host}: endpoint {name!r} must be a dict, got {kind(entry)}")
    return Endpoint(
        name=str(name),
        network=_text_or_none(entry.get("network")),
        ip=_text_or_none(entry.get("ip")),
        prefixlen=_number(f"host {host}: endpoint {name!r} prefixlen", entry.get("prefixlen")),
        mac=_text_or_none(entry.get("mac")),
        netns=_text_or_none(entry.get("netns")),
        attached=entry.get("attached") is True,
    )


def _host(host: str, facts, reachable: bool) -> tuple[Host, dict[str, set[int]]]:
    """One host from its ``netfleet_overlay`` facts, and network name -> VNIs its kernel has."""
    if facts is None:
        return Host(host, None, None, reachable, None, "no overlay facts"), {}
    if not isinstance(facts, Mapping):
        raise TopologyError(
            f"host {host}: the facts must be the dict that netfleet.overlay.overlay_facts returns, got {kind(facts)}"
        )
    vtep, vtep_dev = _text_or_none(facts.get("vtep")), _text_or_none(facts.get("vtep_dev"))
    if facts.get("pyroute2") is False:
        return Host(host, vtep, vtep_dev, reachable, None, "endpoints unknown: no pyroute2 on the host"), {}
    endpoints = {} if facts.get("endpoints") is None else facts["endpoints"]
    networks = {} if facts.get("networks") is None else facts["networks"]
    for key, value in (("endpoints", endpoints), ("networks", networks)):
        if not isinstance(value, Mapping):
            raise TopologyError(f"host {host}: {key} must be a dict of name -> {key[:-1]}, got {kind(value)}")
    vnis: dict[str, set[int]] = {}
    for name, entry in networks.items():
        if not isinstance(entry, Mapping):
            raise TopologyError(f"host {host}: network {name!r} must be a dict, got {kind(entry)}")
        vni = _number(f"host {host}: network {name!r} vni", entry.get("vni"))
        vnis.setdefault(str(name), set()).update(() if vni is None else (vni,))
    found = sorted(
        (_endpoint(host, name, entry) for name, entry in endpoints.items()), key=lambda e: natural_key(e.name)
    )
    for endpoint in found:
        if endpoint.network is not None:
            vnis.setdefault(endpoint.network, set())
    return Host(host, vtep, vtep_dev, reachable, tuple(found), networks=frozenset(map(str, networks))), vnis


def _declared(networks) -> dict[str, Mapping]:
    """Name -> declared network (``overlay_networks``)."""
    if networks is None:
        return {}
    if isinstance(networks, (str, Mapping)) or not isinstance(networks, (list, tuple)):
        raise TopologyError(f"networks must be a list like overlay_networks, got {kind(networks)}")
    declared = {}
    for index, item in enumerate(networks):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise TopologyError(f"networks[{index}] must be a dict with a name (like overlay_networks), got {item!r}")
        declared[str(item["name"])] = item
    return declared


def _subnets(name: str, declared: Mapping | None, hosts: Iterable[Host]) -> tuple[str, ...]:
    """The declared subnet, else the subnets of the network's endpoint addresses."""
    if declared is not None and declared.get("subnet"):
        return (str(declared["subnet"]),)
    found = set()
    for host in hosts:
        for endpoint in host.endpoints or ():
            if endpoint.network == name and endpoint.ip and endpoint.prefixlen is not None:
                try:
                    found.add(ipaddress.ip_interface(f"{endpoint.ip}/{endpoint.prefixlen}").network)
                except ValueError:
                    continue  # not an address: the endpoint's label still shows what the facts say
    return tuple(str(net) for net in sorted(found, key=lambda net: (net.version, net)))


def _workloads(name: str, declared: Mapping | None, vnis: tuple[int, ...]) -> dict:
    """A declared network's ``egress`` and ``dns``, and its gateway (address/prefixlen and anycast MAC) when it
    has either and a subnet."""
    found = {}
    for key in ("egress", "dns"):
        value = None if declared is None else declared.get(key)
        found[key] = value is not None and check_bool(value, f"networks: {name!r} {key}", error=TopologyError)
    if not (found["egress"] or found["dns"]) or not declared.get("subnet"):
        return found
    try:
        subnet = ipaddress.ip_network(str(declared["subnet"]), strict=False)
    except ValueError:
        return found  # the plan of site.yml names a bad subnet; the picture shows the network without a gateway
    found["gateway"] = f"{gateway_address(subnet)}/{subnet.prefixlen}"
    if len(vnis) == 1 and 1 <= vnis[0] <= MAX_VNI:
        found["gateway_mac"] = gateway_mac(vnis[0])
    return found


def build_topology(
    facts_by_host: Mapping, networks=None, active_hosts: Iterable[str] | None = None, vteps: Mapping | None = None
) -> Topology:
    """The fleet's overlay from every host's facts.

    ``facts_by_host`` maps hostname -> that host's ``netfleet_overlay`` facts, or None when it has none.
    ``networks`` is the optional ``overlay_networks`` list: it adds the subnets, and the VNI of a network that
    no host's facts show the device of.  Hosts not in ``active_hosts`` (when given) are marked as not reached
    in this run (their facts, if any, came from a fact cache).  ``vteps`` optionally maps hostname -> its
    ``overlay_vtep``, shown for a host whose facts have no VTEP (for example because it was not reached).
    """
    if not isinstance(facts_by_host, Mapping):
        raise TopologyError(f"the input must be a dict of hostname -> facts, got {kind(facts_by_host)}")
    if vteps is not None and not isinstance(vteps, Mapping):
        raise TopologyError(f"vteps must be a dict of hostname -> VTEP address, got {kind(vteps)}")
    active = None if active_hosts is None else {str(host) for host in active_hosts}
    declared = _declared(networks)
    hosts, vnis = [], {}
    for name in sorted((str(host) for host in facts_by_host), key=natural_key):
        host, host_vnis = _host(name, facts_by_host[name], active is None or name in active)
        fallback = _text_or_none((vteps or {}).get(name))
        if host.vtep is None and fallback is not None:
            host = replace(host, vtep=fallback, vtep_dev=None, vtep_from_inventory=True)
        hosts.append(host)
        for network, found in host_vnis.items():
            vnis.setdefault(network, set()).update(found)
    drawn = []
    for name, found in vnis.items():
        numbers = set(found)
        if not numbers and name in declared:
            vni = _number(f"networks: {name!r} vni", declared[name].get("vni"))
            numbers.update(() if vni is None else (vni,))
        numbers = tuple(sorted(numbers))
        drawn.append(
            Network(
                name,
                numbers,
                _subnets(name, declared.get(name), hosts),
                **_workloads(name, declared.get(name), numbers),
            )
        )
    drawn.sort(key=lambda n: (n.vnis[0] if n.vnis else float("inf"), natural_key(n.name)))
    return Topology(tuple(hosts), tuple(drawn))


def _label(*lines: str) -> str:
    """An HTML-like label from lines that are already escaped or marked up."""
    return "<" + "<br/>".join(lines) + ">"


def _mono(text: str) -> str:
    return f'<font face="{MONO}">{html_text(text)}</font>'


def _note(text: str) -> str:
    return f'<i><font color="#555555">{html_text(text)}</font></i>'


def render_dot(topology: Topology, title: str | None = None) -> str:
    """The DOT text of the topology: host clusters side by side, the networks in one row below them."""
    colours = {net.name: PALETTE[index % len(PALETTE)] for index, net in enumerate(topology.networks)}
    ids = {net.name: f"net{index}" for index, net in enumerate(topology.networks)}
    counts = ", ".join(
        _count(n, word)
        for n, word in (
            (len(topology.hosts), "host"),
            (len(topology.networks), "network"),
            (topology.endpoint_count, "endpoint"),
        )
    )
    heading = f"<b>{html_text(title)}</b><br/>{html_text(counts)}" if title else html_text(counts)
    out = [
        "digraph overlay {",
        f"  graph [rankdir=TB, newrank=true, nodesep=0.3, ranksep=0.9, fontname={_quoted(FONT)}, fontsize=12,",
        f"         labelloc=t, label=<{heading}>, bgcolor=white, pad=0.3];",
        f'  node [fontname={_quoted(FONT)}, fontsize=10, shape=box, style="rounded,filled", fillcolor=white,'
        ' penwidth=1.5, margin="0.15,0.08"];',
        f"  edge [penwidth=1.6, arrowsize=0.7, arrowhead=none, fontname={_quoted(FONT)}];",
    ]
    edges = []
    for host_index, host in enumerate(topology.hosts):
        vtep = f"VTEP {host.vtep}" if host.vtep else "VTEP unknown"
        if host.vtep_from_inventory:
            vtep += " (inventory)"
        elif host.vtep and host.vtep_dev:
            vtep += f" ({host.vtep_dev})"
        lines = [f'<font point-size="13"><b>{html_text(host.name)}</b></font>', html_text(vtep)]
        if not host.reachable:
            lines.append(_note("not reached in this run" + ("" if host.endpoints is None else ": cached facts")))
        style = "rounded" if host.reachable else "rounded,dashed"
        out += [
            f"  subgraph cluster_host{host_index} {{",
            f'    graph [label={_label(*lines)}, style="{style}", color="#444444", bgcolor="#F7F7F7", margin=12];',
        ]
        if not host.endpoints:
            why = host.why_unknown or "no endpoints"
            out.append(f"    host{host_index}_none [shape=plaintext, style=solid, label={_label(_note(why))}];")
        for ep_index, endpoint in enumerate(host.endpoints or ()):
            node = f"host{host_index}_ep{ep_index}"
            line, _fill = colours.get(endpoint.network, NO_NETWORK)
            lines = [f"<b>{html_text(endpoint.name)}</b>", html_text(endpoint.address), _mono(endpoint.mac or "no MAC")]
            if endpoint.attached:
                lines.append(_note(f"attached to netns {endpoint.netns}"))
            if endpoint.network is None:
                lines.append(_note("on no network"))
            out.append(f'    {node} [label={_label(*lines)}, color="{line}"];')
            if endpoint.network is not None:
                edges.append(f'  {node} -> {ids[endpoint.network]} [color="{line}"];')
        gateway_nodes, gateway_edges = _gateways(host_index, host, topology.networks, colours=colours, ids=ids)
        out += gateway_nodes
        edges += gateway_edges
        out.append("  }")
    for net in topology.networks:
        line, fill = colours[net.name]
        vni = "VNI " + ", ".join(str(v) for v in net.vnis) if net.vnis else "VNI unknown"
        subnet = ", ".join(net.subnets) if net.subnets else "subnet unknown"
        label = _label(f'<font point-size="12"><b>{html_text(net.name)}</b></font>', html_text(vni), html_text(subnet))
        out.append(f'  {ids[net.name]} [shape=box, style="filled", color="{line}", fillcolor="{fill}", label={label}];')
    if topology.networks:
        out.append("  { rank=sink; " + " ".join(f"{ids[net.name]};" for net in topology.networks) + " }")
    out += edges
    out.append("}")
    return "\n".join(out) + "\n"


def _gateways(host_index: int, host: Host, networks, *, colours: dict, ids: dict) -> tuple[list[str], list[str]]:
    """The nodes and edges of the gateways in one host's cluster (those of its networks with egress or dns) with
    their DNS servers, and the egress path: gateway -> the host's namespace, which masquerades to the VTEP onto the
    underlay."""
    nodes, edges = [], []
    nat = f"host{host_index}_nat"
    for net_index, net in enumerate(networks):
        if not (net.egress or net.dns) or net.name not in host.networks:
            continue
        node = f"host{host_index}_gw{net_index}"
        line, fill = colours[net.name]
        netns = overlay_netns(net.vnis[0]) if len(net.vnis) == 1 else "ovl-<vni>"
        address = net.gateway or "address unknown"
        lines = [
            f"<b>gateway of {html_text(net.name)}</b>",
            html_text(f"{address} on {BRIDGE} in {netns}"),
            _mono(f"{net.gateway_mac or 'MAC unknown'} (anycast)"),
        ]
        if net.dns:
            lines.append(html_text(f"DNS server (dnsmasq) on {address.split('/', 1)[0]}:53"))
        nodes.append(
            f'    {node} [style="rounded,filled,dashed", color="{line}", fillcolor="{fill}", label={_label(*lines)}];'
        )
        edges.append(f'  {node} -> {ids[net.name]} [color="{line}", style=dashed];')
        if net.egress:
            label = _label(html_text(f"egress out of {netns}"))
            edges.append(f'  {node} -> {nat} [color="{line}", arrowhead=normal, fontsize=9, label={label}];')
    if any(f"-> {nat} " in edge for edge in edges):
        to = html_text(f"NAT: masquerade to {host.vtep or 'the underlay address of the host'}")
        out = html_text(f"out of {host.vtep_dev} to the underlay" if host.vtep_dev else "out to the underlay")
        nodes.append(f'    {nat} [label={_label("<b>host namespace</b>", to, out)}, color="#444444"];')
    return nodes, edges


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _quoted(text: str) -> str:
    """A DOT quoted string (only for the constants here: they hold no quote or backslash)."""
    return '"' + text + '"'


def topology_dot(
    facts_by_host: Mapping, networks=None, active_hosts=None, title: str | None = None, vteps: Mapping | None = None
) -> str:
    """:func:`build_topology` and :func:`render_dot` in one: the fleet's overlay as DOT text."""
    return render_dot(build_topology(facts_by_host, networks, active_hosts, vteps), title)
