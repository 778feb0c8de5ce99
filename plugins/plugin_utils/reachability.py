# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The functional test of an overlay fleet: who must ping whom, and the reachability matrix of the answers.

This is the engine behind the ``netfleet.overlay.ping_plan`` and ``netfleet.overlay.reachability_matrix``
filters that ``playbooks/verify.yml`` uses.  It is pure (plain data in, plain data out), so it is unit-tested
on plain data.

Every endpoint pings every other endpoint of the fleet, on every host.  A reply is expected exactly when both
are on the same network: the overlay must carry traffic inside a network and nothing between networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ansible_collections.netfleet.overlay.plugins.module_utils._model import kind

# Cell symbols of the matrix (row pings column).
REPLY = "✓"
SILENT = "·"
WRONG = "✗"
UNTESTED = "?"
SELF = "-"
MAX_LISTED = 40  # wrong cells spelled out below the matrix
LEGEND = (
    f"rows ping columns; expected: {REPLY} reply within a network, {SILENT} no reply across networks",
    f"{WRONG} WRONG answer   {UNTESTED} not tested (also wrong)   {SELF} itself",
)


class ReachabilityError(ValueError):
    """Bad input for the ping plan or the matrix; the message names the host and the value."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    name: str
    network: str | None
    netns: str
    ip: str | None

    @property
    def label(self) -> str:
        return f"{self.host}/{self.name}"


def _endpoints(endpoints_by_host: Mapping) -> list[_Endpoint]:
    """Every endpoint of the fleet, sorted by (network, host, name) so each network is one block."""
    if not isinstance(endpoints_by_host, Mapping):
        raise ReachabilityError(f"endpoints must be a dict of hostname -> endpoints, got {kind(endpoints_by_host)}")
    found = []
    for host, endpoints in endpoints_by_host.items():
        if endpoints is None:
            continue
        if not isinstance(endpoints, Mapping):
            raise ReachabilityError(
                f"host {host}: endpoints must be a dict of name -> endpoint (as overlay_facts returns them),"
                f" got {kind(endpoints)}"
            )
        for name, entry in endpoints.items():
            if not isinstance(entry, Mapping):
                raise ReachabilityError(f"host {host}: endpoint {name!r} must be a dict, got {kind(entry)}")
            found.append(
                _Endpoint(str(host), str(name), entry.get("network"), entry.get("netns") or str(name), entry.get("ip"))
            )
    return sorted(found, key=lambda e: (e.network or "", e.host, e.name))


def _missing(declared_by_host: Mapping | None, endpoints: list[_Endpoint]) -> list[str]:
    """Labels of declared endpoints that the facts do not show (or show on another network)."""
    have = {(e.host, e.name): e.network for e in endpoints}
    missing = []
    for host, declared in (declared_by_host or {}).items():
        for item in declared or []:
            if not isinstance(item, Mapping) or "name" not in item:
                raise ReachabilityError(f"host {host}: declared endpoint {item!r} must be a dict with a name")
            key = (str(host), str(item["name"]))
            if key not in have or (item.get("network") is not None and have[key] != item.get("network")):
                missing.append(f"{key[0]}/{key[1]}")
    return sorted(missing)


def plan_pings(endpoints_by_host: Mapping, declared_by_host: Mapping | None = None) -> dict:
    """Who pings whom.

    ``endpoints_by_host`` maps hostname -> the ``endpoints`` of its ``netfleet_overlay`` facts (name ->
    ``{network, netns, ip, ...}``).  ``declared_by_host`` optionally maps hostname -> its declared
    ``overlay_endpoints``; declared endpoints that the facts do not show are reported as ``missing``.

    Returns ``{endpoints, pings, stdin, missing}``: ``endpoints`` in matrix order (``label, host, name,
    network, netns, ip``), ``pings`` hostname -> ``[{src, dst, netns, ip, expect}]`` for every ordered pair
    of distinct endpoints whose source is on that host and whose destination has an address, and ``stdin``
    hostname -> the lines (``src dst netns ip``) that the ping loop of ``verify.yml`` reads.
    """
    endpoints = _endpoints(endpoints_by_host)
    pings: dict[str, list[dict]] = {str(host): [] for host in endpoints_by_host}
    for src in endpoints:
        for dst in endpoints:
            if src is dst or not dst.ip:
                continue
            pings[src.host].append(
                {
                    "src": src.label,
                    "dst": dst.label,
                    "netns": src.netns,
                    "ip": dst.ip,
                    "expect": src.network is not None and src.network == dst.network,
                }
            )
    return {
        "endpoints": [
            {"label": e.label, "host": e.host, "name": e.name, "network": e.network, "netns": e.netns, "ip": e.ip}
            for e in endpoints
        ],
        "pings": pings,
        "stdin": {
            host: "".join(f"{p['src']} {p['dst']} {p['netns']} {p['ip']}\n" for p in host_pings)
            for host, host_pings in pings.items()
        },
        "missing": _missing(declared_by_host, endpoints),
    }


def parse_results(outputs: Mapping) -> dict[tuple[str, str], bool]:
    """(src, dst) -> replied, from every host's ping output (``src dst ip ok|fail`` lines).

    A host's output is its stdout text, or the registered result of the ping task (its ``stdout`` is used).
    Lines that are not results are ignored.
    """
    results: dict[tuple[str, str], bool] = {}
    for output in outputs.values():
        text = output.get("stdout") if isinstance(output, Mapping) else output
        if not isinstance(text, str):
            continue
        for line in text.splitlines():
            words = line.split()
            if len(words) == 4 and words[3] in ("ok", "fail"):
                results[(words[0], words[1])] = words[3] == "ok"
    return results


def _cell(expect: bool, replied: bool | None) -> tuple[str, str | None]:
    """The symbol of one cell and, when it is wrong, why."""
    if replied is None:
        return UNTESTED, "not tested"
    if replied == expect:
        return (REPLY if replied else SILENT), None
    return WRONG, ("no reply, expected one (same network)" if expect else "reply across networks")


def reachability_matrix(ping_plan: Mapping, outputs: Mapping) -> dict:
    """Compare every ping's answer with its expectation and draw the matrix.

    ``ping_plan`` is what :func:`plan_pings` returned, ``outputs`` maps hostname -> that host's ping output.
    Returns ``{ok, text, lines, wrong, missing, counts}``: ``wrong`` lists ``{src, dst, ip, expect,
    replied, why}`` of every wrong cell, ``text`` is the matrix with its legend and the wrong cells spelled out.
    """
    if not isinstance(ping_plan, Mapping) or "endpoints" not in ping_plan or "pings" not in ping_plan:
        raise ReachabilityError("the ping plan must be what the ping_plan filter returned (with endpoints and pings)")
    if not isinstance(outputs, Mapping):
        raise ReachabilityError(f"outputs must be a dict of hostname -> ping output, got {kind(outputs)}")
    endpoints = ping_plan["endpoints"]
    results = parse_results(outputs)
    by_pair = {(p["src"], p["dst"]): p for host_pings in ping_plan["pings"].values() for p in host_pings}
    wrong = []
    rows = []
    counts = {"endpoints": len(endpoints), "pings": 0, "replies": 0, "wrong": 0}
    for src in endpoints:
        cells = []
        for dst in endpoints:
            if src["label"] == dst["label"]:
                cells.append(SELF)
                continue
            ping = by_pair.get((src["label"], dst["label"]))
            expect = src["network"] is not None and src["network"] == dst["network"]
            replied = None if ping is None else results.get((src["label"], dst["label"]))
            if replied is not None:
                counts["pings"] += 1
                counts["replies"] += replied
            symbol, why = _cell(expect, replied)
            if why is not None:
                wrong.append(
                    {
                        "src": src["label"],
                        "dst": dst["label"],
                        "ip": dst["ip"],
                        "expect": expect,
                        "replied": replied,
                        "why": why,
                    }
                )
            cells.append(symbol)
        rows.append(cells)
    counts["wrong"] = len(wrong)
    missing = list(ping_plan.get("missing") or [])
    lines = _draw(endpoints, rows, counts, wrong, missing)
    return {
        "ok": not wrong and not missing,
        "text": "\n".join(lines),
        "lines": lines,
        "wrong": wrong,
        "missing": missing,
        "counts": counts,
    }


def _draw(endpoints: list, rows: list[list[str]], counts: dict, wrong: list, missing: list) -> list[str]:
    """The matrix as terminal lines: numbered rows (source) and columns (destination), one block per network."""
    verdict = "OK" if not wrong and not missing else "FAILED"
    lines = [
        f"Reachability {verdict}: {counts['endpoints']} endpoints, {counts['pings']} pings,"
        f" {counts['replies']} replies, {counts['wrong']} wrong"
    ]
    if not endpoints:
        lines.append("(no endpoints)")
    else:
        width = len(str(len(endpoints)))
        labels = [f"{i:>{width}} {e['label']}" for i, e in enumerate(endpoints, 1)]
        nets = [str(e["network"] or "?") for e in endpoints]
        label_w = max(len("source"), *(len(label) for label in labels))
        net_w = max(len("network"), *(len(n) for n in nets))
        cell_w = width + 1
        # a bar between network blocks
        breaks = {i for i in range(1, len(endpoints)) if nets[i] != nets[i - 1]}

        def row(cells: list[str]) -> str:
            return "".join(("  │" if i in breaks else "") + f"{c:>{cell_w}}" for i, c in enumerate(cells))

        lines.extend(LEGEND)
        lines.append("")
        numbers = [str(i) for i in range(1, len(endpoints) + 1)]
        lines.append(f"{'source':<{label_w}}  {'network':<{net_w}} " + row(numbers))
        for label, net, cells in zip(labels, nets, rows, strict=True):
            lines.append(f"{label:<{label_w}}  {net:<{net_w}} " + row(cells))
    if wrong:
        lines.append("")
        lines.append(f"{len(wrong)} wrong cell(s):")
        lines.extend(_explain(wrong))
    if missing:
        lines.append("")
        lines.append(f"{len(missing)} declared endpoint(s) missing from the facts: {', '.join(missing)}")
    return lines


def _explain(wrong: list[dict], limit: int = MAX_LISTED) -> list[str]:
    """One line per wrong answer; the untested cells of one source are folded into one line."""
    answered = [w for w in wrong if w["replied"] is not None]
    untested: dict[str, list[str]] = {}
    for w in wrong:
        if w["replied"] is None:
            untested.setdefault(w["src"], []).append(w["dst"])
    lines = [f"  {WRONG} {w['src']} -> {w['dst']} ({w['ip']}): {w['why']}" for w in answered]
    for src, dsts in untested.items():
        host = src.split("/", 1)[0]
        lines.append(f"  {UNTESTED} {src} -> {len(dsts)} endpoint(s): not tested (no ping output from {host} for them)")
    if len(lines) > limit:
        lines[limit:] = [f"  ... and {len(lines) - limit} more"]
    return lines
