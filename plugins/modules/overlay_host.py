#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: overlay_host
short_description: Converge one host's whole overlay state in one run
version_added: 0.1.0
description:
  - Takes one host's part of the fleet's peer tables, as computed by the filter R(netfleet.overlay.peer_tables,
    ansible_collections.netfleet.overlay.peer_tables_filter), and converges the host to it in one module run.
  - It first purges what the collection owns on the host but is no longer wanted (endpoints, then networks). Then,
    per network, it creates the overlay netns, the bridge, the vxlan device and the endpoints, and finally sets
    the ARP and FDB tables of the vxlan device (C(overridden)).
  - It uses the same planners as M(netfleet.overlay.netns), M(netfleet.overlay.bridge), M(netfleet.overlay.vxlan),
    M(netfleet.overlay.veth), M(netfleet.overlay.neigh) and M(netfleet.overlay.fdb). Those modules stay for
    hand-built topologies.
  - Ownership is marked with interface aliases (see M(netfleet.overlay.overlay_facts)). Nothing without them is
    purged.
  - This is what the role C(netfleet.overlay.overlay) runs; you rarely call it directly.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns.attributes
options:
  vtep:
    description: The host's VTEP address. It must be one of the host's addresses; the vxlan devices are bound to it.
    type: str
  networks:
    description:
      - This host's networks, each as the filter returns it (C(name), C(vni), C(port), C(mtu), C(netns), C(bridge),
        C(vxlan), C(endpoints), C(neigh), C(fdb)).
    type: list
    elements: dict
    default: []
  preserve_vteps:
    description:
      - VTEPs of hosts whose state is unknown in this run (unreachable without cached facts). Existing FDB entries
        pointing at them, and the ARP entries of those MACs, are left as they are.
    type: list
    elements: str
    default: []
  state:
    description: V(absent) removes everything the collection owns on the host.
    type: str
    choices: [present, absent]
    default: present
notes:
  - In check mode, a network whose namespace does not exist yet is reported as created, with a summary line in
    RV(commands), since nothing inside it can be read.
"""

EXAMPLES = r"""
- name: Converge this host (the role does this)
  netfleet.overlay.overlay_host:
    vtep: "{{ overlay_vtep }}"
    networks: "{{ _overlay_tables[inventory_hostname].networks }}"
    preserve_vteps: "{{ _overlay_tables[inventory_hostname].preserve_vteps }}"
"""

RETURN = r"""
commands:
  description: The equivalent C(ip) and C(bridge) commands of every change, in order.
  returned: always
  type: list
  elements: str
removed:
  description: Networks and endpoints that were purged.
  returned: always
  type: dict
  sample: {networks: [], endpoints: [hostc]}
networks:
  description: Per network, its FDB and ARP tables before and after.
  returned: always
  type: list
  elements: dict
ansible_facts:
  description: C(netfleet_overlay), the host's overlay facts after the run, as M(netfleet.overlay.overlay_facts)
    returns them (not in check mode).
  returned: when not in check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _host
from ansible_collections.netfleet.overlay.plugins.module_utils import _netlink as nl


def main():
    module = AnsibleModule(
        argument_spec={
            "vtep": {"type": "str"},
            "networks": {"type": "list", "elements": "dict", "default": []},
            "preserve_vteps": {"type": "list", "elements": "str", "default": []},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["vtep"])],
        supports_check_mode=True,
    )
    nl.require_pyroute2(module)
    _host.run_module(module)


if __name__ == "__main__":
    main()
