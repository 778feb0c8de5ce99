#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fdb
short_description: Manage the static FDB entries of a VXLAN device (remote MAC to remote VTEP)
version_added: 0.1.0
description:
  - Reconciles the device-side (C(self)) forwarding entries of a VXLAN device by key, as C(bridge fdb) would
    show them. A unicast MAC points at the VTEP of the host where that MAC lives.
  - Unicast entries are written with C(replace), C(self) and C(permanent) state, as Docker's overlay driver does.
  - The all-zero MAC C(00:00:00:00:00:00) may appear once per destination; together those entries are the
    head-end flood list (broadcast and unknown unicast are sent to every listed VTEP). They are written with
    C(append).
  - Only permanent C(self) entries with a destination count as the device's table. Entries that the bridge learned
    on the port, and the bridge's own C(master ... permanent) entry, are never read as part of it or removed.
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
      - The wanted entries. Each key (MAC) appears once, except C(00:00:00:00:00:00), once per O(entries[].dst).
      - A duplicate key is an error that names it.
    type: list
    elements: dict
    default: []
    suboptions:
      mac:
        description:
          - Unicast MAC of the remote endpoint, or C(00:00:00:00:00:00) for a flood-list entry.
          - Multicast and broadcast MACs are rejected.
        type: str
        required: true
      dst:
        description:
          - Underlay IPv4 or IPv6 address of the remote VTEP. It must be of the same family as the device's local
            address when the device has one.
          - May be omitted with O(state=deleted), to delete every entry of that MAC.
        type: str
"""

EXAMPLES = r"""
- name: Point hostb's MAC at the VTEP of the host that runs it
  netfleet.overlay.fdb:
    netns: ovl-256
    dev: vxlan0
    entries:
      - mac: 02:42:0a:d5:00:03
        dst: 198.18.1.2

- name: Make the table exactly the fleet's peers (purges stale permanent entries)
  netfleet.overlay.fdb:
    netns: ovl-256
    dev: vxlan0
    state: overridden
    entries:
      - {mac: 02:42:0a:d5:00:03, dst: 198.18.1.2}
      - {mac: 02:42:0a:d5:00:04, dst: 198.18.1.3}
      - {mac: "00:00:00:00:00:00", dst: 198.18.1.2}
      - {mac: "00:00:00:00:00:00", dst: 198.18.1.3}

- name: Remove every entry of one MAC
  netfleet.overlay.fdb:
    netns: ovl-256
    dev: vxlan0
    state: deleted
    entries:
      - mac: 02:42:0a:d5:00:03

- name: Read the table
  netfleet.overlay.fdb:
    netns: ovl-256
    dev: vxlan0
    state: gathered
  register: fdb
"""

RETURN = r"""
before:
  description:
    - The device's permanent entries before the run, sorted by MAC then destination.
    - The whole table, so only on request, as it can be large.
  returned: in diff mode or with O(full_tables=true), except with O(state=rendered)
  type: list
  elements: dict
  sample: [{mac: 02:42:0a:d5:00:03, dst: 198.18.1.2}]
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
      description: The entries written (added, or with a new C(dst)), as O(entries) gives them.
      type: list
      elements: dict
  sample: {deleted: [], written: [{mac: 02:42:0a:d5:00:03, dst: 198.18.1.2}]}
commands:
  description: The equivalent C(bridge) commands of the changes, deletes first.
  returned: always
  type: list
  elements: str
  sample: ["bridge -n ovl-256 fdb replace 02:42:0a:d5:00:03 dev vxlan0 dst 198.18.1.2 self permanent"]
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
    run(module, _table.converge, _table.FDB, pyroute2=module.params["state"] != "rendered")


if __name__ == "__main__":
    main()
