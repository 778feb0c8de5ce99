#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge
short_description: Manage a Linux bridge
version_added: 0.1.0
description:
  - Creates, changes or removes a Linux bridge, such as the C(br0) of an overlay namespace, and keeps it up.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.host_lock
options:
  name:
    description: Name of the bridge (at most 15 characters).
    type: str
    required: true
  mtu:
    description:
      - MTU of the bridge. Set it to the overlay MTU (underlay MTU minus 50), like the ports.
      - When omitted, a new bridge gets the kernel default (1500) and an existing one keeps its MTU.
    type: int
  address:
    description:
      - The bridge's only global address, with its prefix length (like C(10.214.0.1/24)); any other global
        address of the bridge is removed. An empty string removes them all.
      - This is how C(overlay_host) puts a network's gateway on C(br0). An IPv6 address is added without
        duplicate address detection (the gateway is the same on every host).
      - When omitted, the bridge's addresses are left as they are.
    type: str
  mac:
    description:
      - The bridge's MAC address (unicast), like the gateway's anycast MAC C(06:00:00:01:2c:01) that
        C(overlay_host) sets, the same on every host.
      - When omitted, the bridge keeps its MAC (the kernel's choice for a new bridge).
    type: str
  state:
    description: Whether the bridge exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The bridge of an overlay network
  netfleet.overlay.bridge:
    name: br0
    netns: ovl-256
    mtu: 1450

- name: The same bridge holding the network's gateway
  netfleet.overlay.bridge:
    name: br0
    netns: ovl-300
    mtu: 1450
    address: 10.214.0.1/24
    mac: "06:00:00:01:2c:01"
"""

RETURN = r"""
before:
  description: The bridge before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The bridge after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: br0, netns: ovl-256, mtu: 1450, up: true}
  contains:
    address:
      description: The bridge's global address (a list when it has several, null when none); only with O(address).
      returned: when O(address) is given
      type: raw
    mac:
      description: The bridge's MAC; only with O(mac).
      returned: when O(mac) is given
      type: str
commands:
  description: The equivalent C(ip link) commands, every word shell-quoted.
  returned: always
  type: list
  elements: str
  sample: [ip -n ovl-256 link add br0 type bridge, ip -n ovl-256 link set br0 mtu 1450, ip -n ovl-256 link set br0 up]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Bridge
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import converge


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "required": True},
            "mtu": {"type": "int"},
            "address": {"type": "str"},
            "mac": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, converge, Bridge)


if __name__ == "__main__":
    main()
