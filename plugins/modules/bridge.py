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
  - netfleet.overlay maintainers
extends_documentation_fragment:
  - netfleet.overlay.netns
  - netfleet.overlay.netns.attributes
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
commands:
  description: The equivalent C(ip link) commands.
  returned: always
  type: list
  elements: str
  sample: [ip -n ovl-256 link add br0 type bridge mtu 1450, ip -n ovl-256 link set br0 up]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils import _validate as v
from ansible_collections.netfleet.overlay.plugins.module_utils._argspec import netns_option
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import ObjectModule, Step, ip_cmd

KERNEL_DEFAULT_MTU = 1500


class Bridge(ObjectModule):
    def validate(self):
        p = self.params
        v.interface(p["name"], "name")
        if p["netns"] is not None:
            v.netns_name(p["netns"], "netns")
        if p["mtu"] is not None:
            v.mtu(p["mtu"])

    def read(self):
        p = self.params
        link = self.ns(p["netns"]).link(p["name"])
        if link is None:
            return None
        if link["kind"] != "bridge":
            raise v.InputError(
                f"name: {p['name']} in {self.ns(p['netns']).label} is a {link['kind']} device, "
                "not a bridge; remove it or choose another name"
            )
        return {"name": p["name"], "netns": p["netns"], "mtu": link["mtu"], "up": link["up"]}

    def predict(self, before):
        p = self.params
        if p["state"] == "absent":
            return None
        mtu = p["mtu"] or (before["mtu"] if before else KERNEL_DEFAULT_MTU)
        return {"name": p["name"], "netns": p["netns"], "mtu": mtu, "up": True}

    def steps(self, before, after):
        p = self.params
        name, netns = p["name"], p["netns"]
        ns = self.ns(netns)
        if after is None:
            if before is None:
                return []
            return [Step(ip_cmd(netns, f"link del {name}"), lambda: ns.link_del(name, ns.link_index(name)))]
        steps = []
        if before is None:
            extra = {"mtu": p["mtu"]} if p["mtu"] else {}
            steps.append(
                Step(
                    ip_cmd(netns, f"link add {name} type bridge" + (f" mtu {p['mtu']}" if p["mtu"] else "")),
                    lambda: ns.link_add(name, "bridge", **extra),
                )
            )
            before = {"mtu": after["mtu"], "up": False}
        elif before["mtu"] != after["mtu"]:
            steps.append(
                Step(
                    ip_cmd(netns, f"link set {name} mtu {after['mtu']}"),
                    lambda: ns.link_set(name, ns.link_index(name), mtu=after["mtu"]),
                )
            )
        if not before["up"]:
            steps.append(
                Step(ip_cmd(netns, f"link set {name} up"), lambda: ns.link_set(name, ns.link_index(name), state="up"))
            )
        return steps


def main():
    spec = netns_option()
    spec.update(
        {
            "name": {"type": "str", "required": True},
            "mtu": {"type": "int"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    Bridge(module).run()


if __name__ == "__main__":
    main()
