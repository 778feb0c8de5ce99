# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``netfleet.overlay.host_tables`` filter: docs and the FilterModule.

The logic lives in ``plugin_utils/peer_tables.py`` (``host_tables``: pure, unit-tested on plain data).
"""

from __future__ import annotations

DOCUMENTATION = """
name: host_tables
author: netfleet.overlay maintainers
version_added: 0.1.0
short_description: Expand one host's part of the fleet's overlay plan
description:
  - Takes the C(plan) that M(netfleet.overlay.overlay_plan) returned and a hostname, and returns that host's record,
    exactly as R(netfleet.overlay.peer_tables,ansible_collections.netfleet.overlay.peer_tables_filter) would for it.
    That is its networks with their own endpoints, their static ARP (C(neigh)) and FDB (C(fdb)) entries (on a
    network with C(flood), the FDB also holds the host's flood list, C(00:00:00:00:00:00) once per peer VTEP) and the
    names of their peers (C(peer_hosts), VTEP -> hostname, null when unknown, which M(netfleet.overlay.overlay_host)
    records), its allowlist, ports and preserved VTEPs (including those of hosts that left the fleet group but whose
    entries are kept).
  - Each network says whether it is C(encrypted). On an encrypted network the FDB destinations, C(peers) and
    C(peer_hosts) are the hosts' tunnel addresses; the allowlist and ports are the unencrypted networks' only. A host
    with an endpoint on an encrypted network gets C(wireguard) (its tunnel address and prefix length, port, MTU,
    C(rotate) and its WireGuard peers with their public keys and endpoints), which M(netfleet.overlay.overlay_host)
    takes as its O(netfleet.overlay.overlay_host#module:wireguard) option, and C(wireguard_allow), the VTEPs of those
    peers; other hosts get null and an empty list.
  - Linear in the size of that host's tables. The plan holds each network's endpoints and VTEPs once, and this
    filter leaves out the host's own.
positional: _input, host
options:
  _input:
    description: The C(plan) returned by M(netfleet.overlay.overlay_plan).
    type: dict
    required: true
  host:
    description: The host, typically C(inventory_hostname). It must be a host of the plan's fleet group.
    type: str
    required: true
"""

EXAMPLES = r"""
# fleet_plan is the registered result of netfleet.overlay.overlay_plan, whose examples converge each host with its
# part; here each host only shows its static ARP entries and the VTEPs that its allowlist accepts.
- name: Show the host's ARP entries and VTEP allowlist
  ansible.builtin.debug:
    msg:
      neigh: "{{ _mine.networks | map(attribute='neigh') | flatten }}"
      allowlist: "{{ _mine.allowlist }}"
  vars:
    _mine: "{{ fleet_plan.plan | netfleet.overlay.host_tables(inventory_hostname) }}"
"""

RETURN = """
_value:
  description:
    - The host's record, C(state), C(skip), C(vtep), C(networks), C(allowlist), C(ports), C(preserve_vteps),
      C(wireguard) and C(wireguard_allow), as
      R(netfleet.overlay.peer_tables,ansible_collections.netfleet.overlay.peer_tables_filter) documents it.
  type: dict
"""

from ansible_collections.netfleet.overlay.plugins.plugin_utils._filters import filter_errors
from ansible_collections.netfleet.overlay.plugins.plugin_utils.peer_tables import PeerTableError, host_tables


@filter_errors("host_tables", PeerTableError)
def _host_tables(plan, host):
    """Check the host argument, then expand the host's part."""
    if not isinstance(host, str) or not host:
        raise PeerTableError(f"the host must be a hostname, got {host!r}")
    return host_tables(plan, host)


class FilterModule:
    """netfleet.overlay filter that expands one host's part of the overlay plan."""

    def filters(self):
        return {"host_tables": _host_tables}
