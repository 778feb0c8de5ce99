# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.topology_dot`` filter: docs and the FilterModule.

It reads every host's facts and ``overlay_vtep`` from ``hostvars`` in one Python pass
(``fleet_records.host_variables``); ``plugin_utils/topology.py`` draws the graph (pure, unit-tested).
"""

from __future__ import annotations

DOCUMENTATION = """
name: topology_dot
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Draw the overlay of a fleet as a Graphviz DOT graph
description:
  - Reads the C(netfleet_overlay) facts of every host of O(hosts) (left by M(netfleet.overlay.overlay_facts) or
    M(netfleet.overlay.overlay_host)) and returns a Graphviz DOT graph of what the kernels hold. Render it with
    C(dot -Tpng) or C(dot -Tsvg), as C(playbooks/topology.yml) does.
  - Every host is a box with its name and its VTEP, holding one node per endpoint (name, IP address with prefix
    length, MAC). Every network is one node below the hosts (name, VNI, subnet), and every endpoint has an edge
    to its network, in the network's colour.
  - For a network with C(egress) or C(dns) in O(networks), every host whose facts show the network also holds its
    gateway (the network's first host address and anycast MAC on C(br0) in C(ovl-<vni>)), with the DNS server
    (dnsmasq on the gateway address) when the network has C(dns), and for C(egress) the path out, from the
    gateway to the host's namespace, which masquerades to the VTEP onto the underlay. An endpoint attached to a
    netns of the user's names that netns.
  - Networks are drawn when a host's facts show them (its vxlan device or an endpoint on it). O(networks) only
    adds their subnets, and the VNI of a network whose vxlan device no host's facts show; without it, the
    subnets are those of the endpoints' addresses.
  - A host without facts, or whose facts were gathered without pyroute2, is drawn with a note instead of
    endpoints, and with its C(overlay_vtep) when the facts have no VTEP. A host that is not in O(active_hosts) is
    drawn dashed (not reached in this run; its facts, if any, came from a fact cache).
  - The same facts always give the same text. Node IDs are made up by the filter and every name goes into an
    escaped HTML-like label, so no hostname or endpoint name can break the graph.
positional: _input, hosts
options:
  _input:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  hosts:
    description: The hosts to draw, typically C(ansible_play_hosts_all).
    type: list
    elements: str
    required: true
  networks:
    description: The fleet's C(overlay_networks) (each a dict with C(name), C(vni), C(subnet), C(egress), C(dns)),
      for the subnets and the gateways.
    type: list
    elements: dict
    default: []
  active_hosts:
    description:
      - The hosts that this run reached, typically C(ansible_play_hosts). The others are drawn dashed.
      - When omitted, every host counts as reached.
    type: list
    elements: str
  title:
    description: A heading above the graph, before the counts of hosts, networks and endpoints.
    type: str
"""

EXAMPLES = r"""
- name: Draw the fleet's overlay once
  ansible.builtin.copy:
    content: >-
      {{ hostvars | netfleet.overlay.topology_dot(ansible_play_hosts_all,
           networks=overlay_networks | default([]), active_hosts=ansible_play_hosts, title='netfleet.overlay') }}
    dest: /tmp/topology.dot
    mode: "0644"
  delegate_to: localhost
  run_once: true

- name: Render it as an SVG
  ansible.builtin.command:
    argv: [dot, -Tsvg, -o, /tmp/topology.svg, /tmp/topology.dot]
    creates: /tmp/topology.svg
  delegate_to: localhost
  run_once: true
"""

RETURN = """
_value:
  description:
    - The graph as DOT text, ending in a newline. Host boxes are the clusters C(cluster_host0), C(cluster_host1),
      ... in natural order of the hostnames (C(h2) before C(h10)); their endpoints are the nodes C(host0_ep0),
      ... in natural order of their names, and the networks C(net0), ... in VNI order. A host's gateways are the
      nodes C(host0_gw1) (C(gw) and the network's index), its NAT the node C(host0_nat).
  type: str
"""

from ansible_collections.netfleet.overlay.plugins.module_utils._model import kind
from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.fleet_records import (
    FleetRecordsError,
    host_list,
    host_variables,
    overlay_facts,
)
from ansible_collections.netfleet.overlay.plugins.plugin_utils.topology import TopologyError, topology_dot


@filter_errors("topology_dot", FleetRecordsError, TopologyError)
def _topology_dot(hostvars, hosts, networks=None, active_hosts=None, title=None):
    """Read every host's facts from hostvars, then draw the graph."""
    active = None if active_hosts is None else host_list(active_hosts, "active_hosts")
    if title is not None and not isinstance(title, str):
        raise TopologyError(f"title must be a string, got {kind(title)}")
    facts, vteps = {}, {}
    for host, variables in host_variables(hostvars, hosts):
        facts[host] = overlay_facts(host, variables)
        vteps[host] = variables.get("overlay_vtep")
    return topology_dot(facts, networks or [], active, title, vteps)


class FilterModule:
    """netfleet.overlay filter that draws the fleet's overlay."""

    def filters(self):
        return {"topology_dot": _topology_dot}
