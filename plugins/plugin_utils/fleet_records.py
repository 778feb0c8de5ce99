# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet dict of the peer table, built from every host's variables and overlay facts.

This is the engine behind ``overlay_plan`` (its action plugin) and the ``netfleet.overlay.fleet_records`` filter.
It turns ``hostvars`` into the ``fleet`` argument of ``peer_tables.compute_plan`` in one pass over the fleet's
hosts, instead of a Jinja loop over ``hostvars`` (which is quadratic); :func:`host_variables` is how every filter
that takes ``hostvars`` reads it.  It is pure: any mapping of hostname -> mapping of variables
will do, so it is unit-tested on plain dicts.

What it reads per host: ``overlay_state``, ``overlay_vtep``, ``overlay_endpoints``, the facts that
``netfleet.overlay.overlay_facts`` (or ``overlay_host``) leave in ``ansible_facts.netfleet_overlay`` and, for a host
of the run, the public keys that ``netfleet.overlay.wireguard_key`` returned (:data:`WIREGUARD_KEY_VAR`).  For the
hosts of this run, ``desired`` in those facts (the ``overlay_state`` and ``overlay_networks`` that the host was
given, which ``hostvars`` cannot see when they are play vars or role parameters) wins over ``overlay_state``.
It only shapes data; the values are validated by the peer table, whose messages name the host.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.netfleet.overlay.plugins.module_utils._model import kind
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import closest

FACTS_KEY = "netfleet_overlay"
# Every overlay_* variable that the collection reads (the role's argument spec, and the playbooks' own: overlay_hosts,
# and overlay_verify_egress_target of verify.yml).
# Any other host or group variable named overlay_* is a typo that would otherwise be ignored silently (a host whose
# overlay_endpoint is set has no endpoints, and loses them), so it fails the run. Add a name here when the
# collection starts to read it, not before: a typo of a future name would pass.
KNOWN_VARIABLES = frozenset(
    (
        "overlay_networks",
        "overlay_endpoints",
        "overlay_vtep",
        "overlay_state",
        "overlay_fleet_group",
        "overlay_install_deps",
        "overlay_firewall",
        "overlay_lock_timeout",
        "overlay_allow_purge",
        "overlay_purge_limit",
        "overlay_forget_hosts",
        "overlay_hosts",
        "overlay_verify_egress_target",
        "overlay_wireguard_port",
        "overlay_wireguard_subnet",
        "overlay_wireguard_rotate",
    )
)
PREFIX = "overlay_"
# hostvars cannot see play vars or role params, so overlay_facts records what each host of the run was given:
# ``desired: {state, networks}`` in its facts.  The tables are computed from one host's overlay_networks, so
# every present host of the run must have been given the same list.
DESIRED = "desired"
# The role registers the result of netfleet.overlay.wireguard_key of this run under this name (a key pair made, or a
# rotation key staged, after overlay_facts read the host): its public keys win over the facts' for a host of the run.
WIREGUARD_KEY_VAR = "_overlay_wireguard_key"


class FleetRecordsError(ValueError):
    """Bad arguments for the fleet records; the message names the argument, the host and the value."""


def host_list(value, argument: str) -> list[str]:
    """A list of hostnames (duplicates dropped, order kept)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise FleetRecordsError(
            f"{argument} must be a list of hostnames (for example groups['all'] or ansible_play_hosts),"
            f" got {kind(value)}"
        )
    hosts: dict[str, None] = {}
    for index, host in enumerate(value):
        if not isinstance(host, str) or not host:
            raise FleetRecordsError(f"{argument}[{index}] {host!r} must be a hostname, got {kind(host)}")
        hosts[host] = None
    return list(hosts)


def host_variables(hostvars, hosts, argument: str = "hosts") -> list[tuple[str, Mapping]]:
    """``(host, variables)`` of every host of ``hosts`` (a list of hostnames, the argument ``argument``), read from
    ``hostvars`` once each: what every filter that takes ``hostvars`` reads.

    Raises :class:`FleetRecordsError` when ``hostvars`` is not a mapping, ``hosts`` is not a list of hostnames or
    a host has no variables (it is not in the inventory).
    """
    if not isinstance(hostvars, Mapping):
        raise FleetRecordsError(f"the input must be hostvars (hostname -> variables), got {kind(hostvars)}")
    found = []
    for host in host_list(hosts, argument):
        variables = hostvars.get(host)  # Ansible's hostvars give an undefined value for a host it does not know
        if not isinstance(variables, Mapping):
            raise FleetRecordsError(f"{argument}: host {host} has no variables in hostvars (is it in the inventory?)")
        found.append((host, variables))
    return found


def check_variable_names(host: str, names) -> None:
    """Every ``overlay_*`` name among ``names`` (a host's variables) is one the collection knows.

    Raises :class:`FleetRecordsError` naming the host, the variable and the closest known name.
    """
    for name in names:
        if isinstance(name, str) and name.startswith(PREFIX) and name not in KNOWN_VARIABLES:
            close = closest(name, KNOWN_VARIABLES)
            hint = f"did you mean {close}? " if close else ""
            raise FleetRecordsError(
                f"host {host}: unknown variable {name}: netfleet.overlay does not read it. {hint}Rename or remove it"
                f" (the overlay_* variables are {', '.join(sorted(KNOWN_VARIABLES))})"
            )


def overlay_facts(host: str, variables: Mapping) -> Mapping | None:
    """The host's ``netfleet_overlay`` facts, or None when it has none (or they could not read the kernel)."""
    facts = variables.get("ansible_facts")
    if facts is None:
        return None
    if not isinstance(facts, Mapping):
        raise FleetRecordsError(f"host {host}: ansible_facts must be a dict, got {kind(facts)}")
    overlay = facts.get(FACTS_KEY)
    if overlay is None:
        return None
    if not isinstance(overlay, Mapping):
        raise FleetRecordsError(
            f"host {host}: ansible_facts.{FACTS_KEY} must be the dict that netfleet.overlay.overlay_facts"
            f" returns, got {kind(overlay)}"
        )
    return overlay


def current_endpoints(host: str, facts: Mapping | None) -> dict | None:
    """``{name: {network, ip, mac, netns, attached}}`` of the endpoints the facts show; None without (usable) facts.

    ``attached`` is true only for an endpoint that joined a netns it did not create (``netns:``); facts that do not
    say so are of endpoints whose netns the collection created.

    Facts gathered without pyroute2 cannot see the kernel's endpoints, so they count as no facts: an
    empty table would tell the peer table that the host has no endpoints at all.
    """
    if facts is None or facts.get("pyroute2") is False:
        return None
    endpoints = facts.get("endpoints") or {}
    if not isinstance(endpoints, Mapping):
        raise FleetRecordsError(
            f"host {host}: ansible_facts.{FACTS_KEY}.endpoints must be a dict, got {kind(endpoints)}"
        )
    current = {}
    for name, entry in endpoints.items():
        if not isinstance(entry, Mapping):
            continue  # not what overlay_facts writes: the peer table would ignore it anyway
        current[name] = {
            "network": entry.get("network"),
            "ip": entry.get("ip"),
            "mac": entry.get("mac"),
            "netns": entry.get("netns"),
            "attached": entry.get("attached") is True,
        }
    return current


def current_networks(facts: Mapping | None) -> dict | None:
    """``{name: netns}`` of the networks the facts show; None without (usable) facts."""
    if facts is None or facts.get("pyroute2") is False:
        return None
    networks = facts.get("networks") or {}
    if not isinstance(networks, Mapping):
        return None
    return {name: entry.get("netns") if isinstance(entry, Mapping) else None for name, entry in networks.items()}


def _facts_value(facts: Mapping | None, key: str, kinds):
    """``facts[key]`` when it is one of ``kinds`` (usable facts only), else None: older facts lack it."""
    if facts is None or facts.get("pyroute2") is False:
        return None
    value = facts.get(key)
    return value if isinstance(value, kinds) else None


def wireguard_facts(variables: Mapping, facts: Mapping | None, active: bool) -> dict | None:
    """The host's ``wireguard`` facts (public keys, tunnel address, port, peers; never a private key), with the
    public keys that wireguard_key returned in this run for a host of the run; None when there are none."""
    found = facts.get("wireguard") if facts is not None else None
    found = dict(found) if isinstance(found, Mapping) else None
    made = variables.get(WIREGUARD_KEY_VAR) if active else None
    if isinstance(made, Mapping) and not made.get("skipped") and not made.get("failed") and "public_key" in made:
        found = {
            **(found or {}),
            "public_key": made.get("public_key"),
            "public_key_next": made.get("public_key_next"),
        }
    return found


def desired(facts: Mapping | None) -> Mapping:
    """``desired`` of the facts (``{state, networks}`` as the host was given them), or an empty dict."""
    if facts is None:
        return {}
    value = facts.get(DESIRED)
    return value if isinstance(value, Mapping) else {}


def _state(variables: Mapping, facts: Mapping | None, active: bool) -> str:
    """The host's state: for a host of this run, ``desired.state`` of its facts, else ``overlay_state``, else
    present."""
    state = desired(facts).get("state") if active else None
    if state is None or state == "":
        state = variables.get("overlay_state")
    return state or "present"


def fleet_record(host: str, variables: Mapping, reachable: bool) -> dict:
    """One host's record for the peer table: the keys of ``peer_tables.HOST_KEYS``, its facts' part included."""
    facts = overlay_facts(host, variables)
    vtep = variables.get("overlay_vtep")
    if vtep is None or vtep == "":
        vtep = facts.get("vtep") if facts is not None else None
    endpoints = variables.get("overlay_endpoints")
    state = _state(variables, facts, reachable)
    if reachable and state == "present" and facts is not None and facts.get("vtep_is_local") is False:
        # the other hosts would send this host's endpoints to someone else's address
        raise FleetRecordsError(
            f"{host}: overlay_vtep {facts.get('vtep')} is not an address of this host. Set overlay_vtep to one of"
            " its underlay addresses"
        )
    return {
        "state": state,
        "reachable": reachable,
        "vtep": vtep,
        "underlay_mtu": facts.get("underlay_mtu") if facts is not None else None,
        "endpoints": [] if endpoints is None else endpoints,
        "current": current_endpoints(host, facts),
        "current_networks": current_networks(facts),
        "peers": _facts_value(facts, "peers", Mapping),
        "netns": _facts_value(facts, "netns", (list, tuple)),
        "wireguard": wireguard_facts(variables, facts, reachable),
    }


def _plain(value):
    """A templated value as plain builtins, for comparing and for messages."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _difference(host: str, networks, first: str, first_networks) -> str:
    """Where two hosts' overlay_networks first differ, in words."""
    if not isinstance(networks, list) or not isinstance(first_networks, list):
        return f"{networks!r} on {host} but {first_networks!r} on {first}"
    for index, (theirs, mine) in enumerate(zip(networks, first_networks, strict=False)):
        if theirs != mine:
            return f"overlay_networks[{index}] is {theirs!r} on {host} but {mine!r} on {first}"
    return f"{len(networks)} networks on {host} but {len(first_networks)} on {first}"


def check_networks_agree(hosts) -> None:
    """Every present host of ``hosts`` (pairs of hostname and variables) whose facts show the
    ``overlay_networks`` it was given (``desired.networks``) has the same list.

    Raises :class:`FleetRecordsError` naming the host, the field and both values.  Absent hosts only tear
    down, so their list never blocks a teardown.
    """
    first = None
    for host, variables in hosts:
        facts = overlay_facts(host, variables)
        if _state(variables, facts, True) != "present":
            continue
        networks = desired(facts).get("networks")
        if networks is None:
            continue
        networks = _plain(networks)
        if first is None:
            first = (host, networks)
        elif networks != first[1]:
            raise FleetRecordsError(
                f"host {host}: overlay_networks differs from host {first[0]}'s:"
                f" {_difference(host, networks, first[0], first[1])}; every host of the fleet must see the same"
                " list: set it once, in group_vars/all"
            )


def fleet_records(hostvars, fleet_hosts, active_hosts) -> dict:
    """Build the peer table's ``fleet`` dict: hostname -> record, for every host of ``fleet_hosts``.

    ``hostvars`` maps hostname -> that host's variables (Ansible's ``hostvars``).  ``active_hosts`` are
    the hosts that this run reaches (``ansible_play_hosts``): only those are ``reachable``.  The others,
    outside the play or ``--limit`` or unreachable, keep their endpoints as their cached facts show them;
    without facts their VTEP is preserved by the other hosts.  Raises :class:`FleetRecordsError`, also for an
    ``overlay_*`` variable of any fleet host that the collection does not know.
    """
    active = set(host_list(active_hosts, "active_hosts"))
    records = {}
    published = []
    for host, variables in host_variables(hostvars, fleet_hosts, "fleet_hosts"):
        check_variable_names(host, variables)
        records[host] = fleet_record(host, variables, host in active)
        if host in active:
            published.append((host, variables))
    check_networks_agree(published)
    return records
