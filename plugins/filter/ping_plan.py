# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.ping_plan`` filter: docs and the FilterModule.

It reads every host's facts and declared endpoints from ``hostvars`` in one Python pass
(``fleet_records.host_variables``); ``plugin_utils/reachability.py`` plans the pings (pure, unit-tested).
"""

from __future__ import annotations

DOCUMENTATION = """
name: ping_plan
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Plan the functional test of an overlay fleet (every endpoint pings every other one)
description:
  - Reads the C(netfleet_overlay) facts of every host of O(hosts) (left by M(netfleet.overlay.overlay_facts) or
    M(netfleet.overlay.overlay_host)) and plans, for every host, the pings its endpoints must do. Every endpoint
    pings every other endpoint of the fleet, on every host, and a reply is expected exactly when both are on the
    same network.
  - Endpoints that a present host declares in C(overlay_endpoints) but its facts do not show are listed in
    C(missing).
  - Feed each host's C(stdin) to a ping loop, as C(playbooks/verify.yml) does, and the outputs to
    R(netfleet.overlay.reachability_matrix,ansible_collections.netfleet.overlay.reachability_matrix_filter).
  - With O(networks), it also plans two checks per endpoint. Egress is for an endpoint of a network with C(egress),
    which must reach O(egress_target); without a target the check is skipped, and the report says so. Names is for
    an endpoint of a network with C(dns), which must resolve one peer of its network (the next endpoint of the
    network, on another host when there is one) to the peer's address; an endpoint attached to a netns of the
    user's (C(attached) in the facts) is listed as not checked, as the collection writes no resolv.conf for it.
  - Feed each host's C(checks_stdin) to a check loop (as C(verify.yml) does) and the outputs to the C(checks) of
    R(netfleet.overlay.reachability_matrix,ansible_collections.netfleet.overlay.reachability_matrix_filter).
positional: _input, hosts
options:
  _input:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts whose endpoints take part, typically C(ansible_play_hosts).
    type: list
    elements: str
    required: true
  networks:
    description: The fleet's C(overlay_networks), for their C(egress), C(dns) and C(subnet).
    type: list
    elements: dict
    default: []
  egress_target:
    description:
      - The address that every endpoint of a network with C(egress) must reach, C(overlay_verify_egress_target)
        in C(verify.yml). An underlay address that is not an overlay member; an endpoint's address, or one in
        a network's subnet, fails the filter.
      - When omitted or empty, the egress check is skipped.
    type: str
"""

EXAMPLES = r"""
- name: Plan the pings once
  ansible.builtin.set_fact:
    _plan: "{{ hostvars | netfleet.overlay.ping_plan(ansible_play_hosts) }}"
  run_once: true

- name: Ping from this host's endpoints (every line of stdin is "src dst netns ip")
  ansible.builtin.shell:
    cmd: |
      while read -r src dst ns ip; do
        ( if ip netns exec "$ns" ping -c 1 -W 1 "$ip" >/dev/null 2>&1; then r=ok; else r=fail; fi
          echo "$src $dst $ip $r" ) &
      done
      wait
    stdin: "{{ _plan.stdin[inventory_hostname] }}"
  register: _pings
  changed_when: false
"""

RETURN = """
_value:
  description:
    - "C(endpoints): every endpoint in matrix order (by network, host, name), each with C(label) (C(host/name)),
      C(host), C(name), C(network), C(netns) and C(ip)."
    - "C(pings): hostname -> list of C({src, dst, netns, ip, expect}), one per ordered pair of distinct endpoints
      whose source is on that host and whose destination has an address."
    - "C(stdin): hostname -> the same pings as text, one C(src dst netns ip) line each."
    - "C(missing): sorted labels of declared endpoints that the facts do not show."
    - "C(egress): C({networks, target}), the networks with C(egress) and the check's target (null: skipped);
      C(names): C({networks, unchecked}), the networks with C(dns) and the attached endpoints on them, which get no
      name check."
    - "C(checks): hostname -> list of C({kind, src, netns, target}), C(kind) V(egress) or V(name); a name check
      also has C(peer) (its label) and C(address) (what the name must resolve to)."
    - "C(checks_stdin): hostname -> the same checks as text, one C(kind src netns target) line each."
  type: dict
"""

from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    FleetRecordsError,
    host_variables,
    overlay_facts,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.reachability import ReachabilityError, plan_pings


@filter_errors("ping_plan", FleetRecordsError, ReachabilityError)
def _ping_plan(hostvars, hosts, networks=None, egress_target=None):
    """Read every host's facts and declared endpoints from hostvars, then plan the pings and the checks."""
    endpoints, declared = {}, {}
    for host, variables in host_variables(hostvars, hosts):
        facts = overlay_facts(host, variables)
        endpoints[host] = None if facts is None else facts.get("endpoints") or {}
        if (variables.get("overlay_state") or "present") == "present":
            declared[host] = variables.get("overlay_endpoints") or []
    return plan_pings(endpoints, declared, networks, egress_target)


class FilterModule:
    """netfleet.overlay filter that plans the fleet's functional test."""

    def filters(self):
        return {"ping_plan": _ping_plan}
