# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.fleet_records`` filter: docs, argument checks and the FilterModule.

The logic lives in ``plugin_utils/fleet_records.py`` (pure, unit-tested on plain data).
"""

from __future__ import annotations

DOCUMENTATION = """
name: fleet_records
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Build the fleet argument of the peer_tables filter from hostvars
description:
  - Reads, for every host of O(fleet_hosts), its C(overlay_state), C(overlay_vtep) and C(overlay_endpoints)
    variables and its C(ansible_facts.netfleet_overlay) facts, and returns the host records that
    R(netfleet.overlay.peer_tables,ansible_collections.netfleet.overlay.peer_tables_filter) takes as its
    C(fleet) argument.
  - One pass over the hosts in Python, so use it instead of a Jinja loop over C(hostvars), which is
    quadratic and slow past a few hundred hosts. M(netfleet.overlay.overlay_plan), which the role
    C(netfleet.overlay.overlay) uses, builds the same records from C(hostvars) itself, on the controller.
  - Only hosts in O(active_hosts) are C(reachable). A host outside the play or the C(--limit), or one that
    became unreachable, is never treated as gone. With facts (for example from a fact cache) its endpoints
    stay in the other hosts' tables as the facts show them. Without facts, C(current) is null and the other
    hosts preserve whatever points at its VTEP.
  - C(hostvars) cannot see play vars or role parameters, so M(netfleet.overlay.overlay_facts) records what each
    host was given (its O(netfleet.overlay.overlay_facts#module:desired) option) as C(desired) in the facts. For
    a host of O(active_hosts), C(desired.state) wins over C(overlay_state) here.
    Set C(overlay_vtep) and C(overlay_endpoints) in the inventory (or with set_fact).
  - Facts that say C(pyroute2=false) count as no facts.
  - The peer table is computed from one host's C(overlay_networks), so when the facts of two present hosts of
    O(active_hosts) show different C(desired.networks), the
    filter fails, naming both hosts and the first network that differs.
  - It also fails when the facts of a present host of O(active_hosts) say that its VTEP is not one of its
    addresses (C(vtep_is_local=false)), because the other hosts would send its endpoints' traffic to someone else.
  - It also fails on a variable of a host of O(fleet_hosts) whose name starts with C(overlay_) and that the
    collection does not read (a typo such as C(overlay_endpoint)), naming the host, the variable and the closest
    known name.
positional: _input, fleet_hosts, active_hosts
options:
  _input:
    description: Ansible's C(hostvars) (any mapping of hostname to that host's variables).
    type: dict
    required: true
  fleet_hosts:
    description:
      - The hosts that form the fleet, typically C(groups[overlay_fleet_group]).
      - Every one must be in the inventory.
    type: list
    elements: str
    required: true
  active_hosts:
    description:
      - The hosts this run reaches and converges, typically C(ansible_play_hosts). Hosts that are not in
        O(fleet_hosts) are ignored.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Compute the peer tables once for the whole fleet
  ansible.builtin.set_fact:
    fleet_peer_tables: >-
      {{ overlay_networks | netfleet.overlay.peer_tables(
           hostvars | netfleet.overlay.fleet_records(groups['all'], ansible_play_hosts)) }}
  run_once: true

- name: Show what the peer table is fed
  ansible.builtin.debug:
    msg: "{{ hostvars | netfleet.overlay.fleet_records(groups['all'], ansible_play_hosts) }}"
  run_once: true
# =>
#   h1:
#     state: present
#     reachable: true
#     vtep: 198.18.1.1
#     underlay_mtu: 1500
#     endpoints: [{name: hosta, network: overlay_network}]
#     current: {hosta: {network: overlay_network, ip: 10.213.0.2, mac: "02:42:0a:d5:00:02"}}
#   h3:                      # outside the --limit, no cached facts
#     state: present
#     reachable: false
#     vtep: 198.18.1.3       # from overlay_vtep
#     underlay_mtu: null
#     endpoints: [{name: hostc, network: overlay_network}]
#     current: null
"""

RETURN = """
_value:
  description:
    - Hostname -> host record, for every host of O(fleet_hosts), in that order.
    - "A record has C(state) (for a host of O(active_hosts) C(desired.state) of its facts, else C(overlay_state),
      default V(present)), C(reachable)
      (whether the host is in O(active_hosts)), C(vtep) (C(overlay_vtep), else the VTEP from the facts, else null),
      C(underlay_mtu) (from the facts, else null), C(endpoints) (C(overlay_endpoints), default empty) and
      C(current) (endpoint name -> C({network, ip, mac}) from the facts; null when the host has no
      C(netfleet_overlay) facts)."
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    FleetRecordsError,
    fleet_records,
)

_ARGUMENTS = ("hostvars", "fleet_hosts", "active_hosts")


@filter_errors("fleet_records", FleetRecordsError)
def _fleet_records(*args, **kwargs):
    """Check the filter's arguments, then run the pure computation."""
    if len(args) > len(_ARGUMENTS):
        raise AnsibleFilterError(
            f"fleet_records takes hostvars, fleet_hosts and active_hosts, got {len(args)} arguments"
        )
    data = dict(zip(_ARGUMENTS, args, strict=False))
    for key, value in kwargs.items():
        if key not in _ARGUMENTS[1:]:
            raise AnsibleFilterError(f"fleet_records: unknown argument {key!r} (allowed: fleet_hosts, active_hosts)")
        if key in data:
            raise AnsibleFilterError(f"fleet_records: argument {key!r} is given twice")
        data[key] = value
    for key in _ARGUMENTS[1:]:
        if key not in data:
            raise AnsibleFilterError(f"fleet_records: missing required argument {key!r}")
    return fleet_records(data["hostvars"], data["fleet_hosts"], data["active_hosts"])


class FilterModule:
    """netfleet.overlay filter that builds the peer table's fleet from hostvars."""

    def filters(self):
        return {"fleet_records": _fleet_records}
