#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: neigh
short_description: Manage static ARP/ND (neighbour) entries on a device
version_added: 0.1.0
description:
  - Reconciles the permanent neighbour entries (IPv4 ARP and IPv6 ND) of one device by key, the IP address.
  - On a VXLAN device with C(proxy) on, these entries let the device answer ARP and neighbour solicitations
    locally, as Docker's overlay driver does, so no broadcast crosses the underlay.
  - Only permanent entries count as the device's table. Learned (reachable, stale, failed ...) entries are never
    read as part of it or removed.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.table
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.host_lock
options:
  entries:
    description:
      - The wanted entries, one per IP address. A duplicate IP is an error that names it.
    type: list
    elements: dict
    default: []
    suboptions:
      ip:
        description: IPv4 or IPv6 address of the remote endpoint.
        type: str
        required: true
      mac:
        description:
          - Unicast MAC of the remote endpoint.
          - May be omitted with O(state=deleted).
        type: str
"""

EXAMPLES = r"""
- name: Answer ARP for hostb locally on vxlan0
  netfleet.overlay.neigh:
    netns: ovl-256
    dev: vxlan0
    entries:
      - ip: 10.213.0.3
        mac: 02:42:0a:d5:00:03

- name: Make the table exactly these entries (purges stale permanent entries)
  netfleet.overlay.neigh:
    netns: ovl-256
    dev: vxlan0
    state: overridden
    entries:
      - {ip: 10.213.0.3, mac: 02:42:0a:d5:00:03}
      - {ip: "fd00:213::3", mac: 02:9c:51:8e:21:07}

- name: Show what would be typed, without touching the host
  netfleet.overlay.neigh:
    netns: ovl-256
    dev: vxlan0
    state: rendered
    entries:
      - {ip: 10.213.0.3, mac: 02:42:0a:d5:00:03}
"""

RETURN = r"""
before:
  description:
    - The device's permanent entries before the run, sorted by IP.
    - The whole table, so only on request, as it can be large.
  returned: in diff mode or with O(full_tables=true), except with O(state=rendered)
  type: list
  elements: dict
  sample: [{ip: 10.213.0.3, mac: 02:42:0a:d5:00:03}]
after:
  description:
    - The entries after the run. In check mode, the predicted entries.
    - The whole table, so only on request, as it can be large.
  returned: in diff mode or with O(full_tables=true), except with O(state=rendered)
  type: list
  elements: dict
counts:
  description: How many entries the table held before and after the run, and how many the run deleted and wrote.
  returned: always except with O(state=rendered)
  type: dict
  contains:
    before:
      description: The device's permanent entries before the run.
      type: int
    after:
      description: The entries after the run (in check mode, predicted).
      type: int
    deleted:
      description: The entries deleted (in check mode, to be deleted).
      type: int
    written:
      description: The entries written, new or changed (in check mode, to be written).
      type: int
  sample: {before: 0, after: 2, deleted: 0, written: 2}
changes:
  description:
    - The entries that the run changed (in check mode, would change), in the order of RV(commands).
    - Bounded by the changes, whatever the size of the table.
  returned: always except with O(state=rendered)
  type: dict
  contains:
    deleted:
      description: The entries deleted, as O(entries) gives them.
      type: list
      elements: dict
    written:
      description: The entries written (added, or with a new C(mac)), as O(entries) gives them.
      type: list
      elements: dict
  sample: {deleted: [], written: [{ip: 10.213.0.3, mac: 02:42:0a:d5:00:03}]}
commands:
  description: The equivalent C(ip neigh) commands of the changes, deletes first.
  returned: always
  type: list
  elements: str
  sample: ["ip -n ovl-256 neigh replace 10.213.0.3 lladdr 02:42:0a:d5:00:03 dev vxlan0 nud permanent"]
gathered:
  description: The permanent entries read from the device.
  returned: when O(state=gathered)
  type: list
  elements: dict
rendered:
  description: The commands that would create O(entries) on an empty device.
  returned: when O(state=rendered)
  type: list
  elements: str
errors:
  description: One message per entry that the kernel refused.
  returned: on failure while writing
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _table
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import table_argument_spec
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run


def main():
    module = AnsibleModule(argument_spec=table_argument_spec(), supports_check_mode=True)
    run(module, _table.converge, _table.NEIGH, pyroute2=module.params["state"] != "rendered")


if __name__ == "__main__":
    main()
