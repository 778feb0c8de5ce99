#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: veth
short_description: Manage an endpoint link, a veth pair from a bridge into an endpoint namespace
version_added: 0.1.0
description:
  - Plugs an endpoint into an overlay the way Docker plugs a container in. The near end O(name) is a port of the
    bridge O(master) in O(netns). The far end is O(peer_name) (C(eth0)) inside the endpoint namespace
    O(peer_netns), which is created when missing, with O(address), O(mac) and O(mtu). Both ends and the
    endpoint's loopback are up.
  - A pair whose far end is missing or is not this pair's partner is recreated.
  - Other global addresses on the far end are removed, so O(address) is the endpoint's only address.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.host_lock
options:
  name:
    description: Name of the near end, in O(netns), for example C(veth-hosta).
    type: str
    required: true
  netns:
    description: Namespace of the near end and of O(master), for example C(ovl-256). It must exist.
  master:
    description: Bridge in O(netns) that the near end is a port of.
    type: str
  peer_name:
    description: Name of the far end inside O(peer_netns).
    type: str
    default: eth0
  peer_netns:
    description:
      - Endpoint namespace of the far end, created when missing. Required with O(state=present).
      - O(state=absent) removes the pair but leaves this namespace; remove it with M(netfleet.overlay.netns).
    type: str
  address:
    description: Address with prefix length of the far end, for example C(10.213.0.2/24). IPv4 or IPv6.
    type: str
  mac:
    description:
      - MAC of the far end.
      - When omitted and O(address) is given, it is derived from the address as Docker does
        (C(02:42:) and the IPv4 bytes; a stable locally administered MAC for IPv6).
    type: str
  mtu:
    description:
      - MTU of both ends. Keep it at or below the vxlan MTU, or large packets are dropped silently.
      - When omitted, a new pair gets 1500 and an existing one keeps its MTU.
    type: int
  state:
    description: Whether the pair exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Plug endpoint hosta into overlay 256
  netfleet.overlay.veth:
    name: veth-hosta
    netns: ovl-256
    master: br0
    peer_name: eth0
    peer_netns: hosta
    address: 10.213.0.2/24
    mtu: 1450
"""

RETURN = r"""
before:
  description: The pair before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The pair after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: veth-hosta, netns: ovl-256, master: br0, mtu: 1450, up: true, peer_name: eth0, peer_netns: hosta,
           address: 10.213.0.2/24, mac: 02:42:0a:d5:00:02}
commands:
  description: The equivalent C(ip) commands, every word shell-quoted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Veth
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import converge


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "required": True},
            "master": {"type": "str"},
            "peer_name": {"type": "str", "default": _model.ENDPOINT_IFNAME},
            "peer_netns": {"type": "str"},
            "address": {"type": "str"},
            "mac": {"type": "str"},
            "mtu": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    run(module, converge, Veth)


if __name__ == "__main__":
    main()
