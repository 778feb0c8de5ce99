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
# Keys of nft's JSON objects that say where an object is, not what it is.
_LOCATION_KEYS = frozenset(("family", "name", "table", "chain", "handle", "elem", "expr"))
_MISSING_MARKERS = ("No such file or directory", "does not exist")
# The accept rule as wanted() writes it: the guarded VTEP is read back from it.
_ACCEPT_RE = re.compile(rf"^udp dport @{PORT_SET} ip6? daddr (\S+) ip6? saddr @{VTEP_SET} accept$")


class FirewallError(ModuleError):
    """nft is missing or failed; the message names the table and says what to do."""


# --- the wanted table ---------------------------------------------------------------------------------------


def wanted(vtep, allow, ports) -> dict:
    """The canonical table for a VTEP, the VTEPs allowed to reach it and the overlay ports.

    Raises :class:`InputError` naming the field and the value.
    """
    address = ipaddress.ip_address(v.ip(vtep, "vtep"))
    family = address.version
    peers = {}
    for index, value in enumerate(allow or []):
        peer = ipaddress.ip_address(v.ip(value, f"allow[{index}]"))
        if peer.version != family:
            raise v.InputError(
                f"allow[{index}]: {value!r} is an IPv{peer.version} address but vtep {vtep} is IPv{family}; "
                "the allowlist holds VTEPs of the same underlay family"
            )
        peers[peer] = None
    numbers = sorted({v.port(value, f"ports[{index}]") for index, value in enumerate(ports or [])})
    if not numbers:
        raise v.InputError("ports: the list is empty; give the UDP ports of the overlay networks (4789 by default)")
    proto = "ip" if family == 4 else "ip6"
    return {
        "sets": {
            PORT_SET: {"type": "inet_service", "elements": numbers},
            VTEP_SET: {
                "type": "ipv4_addr" if family == 4 else "ipv6_addr",
                "elements": [p.compressed for p in sorted(peers, key=int)],
            },
        },
        "chains": {CHAIN: CHAIN_SPEC},
        "rules": {
            CHAIN: [
                f"udp dport @{PORT_SET} {proto} daddr {address.compressed} {proto} saddr @{VTEP_SET} accept",
                f"udp dport @{PORT_SET} counter drop",  # every other address, family and interface
            ]
        },
    }


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
        return f"{_operand(match['left'])} {op}{_operand(match['right'])}"
    if set(expr) == {"counter"}:
        return "counter"  # its packets and bytes are state, not configuration
    if len(expr) == 1 and next(iter(expr)) in ("accept", "drop") and expr[next(iter(expr))] is None:
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
    extra = {name: spec for name, spec in table["sets"].items() if name not in (VTEP_SET, PORT_SET)}
    if extra or set(table["chains"]) != {CHAIN} or table.get("table"):
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
    table = nft.read()
    if table is None:
        return {"present": False, "intact": False, "vtep": None, "allow": [], "ports": []}
    shown = summary(table)
    match = next((m for rule in table["rules"].get(CHAIN, [])[:1] if (m := _ACCEPT_RE.match(rule))), None)
    vtep = match.group(1) if match else None
    try:
        intact = vtep is not None and table == wanted(vtep, shown["allow"], shown["ports"])
    except v.InputError:  # e.g. a set emptied of its ports, an element of the other family
        intact = False
    return {"present": True, "intact": intact, "vtep": vtep, "allow": shown["allow"], "ports": shown["ports"]}


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
