#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: vxlan
short_description: Manage a VXLAN device whose socket stays on the underlay
version_added: 0.1.0
description:
  - Creates a VXLAN device the way Docker's overlay driver does. The device is created in the namespace the module
    runs in (the underlay), bound to O(local) and, when given, O(dev). It is then moved into O(netns) and renamed
    to O(name). Its UDP socket therefore stays on the underlay while the device serves the overlay namespace.
  - Learning is off and proxy is on by default. The static FDB and ARP entries are then the whole truth
    (see M(netfleet.overlay.fdb) and M(netfleet.overlay.neigh)), with no race against learned entries.
  - O(vni), O(port), O(local), O(dev) and O(proxy) cannot be changed on a live device. Changing them recreates the
    device, and the result says so in RV(recreated) and RV(recreate_reason). The kernel refuses to change C(proxy)
    in place (EOPNOTSUPP), so it is recreated too.
  - O(mtu), O(master) and O(learning) are changed in place.
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.host_lock
options:
  name:
    description: Name of the device in O(netns).
    type: str
    default: vxlan0
  netns:
    description:
      - The namespace where the device ends up, for example C(ovl-256). It must exist.
      - Omit it to leave the device in the namespace the module runs in.
  vni:
    description: VXLAN network identifier, 1 to 16777215. Required with O(state=present).
    type: int
  port:
    description: UDP destination port.
    type: int
    default: 4789
  local:
    description:
      - Local VTEP address, IPv4 or IPv6. It must be an address of the host (checked before any change).
      - FDB destinations must be of the same family.
    type: str
  dev:
    description: Underlay device that the socket is bound to, in the namespace the device is made in.
    type: str
  underlay_netns:
    description:
      - The namespace the device is made in, where its UDP socket then stays, before it is moved into O(netns).
        O(local) must be one of its addresses and O(dev) one of its devices. It must exist and differ from O(netns).
      - Omit it to make the device in the namespace the module runs in (the host's underlay), as Docker does.
      - M(netfleet.overlay.overlay_host) makes an encrypted network's device in C(ovl-wg), the WireGuard namespace,
        with O(local) the host's tunnel address, so its socket is reachable only through the tunnel.
      - Where a device was made cannot be read back; a change of O(local) (which goes with it) recreates the device.
    type: str
    version_added: 0.3.0
  learning:
    description: Whether the device learns remote MACs from received frames. Keep it off with static tables.
    type: bool
    default: false
  proxy:
    description: Whether the device answers ARP/ND from its neighbour table (needed for M(netfleet.overlay.neigh)).
    type: bool
    default: true
  master:
    description: Bridge in O(netns) that the device is a port of.
    type: str
  mtu:
    description:
      - MTU of the device.
      - When omitted, a new device gets the MTU of O(dev) (or 1500) minus the encapsulation overhead
        (50 bytes over IPv4, 70 over IPv6); an existing device keeps its MTU.
    type: int
  state:
    description: Whether the device exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The vxlan0 of an overlay network, as Docker builds it (learning off here)
  netfleet.overlay.vxlan:
    name: vxlan0
    netns: ovl-256
    vni: 256
    port: 4789
    local: 198.18.1.1
    dev: eth0
    master: br0
    mtu: 1450
"""

RETURN = r"""
before:
  description: The device before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The device after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: vxlan0, netns: ovl-256, vni: 256, port: 4789, local: 198.18.1.1, dev: eth0, learning: false,
           proxy: true, master: br0, mtu: 1450, up: true}
commands:
  description: The equivalent C(ip link) commands, every word shell-quoted.
  returned: always
  type: list
  elements: str
recreated:
  description: Whether the device was (or, in check mode, would be) deleted and created again.
  returned: always
  type: bool
recreate_reason:
  description: The immutable attributes that forced the recreate, as C(old -> new).
  returned: when RV(recreated) is true
  type: str
  sample: vni 256 -> 300
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _model
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._links import Vxlan
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import converge


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "default": _model.VXLAN},
            "vni": {"type": "int"},
            "port": {"type": "int", "default": _model.DEFAULT_PORT},
            "local": {"type": "str"},
            "dev": {"type": "str"},
            "underlay_netns": {"type": "str"},
            "learning": {"type": "bool", "default": False},
            "proxy": {"type": "bool", "default": True},
            "master": {"type": "str"},
            "mtu": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, required_if=[("state", "present", ["vni"])])
    run(module, converge, Vxlan)


if __name__ == "__main__":
    main()
