#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: netns
short_description: Manage a named network namespace
version_added: 0.1.0
description:
  - Creates or removes a named network namespace, the file C(/run/netns/NAME) that C(ip netns) also uses.
  - Removing a namespace destroys the devices inside it (a veth's other end goes with it).
author:
  - netfleet.overlay maintainers (@netfleet)
extends_documentation_fragment:
  - netfleet.overlay.netns.attributes
  - netfleet.overlay.netns.host_lock
options:
  name:
    description: Name of the namespace.
    type: str
    required: true
  state:
    description: Whether the namespace exists.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - pyroute2 >= 0.9.1, < 0.10 on the managed host
"""

EXAMPLES = r"""
- name: The overlay namespace of VNI 256
  netfleet.overlay.netns:
    name: ovl-256

- name: Remove an endpoint namespace
  netfleet.overlay.netns:
    name: hosta
    state: absent
"""

RETURN = r"""
before:
  description: The namespace before the run (C({}) when absent).
  returned: always
  type: dict
  sample: {}
after:
  description: The namespace after the run; in check mode, the prediction.
  returned: always
  type: dict
  sample: {name: ovl-256}
commands:
  description: The equivalent C(ip netns) commands, every word shell-quoted.
  returned: always
  type: list
  elements: str
  sample: [ip netns add ovl-256]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfleet.overlay.plugins.module_utils._links import Netns
from ansible_collections.netfleet.overlay.plugins.module_utils._module import run
from ansible_collections.netfleet.overlay.plugins.module_utils._objects import converge


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    run(module, converge, Netns)


if __name__ == "__main__":
    main()
