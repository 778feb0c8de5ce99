# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Private: the VTEP allowlist, one nftables table owned by the collection.  May change without notice.
"""The VTEP allowlist: ``table inet netfleet_overlay`` in the host's own (underlay) namespace.

The table holds two named sets, ``vteps`` (the remote VTEPs that may send VXLAN here) and ``ports`` (the
overlay UDP ports), and one input chain::

    udp dport @ports ip daddr <vtep> ip saddr @vteps accept
    udp dport @ports counter drop

The kernel binds a VXLAN device's socket to the wildcard address, and ``vxlan_rcv`` never compares a packet's
outer destination with the device's ``local``: a packet to the overlay port on *any* address of the host (loopback,
a second address, the subnet broadcast, a multicast group, IPv6) is decapsulated like one to the VTEP. So the drop
matches the port alone, whatever the destination, family or input interface: not ``fib daddr type local``, which
would let broadcast and multicast through. The input hook sees every packet delivered locally, loopback included.
Its priority does not matter for the guard: an ``accept`` in another table's chain ends only that chain (every
base chain of the hook still sees the packet), and a ``drop`` anywhere is final.

A host with encrypted networks (its WireGuard tunnel, :mod:`._wireguard`) gets one more set, ``wg_vteps`` (its
tunnel's peers' VTEPs), and two rules on the tunnel's UDP port, which its WireGuard socket listens on::

    udp dport <wireguard port> ip daddr <vtep> ip saddr @wg_vteps accept
    udp dport <wireguard port> counter drop

The VXLAN ports (``ports``) are then those of its unencrypted networks only: an encrypted network's VXLAN socket
is in the tunnel's namespace, so nothing on the underlay reaches it, and a port that only encrypted networks use is
not opened.  A host with encrypted networks only has the WireGuard rules alone.

The same table holds the egress part (:func:`egress`, docs/egress.md) when a network of the host has ``egress``:
the ``egress_ports`` set and three chains. ``egress_forward`` drops what an endpoint sends to an overlay port (a
VXLAN packet masqueraded to this host's VTEP would pass the other hosts' allowlists), lets return traffic into the
transits (``ovg-*``) and nothing new, keeps transits apart (networks stay isolated) and lets them out through the
uplink only; ``egress_input`` keeps endpoints off the host's own services; ``egress_nat`` masquerades what leaves a
transit through the uplink. The allowlist and the egress part are each there when wanted, and the table when either
is.

Only this one table is ever read or written: the current table is read with ``nft -j list table``, reduced to a
canonical form (handles and counter values dropped, rules rendered as text) and compared with the wanted one.
When they differ the whole table is replaced in a single ``nft -f -`` transaction (``add table``, ``delete
table``, then every definition), so the host never sees a half-built table and other tables are never touched.
"""

from __future__ import annotations

import ipaddress
import json
import re

from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._module import ModuleError

FAMILY = "inet"
TABLE = "netfleet_overlay"
QUALIFIED = f"{FAMILY} {TABLE}"
CHAIN = "input"
CHAIN_SPEC = "type filter hook input priority 0; policy accept"
VTEP_SET = "vteps"
PORT_SET = "ports"
WG_VTEP_SET = "wg_vteps"
# The egress part (see egress()): its port set and chains.  TRANSIT_GLOB matches every transit's host side
# (_egress.TRANSIT_PREFIX).
EGRESS_PORTS = "egress_ports"
EGRESS_FORWARD = "egress_forward"
EGRESS_INPUT = "egress_input"
EGRESS_NAT = "egress_nat"
EGRESS_CHAINS = {
    EGRESS_FORWARD: "type filter hook forward priority 0; policy accept",
    EGRESS_INPUT: "type filter hook input priority 0; policy accept",
    EGRESS_NAT: "type nat hook postrouting priority 100; policy accept",
}
TRANSIT_GLOB = "ovg-*"
# Keys of nft's JSON objects that say where an object is, not what it is.
_LOCATION_KEYS = frozenset(("family", "name", "table", "chain", "handle", "elem", "expr"))
_MISSING_MARKERS = ("No such file or directory", "does not exist")
# The accept rule as wanted() writes it: the guarded VTEP is read back from it.
_ACCEPT_RE = re.compile(rf"^udp dport @{PORT_SET} ip6? daddr (\S+) ip6? saddr @{VTEP_SET} accept$")
_WG_ACCEPT_RE = re.compile(rf"^udp dport (\d+) ip6? daddr (\S+) ip6? saddr @{WG_VTEP_SET} accept$")


class FirewallError(ModuleError):
    """nft is missing or failed; the message names the table and says what to do."""


# --- the wanted table ---------------------------------------------------------------------------------------


def _vteps(vtep: str, family: int, allow, field: str) -> list[str]:
    """The VTEPs of ``allow`` (of the VTEP's family), normalised, deduplicated and sorted."""
    peers = {}
    for index, value in enumerate(allow or []):
        peer = ipaddress.ip_address(v.ip(value, f"{field}[{index}]"))
        if peer.version != family:
            raise v.InputError(
                f"{field}[{index}]: {value!r} is an IPv{peer.version} address but vtep {vtep} is IPv{family}; "
                "the allowlist holds VTEPs of the same underlay family"
            )
        peers[peer] = None
    return [p.compressed for p in sorted(peers, key=int)]


def wanted(vtep, allow, ports, wireguard_allow=None, wireguard_port=None) -> dict:
    """The canonical table for a VTEP, the VTEPs allowed to reach it and the overlay ports; with
    ``wireguard_port``, also the tunnel's port and the VTEPs of its peers (``wireguard_allow``).

    ``ports`` may then be empty (a host whose networks are all encrypted). Raises :class:`InputError` naming the
    field and the value.
    """
    address = ipaddress.ip_address(v.ip(vtep, "vtep"))
    family = address.version
    set_type = "ipv4_addr" if family == 4 else "ipv6_addr"
    peers = _vteps(vtep, family, allow, "allow")
    numbers = sorted({v.port(value, f"ports[{index}]") for index, value in enumerate(ports or [])})
    wg_port = None if wireguard_port is None else v.port(wireguard_port, "wireguard_port")
    if not numbers and wg_port is None:
        raise v.InputError("ports: the list is empty; give the UDP ports of the overlay networks (4789 by default)")
    if wg_port is not None and wg_port in numbers:
        raise v.InputError(
            f"wireguard_port: {wg_port} is also a VXLAN port of an unencrypted network (ports {numbers}); the tunnel"
            " and the VXLAN sockets of the host's namespace need different UDP ports"
        )
    proto = "ip" if family == 4 else "ip6"
    table: dict = {"sets": {}, "chains": {CHAIN: CHAIN_SPEC}, "rules": {CHAIN: []}}
    if numbers:
        table["sets"][PORT_SET] = {"type": "inet_service", "elements": numbers}
        table["sets"][VTEP_SET] = {"type": set_type, "elements": peers}
        table["rules"][CHAIN] += [
            f"udp dport @{PORT_SET} {proto} daddr {address.compressed} {proto} saddr @{VTEP_SET} accept",
            f"udp dport @{PORT_SET} counter drop",  # every other address, family and interface
        ]
    if wg_port is not None:
        table["sets"][WG_VTEP_SET] = {
            "type": set_type,
            "elements": _vteps(vtep, family, wireguard_allow, "wireguard_allow"),
        }
        table["rules"][CHAIN] += [
            f"udp dport {wg_port} {proto} daddr {address.compressed} {proto} saddr @{WG_VTEP_SET} accept",
            f"udp dport {wg_port} counter drop",
        ]
    return table


def egress(uplink: str, ports, own_uplink: bool) -> dict:
    """The egress part of the table: forwarding and NAT for the transits (``ovg-*``) through ``uplink``.

    ``ports`` are the overlay ports of the host's networks; ``own_uplink`` says that the collection turned the
    uplink's forwarding on, so nothing else arriving there may be forwarded (it was not before).
    """
    transit, out = f'"{TRANSIT_GLOB}"', f'"{uplink}"'
    forward = [
        f"iifname {transit} udp dport @{EGRESS_PORTS} drop",  # no VXLAN from an endpoint, masqueraded to our VTEP
        f"oifname {transit} ct state established,related accept",  # return traffic
        f"oifname {transit} counter drop",  # nothing new into an endpoint, nor from one network to another
        f"iifname {transit} oifname != {out} drop",  # out through the uplink only
    ]
    if own_uplink:
        forward.append(f"iifname {out} drop")  # the uplink forwards for egress only
    return {
        "sets": {EGRESS_PORTS: {"type": "inet_service", "elements": sorted({int(port) for port in ports})}},
        "chains": dict(EGRESS_CHAINS),
        "rules": {
            EGRESS_FORWARD: forward,
            EGRESS_INPUT: [f"iifname {transit} ct state established,related accept", f"iifname {transit} counter drop"],
            EGRESS_NAT: [f"iifname {transit} oifname {out} masquerade"],
        },
    }


def merge(*parts: dict | None) -> dict | None:
    """One table of the given parts (the allowlist, the egress part); None when there is none."""
    parts = [part for part in parts if part]
    if not parts:
        return None
    return {
        key: {name: value for part in parts for name, value in part[key].items()} for key in ("sets", "chains", "rules")
    }


def part(table: dict | None, egress_part: bool) -> dict | None:
    """The egress part of a canonical table (``egress_part``), or the rest of it: what :func:`wanted` makes."""
    if table is None:
        return None

    def keep(name):
        return (name == EGRESS_PORTS or name in EGRESS_CHAINS) == egress_part

    picked = {
        key: {name: value for name, value in table[key].items() if keep(name)} for key in ("sets", "chains", "rules")
    }
    if not picked["sets"] and not picked["chains"]:
        return None
    if not egress_part and table.get("table"):
        picked["table"] = table["table"]
    return picked


def script(table: dict | None, exists: bool) -> list[str]:
    """The nft statements that make the table exactly ``table`` (None: absent), as one transaction."""
    if table is None:
        return [f"delete table {QUALIFIED}"] if exists else []
    lines = [f"add table {QUALIFIED}", f"delete table {QUALIFIED}", f"add table {QUALIFIED}"]
    for name in sorted(table["sets"]):
        spec = table["sets"][name]
        lines.append(f"add set {QUALIFIED} {name} {{ type {spec['type']}; }}")
        if spec["elements"]:
            lines.append(f"add element {QUALIFIED} {name} {{ {', '.join(map(str, spec['elements']))} }}")
    for name in sorted(table["chains"]):
        lines.append(f"add chain {QUALIFIED} {name} {{ {table['chains'][name]}; }}")
        lines.extend(f"add rule {QUALIFIED} {name} {rule}" for rule in table["rules"].get(name, []))
    return lines


# --- reading nft's JSON -------------------------------------------------------------------------------------


def _element_key(value):
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is not None:
        return (1, address.version, int(address), "")
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, 0, value, "")
    return (2, 0, 0, json.dumps(value, sort_keys=True))


def _element(value):
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value
    return value


def _extras(obj: dict, skip: tuple = ()) -> dict:
    return {key: value for key, value in obj.items() if key not in _LOCATION_KEYS and key not in skip}


_IFNAME_KEYS = ("iifname", "oifname")


def _operand(value) -> str:
    if isinstance(value, dict) and set(value) == {"payload"} and set(value["payload"]) == {"protocol", "field"}:
        return f"{value['payload']['protocol']} {value['payload']['field']}"
    if isinstance(value, dict) and set(value) == {"meta"} and set(value["meta"]) == {"key"}:
        return f"meta {value['meta']['key']}"
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, sort_keys=True)


def render_expr(expr: dict) -> str:
    """One statement of a rule as nft text (the shapes this module writes; anything else as JSON)."""
    if set(expr) == {"match"} and set(expr["match"]) == {"op", "left", "right"}:
        match = expr["match"]
        op = "" if match["op"] in ("==", "in") else f"{match['op']} "
        left, right = match["left"], match["right"]
        if left in ({"meta": {"key": key}} for key in _IFNAME_KEYS) and isinstance(right, str):
            return f'{left["meta"]["key"]} {op}"{right}"'  # as nft prints it: iifname "ovg-*"
        if left == {"ct": {"key": "state"}} and isinstance(right, (str, list)):
            states = right if isinstance(right, list) else [right]
            if all(isinstance(state, str) for state in states):
                return f"ct state {op}{','.join(states)}"
        return f"{_operand(left)} {op}{_operand(right)}"
    if set(expr) == {"counter"}:
        return "counter"  # its packets and bytes are state, not configuration
    if len(expr) == 1 and next(iter(expr)) in ("accept", "drop", "masquerade") and expr[next(iter(expr))] is None:
        return next(iter(expr))
    return json.dumps(expr, sort_keys=True)


def _chain_text(chain: dict) -> str:
    keys = ("type", "hook", "prio", "policy")
    if all(key in chain for key in keys) and not _extras(chain, keys):
        return f"type {chain['type']} hook {chain['hook']} priority {chain['prio']}; policy {chain['policy']}"
    return json.dumps(_extras(chain), sort_keys=True)


def canonical(listing: dict) -> dict | None:
    """The canonical form of ``nft -j list table inet netfleet_overlay`` output (None when it has no table)."""
    items = listing.get("nftables", []) if isinstance(listing, dict) else []
    table = None
    sets: dict = {}
    chains: dict = {}
    rules: dict = {}
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, obj = next(iter(item.items()))
        if kind == "table":
            table = _extras(obj)
        elif kind == "set":
            elements = obj.get("elem", [])
            sets[obj["name"]] = {
                **_extras(obj),
                "elements": [_element(e) for e in sorted(elements, key=_element_key)],
            }
        elif kind == "chain":
            chains[obj["name"]] = _chain_text(obj)
        elif kind == "rule":
            rules.setdefault(obj["chain"], []).append(" ".join(render_expr(e) for e in obj.get("expr", [])))
        elif kind != "metainfo":
            # maps, flowtables, objects, ...: never written by us, so their presence is a difference
            sets.setdefault(f"{kind}:{obj.get('name')}", {"type": kind, "elements": [], "foreign": True})
    if table is None:
        return None
    result = {"sets": sets, "chains": chains, "rules": rules}
    if table:
        result["table"] = table  # e.g. flags: dormant
    return result


def summary(table: dict | None) -> dict:
    """What the results show of a canonical table: the VTEP, the allowlist, the ports and the rules."""
    if table is None:
        return {}
    vteps = table["sets"].get(VTEP_SET, {}).get("elements", [])
    ports = table["sets"].get(PORT_SET, {}).get("elements", [])
    out = {"table": QUALIFIED, "allow": list(vteps), "ports": list(ports), "rules": dict(table["rules"])}
    if WG_VTEP_SET in table["sets"]:
        out["wireguard"] = {"allow": list(table["sets"][WG_VTEP_SET]["elements"]), "port": _wireguard_port(table)}
    known = (VTEP_SET, PORT_SET, EGRESS_PORTS, WG_VTEP_SET)
    extra = {name: spec for name, spec in table["sets"].items() if name not in known}
    if extra or set(table["chains"]) - set(EGRESS_CHAINS) not in ({CHAIN}, set()) or table.get("table"):
        out["other"] = {"sets": extra, "chains": table["chains"], "table": table.get("table", {})}
    return out


# --- nft ----------------------------------------------------------------------------------------------------


class Nft:
    """Runs ``nft`` through a ``run_command(args, data=None) -> (rc, out, err)`` callable (AnsibleModule's)."""

    def __init__(self, run_command, binary: str | None):
        self.run_command = run_command
        self.binary = binary

    def require(self) -> str:
        if not self.binary:
            raise FirewallError(
                "nft not found on the host: install nftables (the Debian/Ubuntu/Fedora package nftables) for the "
                f"VTEP allowlist ({QUALIFIED}), or turn it off (firewall: false; in the role overlay_firewall: false)"
            )
        return self.binary

    def read(self) -> dict | None:
        """The canonical current table, or None when it does not exist."""
        rc, out, err = self.run_command([self.require(), "-j", "list", "table", FAMILY, TABLE])
        if rc != 0:
            if any(marker in err for marker in _MISSING_MARKERS):
                return None
            raise FirewallError(
                f"cannot read nftables table {QUALIFIED}: nft exited {rc}: {err.strip() or out.strip()}"
            )
        try:
            return canonical(json.loads(out))
        except (ValueError, KeyError, TypeError) as exc:
            raise FirewallError(f"cannot parse `nft -j list table {QUALIFIED}` output: {exc}") from exc

    def apply(self, lines: list[str]) -> None:
        """Apply the statements in one transaction: all of them or none."""
        rc, out, err = self.run_command([self.require(), "-f", "-"], data="\n".join(lines) + "\n")
        if rc != 0:
            raise FirewallError(
                f"nft could not apply table {QUALIFIED} (nothing was changed, the transaction is atomic): "
                f"{err.strip() or out.strip()}"
            )


def status(nft: Nft) -> dict:
    """Whether the table is on the host (``present``) and exactly what :func:`wanted` makes of the VTEP, allowlist
    and ports it holds (``intact``), with those three.

    One ``nft`` call, for overlay_facts: a run sees that the allowlist was flushed (``nft flush ruleset``, which a
    reload of Debian's nftables.service does), edited by hand, or written by a release that guarded the VTEP
    address only. The converge then replaces it.
    """
    table = part(nft.read(), egress_part=False)  # the allowlist: the egress part is the converge's alone
    if table is None:
        return {"present": False, "intact": False, "vtep": None, "allow": [], "ports": []}
    shown = summary(table)
    rules = table["rules"].get(CHAIN, [])
    match = next((m for rule in rules[:1] if (m := _ACCEPT_RE.match(rule) or _WG_ACCEPT_RE.match(rule))), None)
    vtep = match.groups()[-1] if match else None
    wg = shown.get("wireguard") or {}
    try:
        intact = vtep is not None and table == wanted(
            vtep, shown["allow"], shown["ports"], wg.get("allow"), wg.get("port")
        )
    except v.InputError:  # e.g. a set emptied of its ports, an element of the other family
        intact = False
    out = {"present": True, "intact": intact, "vtep": vtep, "allow": shown["allow"], "ports": shown["ports"]}
    if wg:
        out["wireguard"] = wg
    return out


def _wireguard_port(table: dict) -> int | None:
    """The tunnel's port, read from its accept rule (None: no such rule)."""
    for rule in table["rules"].get(CHAIN, []):
        match = _WG_ACCEPT_RE.match(rule)
        if match:
            return int(match.group(1))
    return None


def converge(nft: Nft, table: dict | None, check_mode: bool) -> dict:
    """Make the collection's table equal ``table`` (None: absent).  Returns changed, before, after, commands.

    Removing a table that cannot be read because nft is missing is a no-op: without nft, no table was made.
    """
    if table is None and not nft.binary:
        return {"changed": False, "before": {}, "after": {}, "commands": []}
    before = nft.read()
    if before == table:
        return {"changed": False, "before": summary(before), "after": summary(before), "commands": []}
    lines = script(table, before is not None)
    if not check_mode:
        nft.apply(lines)
        after = nft.read()
    else:
        after = table
    return {"changed": True, "before": summary(before), "after": summary(after), "commands": lines}
