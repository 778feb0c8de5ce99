# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The functional test of an overlay fleet: who must ping whom, and the reachability matrix of the answers.

This is the engine behind the ``netfleet.overlay.ping_plan`` and ``netfleet.overlay.reachability_matrix``
filters that ``playbooks/verify.yml`` uses.  It is pure (plain data in, plain data out), so it is unit-tested
on plain data.

Every endpoint pings every other endpoint of the fleet, on every host.  A reply is expected exactly when both
are on the same network: the overlay must carry traffic inside a network and nothing between networks.

Two more checks follow the matrix in the same report.  Egress: every endpoint of a network with ``egress`` pings
``overlay_verify_egress_target``, an underlay address that is not an overlay member (without one, the check is
reported as skipped).  Names: every endpoint of a network with ``dns`` resolves one peer of its network
(``getent hosts <peer>`` in its netns), which must give the peer's address and nothing else; an endpoint attached
to a netns of the user's is listed as not checked, as the collection writes no resolv.conf for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from ansible_collections.netfleet.overlay.plugins.module_utils._model import check_bool, kind

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
EGRESS_TARGET = "overlay_verify_egress_target"  # the variable that names the egress check's target
NO_ANSWER = "-"  # a name check's answer when the name did not resolve


class ReachabilityError(ValueError):
    """Bad input for the ping plan or the matrix; the message names the host and the value."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    name: str
    network: str | None
    netns: str
    ip: str | None
    attached: bool = False  # in a netns of the user's (netns:), whose resolver the collection leaves alone

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
                _Endpoint(
                    str(host),
                    str(name),
                    entry.get("network"),
                    entry.get("netns") or str(name),
                    entry.get("ip"),
                    entry.get("attached") is True,
                )
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


def _features(networks) -> tuple[list[str], list[str]]:
    """The names of the declared networks (``overlay_networks``) with ``egress``, and those with ``dns``."""
    if networks is None:
        return [], []
    if isinstance(networks, (str, Mapping)) or not isinstance(networks, (list, tuple)):
        raise ReachabilityError(f"networks must be a list like overlay_networks, got {kind(networks)}")
    egress, dns = [], []
    for index, item in enumerate(networks):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ReachabilityError(
                f"networks[{index}] must be a dict with a name (like overlay_networks), got {item!r}"
            )
        for key, found in (("egress", egress), ("dns", dns)):
            value = item.get(key)
            if value is not None and check_bool(value, f"network {item['name']!r}: {key}", error=ReachabilityError):
                found.append(str(item["name"]))
    return sorted(egress), sorted(dns)


def _egress_target(target, networks, endpoints: list[_Endpoint]) -> str | None:
    """The egress check's target as an address, or None when it is not set; refused when it is an overlay member
    (an endpoint's address, or in a declared network's subnet): egress must leave the overlay."""
    if target is None or target == "":
        return None
    try:
        address = ipaddress.ip_address(str(target).strip())
    except ValueError:
        raise ReachabilityError(
            f"{EGRESS_TARGET} {target!r} is not an IP address: give an underlay address that is not an overlay member"
        ) from None
    for item in networks or ():
        try:
            subnet = ipaddress.ip_network(str(item.get("subnet")), strict=False)
        except ValueError:
            continue  # the plan of site.yml names a bad subnet; this check has nothing to say about it
        if address in subnet:
            raise ReachabilityError(
                f"{EGRESS_TARGET} {address} is in the subnet {subnet} of overlay network {item['name']}: give an"
                " underlay address that is not an overlay member"
            )
    for endpoint in endpoints:
        if endpoint.ip and endpoint.ip == str(address):
            raise ReachabilityError(
                f"{EGRESS_TARGET} {address} is the address of endpoint {endpoint.label}: give an underlay address"
                " that is not an overlay member"
            )
    return str(address)


def _peer(endpoint: _Endpoint, network: list[_Endpoint]) -> _Endpoint | None:
    """The peer whose name ``endpoint`` resolves: the next endpoint of its network (in matrix order, wrapping
    around) that has an address, on another host when there is one; the endpoint itself when it is alone."""
    others = [e for e in network if e.ip and e is not endpoint]
    if not others:
        return endpoint if endpoint.ip else None
    after = network.index(endpoint)
    ring = [e for e in others if network.index(e) > after] + [e for e in others if network.index(e) < after]
    return next((e for e in ring if e.host != endpoint.host), ring[0])


def _plan_checks(endpoints: list[_Endpoint], egress: list[str], dns: list[str], target: str | None) -> dict:
    """hostname -> the egress and name checks of its endpoints: ``{kind, src, netns, target}``, and for a name
    the ``peer`` (its label) and the ``address`` it must resolve to.  An attached endpoint gets no name check."""
    checks: dict[str, list[dict]] = {}
    for endpoint in endpoints:
        mine = checks.setdefault(endpoint.host, [])
        if target is not None and endpoint.network in egress:
            mine.append({"kind": "egress", "src": endpoint.label, "netns": endpoint.netns, "target": target})
        if endpoint.network in dns and not endpoint.attached:
            peer = _peer(endpoint, [e for e in endpoints if e.network == endpoint.network])
            if peer is not None:
                mine.append(
                    {
                        "kind": "name",
                        "src": endpoint.label,
                        "netns": endpoint.netns,
                        "target": peer.name,
                        "peer": peer.label,
                        "address": peer.ip,
                    }
                )
    return checks


def plan_pings(
    endpoints_by_host: Mapping, declared_by_host: Mapping | None = None, networks=None, egress_target=None
) -> dict:
    """Who pings whom, and which endpoint checks egress and names.

    ``endpoints_by_host`` maps hostname -> the ``endpoints`` of its ``netfleet_overlay`` facts (name ->
    ``{network, netns, ip, ...}``).  ``declared_by_host`` optionally maps hostname -> its declared
    ``overlay_endpoints``; declared endpoints that the facts do not show are reported as ``missing``.
    ``networks`` is the fleet's ``overlay_networks`` (for ``egress``, ``dns`` and the subnets) and
    ``egress_target`` the ``overlay_verify_egress_target`` (None or empty: the egress check is skipped).

    Returns ``{endpoints, pings, stdin, missing, egress, names, checks, checks_stdin}``: ``endpoints`` in matrix
    order (``label, host, name, network, netns, ip``), ``pings`` hostname -> ``[{src, dst, netns, ip, expect}]``
    for every ordered pair of distinct endpoints whose source is on that host and whose destination has an
    address, and ``stdin`` hostname -> the lines (``src dst netns ip``) that the ping loop of ``verify.yml`` reads.
    ``egress`` is ``{networks, target}`` and ``names`` ``{networks, unchecked}``: the networks that have them,
    and the labels of the attached endpoints of dns networks, which get no name check; ``checks``
    hostname -> what :func:`_plan_checks` plans, and ``checks_stdin`` the same as ``kind src netns target`` lines.
    """
    endpoints = _endpoints(endpoints_by_host)
    egress, dns = _features(networks)
    target = _egress_target(egress_target, networks, endpoints)
    checks = _plan_checks(endpoints, egress, dns, target)
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
        "egress": {"networks": egress, "target": target},
        "names": {
            "networks": dns,
            "unchecked": [e.label for e in endpoints if e.attached and e.network in dns],
        },
        "checks": {str(host): checks.get(str(host), []) for host in endpoints_by_host},
        "checks_stdin": {
            str(host): "".join(
                f"{c['kind']} {c['src']} {c['netns']} {c['target']}\n" for c in checks.get(str(host), [])
            )
            for host in endpoints_by_host
        },
    }


def parse_results(outputs: Mapping) -> dict[tuple[str, str], bool]:
    """(src, dst) -> replied, from every host's ping output (``src dst ip ok|fail`` lines).

    A host's output is its stdout text, or the registered result of the ping task (its ``stdout`` is used).
    Lines that are not results are ignored.
    """
    results: dict[tuple[str, str], bool] = {}
    for output in outputs.values():
        for line in (_text_of(output) or "").splitlines():
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


def _text_of(output) -> str | None:
    """A host's output: its stdout text, or the ``stdout`` of the registered result of its task."""
    text = output.get("stdout") if isinstance(output, Mapping) else output
    return text if isinstance(text, str) else None


def parse_checks(outputs: Mapping) -> dict[tuple[str, str, str], str]:
    """(kind, src, target) -> answer, from every host's check output: ``egress src target ok|fail`` and
    ``name src target address[,address...]|-`` lines.  Lines that are not answers are ignored."""
    answers: dict[tuple[str, str, str], str] = {}
    for output in outputs.values():
        for line in (_text_of(output) or "").splitlines():
            words = line.split()
            if len(words) == 4 and words[0] in ("egress", "name"):
                answers[(words[0], words[1], words[2])] = words[3]
    return answers


def _addresses(text: str) -> set[str] | None:
    """The addresses of a name check's answer, normalised; None when one of them is not an address."""
    try:
        return {str(ipaddress.ip_address(word)) for word in text.split(",") if word}
    except ValueError:
        return None


def _check_problem(check: Mapping, answer: str | None) -> str | None:
    """Why one egress or name check failed, or None when it passed."""
    host = check["src"].split("/", 1)[0]
    if answer is None:
        return f"not tested (no check output from {host} for it)"
    if check["kind"] == "egress":
        return None if answer == "ok" else "no reply"
    expected = check["address"]
    if answer == NO_ANSWER:
        return f"did not resolve, expected {expected} ({check['peer']})"
    if _addresses(answer) != {str(ipaddress.ip_address(expected))}:
        return f"resolved to {answer.replace(',', ' ')}, expected {expected} ({check['peer']})"
    return None


def _judge_checks(ping_plan: Mapping, outputs: Mapping) -> tuple[dict, dict]:
    """The egress and the names part of the report: ``{networks, checks, wrong}`` each (``wrong``: ``{src,
    target, why}``), egress also with its ``target`` and, when it is not set, why the check was ``skipped``,
    names with the attached endpoints that it did not check (``unchecked``)."""
    answers = parse_checks(outputs)
    egress = ping_plan.get("egress") or {}
    names = ping_plan.get("names") or {}
    parts = {
        "egress": {"networks": list(egress.get("networks") or []), "target": egress.get("target")},
        "name": {"networks": list(names.get("networks") or []), "unchecked": list(names.get("unchecked") or [])},
    }
    for part in parts.values():
        part.update(checks=0, wrong=[])
    parts["egress"]["skipped"] = (
        f"{EGRESS_TARGET} is not set" if parts["egress"]["networks"] and not parts["egress"]["target"] else None
    )
    for host_checks in (ping_plan.get("checks") or {}).values():
        for check in host_checks:
            part = parts[check["kind"]]
            part["checks"] += 1
            why = _check_problem(check, answers.get((check["kind"], check["src"], check["target"])))
            if why is not None:
                part["wrong"].append({"src": check["src"], "target": check["target"], "why": why})
    return parts["egress"], parts["name"]


def _draw_checks(egress: Mapping, names: Mapping) -> list[str]:
    """The egress and names sections of the report (none for a feature that no network has): a verdict line
    each, then the failed checks."""
    lines = []
    for title, part, feature, did in (
        ("Egress", egress, "egress", f"reach {egress.get('target')}"),
        ("Names", names, "dns", "resolve a peer of their network"),
    ):
        networks = ", ".join(part["networks"])
        if not part["networks"]:
            continue
        lines.append("")
        if part.get("skipped"):
            lines.append(f"{title} SKIPPED: {part['skipped']} (networks with {feature}: {networks})")
        else:
            verdict = "FAILED" if part["wrong"] else "OK"
            lines.append(
                f"{title} {verdict}: {part['checks'] - len(part['wrong'])} of {part['checks']} endpoint(s) of"
                f" {networks} {did}"
            )
            lines.extend(f"  {WRONG} {w['src']} -> {w['target']}: {w['why']}" for w in part["wrong"][:MAX_LISTED])
            if len(part["wrong"]) > MAX_LISTED:
                lines.append(f"  ... and {len(part['wrong']) - MAX_LISTED} more")
        if part.get("unchecked"):
            lines.append(
                f"  not checked (attached to a netns of the user's, whose resolv.conf is the user's to point at the"
                f" gateway): {', '.join(part['unchecked'])}"
            )
    return lines


def reachability_matrix(ping_plan: Mapping, outputs: Mapping, checks: Mapping | None = None) -> dict:
    """Compare every ping's answer with its expectation and draw the matrix; then judge the egress and names
    checks.

    ``ping_plan`` is what :func:`plan_pings` returned, ``outputs`` maps hostname -> that host's ping output and
    ``checks`` hostname -> that host's check output (a check without an answer fails as not tested).
    Returns ``{ok, text, lines, wrong, missing, counts, egress, names}``: ``wrong`` lists ``{src, dst, ip,
    expect, replied, why}`` of every wrong cell, ``text`` is the matrix with its legend and the wrong cells
    spelled out, followed by the egress and names sections; ``egress`` and ``names`` are those sections'
    ``{networks, checks, wrong}`` (egress also ``target`` and ``skipped``).
    """
    if not isinstance(ping_plan, Mapping) or "endpoints" not in ping_plan or "pings" not in ping_plan:
        raise ReachabilityError("the ping plan must be what the ping_plan filter returned (with endpoints and pings)")
    if not isinstance(outputs, Mapping):
        raise ReachabilityError(f"outputs must be a dict of hostname -> ping output, got {kind(outputs)}")
    if checks is not None and not isinstance(checks, Mapping):
        raise ReachabilityError(f"checks must be a dict of hostname -> check output, got {kind(checks)}")
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
    egress, names = _judge_checks(ping_plan, checks or {})
    lines = [*_draw(endpoints, rows, counts, wrong, missing), *_draw_checks(egress, names)]
    return {
        "ok": not wrong and not missing and not egress["wrong"] and not names["wrong"],
        "text": "\n".join(lines),
        "lines": lines,
        "wrong": wrong,
        "missing": missing,
        "counts": counts,
        "egress": egress,
        "names": names,
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
